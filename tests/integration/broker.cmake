# runnel-broker integration tests: real broker processes on loopback, raw frames (rawclient.c),
# no librunnel. Each program starts its own brokers in fresh data directories.
add_library(rn_rawclient STATIC rawclient.c)
target_link_libraries(rn_rawclient PUBLIC rn_harness rn_proto)

foreach(t api badinput idempotence longpoll restart retention limits)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_broker_${t}.c)
    runnel_integration_test(broker_${t} SOURCES test_broker_${t}.c LIBS rn_rawclient TIMEOUT 120)
  endif()
endforeach()

# The producer-state module driven directly: no broker process, only its library.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_broker_pstate.c)
  runnel_integration_test(broker_pstate SOURCES test_broker_pstate.c LIBS rn_broker TIMEOUT 60)
endif()

# The README's tables name every broker and librunnel setting with its default (issue 3).
find_program(RN_SH sh)
if(RN_SH)
  add_test(NAME docs/readme_keys
           COMMAND ${RN_SH} ${CMAKE_CURRENT_SOURCE_DIR}/readme_keys.sh $<TARGET_FILE:runnel-broker>
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(docs/readme_keys PROPERTIES TIMEOUT 30
                       ENVIRONMENT "TMPDIR=${CMAKE_CURRENT_BINARY_DIR}")
endif()

# --metrics-listen: scrapes checked against what the test did and by promtool, health routes,
# hostile HTTP (issue 6).
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_broker_metrics.c)
  runnel_integration_test(broker_metrics SOURCES test_broker_metrics.c
                          LIBS rn_rawclient Threads::Threads m TIMEOUT 120)
endif()

# The controller quorum (issue 5 step 3): three brokers on loopback elect a controller, lose it
# to SIGKILL, take over, rejoin; the meta.properties guard; the controller flags.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster_controller.c)
  runnel_integration_test(cluster_controller SOURCES test_cluster_controller.c cluster_fixture.c
                          LIBS rn_rawclient TIMEOUT 180)
endif()

# Registration, heartbeats and fencing (issue 5 step 4): SIGSTOP -> fenced, SIGCONT ->
# unfenced, registrations across a controller SIGKILL, `runnel cluster status`.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster_members.c)
  runnel_integration_test(cluster_members SOURCES test_cluster_members.c cluster_fixture.c
                          LIBS rn_rawclient TIMEOUT 180)
endif()

# Partition replication (issue 5, docs/cluster.md §5, §10.3): RF 3 topics on three brokers,
# acks=all and min.insync.replicas, leader SIGKILL and restart five times under a streaming
# idempotent producer, stalled followers leaving and rejoining the ISR, truncation of an
# unreplicated suffix, controller SIGKILL during CreateTopics; replicas compared byte for byte.
foreach(t repl failover truncation observer)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster_${t}.c AND TARGET runnel_client)
    runnel_integration_test(cluster_${t} SOURCES test_cluster_${t}.c cluster_fixture.c
                            cluster_check.c cluster_stream.c test_client_util.c
                            LIBS rn_rawclient runnel_client Threads::Threads TIMEOUT 240)
  endif()
endforeach()

# The cluster soak: built with the tests, run only by `make soak` (SOAK_SECONDS, SOAK_SEED).
if(TARGET runnel_client)
  add_executable(itest_cluster_chaos test_cluster_chaos.c cluster_fixture.c cluster_check.c
                 cluster_stream.c test_client_util.c)
  target_link_libraries(itest_cluster_chaos PRIVATE rn_harness rn_rawclient runnel_client
                        Threads::Threads PkgConfig::CMOCKA)
endif()
