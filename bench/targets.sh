#!/usr/bin/env bash
# bench/targets.sh [BUILD_DIR] - issue 3's broker and client targets, measured with runnel-bench
# against a real runnel-broker on loopback, ROUNDS times each, and the medians compared with the
# targets (100-byte values, 1 partition, acks=1):
#
#   throughput    produce --messages 2000000 (the producer unbounded: linger.ms 5, batch.size
#                 64 KiB, max.in.flight 5), default flush policy (no fsync per message)
#                 target >= 2,000,000 records/s
#   one at a time produce --messages 20000 --inflight 1 (send, wait for the ack, send the next)
#                 target ack latency p50 <= 60 us, p99 <= 150 us
#   one, polling  the same with --spin-us 100 -X io.busy.poll.us=100: the sender and the
#                 library's I/O thread poll for the ack (yielding the CPU) before sleeping
#   send + flush  produce --sync -X io.busy.poll.us=100: rn_producer_flush after each send,
#                 the library polling in the I/O thread and in the flush
#   end to end    latency --rate 100000 --duration 10 --warmup 2 (open loop, send -> consumer)
#                 target p99 <= 1 ms, p99.9 <= 2 ms
#   e2e, polling  the same with io.busy.poll.us=100 for the broker and for the producer's and
#                 the consumer's I/O threads
#   hiccup        runnel-hiccup-bench for TARGETS_E2E_S seconds before the end-to-end runs:
#                 the latency the machine's own stalls (a vCPU taken away) alone would give a
#                 stream: a reference point for the end-to-end p99.9 (not a strict bound)
#   fsync         produce --messages 2000000 to a topic with flush.messages=1 (acknowledged
#                 after the group-commit fdatasync), the producer unbounded as above
#                 target >= 1,000,000 records/s
#
# Every measurement gets its own broker (fresh data dir under $TMPDIR, port 0) and topic, so
# no run inherits another's log or page cache; the rounds interleave the workloads. Before each
# measurement the script prints the load average and how idle the CPUs were over the last
# second; with TARGETS_IDLE_WAIT=S it first waits up to S seconds for >= 90% idle CPUs (the
# figures move a lot when something else runs on a 2-core machine).
#
# The summary table gives the median of each figure over the rounds (each column's median on
# its own); the last line printed is a JSON object with those medians.
#
# Knobs (environment): ROUNDS=3, TARGETS_IDLE_WAIT=0,
# TARGETS_ONLY="tput one onepoll onesync hiccup e2e e2epoll sync"
# (a subset), TARGETS_MESSAGES=2000000, TARGETS_ONE=20000, TARGETS_E2E_S=10.
set -euo pipefail

BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
IDLE_WAIT=${TARGETS_IDLE_WAIT:-0}
ONLY=${TARGETS_ONLY:-tput one onepoll onesync hiccup e2e e2epoll sync}
MESSAGES=${TARGETS_MESSAGES:-2000000}
ONE=${TARGETS_ONE:-20000}
E2E_S=${TARGETS_E2E_S:-10}

HICCUP_BIN=$BUILD/tools/runnel-hiccup-bench
BROKER_BIN=$BUILD/broker/runnel-broker
BENCH_BIN=$BUILD/tools/runnel-bench
CLI_BIN=$BUILD/tools/runnel

die() { echo "targets.sh: $*" >&2; exit 1; }
for b in "$BROKER_BIN" "$BENCH_BIN" "$CLI_BIN" "$HICCUP_BIN"; do
    [ -x "$b" ] || die "$b not found: build first (cmake --build $BUILD)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-targets.XXXXXX")
BROKER_PID=
stop_broker() {
    if [ -n "$BROKER_PID" ]; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=
    fi
}
cleanup() {
    stop_broker
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU idle percentage over SECONDS (from /proc/stat).
idle_pct() {
    local u n s i w q sq st t0 i0 t1 i1
    read -r _ u n s i w q sq st _ </proc/stat
    t0=$((u + n + s + i + w + q + sq + st)) i0=$((i + w))
    sleep "$1"
    read -r _ u n s i w q sq st _ </proc/stat
    t1=$((u + n + s + i + w + q + sq + st)) i1=$((i + w))
    echo $((100 * (i1 - i0) / (t1 - t0 > 0 ? t1 - t0 : 1)))
}

conditions() {
    local idle waited=0
    idle=$(idle_pct 1)
    while [ "$idle" -lt 90 ] && [ "$waited" -lt "$IDLE_WAIT" ]; do
        idle=$(idle_pct 2)
        waited=$((waited + 2))
    done
    local note=""
    [ "$IDLE_WAIT" -gt 0 ] && note=" (waited $waited s for them)"
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg), CPUs ${idle}% idle over the last second$note"
}

# start_broker DIR [BROKER_ARGS…]: a broker on a free loopback port; sets ADDR.
start_broker() {
    mkdir -p "$1"
    "$BROKER_BIN" --data-dir "$@" --listen 127.0.0.1:0 2>"$1.log" &
    BROKER_PID=$!
    for _ in $(seq 1 400); do
        if [ -s "$1/listening" ]; then
            ADDR=$(head -n1 "$1/listening")
            return
        fi
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$1.log" >&2
    die "runnel-broker did not start"
}

json_field() { # JSON_LINE FIELD
    sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"
}

declare -A RESULTS # "workload field" -> space-separated values, one per round
FAILED=0

# measure WORKLOAD ROUND TOPIC_CONFIG(or -) RUNNEL-BENCH-ARGS…; BROKER_ARGS (an array) goes to
# the broker.
BROKER_ARGS=()
measure() {
    local workload=$1 round=$2 config=$3
    shift 3
    local dir="$TMP/$workload-$round" topic="$workload-$round"
    local cfg=()
    [ "$config" != - ] && cfg=(--config "$config")
    echo
    echo "== round $round, $workload: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(conditions)"
    start_broker "$dir" "${BROKER_ARGS[@]}"
    [ ${#BROKER_ARGS[@]} -gt 0 ] && echo "\$ runnel-broker ${BROKER_ARGS[*]}"
    "$CLI_BIN" -b "$ADDR" topic create "$topic" --partitions 1 "${cfg[@]}" >/dev/null
    echo "\$ runnel topic create $topic --partitions 1${cfg[*]:+ ${cfg[*]}}"
    echo "\$ runnel-bench $* -b $ADDR -t $topic"
    local out rc=0
    out=$("$BENCH_BIN" "$@" -b "$ADDR" -t "$topic" 2>&1) || rc=$?
    stop_broker
    rm -rf "$dir" "$dir.log"
    echo "$out"
    if [ "$rc" != 0 ]; then
        echo "(runnel-bench exited with status $rc)"
        FAILED=1
        return
    fi
    local last
    last=$(tail -n1 <<<"$out")
    for f in records_per_sec p50_us p99_us p999_us; do
        local v
        v=$(json_field "$last" "$f")
        [ -n "$v" ] && RESULTS["$workload $f"]+="$v "
    done
    return 0
}

# hiccup ROUND: the machine's own stalls (runnel-hiccup-bench), no broker.
hiccup() {
    echo
    echo "== round $1, hiccup: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(conditions)"
    echo "\$ runnel-hiccup-bench --seconds $E2E_S --json"
    local out last f v
    out=$("$HICCUP_BIN" --seconds "$E2E_S" --json 2>&1) || { echo "$out"; FAILED=1; return; }
    echo "$out"
    last=$(tail -n1 <<<"$out")
    for f in either_p99_us either_p999_us max_gap_us gaps_over_1ms; do
        v=$(json_field "$last" "$f")
        [ -n "$v" ] && RESULTS["hiccup $f"]+="$v "
    done
    return 0
}

median() { # values…
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

wants() { [[ " $ONLY " == *" $1 "* ]]; }

echo "# targets.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), nproc $(nproc)," \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
echo "# $ROUNDS rounds; 100-byte values, 1 partition, acks=1; one broker per measurement"

for r in $(seq 1 "$ROUNDS"); do
    if wants tput; then
        measure tput "$r" - produce --messages "$MESSAGES" --size 100 --acks 1 --json
    fi
    if wants one; then
        measure one "$r" - produce --messages "$ONE" --size 100 --acks 1 --inflight 1 --json
    fi
    if wants onepoll; then
        measure onepoll "$r" - produce --messages "$ONE" --size 100 --acks 1 --inflight 1 \
            --spin-us 100 -X io.busy.poll.us=100 --json
    fi
    if wants onesync; then
        measure onesync "$r" - produce --messages "$ONE" --size 100 --acks 1 --sync \
            -X io.busy.poll.us=100 --json
    fi
    if wants hiccup; then
        hiccup "$r"
    fi
    if wants e2e; then
        measure e2e "$r" - latency --rate 100000 --duration "$E2E_S" --size 100 --warmup 2 \
            --json
    fi
    if wants e2epoll; then
        BROKER_ARGS=(--set io.busy.poll.us=100)
        measure e2epoll "$r" - latency --rate 100000 --duration "$E2E_S" --size 100 --warmup 2 \
            -X io.busy.poll.us=100 --json
        BROKER_ARGS=()
    fi
    if wants sync; then
        measure sync "$r" flush.messages=1 produce --messages "$MESSAGES" --size 100 --acks 1 \
            --json
    fi
done

# row LABEL WORKLOAD FIELD OP LIMIT UNIT
ROWS=()
JSON=()
row() {
    local label=$1 workload=$2 field=$3 op=$4 limit=$5 unit=$6
    local vals=${RESULTS["$workload $field"]:-}
    [ -n "$vals" ] || return 0
    local med
    # shellcheck disable=SC2086
    med=$(median $vals)
    local met
    met=$(awk -v m="$med" -v l="$limit" -v op="$op" 'BEGIN {
        ok = (op == ">=") ? (m >= l) : (m <= l); print ok ? "met" : "NOT met" }')
    ROWS+=("$(printf '%-40s %-12s %10s   %-34s %s' "$label" "$op $limit $unit" "$med" "$vals" "$met")")
    JSON+=("\"${workload}_${field}\":$med")
}
row "produce, unbounded: records/s" tput records_per_sec ">=" 2000000 ""
row "one at a time: ack latency p50" one p50_us "<=" 60 µs
row "one at a time: ack latency p99" one p99_us "<=" 150 µs
row "one at a time, polling: p50" onepoll p50_us "<=" 60 µs
row "one at a time, polling: p99" onepoll p99_us "<=" 150 µs
row "send + flush, polling: p50" onesync p50_us "<=" 60 µs
row "send + flush, polling: p99" onesync p99_us "<=" 150 µs
row "end to end at 100k/s: p99" e2e p99_us "<=" 1000 µs
row "end to end at 100k/s: p99.9" e2e p999_us "<=" 2000 µs
row "end to end, polling: p99" e2epoll p99_us "<=" 1000 µs
row "end to end, polling: p99.9" e2epoll p999_us "<=" 2000 µs
row "flush.messages=1, unbounded: records/s" sync records_per_sec ">=" 1000000 ""

echo
echo "Medians over $ROUNDS rounds (each figure's median on its own):"
printf '%-40s %-12s %10s   %-34s %s\n' measurement target median rounds verdict
for row in "${ROWS[@]}"; do
    echo "$row"
done
if [ -n "${RESULTS["hiccup either_p999_us"]:-}" ]; then
    # shellcheck disable=SC2086
    {
        echo
        echo "The machine's own stalls (runnel-hiccup-bench, $E2E_S s per round, medians): a" \
            "stream through a pipeline doing no work, stalled whenever any CPU is, would see" \
            "p99 $(median ${RESULTS["hiccup either_p99_us"]}) µs and p99.9" \
            "$(median ${RESULTS["hiccup either_p999_us"]}) µs; gaps over 1 ms per round:" \
            "$(echo ${RESULTS["hiccup gaps_over_1ms"]}); longest gap $(median ${RESULTS["hiccup max_gap_us"]}) µs."
    } | fold -s -w 100
    JSON+=("\"hiccup_either_p999_us\":$(median ${RESULTS["hiccup either_p999_us"]})")
fi
(IFS=,; echo "{${JSON[*]}}")
exit "$FAILED"
