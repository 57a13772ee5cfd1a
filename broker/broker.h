/*
 * broker.h - one broker process: the data directory, topics, the server and the timers on
 * one libuv loop.
 *
 * Start: lock DATA_DIR/.lock, read the producer-id block, start the metrics server when
 * metrics.listen is set (DATA_DIR/metrics-listening; /healthz answers from here on, /readyz
 * is 503), open every topic (recovering logs and producer state) in the thread pool, in
 * cluster mode (controller.quorum.voters set) start the controller quorum member on the loop
 * (cluster/controller.h, with the metadata image as its state machine), listen, then write
 * DATA_DIR/listening ("HOST:PORT\n", atomically) so scripts and tests know the bound port,
 * and turn ready.
 *
 * Timers: log.retention.check.interval.ms (segment.ms rolls, retention, idle-producer expiry)
 * and the flush tick (flush.ms; every min(1 s, smallest flush.ms), at least 10 ms).
 *
 * Stop (SIGINT/SIGTERM): /readyz turns 503, stop accepting and reading, answer waiting
 * fetches, let produces waiting on fsync finish, write every pending response (up to
 * shutdown.timeout.ms), hand the controller over and close raft (cluster mode, in parallel
 * with the draining), stop the metrics server, close every partition cleanly (flush,
 * producer snapshot, clean-shutdown marker), exit 0. A second signal exits at once (status 1);
 * the next start recovers as after a crash. A signal during the load stops the broker when
 * the load ends.
 */
#ifndef RN_BROKER_BROKER_H
#define RN_BROKER_BROKER_H

#include "config.h"

/* Runs the broker until it is stopped; returns the process exit status (0 clean, 1 error). */
int rn_broker_run(const rn_bcfg_t *cfg);

#endif
