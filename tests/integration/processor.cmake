# runnel-processor through real brokers (and a real PostgreSQL server): known answers for
# every example, SIGKILL and restart, dead letters, bad job files.
if(NOT (TARGET runnel-processor AND TARGET runnel-broker AND TARGET rn_test_client_util))
  return()
endif()
runnel_integration_test(proc_broker SOURCES test_proc_broker.c
                        LIBS rn_test_client_util rn_pgserver rn_processor m
                        TIMEOUT 600)
target_compile_definitions(itest_proc_broker PRIVATE RN_EXAMPLES_DIR="${PROJECT_SOURCE_DIR}/examples")
