#!/usr/bin/env bash
# scripts/demo.sh [BUILD_DIR] - Runnel end to end on one machine, as `make demo` runs it:
# a broker on a free loopback port with a temporary data dir, a `clickstream` topic with 6
# partitions, a generated clickstream of JSON events (the seed article's: user_id, action,
# page, value, ts) produced keyed by user_id, consumed back, counted per partition, and a
# clean broker stop. Everything it creates is removed at the end.
#
#   DEMO_EVENTS=100000   how many events to generate
set -euo pipefail

BUILD=${1:-build}
EVENTS=${DEMO_EVENTS:-100000}
RUNNEL=$BUILD/tools/runnel
BROKER=$BUILD/broker/runnel-broker

for bin in "$RUNNEL" "$BROKER"; do
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

step "1/6  Starting runnel-broker on a free loopback port (data in $TMP/data)"
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

step "2/6  Creating topic 'clickstream' with 6 partitions"
echo "\$ runnel topic create clickstream --partitions 6"
"$RUNNEL" topic create clickstream --partitions 6 || fail "topic create failed"
echo "\$ runnel topic describe clickstream"
"$RUNNEL" topic describe clickstream || fail "topic describe failed"

step "3/6  Generating $EVENTS clickstream events"
# 2,000 users, a few of them very busy; events 6 ms apart from 10:00 UTC today.
awk -v n="$EVENTS" -v day="$(date -u +%F)" 'BEGIN {
    srand(7)
    split("click click click click view view scroll add_to_cart purchase", actions, " ")
    split("/ /home /product /product /product /cart /checkout /search /deals /account", pages, " ")
    for (i = 0; i < n; i++) {
        u = (rand() < 0.2) ? int(rand() * 20) : int(rand() * 2000)
        a = actions[1 + int(rand() * 9)]
        v = (a == "purchase") ? 20 + int(rand() * 980) : 1 + int(rand() * 300)
        ms = i * 6
        printf "{\"user_id\":\"user%04d\",\"action\":\"%s\",\"page\":\"%s\",\"value\":%d,\"timestamp\":\"%sT%02d:%02d:%02d.%03dZ\"}\n", \
            u, a, pages[1 + int(rand() * 10)], v, day, 10 + int(ms / 3600000), int(ms / 60000) % 60, \
            int(ms / 1000) % 60, ms % 1000
    }
}' >"$TMP/clickstream.jsonl"
echo "$(wc -l <"$TMP/clickstream.jsonl") events, $(wc -c <"$TMP/clickstream.jsonl") bytes; the first three:"
head -n 3 "$TMP/clickstream.jsonl"

step "4/6  Producing them, keyed by user_id"
echo "\$ runnel produce -t clickstream --key-field user_id -l clickstream.jsonl"
"$RUNNEL" produce -t clickstream --key-field user_id -l "$TMP/clickstream.jsonl" ||
    fail "produce failed"
echo "\$ runnel offsets -t clickstream"
"$RUNNEL" offsets -t clickstream || fail "offsets failed"

step "5/6  Consuming them back from the beginning to the end"
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

step "6/6  Stopping the broker (SIGTERM)"
kill -TERM "$BROKER_PID"
status=0
wait "$BROKER_PID" || status=$?
BROKER_PID=
[ "$status" -eq 0 ] || fail "the broker exited with status $status"
echo "the broker stopped cleanly (exit status 0)"

printf '\n%sDemo complete:%s %d events through Runnel and back, in order per partition.\n' \
    "$BOLD" "$PLAIN" "$EVENTS"
