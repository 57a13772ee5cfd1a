#!/bin/sh
# bench/run.sh BUILD_DIR [extra runnel-log-bench flags]
#
# What `make bench` runs; bench/RESULTS.md quotes each part:
#
#   1. storage   runnel-log-bench with the defaults RESULTS.md quotes: 5 rounds of 1 GiB appended
#                without per-batch fsync (and 1 GiB written by dd for the disk's bandwidth),
#                256 MiB with flush.messages=1 and group commit, 200k random-offset reads.
#                Files go under $TMPDIR (default /tmp) and are removed afterwards. Ends with a
#                JSON line. Extra arguments go to runnel-log-bench.
#   2. targets   bench/targets.sh: issue 3's broker and client targets with runnel-bench against
#                a real broker on loopback, 3 rounds, medians against the targets.
#   3. peers     bench/peers.sh: the same workloads against Redis Streams and NATS JetStream in
#                one run (needs redis-server and nats-server: scripts/install-deps.sh --bench).
#   4. cluster   bench/cluster.sh: issue 5's targets on a three-broker cluster (failover time,
#                replicated throughput against a single broker in the same run).
#
# BENCH_PARTS="storage targets peers cluster" (default all four) picks a subset; ROUNDS and the other
# knobs of targets.sh and peers.sh pass through the environment.
set -eu
build=${1:?usage: bench/run.sh BUILD_DIR [runnel-log-bench flags]}
shift
here=$(dirname "$0")
parts=${BENCH_PARTS:-storage targets peers cluster}
bin="$build/bench/runnel-log-bench"
status=0

for part in $parts; do
    case $part in
    storage)
        if [ ! -x "$bin" ]; then
            echo "bench/run.sh: $bin not found; build first (cmake --build $build)" >&2
            exit 1
        fi
        echo "# storage: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), nproc $(nproc)"
        df -h "${TMPDIR:-/tmp}" | sed 's/^/# /'
        "$bin" --mb 1024 --sync-mb 256 --rounds 5 --lookups 200000 --json "$@" || status=1
        ;;
    targets)
        echo
        "$here/targets.sh" "$build" || status=1
        ;;
    cluster)
        echo
        "$here/cluster.sh" "$build" || status=1
        ;;
    peers)
        echo
        echo "# peers: $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
        "$here/peers.sh" "$build" || status=1
        ;;
    *)
        echo "bench/run.sh: unknown part '$part' in BENCH_PARTS (storage, targets, peers)" >&2
        exit 2
        ;;
    esac
done
exit $status
