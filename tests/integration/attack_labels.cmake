# CTest include file (tests/integration/CMakeLists.txt): the tests of
# attack_test.cpp get the label `attack` next to `integration`.
foreach(t IN LISTS integration_tests_TESTS)
  if(t MATCHES "^AttackTest\\.")
    set_tests_properties("${t}" PROPERTIES LABELS "integration;attack")
  endif()
endforeach()
