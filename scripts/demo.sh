#!/usr/bin/env bash
# scripts/demo.sh [BUILD_DIR] - Runnel end to end on one machine, as `make demo` runs it:
# a broker on a free loopback port with a temporary data dir, a `clickstream` topic with 6
# partitions, a generated clickstream of JSON events (the seed article's: user_id, action,
# page, value, timestamp) produced keyed by user_id, consumed back, counted per partition,
# the fraud-alerts job (examples/fraud_alerts) run over it into SQLite with its top rows
# printed, and a clean broker stop. Everything it creates is removed at the end.
#
#   DEMO_EVENTS=100000   how many events to generate
set -euo pipefail

BUILD=${1:-build}
[ -d "$BUILD" ] || { echo "demo: build directory $BUILD not found; build first (make build)" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
EVENTS=${DEMO_EVENTS:-100000}
RUNNEL=$BUILD/tools/runnel
BROKER=$BUILD/broker/runnel-broker
PROCESSOR=$BUILD/processor/runnel-processor
JOB=$(cd "$(dirname "$0")/.." && pwd)/examples/fraud_alerts/fraud_alerts.sql

for bin in "$RUNNEL" "$BROKER" "$PROCESSOR"; do
    if [ ! -x "$bin" ]; then
        echo "demo: $bin not found; build first (make build)" >&2
        exit 1
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-demo.XXXXXX")
BROKER_PID=
cleanup() {
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then BOLD=$(printf '\033[1m'); PLAIN=$(printf '\033[0m'); else BOLD=; PLAIN=; fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
fail() {
    echo "demo: $*" >&2
    if [ -s "$TMP/broker.log" ]; then
        echo "---- broker log ----" >&2
        tail -n 40 "$TMP/broker.log" >&2
    fi
    exit 1
}

step "1/7  Starting runnel-broker on a free loopback port (data in $TMP/data)"
mkdir -p "$TMP/data"
"$BROKER" --data-dir "$TMP/data" --listen 127.0.0.1:0 2>"$TMP/broker.log" &
BROKER_PID=$!
for _ in $(seq 1 200); do
    [ -s "$TMP/data/listening" ] && break
    kill -0 "$BROKER_PID" 2>/dev/null || fail "the broker exited during start-up"
    sleep 0.05
done
[ -s "$TMP/data/listening" ] || fail "the broker did not listen within 10 s"
RUNNEL_BROKERS=$(head -n1 "$TMP/data/listening")
export RUNNEL_BROKERS
echo "broker pid $BROKER_PID listening on $RUNNEL_BROKERS (exported as RUNNEL_BROKERS)"

step "2/7  Creating topic 'clickstream' with 6 partitions"
echo "\$ runnel topic create clickstream --partitions 6"
"$RUNNEL" topic create clickstream --partitions 6 || fail "topic create failed"
echo "\$ runnel topic describe clickstream"
"$RUNNEL" topic describe clickstream || fail "topic describe failed"

step "3/7  Generating $EVENTS clickstream events"
"$(dirname "$0")/gen-clickstream.sh" "$EVENTS" >"$TMP/clickstream.jsonl"
echo "$(wc -l <"$TMP/clickstream.jsonl") events, $(wc -c <"$TMP/clickstream.jsonl") bytes; the first three:"
head -n 3 "$TMP/clickstream.jsonl"

step "4/7  Producing them, keyed by user_id"
echo "\$ runnel produce -t clickstream --key-field user_id -l clickstream.jsonl"
"$RUNNEL" produce -t clickstream --key-field user_id -l "$TMP/clickstream.jsonl" ||
    fail "produce failed"
echo "\$ runnel offsets -t clickstream"
"$RUNNEL" offsets -t clickstream || fail "offsets failed"

step "5/7  Consuming them back from the beginning to the end"
echo "\$ runnel consume -t clickstream -o beginning -e -J -c 2      # two records as JSON"
"$RUNNEL" consume -t clickstream -o beginning -e -J -c 2 -q || fail "consume failed"
echo "\$ runnel consume -t clickstream -o beginning -e -f '%p %o %k\\n'"
"$RUNNEL" consume -t clickstream -o beginning -e -f '%p %o %k\n' >"$TMP/consumed.txt" ||
    fail "consume failed"
echo
awk '
    {
        if (($1 in next_offset) && $2 != next_offset[$1]) gaps++
        next_offset[$1] = $2 + 1
        count[$1]++; total++
        if (!($3 in home)) home[$3] = $1; else if (home[$3] != $1) split_keys++
    }
    END {
        printf "%-10s %8s\n", "partition", "records"
        for (p = 0; p < 6; p++) printf "%-10d %8d\n", p, count[p]
        printf "%-10s %8d\n", "total", total
        users = 0; for (u in home) users++
        printf "%d users, each on exactly one partition: %s\n", users, split_keys ? "NO" : "yes"
        printf "offsets consecutive within every partition: %s\n", gaps ? "NO" : "yes"
        exit (split_keys || gaps) ? 1 : 0
    }' "$TMP/consumed.txt" || fail "records out of place"
consumed=$(wc -l <"$TMP/consumed.txt")
[ "$consumed" -eq "$EVENTS" ] || fail "consumed $consumed records, produced $EVENTS"

step "6/7  Running the fraud-alerts job over the clickstream into SQLite"
echo "\$ cat examples/fraud_alerts/fraud_alerts.sql"
grep -v '^--' "$JOB"
echo
echo "\$ runnel-processor --job examples/fraud_alerts/fraud_alerts.sql --bounded"
(cd "$TMP" && "$PROCESSOR" --job "$JOB" --bounded) || fail "the fraud job failed"
echo
echo "\$ sqlite3 analytics.db 'SELECT … FROM suspicious_users ORDER BY total DESC LIMIT 10'"
sqlite3 -header -column "$TMP/analytics.db" \
    "SELECT strftime('%H:%M', window_start / 1000, 'unixepoch') AS window_start,
            strftime('%H:%M', window_end / 1000, 'unixepoch') AS window_end,
            user_id, total, clicks
     FROM suspicious_users ORDER BY total DESC LIMIT 10" || fail "reading the result failed"
flagged=$(sqlite3 "$TMP/analytics.db" "SELECT COUNT(*) || ' rows, ' || COUNT(DISTINCT user_id) || ' users' FROM suspicious_users")
echo "suspicious_users: $flagged flagged (SUM(value) > 1000 in a 5-minute window)"
echo "runnel_offsets (committed with the rows, in the same transaction):"
sqlite3 "$TMP/analytics.db" "SELECT '  ' || topic || '/' || partition || ' next offset ' || next_offset FROM runnel_offsets ORDER BY partition"

step "7/7  Stopping the broker (SIGTERM)"
kill -TERM "$BROKER_PID"
status=0
wait "$BROKER_PID" || status=$?
BROKER_PID=
[ "$status" -eq 0 ] || fail "the broker exited with status $status"
echo "the broker stopped cleanly (exit status 0)"

printf '\n%sDemo complete:%s %d events through Runnel and back, in order per partition, and\n' \
    "$BOLD" "$PLAIN" "$EVENTS"
printf 'the fraud-alerts table computed from them.\n'
