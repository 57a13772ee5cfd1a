# runnel-processor through real brokers (and a real PostgreSQL server): known answers for
# every example, SIGKILL and restart, dead letters, bad job files.
if(NOT (TARGET runnel-processor AND TARGET runnel-broker AND TARGET rn_test_client_util))
  return()
endif()
runnel_integration_test(proc_broker SOURCES test_proc_broker.c
                        LIBS rn_test_client_util rn_pgserver rn_processor m
                        TIMEOUT 600)
target_compile_definitions(itest_proc_broker PRIVATE RN_EXAMPLES_DIR="${PROJECT_SOURCE_DIR}/examples")

# A real Prometheus scraping a broker and a processor; the dashboard's and alert rules' metrics.
runnel_integration_test(observability SOURCES test_observability.c
                        LIBS rn_test_client_util rn_promscrape m TIMEOUT 300)
set_property(TEST integration/observability APPEND PROPERTY ENVIRONMENT
             "RUNNEL_TOOLS_DIR=${PROJECT_SOURCE_DIR}/tools")
