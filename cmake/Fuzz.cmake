# libFuzzer build (SLUICE_FUZZ=ON; clang only). Included from tests/fuzz/CMakeLists.txt,
# after every library target exists, so it instruments them in place:
#   - every target in the tree is compiled with -fsanitize=fuzzer-no-link,address,undefined
#     (coverage feedback and sanitizers without libFuzzer's main);
#   - every executable outside tests/fuzz links with -fsanitize=address,undefined;
#   - sluice_add_fuzzer() makes a fuzz target linked with -fsanitize=fuzzer,address,undefined.
# A separate build tree is expected (scripts/fuzz.sh):
#   CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DSLUICE_FUZZ=ON -DSLUICE_BUILD_TESTS=OFF
include_guard(GLOBAL)

if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "SLUICE_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++ "
                      "(this tree uses ${CMAKE_CXX_COMPILER_ID})")
endif()
if(NOT SLUICE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "SLUICE_FUZZ brings its own sanitizers; leave SLUICE_SANITIZE empty")
endif()

set(SLUICE_FUZZ_SANITIZERS "address,undefined")
set(SLUICE_FUZZ_COMPILE_OPTIONS
    -fsanitize=fuzzer-no-link,${SLUICE_FUZZ_SANITIZERS}
    -fno-sanitize-recover=all  # a UBSan finding is a crash the fuzzer keeps
    -fno-omit-frame-pointer)
# Every buildsystem target under `dir`, recursively.
function(sluice_fuzz_collect_targets dir out)
  get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    sluice_fuzz_collect_targets("${sub}" more)
    list(APPEND targets ${more})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Instruments every compiled target of the project (call once, from tests/fuzz, which is added
# last so every library already exists).
function(sluice_fuzz_instrument_tree)
  sluice_fuzz_collect_targets("${PROJECT_SOURCE_DIR}" targets)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "STATIC_LIBRARY" OR type STREQUAL "OBJECT_LIBRARY" OR type STREQUAL "SHARED_LIBRARY"
       OR type STREQUAL "MODULE_LIBRARY" OR type STREQUAL "EXECUTABLE")
      target_compile_options(${t} PRIVATE ${SLUICE_FUZZ_COMPILE_OPTIONS})
    endif()
    if(type STREQUAL "EXECUTABLE" OR type STREQUAL "SHARED_LIBRARY" OR type STREQUAL "MODULE_LIBRARY")
      get_target_property(is_fuzzer ${t} SLUICE_FUZZER)
      if(NOT is_fuzzer)
        target_link_options(${t} PRIVATE -fsanitize=${SLUICE_FUZZ_SANITIZERS})
      endif()
    endif()
  endforeach()
endfunction()

# sluice_add_fuzzer(<name> <sources>...): a libFuzzer target. Extra libraries via
# target_link_libraries() as usual.
function(sluice_add_fuzzer name)
  add_executable(${name} ${ARGN})
  set_target_properties(${name} PROPERTIES SLUICE_FUZZER TRUE RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/bin")
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,${SLUICE_FUZZ_SANITIZERS})
endfunction()
