#!/bin/sh
# scripts/gen-clickstream.sh N [DAY] - N clickstream events as JSON lines on stdout, like the
# seed article's: user_id, action, page, value, timestamp (ISO-8601, UTC).
#
# 2,000 users, 20 of them very busy (the ones the fraud-alerts job should flag); events 6 ms
# apart from 10:00 UTC on DAY (default today), so 100,000 events span two 5-minute windows.
# The same N and DAY give the same events (a fixed seed). Used by make demo and the
# processor benchmark.
set -eu
n=${1:?usage: scripts/gen-clickstream.sh N [YYYY-MM-DD]}
day=${2:-$(date -u +%F)}
exec awk -v n="$n" -v day="$day" 'BEGIN {
    srand(7)
    split("click click click click view view scroll add_to_cart purchase", actions, " ")
    split("/ /home /product /product /product /cart /checkout /search /deals /account", pages, " ")
    for (i = 0; i < n; i++) {
        u = (rand() < 0.2) ? int(rand() * 20) : int(rand() * 2000)
        a = actions[1 + int(rand() * 9)]
        v = (a == "purchase") ? 20 + int(rand() * 980) : 1 + int(rand() * 100)
        ms = i * 6
        printf "{\"user_id\":\"user%04d\",\"action\":\"%s\",\"page\":\"%s\",\"value\":%d,\"timestamp\":\"%sT%02d:%02d:%02d.%03dZ\"}\n", \
            u, a, pages[1 + int(rand() * 10)], v, day, 10 + int(ms / 3600000), int(ms / 60000) % 60, \
            int(ms / 1000) % 60, ms % 1000
    }
}'
