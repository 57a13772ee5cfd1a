#!/usr/bin/env bash
# bench/peers.sh [BUILD_DIR] - Runnel against Redis Streams and NATS JetStream, in one run on one
# machine, with the same workloads and 100-byte values:
#
#   one at a time   a single record in flight: send, wait for the acknowledgement, send the next
#                   (Runnel acks=1; Redis XADD reply; JetStream publish ack)
#                   runnel-poll: the same client against a broker with io.busy.poll.us
#                   (the broker polls its sockets after each request instead of sleeping)
#                   loopback echo: runnel-peer-bench's own echo process, a round trip with
#                   no server work, the floor this machine allows (blocking or polling)
#   one, polling    the same, every client polling for its acknowledgement for up to
#                   PEERS_SPIN_US before it sleeps (runnel-bench and runnel-peer-bench
#                   --spin-us, Runnel's I/O thread io.busy.poll.us): on a virtual machine
#                   waking a thread on an idle vCPU costs tens of µs, and this takes it out
#   pipelined       PEERS_PIPELINE records awaiting acknowledgement, for every system (Runnel:
#                   runnel-bench --inflight, acks=1, linger.ms=1; Redis and NATS: commands
#                   written ahead of their replies)
#   unbounded       Runnel only: the producer takes records as fast as it can queue them
#                   (buffer.memory), its throughput ceiling; latency then is mostly queueing
#
# Durability is alike: no fsync per record anywhere (Runnel's default flush policy, Redis
# `appendonly yes` + `appendfsync everysec`, JetStream file storage with its default sync).
# Every server runs from a temporary directory on free loopback ports and is stopped at the end.
#
# Needs: redis-server (with redis-benchmark) and nats-server (scripts/install-deps.sh --bench),
# and the build: BUILD_DIR/broker/runnel-broker, BUILD_DIR/tools/runnel-bench and
# BUILD_DIR/tools/runnel-peer-bench.
#
# After the table it prints the ratios issue 3's targets name (Runnel's unbounded throughput over
# Redis's pipelined XADD; Runnel's one-at-a-time p50 and p99 over JetStream's), from this run.
#
# Knobs (environment): PEERS_ONE=20000 records one at a time, PEERS_PIPELINED=1000000 records
# pipelined, PEERS_PIPELINE=1024 commands in flight for the peers, PEERS_SIZE=100,
# PEERS_SPIN_US=100 (0 leaves the polling rows out).
set -euo pipefail

BUILD=${1:-build}
ONE=${PEERS_ONE:-20000}
PIPED=${PEERS_PIPELINED:-1000000}
WINDOW=${PEERS_PIPELINE:-1024}
SIZE=${PEERS_SIZE:-100}
SPIN=${PEERS_SPIN_US:-100}
[[ "$SPIN" =~ ^[0-9]{1,7}$ ]] && [ "$SPIN" -le 1000000 ] ||
    { echo "peers.sh: PEERS_SPIN_US must be a whole number of µs, at most 1000000" >&2; exit 2; }

BROKER_BIN=$BUILD/broker/runnel-broker
BENCH_BIN=$BUILD/tools/runnel-bench
PEER_BIN=$BUILD/tools/runnel-peer-bench

die() { echo "peers.sh: $*" >&2; exit 1; }
[ -x "$PEER_BIN" ] || die "$PEER_BIN not found: build first (cmake --build $BUILD)"
command -v redis-server >/dev/null || die "redis-server not found: scripts/install-deps.sh --bench"
command -v nats-server >/dev/null || die "nats-server not found: scripts/install-deps.sh --bench"
have_runnel=1
[ -x "$BROKER_BIN" ] && [ -x "$BENCH_BIN" ] || have_runnel=0

TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-peers.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (a start that still loses the race is retried).
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free port found"
}

wait_port() { # PORT PID
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

start_redis() {
    mkdir -p "$TMP/redis"
    for _ in 1 2 3; do
        REDIS_PORT=$(free_port)
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" --save '' \
            --appendonly yes --appendfsync everysec --logfile "$TMP/redis.log" &
        REDIS_PID=$!
        if wait_port "$REDIS_PORT" "$REDIS_PID"; then
            PIDS+=("$REDIS_PID")
            return
        fi
        kill "$REDIS_PID" 2>/dev/null || true
    done
    cat "$TMP/redis.log" >&2
    die "redis-server did not start"
}

start_nats() {
    mkdir -p "$TMP/nats"
    for _ in 1 2 3; do
        NATS_PORT=$(free_port)
        nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$TMP/nats" >"$TMP/nats.log" 2>&1 &
        NATS_PID=$!
        if wait_port "$NATS_PORT" "$NATS_PID"; then
            PIDS+=("$NATS_PID")
            return
        fi
        kill "$NATS_PID" 2>/dev/null || true
    done
    cat "$TMP/nats.log" >&2
    die "nats-server did not start"
}

# start_runnel NAME [BROKER_ARGS…]: a broker in $TMP/NAME; sets RUNNEL_ADDR.
start_runnel() {
    local name=$1 pid
    shift
    mkdir -p "$TMP/$name"
    "$BROKER_BIN" --data-dir "$TMP/$name" --listen 127.0.0.1:0 "$@" 2>"$TMP/$name.log" &
    pid=$!
    for _ in $(seq 1 400); do
        if [ -s "$TMP/$name/listening" ]; then
            RUNNEL_ADDR=$(head -n1 "$TMP/$name/listening")
            PIDS+=("$pid")
            return
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$TMP/$name.log" >&2
    die "runnel-broker did not start"
}

ROWS=()
CMDS=()
declare -A FIG # "system workload field" -> value, for the ratios at the end
json_field() { # JSON_LINE FIELD
    sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"
}

# run SYSTEM WORKLOAD COMMAND…: runs it, keeps its output, adds a table row from its JSON line.
run() {
    local system=$1 workload=$2
    shift 2
    CMDS+=("$*")
    echo "== $system, $workload: $*" >&2
    local out
    if ! out=$("$@" 2>>"$TMP/stderr.log"); then
        echo "$out" >&2
        tail -n 20 "$TMP/stderr.log" >&2
        ROWS+=("$(printf '%-42s %-15s %12s %10s %10s' "$system" "$workload" FAILED - -)")
        return
    fi
    echo "$out" | sed 's/^/   /' >&2
    local last f
    last=$(tail -n1 <<<"$out")
    for f in records_per_sec p50_us p99_us; do
        FIG["${system%% *} $workload $f"]=$(json_field "$last" "$f")
    done
    ROWS+=("$(printf '%-42s %-15s %12.0f %10s %10s' "$system" "$workload" \
        "$(json_field "$last" records_per_sec)" "$(json_field "$last" p50_us)" \
        "$(json_field "$last" p99_us)")")
}

# redis-benchmark as a second opinion on Redis's pipelined ceiling (50 connections, -P 64).
run_redis_benchmark() {
    local value cmd csv rps p50 p99
    value=$(head -c "$SIZE" /dev/zero | tr '\0' 'x')
    cmd="redis-benchmark -h 127.0.0.1 -p $REDIS_PORT -n $PIPED -c 50 -P 64 --csv XADD rb '*' f <${SIZE}-byte value>"
    CMDS+=("$cmd")
    echo "== redis, pipelined: $cmd" >&2
    csv=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -n "$PIPED" -c 50 -P 64 --csv \
        XADD rb '*' f "$value" 2>/dev/null | tail -n1)
    echo "   $csv" >&2
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$(tr -d '"' <<<"$csv")"
    FIG["redis-benchmark pipelined records_per_sec"]=$rps
    ROWS+=("$(printf '%-42s %-15s %12.0f %10.1f %10.1f' "redis (redis-benchmark -c50 -P64)" \
        pipelined "$rps" "$(awk "BEGIN{print $p50 * 1000}")" "$(awk "BEGIN{print $p99 * 1000}")")")
}

start_redis
start_nats
if [ "$have_runnel" = 1 ]; then
    if [ "$SPIN" -gt 0 ]; then
        start_runnel runnel-poll --set "io.busy.poll.us=$SPIN"
        RUNNEL_POLL_ADDR=$RUNNEL_ADDR
    fi
    start_runnel runnel
fi

REDIS_V=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
NATS_V=$(nats-server --version | sed 's/nats-server: v//')

echo "peers.sh: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)), kernel $(uname -r)" >&2
echo "peers.sh: redis $REDIS_V on :$REDIS_PORT, nats $NATS_V on :$NATS_PORT, runnel ${RUNNEL_ADDR:-not built}" >&2

# (a) one record at a time
if [ "$have_runnel" = 1 ]; then
    run "runnel (acks=1)" "one at a time" "$BENCH_BIN" produce -b "$RUNNEL_ADDR" -t one \
        --messages "$ONE" --size "$SIZE" --acks 1 --inflight 1 --json
    if [ "$SPIN" -gt 0 ]; then
        # The client sleeps as above; the broker polls for SPIN µs after each request.
        run "runnel-poll (broker io.busy.poll.us=$SPIN)" "one at a time" "$BENCH_BIN" produce \
            -b "$RUNNEL_POLL_ADDR" -t one --messages "$ONE" --size "$SIZE" --acks 1 --inflight 1 \
            --json
    fi
fi
run "redis $REDIS_V (XADD, aof everysec)" "one at a time" "$PEER_BIN" redis \
    --addr "127.0.0.1:$REDIS_PORT" --stream one --messages "$ONE" --size "$SIZE" --pipeline 1 --json
run "nats $NATS_V (JetStream, file)" "one at a time" "$PEER_BIN" nats \
    --addr "127.0.0.1:$NATS_PORT" --stream ONE --messages "$ONE" --size "$SIZE" --pipeline 1 --json
run "loopback echo (no server work)" "one at a time" "$PEER_BIN" loopback --messages "$ONE" \
    --size "$SIZE" --pipeline 1 --json

# (a') one record at a time, every client polling for its acknowledgement for up to SPIN µs
# (yielding the CPU between looks) before it sleeps; Runnel's I/O thread busy-polls as well
# (io.busy.poll.us), since it, not the sender, reads the socket.
if [ "$SPIN" -gt 0 ]; then
    if [ "$have_runnel" = 1 ]; then
        run "runnel (acks=1, io.busy.poll.us=$SPIN)" "one, polling" "$BENCH_BIN" produce \
            -b "$RUNNEL_ADDR" -t onespin --messages "$ONE" --size "$SIZE" --acks 1 --inflight 1 \
            --spin-us "$SPIN" -X "io.busy.poll.us=$SPIN" --json
    fi
    run "redis $REDIS_V (XADD, aof everysec)" "one, polling" "$PEER_BIN" redis \
        --addr "127.0.0.1:$REDIS_PORT" --stream onespin --messages "$ONE" --size "$SIZE" \
        --pipeline 1 --spin-us "$SPIN" --json
    run "nats $NATS_V (JetStream, file)" "one, polling" "$PEER_BIN" nats \
        --addr "127.0.0.1:$NATS_PORT" --stream ONESPIN --messages "$ONE" --size "$SIZE" \
        --pipeline 1 --spin-us "$SPIN" --json
    run "loopback echo (no server work)" "one, polling" "$PEER_BIN" loopback --messages "$ONE" \
        --size "$SIZE" --pipeline 1 --spin-us "$SPIN" --json
fi

# (b) pipelined throughput: the same window for everyone, then Runnel's producer unbounded
if [ "$have_runnel" = 1 ]; then
    run "runnel (acks=1, linger.ms=1)" "pipelined" "$BENCH_BIN" produce -b "$RUNNEL_ADDR" \
        -t piped --messages "$PIPED" --size "$SIZE" --acks 1 --inflight "$WINDOW" --linger-ms 1 \
        --json
    run "runnel (acks=1, linger.ms=5)" "unbounded" "$BENCH_BIN" produce -b "$RUNNEL_ADDR" \
        -t unbounded --messages "$PIPED" --size "$SIZE" --acks 1 --json
fi
run "redis $REDIS_V (XADD, aof everysec)" "pipelined" "$PEER_BIN" redis \
    --addr "127.0.0.1:$REDIS_PORT" --stream piped --messages "$PIPED" --size "$SIZE" \
    --pipeline "$WINDOW" --json
if command -v redis-benchmark >/dev/null; then
    run_redis_benchmark
fi
run "nats $NATS_V (JetStream, file)" "pipelined" "$PEER_BIN" nats \
    --addr "127.0.0.1:$NATS_PORT" --stream PIPED --messages "$PIPED" --size "$SIZE" \
    --pipeline "$WINDOW" --json

echo
echo "$SIZE-byte values; latency is per record, send to acknowledgement, in µs; pipelined = $WINDOW in flight"
printf '%-42s %-15s %12s %10s %10s\n' system workload records/s p50 p99
for row in "${ROWS[@]}"; do
    echo "$row"
done
# ratio LABEL NUMERATOR_KEY DENOMINATOR_KEY TARGET: one line when both figures exist
ratio() {
    local a=${FIG["$2"]:-} b=${FIG["$3"]:-}
    [ -n "$a" ] && [ -n "$b" ] || return 0
    awk -v a="$a" -v b="$b" -v l="$1" -v t="$4" 'BEGIN {
        if (b > 0) printf "%-58s %6.2f   (issue 3 target: %s)\n", l, a / b, t }'
}
echo
echo "Ratios (same run):"
ratio "runnel unbounded / redis pipelined XADD, records/s" "runnel unbounded records_per_sec" \
    "redis pipelined records_per_sec" ">= 5"
ratio "runnel unbounded / redis-benchmark -c50 -P64, records/s" \
    "runnel unbounded records_per_sec" "redis-benchmark pipelined records_per_sec" ">= 5"
ratio "runnel / nats JetStream one at a time, p50 ack latency" "runnel one at a time p50_us" \
    "nats one at a time p50_us" "<= 0.5"
ratio "runnel / nats JetStream one at a time, p99 ack latency" "runnel one at a time p99_us" \
    "nats one at a time p99_us" "<= 0.6"
ratio "runnel, broker polling / nats JetStream one at a time, p50" \
    "runnel-poll one at a time p50_us" "nats one at a time p50_us" "<= 0.5"
ratio "runnel, broker polling / nats JetStream one at a time, p99" \
    "runnel-poll one at a time p99_us" "nats one at a time p99_us" "<= 0.6"
ratio "runnel / nats JetStream one at a time polling, p50" "runnel one, polling p50_us" \
    "nats one, polling p50_us" "<= 0.5"
ratio "runnel / nats JetStream one at a time polling, p99" "runnel one, polling p99_us" \
    "nats one, polling p99_us" "<= 0.6"
echo
echo "Commands:"
for c in "${CMDS[@]}"; do
    echo "  $c"
done
