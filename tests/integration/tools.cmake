# The tools' tests: the CLI and runnel-bench as child processes against real brokers
# (RUNNEL_BROKER_BIN, RUNNEL_CLI_BIN, RUNNEL_BENCH_BIN come from runnel_integration_test), and
# the tools' JSON helpers, which need no broker.
if(NOT TARGET rn_tools_json)
  return()
endif()

runnel_integration_test(tools_json SOURCES test_tools_json.c LIBS rn_tools_json TIMEOUT 60)

if(NOT (TARGET runnel AND TARGET runnel-bench AND TARGET runnel-broker))
  message(STATUS "tests: runnel, runnel-bench or runnel-broker missing; skipping the tools' integration tests")
  return()
endif()

add_library(rn_tools_testutil STATIC test_tools_util.c)
target_link_libraries(rn_tools_testutil PUBLIC rn_harness)

runnel_integration_test(tools_cli SOURCES test_tools_cli.c
                        LIBS rn_tools_testutil rn_tools_json TIMEOUT 300)
runnel_integration_test(tools_bulk SOURCES test_tools_bulk.c
                        LIBS rn_tools_testutil rn_tools_json TIMEOUT 600)
runnel_integration_test(tools_bench SOURCES test_tools_bench.c
                        LIBS rn_tools_testutil rn_tools_json TIMEOUT 300)
runnel_integration_test(tools_cluster SOURCES test_tools_cluster.c
                        LIBS rn_tools_testutil TIMEOUT 120)
runnel_integration_test(tools_top SOURCES test_tools_top.c
                        LIBS rn_tools_testutil rn_promscrape rn_httpd TIMEOUT 120)
