# scripts/cluster-lib.sh - sourced by scripts/demo.sh and bench/cluster.sh: a cluster of three
# runnel-brokers on free loopback ports, each its own process and data dir under $TMP.
#
# Needs: $BROKER (the binary), $TMP (a scratch dir), a fail() function. Provides:
#   cl_init              picks the ports: LISTEN[1..3], CPORT[1..3], QUORUM
#   cl_start I [SET...]  starts broker I (extra "--set k=v" arguments after it); PIDS[I]
#   cl_wait I            waits until broker I listens (DATA_DIR/listening)
#   cl_kill I            SIGKILL and reap broker I
#   cl_stop I            SIGTERM broker I; fails unless it exits 0
#   cl_stop_all          cl_stop for every running broker (also fine from an EXIT trap)
#   cl_brokers [SKIP]    "HOST:PORT,..." of the brokers, without SKIP

PIDS=(- - - -)
LISTEN=(- - - -)
CPORT=(- - - -)
QUORUM=
CL_SETTINGS=()

# A free loopback port (the controller listeners need fixed ports: the voters dial them).
cl_free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0", ReuseAddr => 1)->sockport' ||
        fail "cannot pick a free port (perl)"
}

cl_init() {
    QUORUM=
    for i in 1 2 3; do
        CPORT[$i]=$(cl_free_port)
        LISTEN[$i]=127.0.0.1:$(cl_free_port)
        QUORUM="${QUORUM:+$QUORUM,}$i@127.0.0.1:${CPORT[$i]}"
        mkdir -p "$TMP/data$i"
    done
}

cl_start() {
    local i=$1
    shift
    rm -f "$TMP/data$i/listening"
    "$BROKER" --node-id "$i" --data-dir "$TMP/data$i" --listen "${LISTEN[$i]}" \
        --controller-listen "127.0.0.1:${CPORT[$i]}" --controller-quorum "$QUORUM" \
        "${CL_SETTINGS[@]}" "$@" 2>>"$TMP/broker$i.log" &
    PIDS[$i]=$!
}

cl_wait() {
    local i=$1
    for _ in $(seq 1 200); do
        [ -s "$TMP/data$i/listening" ] && return 0
        kill -0 "${PIDS[$i]}" 2>/dev/null || fail "broker $i exited during start-up"
        sleep 0.05
    done
    fail "broker $i did not listen within 10 s"
}

cl_kill() {
    local i=$1
    kill -KILL "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
    PIDS[$i]=-
}

cl_stop() {
    local i=$1 status=0
    [ "${PIDS[$i]}" = - ] && return 0
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" || status=$?
    PIDS[$i]=-
    [ "$status" -eq 0 ] || fail "broker $i exited with status $status"
}

cl_stop_all() {
    for i in 1 2 3; do
        if [ "${PIDS[$i]}" != - ]; then
            kill -TERM "${PIDS[$i]}" 2>/dev/null || true
        fi
    done
    for i in 1 2 3; do
        if [ "${PIDS[$i]}" != - ]; then
            wait "${PIDS[$i]}" 2>/dev/null || true
            PIDS[$i]=-
        fi
    done
}

cl_brokers() {
    local skip=${1:-0} out=
    for i in 1 2 3; do
        [ "$i" = "$skip" ] && continue
        out="${out:+$out,}${LISTEN[$i]}"
    done
    printf '%s' "$out"
}
