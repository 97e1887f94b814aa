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
# cmake/Flags.cmake passes GCC's -Wshadow=local, which clang 14 does not know; under -Werror
# that unknown option is an error. Clang-only, flags-only, not a finding in the code.
list(APPEND SLUICE_FUZZ_COMPILE_OPTIONS -Wno-unknown-warning-option)

# ---- clang 14 shim (temporary) ----------------------------------------------------------
# Clang before 16 cannot capture a structured binding in a lambda (C++20 P1091/P1381), which
# GCC 12 accepts. Until the project's sources avoid that, the fuzz tree compiles a copy of
# each affected file with the binding loop rewritten (same line numbers; diagnostics name the
# original via #line). A shim whose pattern no longer matches drops out by itself.
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-std=c++20")
check_cxx_source_compiles("
  struct P { int a, b; };
  int main() { auto [x, y] = P{1, 2}; return [&] { return x + y; }() - 3; }"
  SLUICE_CXX_CAPTURES_STRUCTURED_BINDINGS)
unset(CMAKE_REQUIRED_FLAGS)

# sluice_fuzz_shim(<target> <source relative to the project> <exact text> <replacement>)
function(sluice_fuzz_shim target src from to)
  if(SLUICE_CXX_CAPTURES_STRUCTURED_BINDINGS)
    return()
  endif()
  set(path "${PROJECT_SOURCE_DIR}/${src}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${path}")
  file(READ "${path}" text)
  string(REPLACE "${from}" "${to}" patched "${text}")
  if(patched STREQUAL text)
    return()
  endif()
  get_filename_component(name "${src}" NAME)
  set(copy "${CMAKE_BINARY_DIR}/fuzz_shim/${name}")
  file(WRITE "${copy}.tmp" "#line 1 \"${path}\"\n${patched}")
  file(COPY_FILE "${copy}.tmp" "${copy}" ONLY_IF_DIFFERENT)
  get_target_property(srcs ${target} SOURCES)
  get_target_property(dir ${target} SOURCE_DIR)
  set(out)
  foreach(s IN LISTS srcs)
    get_filename_component(abs "${s}" ABSOLUTE BASE_DIR "${dir}")
    if(abs STREQUAL path)
      list(APPEND out "${copy}")
    else()
      list(APPEND out "${s}")
    endif()
  endforeach()
  set_property(TARGET ${target} PROPERTY SOURCES ${out})
  message(STATUS "fuzz: ${src} captures a structured binding in a lambda, which ${CMAKE_CXX_COMPILER_ID} "
                 "${CMAKE_CXX_COMPILER_VERSION} rejects; compiling a rewritten copy")
endfunction()

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
