#!/usr/bin/env bash
# bench/cluster.sh [BUILD_DIR] - issue 5's targets, on this machine:
#
#   failover      a three-broker cluster, topic `fo` (1 partition, replication factor 3,
#                 min.insync.replicas 2); the partition leader is SIGKILLed and, right away, one
#                 record is produced with acks=all through the surviving brokers (the client
#                 retries until it is acknowledged by the new leader); the time from the SIGKILL
#                 to that acknowledgement, FAILOVER_KILLS times (the killed broker restarts and
#                 rejoins the ISR between kills). Target: median <= 3 s.
#   throughput    runnel-bench produce --messages N --size 100 to one partition: a single broker
#                 with acks=1, then the three-broker cluster with replication factor 3 and
#                 acks=all, each ROUNDS times, fresh data dirs. Target: the cluster's median
#                 >= 40% of the single broker's.
#
# The last line is a JSON object with the medians. Knobs: ROUNDS=3, FAILOVER_KILLS=5,
# CLUSTER_MESSAGES=2000000, CLUSTER_ONLY="failover tput".
set -euo pipefail

BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
ROUNDS=${ROUNDS:-3}
KILLS=${FAILOVER_KILLS:-5}
MESSAGES=${CLUSTER_MESSAGES:-2000000}
ONLY=${CLUSTER_ONLY:-failover tput}
BROKER=$BUILD/broker/runnel-broker
RUNNEL=$BUILD/tools/runnel
BENCH=$BUILD/tools/runnel-bench
for b in "$BROKER" "$RUNNEL" "$BENCH"; do
    [ -x "$b" ] || { echo "cluster.sh: $b not found: build first" >&2; exit 1; }
done

TMP=
SINGLE_PID=
fail() {
    echo "cluster.sh: $*" >&2
    for f in "$TMP"/broker*.log; do
        [ -s "$f" ] && { echo "---- $f ----" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}
. "$(dirname "$0")/../scripts/cluster-lib.sh"
cleanup() {
    cl_stop_all
    if [ -n "$SINGLE_PID" ]; then kill -TERM "$SINGLE_PID" 2>/dev/null || true; wait "$SINGLE_PID" 2>/dev/null || true; fi
    [ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The leader of partition 0 of topic $1 as `runnel topic describe` shows it.
leader_of() {
    "$RUNNEL" topic describe "$1" 2>/dev/null |
        awk '/Partition: 0[^0-9]/ { for (i = 1; i <= NF; i++) if ($i == "Leader:") print $(i + 1) }' | head -n1
}

isr_size() {
    "$RUNNEL" topic describe "$1" 2>/dev/null |
        awk '/Partition: 0[^0-9]/ { for (i = 1; i <= NF; i++) if ($i == "Isr:") print split($(i + 1), a, ",") }' | head -n1
}

fresh_cluster() {
    cl_stop_all
    [ -n "$TMP" ] && rm -rf "$TMP"
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-cluster-bench.XXXXXX")
    cl_init
    for i in 1 2 3; do cl_start "$i"; done
    for i in 1 2 3; do cl_wait "$i"; done
    export RUNNEL_BROKERS=$(cl_brokers)
    for _ in $(seq 1 100); do
        [ "$("$RUNNEL" cluster status 2>/dev/null | grep -c ' yes  *no ' || true)" -ge 3 ] && return 0
        sleep 0.1
    done
    fail "the brokers did not all register within 10 s"
}

wait_isr() {
    local topic=$1 want=$2
    for _ in $(seq 1 300); do
        [ "$(isr_size "$topic")" = "$want" ] && return 0
        sleep 0.1
    done
    fail "the ISR of $topic did not reach $want within 30 s"
}

FAILOVER_MEDIAN=nan
if [[ " $ONLY " == *" failover "* ]]; then
    echo "== failover: SIGKILL of the partition leader -> first acks=all acknowledgement ($KILLS kills)"
    fresh_cluster
    "$RUNNEL" topic create fo --partitions 1 --replication-factor 3 --config min.insync.replicas=2 >/dev/null ||
        fail "topic create failed"
    wait_isr fo 3
    echo warm | "$RUNNEL" produce -t fo --acks all -q || fail "the first produce failed"
    times=()
    for k in $(seq 1 "$KILLS"); do
        victim=$(leader_of fo)
        [ -n "$victim" ] && [ "$victim" != -1 ] && [ "$victim" != none ] || fail "no leader for fo"
        t0=$(now_ms)
        cl_kill "$victim"
        echo "after-kill-$k" | RUNNEL_BROKERS=$(cl_brokers "$victim") \
            "$RUNNEL" produce -t fo --acks all -q -X retry.backoff.ms=20 || fail "produce after kill $k failed"
        t1=$(now_ms)
        ms=$((t1 - t0))
        times+=("$ms")
        new=$(RUNNEL_BROKERS=$(cl_brokers "$victim") leader_of fo)
        printf '  kill %d: leader %s SIGKILLed; acks=all acknowledged by the new leader %s after %d ms\n' \
            "$k" "$victim" "$new" "$ms"
        cl_start "$victim"
        cl_wait "$victim"
        wait_isr fo 3
    done
    FAILOVER_MEDIAN=$(printf '%s\n' "${times[@]}" | median)
    printf '  failover: %s ms; median %s ms (target <= 3000 ms)\n' "${times[*]}" "$FAILOVER_MEDIAN"
    cl_stop_all
fi

SINGLE_MEDIAN=nan
CLUSTER_MEDIAN=nan
if [[ " $ONLY " == *" tput "* ]]; then
    echo "== throughput: $MESSAGES records of 100 bytes to one partition ($ROUNDS rounds)"
    singles=()
    clusters=()
    for r in $(seq 1 "$ROUNDS"); do
        # a single broker, acks=1
        cl_stop_all
        [ -n "$TMP" ] && rm -rf "$TMP"
        TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-cluster-bench.XXXXXX")
        mkdir -p "$TMP/single"
        "$BROKER" --data-dir "$TMP/single" --listen 127.0.0.1:0 2>"$TMP/broker-single.log" &
        SINGLE_PID=$!
        for _ in $(seq 1 200); do [ -s "$TMP/single/listening" ] && break; sleep 0.05; done
        [ -s "$TMP/single/listening" ] || fail "the single broker did not start"
        out=$("$BENCH" produce -b "$(cat "$TMP/single/listening")" -t tput --messages "$MESSAGES" \
            --size 100 --acks 1 --json 2>/dev/null | tail -n1)
        one=$(printf '%s' "$out" | sed -n 's/.*"records_per_sec":\([0-9.]*\).*/\1/p')
        kill -TERM "$SINGLE_PID"; wait "$SINGLE_PID" || true; SINGLE_PID=
        # the cluster, replication factor 3, acks=all
        fresh_cluster
        "$RUNNEL" topic create tput --partitions 1 --replication-factor 3 >/dev/null || fail "topic create failed"
        wait_isr tput 3
        out=$("$BENCH" produce -t tput --messages "$MESSAGES" --size 100 --acks all --json 2>/dev/null | tail -n1)
        rep=$(printf '%s' "$out" | sed -n 's/.*"records_per_sec":\([0-9.]*\).*/\1/p')
        singles+=("$one")
        clusters+=("$rep")
        printf '  round %d: single broker acks=1 %s records/s; 3 brokers RF 3 acks=all %s records/s\n' \
            "$r" "$one" "$rep"
    done
    cl_stop_all
    SINGLE_MEDIAN=$(printf '%s\n' "${singles[@]}" | median)
    CLUSTER_MEDIAN=$(printf '%s\n' "${clusters[@]}" | median)
    ratio=$(awk -v a="$CLUSTER_MEDIAN" -v b="$SINGLE_MEDIAN" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "nan" }')
    printf '  medians: single %s, replicated %s records/s: %s%% (target >= 40%%)\n' \
        "$SINGLE_MEDIAN" "$CLUSTER_MEDIAN" "$ratio"
fi
printf '{"failover_median_ms":%s,"single_acks1_records_per_s":%s,"rf3_acksall_records_per_s":%s}\n' \
    "$FAILOVER_MEDIAN" "$SINGLE_MEDIAN" "$CLUSTER_MEDIAN"
