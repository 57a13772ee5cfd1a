#!/bin/sh
# bench/run.sh BUILD_DIR [extra runnel-log-bench flags]
#
# Runs the storage-engine benchmark with the defaults RESULTS.md quotes: 5 rounds of 1 GiB appended
# without per-batch fsync (and 1 GiB written by dd for the disk's bandwidth), 256 MiB with
# flush.messages=1 and group commit, 200k random-offset reads. Files go under $TMPDIR
# (default /tmp) and are removed afterwards. The last line printed is a JSON object.
set -eu
build=${1:?usage: bench/run.sh BUILD_DIR [runnel-log-bench flags]}
shift
bin="$build/bench/runnel-log-bench"
if [ ! -x "$bin" ]; then
    echo "bench/run.sh: $bin not found; build first (cmake --build $build)" >&2
    exit 1
fi
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), nproc $(nproc)"
df -h "${TMPDIR:-/tmp}" | sed 's/^/# /'
exec "$bin" --mb 1024 --sync-mb 256 --rounds 5 --lookups 200000 --json "$@"
