# librunnel tests. Unit tests (no broker) first, then integration tests with real brokers.
function(runnel_client_unit_test name)
  add_executable(test_client_${name} ${PROJECT_SOURCE_DIR}/tests/unit/test_client_${name}.c)
  target_link_libraries(test_client_${name} PRIVATE runnel_client PkgConfig::CMOCKA)
  add_test(NAME unit/client_${name} COMMAND test_client_${name})
  set_tests_properties(unit/client_${name} PROPERTIES TIMEOUT 60)
endfunction()

runnel_client_unit_test(conf)
runnel_client_unit_test(partitioner)
runnel_client_unit_test(offline)
runnel_client_unit_test(failover)

# Integration tests: real runnel-broker processes (harness.h).
if(TARGET runnel-broker)
  add_library(rn_test_client_util STATIC test_client_util.c)
  target_link_libraries(rn_test_client_util PUBLIC rn_harness runnel_client PkgConfig::CMOCKA)
  runnel_integration_test(client_bulk SOURCES test_client_bulk.c LIBS rn_test_client_util TIMEOUT 240)
  runnel_integration_test(client_seek SOURCES test_client_seek.c LIBS rn_test_client_util TIMEOUT 120)
  runnel_integration_test(client_api SOURCES test_client_api.c LIBS rn_test_client_util rn_rawclient
                          TIMEOUT 120)
  runnel_integration_test(client_crash SOURCES test_client_crash.c LIBS rn_test_client_util TIMEOUT 240)
endif()
