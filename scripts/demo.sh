#!/usr/bin/env bash
# scripts/demo.sh [BUILD_DIR] - Runnel end to end on one machine, as `make demo` runs it:
# a three-broker cluster (each broker its own process and data dir, a controller quorum of the
# three, free loopback ports), a `clickstream` topic with 6 partitions and replication factor
# 3, a generated clickstream of JSON events (the seed article's: user_id, action, page, value,
# timestamp) produced keyed by user_id with acks=all, a SIGKILL of one broker with the cluster
# status and new leaders shown, everything consumed back while it is down, its restart with the
# ISR whole again, the fraud-alerts job (examples/fraud_alerts) run over the topic into SQLite
# with its top rows printed, and a clean stop. Everything it creates is removed at the end.
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
. "$(dirname "$0")/cluster-lib.sh"
cleanup() {
    cl_stop_all
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then BOLD=$(printf '\033[1m'); PLAIN=$(printf '\033[0m'); else BOLD=; PLAIN=; fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
fail() {
    echo "demo: $*" >&2
    for i in 1 2 3; do
        if [ -s "$TMP/broker$i.log" ]; then
            echo "---- broker $i log ----" >&2
            tail -n 25 "$TMP/broker$i.log" >&2
        fi
    done
    exit 1
}

# Waits until `runnel topic describe` shows every partition with a full ISR (3 members).
wait_isr_whole() {
    for _ in $(seq 1 300); do
        if "$RUNNEL" topic describe clickstream 2>/dev/null |
            awk '/Partition:/ { for (i = 1; i <= NF; i++) if ($i == "Isr:") { n = split($(i + 1), a, ","); if (n < 3) bad++ } ; parts++ }
                 END { exit (parts == 6 && !bad) ? 0 : 1 }'; then
            return 0
        fi
        sleep 0.1
    done
    fail "the ISR of clickstream did not become whole within 30 s"
}

step "1/9  Starting a cluster of three runnel-brokers on free loopback ports (data in $TMP)"
cl_init
for i in 1 2 3; do
    echo "\$ runnel-broker --node-id $i --data-dir data$i --listen ${LISTEN[$i]} --controller-listen 127.0.0.1:${CPORT[$i]} --controller-quorum $QUORUM"
    cl_start "$i"
done
for i in 1 2 3; do cl_wait "$i"; done
RUNNEL_BROKERS=$(cl_brokers)
export RUNNEL_BROKERS
echo "three brokers listening on $RUNNEL_BROKERS (exported as RUNNEL_BROKERS)"
for _ in $(seq 1 100); do
    "$RUNNEL" cluster status 2>/dev/null | grep -q 'active controller' &&
        [ "$("$RUNNEL" cluster status 2>/dev/null | grep -c 'ALIVE' || true)" -ge 3 ] && break
    sleep 0.1
done
echo "\$ runnel cluster status"
"$RUNNEL" cluster status || fail "cluster status failed"

step "2/9  Creating topic 'clickstream' with 6 partitions, each on all three brokers"
echo "\$ runnel topic create clickstream --partitions 6 --replication-factor 3 --config min.insync.replicas=2"
"$RUNNEL" topic create clickstream --partitions 6 --replication-factor 3 \
    --config min.insync.replicas=2 || fail "topic create failed"
wait_isr_whole
echo "\$ runnel topic describe clickstream"
"$RUNNEL" topic describe clickstream || fail "topic describe failed"

step "3/9  Generating $EVENTS clickstream events"
"$(dirname "$0")/gen-clickstream.sh" "$EVENTS" >"$TMP/clickstream.jsonl"
echo "$(wc -l <"$TMP/clickstream.jsonl") events, $(wc -c <"$TMP/clickstream.jsonl") bytes; the first three:"
head -n 3 "$TMP/clickstream.jsonl"

step "4/9  Producing them, keyed by user_id, acknowledged once the whole ISR has them (acks=all)"
echo "\$ runnel produce -t clickstream --key-field user_id -l clickstream.jsonl"
"$RUNNEL" produce -t clickstream --key-field user_id -l "$TMP/clickstream.jsonl" ||
    fail "produce failed"
echo "\$ runnel offsets -t clickstream"
"$RUNNEL" offsets -t clickstream || fail "offsets failed"

step "5/9  Killing the broker that leads partition 0 (SIGKILL)"
VICTIM=$("$RUNNEL" topic describe clickstream | awk '/Partition: 0\t|Partition: 0 / { for (i = 1; i <= NF; i++) if ($i == "Leader:") print $(i + 1) }' | head -n1)
[ -n "$VICTIM" ] || fail "cannot find the leader of partition 0"
cl_kill "$VICTIM"
RUNNEL_BROKERS=$(cl_brokers "$VICTIM")
export RUNNEL_BROKERS
t0=$(date +%s%N)
for _ in $(seq 1 100); do
    "$RUNNEL" topic describe clickstream 2>/dev/null | grep -q "Leader: $VICTIM\b" || break
    sleep 0.1
done
echo "broker $VICTIM killed; its partitions had new leaders $(( ($(date +%s%N) - t0) / 1000000 )) ms later"
echo "\$ runnel cluster status"
"$RUNNEL" cluster status || fail "cluster status failed"
echo "\$ runnel topic describe clickstream"
"$RUNNEL" topic describe clickstream || fail "topic describe failed"
echo "\$ echo '{\"user_id\":\"late\",...}' | runnel produce -t clickstream --key-field user_id   # acks=all, ISR of 2"
printf '{"user_id":"user0001","action":"click","page":"/","value":1,"timestamp":"2026-12-02T10:59:59.000Z"}\n' |
    "$RUNNEL" produce -t clickstream --key-field user_id || fail "produce with a broker down failed"
EVENTS=$((EVENTS + 1))

step "6/9  Consuming them back from the beginning to the end, with broker $VICTIM still down"
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

step "7/9  Restarting broker $VICTIM: it catches up from the leaders and rejoins every ISR"
cl_start "$VICTIM"
cl_wait "$VICTIM"
RUNNEL_BROKERS=$(cl_brokers)
t0=$(date +%s%N)
wait_isr_whole
echo "broker $VICTIM is back in the ISR of all 6 partitions $(( ($(date +%s%N) - t0) / 1000000 )) ms after it listened"
echo "\$ runnel cluster rebalance-leaders     # leadership back to each partition's preferred replica"
"$RUNNEL" cluster rebalance-leaders || fail "rebalance-leaders failed"
sleep 0.5
echo "\$ runnel topic describe clickstream"
"$RUNNEL" topic describe clickstream || fail "topic describe failed"

step "8/9  Running the fraud-alerts job over the clickstream into SQLite"
echo "\$ cat examples/fraud_alerts/fraud_alerts.sql"
grep -v '^--' "$JOB"
echo
echo "\$ runnel-processor --job examples/fraud_alerts/fraud_alerts.sql --bounded"
(cd "$TMP" && "$PROCESSOR" --job "$JOB" --bounded -b "$RUNNEL_BROKERS") || fail "the fraud job failed"
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

step "9/9  Stopping the brokers (SIGTERM)"
for i in 1 2 3; do cl_stop "$i"; done
echo "the three brokers stopped cleanly (exit status 0)"

printf '\n%sDemo complete:%s %d events through a three-broker Runnel cluster and back, in order\n' \
    "$BOLD" "$PLAIN" "$EVENTS"
printf 'per partition, with one broker killed and restarted on the way, and the fraud-alerts\n'
printf 'table computed from them.\n'
