#!/usr/bin/env bash
# bench/processor_e2e.sh [BUILD_DIR] - the processor end to end through a real broker
# (issue 4's target): EVENTS (default 2,000,000) generated clickstream events pre-loaded into
# a 6-partition topic, then the fraud-alerts job (examples/fraud_alerts) run --bounded into
# SQLite. Prints the processor's CPU time (user + sys, bash's `time`) and
# events per CPU-second, wall time, and the rows written. The last line is JSON.
#
#   EVENTS=N      how many events (default 2000000)
#   PROC_ARGS=…   extra runnel-processor arguments (e.g. -X max.partition.fetch.bytes=4194304)
#   PERF=1        also record a profile with perf (when available) and print the top symbols
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EVENTS=${EVENTS:-2000000}
PROC_ARGS=${PROC_ARGS:-}
JOB=$ROOT/examples/fraud_alerts/fraud_alerts.sql
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-proc-bench.XXXXXX")
BROKER_PID=
cleanup() {
    [ -n "$BROKER_PID" ] && kill -TERM "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

"$BUILD/broker/runnel-broker" --data-dir "$TMP/data" --listen 127.0.0.1:0 2>"$TMP/broker.log" &
BROKER_PID=$!
for _ in $(seq 1 200); do [ -s "$TMP/data/listening" ] && break; sleep 0.05; done
export RUNNEL_BROKERS=$(head -n1 "$TMP/data/listening")
"$BUILD/tools/runnel" topic create clickstream --partitions 6 >/dev/null
echo "# generating and producing $EVENTS events (not measured)" >&2
"$ROOT/scripts/gen-clickstream.sh" "$EVENTS" 2026-01-01 >"$TMP/events.jsonl"
"$BUILD/tools/runnel" produce -t clickstream --key-field user_id -l "$TMP/events.jsonl" -q
rm -f "$TMP/events.jsonl"
sync

cd "$TMP"
# Measured: the processor alone, reading all 6 partitions from the broker, into SQLite.
start=$(date +%s.%N)
TIMEFORMAT='%U %S'
{ time "$BUILD/processor/runnel-processor" --job "$JOB" --bounded $PROC_ARGS 2>"$TMP/proc.log"; } 2>"$TMP/cpu"
end=$(date +%s.%N)
read -r user sys <"$TMP/cpu"
rows=$(sqlite3 "$TMP/analytics.db" "SELECT COUNT(*) FROM suspicious_users")
awk -v n="$EVENTS" -v u="$user" -v s="$sys" -v t0="$start" -v t1="$end" -v rows="$rows" 'BEGIN {
    cpu = u + s; wall = t1 - t0
    printf "fraud job, %d events, 6 partitions, --bounded, SQLite sink: %d rows\n", n, rows
    printf "processor CPU: %.2f s (user %.2f + sys %.2f), wall %.2f s\n", cpu, u, s, wall
    printf "%.0f events per CPU-second (target >= 1,000,000); %.0f events/s wall\n", n / cpu, n / wall
    printf "{\"events\":%d,\"cpu_s\":%.3f,\"wall_s\":%.3f,\"events_per_cpu_sec\":%.0f,\"events_per_sec\":%.0f,\"rows\":%d}\n",
        n, cpu, wall, n / cpu, n / wall, rows
}'
grep -q "records" "$TMP/proc.log" && grep "records" "$TMP/proc.log" | tail -1 | sed 's/^/# /' >&2

if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    rm -rf "$TMP/proc.state" "$TMP/analytics.db"*
    perf record -g -o "$TMP/perf.data" "$BUILD/processor/runnel-processor" --job "$JOB" \
        --bounded 2>/dev/null >/dev/null
    perf report -i "$TMP/perf.data" --no-children --percent-limit 2 --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -25
fi
