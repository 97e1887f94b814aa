# sluice_test(NAME LABEL SOURCES...): a GoogleTest executable whose tests ctest discovers,
# labelled so the test script can pick suites per build (e.g. TSan runs `thread`).
function(sluice_test name label)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} PROPERTIES LABELS ${label} DISCOVERY_TIMEOUT 60)
endfunction()
