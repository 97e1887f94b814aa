# Warnings and sanitizer flags shared by every target.
add_compile_options(-Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  add_compile_options(-Wshadow=local)  # GCC only
endif()
if(SLUICE_WERROR)
  add_compile_options(-Werror)
endif()
# GCC 12 reports false -Wrestrict positives inside std::string at -O3 (GCC PR 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  add_compile_options(-Wno-restrict)
endif()
if(CMAKE_BUILD_TYPE STREQUAL "Release")
  add_compile_options(-march=x86-64-v2)
endif()

# Sanitizer trees build at -O1 with line tables only (-g1), the level the sanitizers' own
# documentation recommends: reports still name file and line, and the tree compiles in about
# half the time of -O2 -g (the sanitizer builds dominate the test command's time).
if(NOT SLUICE_SANITIZE STREQUAL "")
  add_compile_options(-O1 -g1)
endif()
if(SLUICE_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(SLUICE_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT SLUICE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "SLUICE_SANITIZE must be '', 'address' or 'thread'")
endif()
