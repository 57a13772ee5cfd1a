/*
 * err.h - the one error enum of Runnel, shared by broker, client, processor and tools.
 *
 * Broker (wire) errors are positive and travel in responses; the same numbers are the
 * ErrorCode enum of proto/runnel.proto (a unit test holds the two in step). Local errors,
 * which never cross the wire, are negative. RN_OK is 0.
 *
 * X(NAME, value, retriable, "message for humans")
 */
#ifndef RN_ERR_H
#define RN_ERR_H

#include <stdbool.h>

#define RN_ERR_LIST(X)                                                                      \
    X(OK, 0, false, "success")                                                              \
    /* --- broker errors: positive, on the wire --- */                                      \
    X(UNKNOWN_TOPIC_OR_PARTITION, 1, true, "this broker has no such topic or partition")    \
    X(CORRUPT_MESSAGE, 2, false, "record batch failed validation (checksum or framing)")   \
    X(MESSAGE_TOO_LARGE, 3, false, "record batch larger than max.message.bytes")            \
    X(OFFSET_OUT_OF_RANGE, 4, false, "offset outside the partition's log")                  \
    X(NOT_LEADER_OR_FOLLOWER, 5, true, "this broker does not lead that partition")          \
    X(REQUEST_TIMED_OUT, 6, true, "request timed out")                                      \
    X(UNSUPPORTED_VERSION, 7, false, "unknown API or unsupported API version")              \
    X(INVALID_REQUEST, 8, false, "malformed or invalid request")                            \
    X(TOPIC_ALREADY_EXISTS, 9, false, "topic already exists")                               \
    X(INVALID_PARTITIONS, 10, false, "invalid number of partitions")                        \
    X(INVALID_CONFIG, 11, false, "invalid configuration key or value")                      \
    X(INVALID_TOPIC, 12, false, "invalid topic name")                                       \
    X(DUPLICATE_SEQUENCE_NUMBER, 13, false, "duplicate producer sequence number")           \
    X(OUT_OF_ORDER_SEQUENCE_NUMBER, 14, false, "producer sequence number gap")              \
    X(INVALID_PRODUCER_EPOCH, 15, false, "producer epoch is fenced or invalid")             \
    X(UNKNOWN_PRODUCER_ID, 16, false, "unknown producer id")                                \
    X(NOT_ENOUGH_REPLICAS, 17, true, "in-sync replicas below min.insync.replicas")          \
    X(NOT_ENOUGH_REPLICAS_AFTER_APPEND, 18, true, "in-sync replicas fell below minimum")    \
    X(STORAGE_ERROR, 19, true, "broker storage error (disk full or I/O error)")             \
    X(BROKER_NOT_AVAILABLE, 20, true, "broker not available")                               \
    X(LEADER_NOT_AVAILABLE, 21, true, "partition has no leader right now")                  \
    X(FRAME_TOO_LARGE, 22, false, "frame larger than max.frame.bytes")                      \
    X(TOO_MANY_REQUESTS, 23, true, "too many requests in flight on this connection")        \
    X(TOO_MANY_CONNECTIONS, 24, true, "broker at max.connections")                          \
    X(COORDINATOR_NOT_AVAILABLE, 25, true, "group coordinator not available")               \
    X(NOT_COORDINATOR, 26, true, "this broker is not the group coordinator")                \
    X(ILLEGAL_GENERATION, 27, false, "stale consumer group generation")                     \
    X(UNKNOWN_MEMBER_ID, 28, false, "unknown consumer group member")                        \
    X(REBALANCE_IN_PROGRESS, 29, true, "consumer group is rebalancing")                     \
    X(FENCED_LEADER_EPOCH, 30, true, "leader epoch is older than the broker's")             \
    X(UNKNOWN_LEADER_EPOCH, 31, true, "leader epoch is newer than the broker's")            \
    X(UNKNOWN_SERVER_ERROR, 32, false, "unexpected broker error")                           \
    X(INVALID_REPLICATION_FACTOR, 33, false, "replication factor exceeds available brokers") \
    X(NOT_CONTROLLER, 34, true, "this broker is not the active controller")                 \
    X(STALE_BROKER_EPOCH, 35, false, "broker epoch is not the current registration's")       \
    X(INVALID_UPDATE_VERSION, 36, false, "partition_epoch is not the partition's current one") \
    X(INELIGIBLE_REPLICA, 37, false, "replica may not join the ISR (not a replica or fenced)") \
    X(PREFERRED_LEADER_NOT_AVAILABLE, 38, true, "preferred leader is not in the ISR or fenced") \
    X(ELECTION_NOT_NEEDED, 39, false, "partition already has the leader asked for")          \
    X(INCONSISTENT_CLUSTER_ID, 40, false, "cluster id differs from the metadata log's")      \
    /* --- local errors: negative, never on the wire --- */                                 \
    X(IO, -1, false, "I/O error")                                                           \
    X(NOMEM, -2, false, "out of memory")                                                    \
    X(INVALID_ARG, -3, false, "invalid argument")                                           \
    X(TRUNCATED, -4, false, "input ends before the structure it holds")                     \
    X(BAD_MAGIC, -5, false, "unknown format version (magic byte)")                          \
    X(CHECKSUM, -6, false, "checksum mismatch")                                             \
    X(MALFORMED, -7, false, "malformed input")                                              \
    X(DECOMPRESS, -8, false, "decompression failed")                                        \
    X(NOT_FOUND, -9, false, "not found")                                                    \
    X(AGAIN, -10, true, "not complete yet; call again with more input")                     \
    X(TIMED_OUT, -11, true, "operation timed out")                                          \
    X(QUEUE_FULL, -12, true, "producer queue is full (buffer.memory)")                      \
    X(TRANSPORT, -13, true, "connection to the broker failed")                              \
    X(UNKNOWN_CONFIG, -14, false, "unknown configuration key")                              \
    X(BAD_CONFIG, -15, false, "bad configuration value")                                    \
    X(EXISTS, -16, false, "already exists")                                                 \
    X(CLOSED, -17, false, "handle is closed")                                               \
    X(NO_SPACE, -18, true, "no space left on device")                                       \
    X(STATE, -19, false, "operation not allowed in the current state")                      \
    X(CORRUPT, -20, false, "corrupt data on disk")                                          \
    X(FENCED, -21, false, "fenced by a newer instance")

typedef enum rn_err {
#define RN_ERR_ENUM_(name, value, retriable, msg) RN_ERR_##name = (value),
    RN_ERR_LIST(RN_ERR_ENUM_)
#undef RN_ERR_ENUM_
} rn_err_t;

#define RN_OK RN_ERR_OK

/* Human message for err; never NULL ("unknown error code" for values outside the enum). */
const char *rn_err_str(rn_err_t err);
/* Upper-case name without prefix ("CORRUPT_MESSAGE"); never NULL. */
const char *rn_err_name(rn_err_t err);
/* True when retrying the same operation later may succeed. */
bool rn_err_retriable(rn_err_t err);
/* True when err is one of the enum's values. */
bool rn_err_known(int err);

#endif
