# tests/support: the fixtures several suites share (temporary image files, aligned buffers,
# bdev handles, bounded waits), header-only.
add_library(sluice_test_support INTERFACE)
target_include_directories(sluice_test_support INTERFACE ${PROJECT_SOURCE_DIR}/tests/support)

# sluice_test(NAME LABEL SOURCES...): a GoogleTest executable whose tests ctest discovers,
# labelled so the test script can pick suites per build (e.g. TSan runs `thread`).
function(sluice_test name label)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE sluice_test_support GTest::gtest_main GTest::gmock)
  # A test's own code needs no -O3: the code under test is the libraries', built as they ship.
  # At -O1 the test programs (two thirds of a Release tree's compile time) build faster.
  if(CMAKE_BUILD_TYPE STREQUAL "Release")
    target_compile_options(${name} PRIVATE -O1)
  endif()
  # Crash suites run for minutes each: a high COST makes a parallel ctest start them first,
  # beside the short tests, instead of leaving them as a serial tail (a fresh build tree has
  # no timings of its own to schedule by).
  set(cost 0)
  if(label STREQUAL "crash")
    set(cost 1000)
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS ${label} COST ${cost} DISCOVERY_TIMEOUT 60)
endfunction()
