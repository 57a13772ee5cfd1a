#!/bin/sh
# run.sh BUILD_DIR [SECONDS]: runs every libFuzzer target built in BUILD_DIR (configured with
# CC=clang cmake -DRUNNEL_FUZZ=ON) for SECONDS each (default 60), starting from a seed corpus
# of valid frames, batches, job files (the examples and more) and JSON records, with
# tests/fuzz/<target>.dict as the dictionary when there is one. The corpus grows in
# BUILD_DIR/tests/fuzz/corpus/<target>; a crashing input lands in
# BUILD_DIR/tests/fuzz/artifacts/<target>/. Exit status 1 when any target found a crash, leak
# or undefined behaviour.
set -eu

usage() {
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
build=$1
seconds=${2:-}
[ -n "$seconds" ] || seconds=60
case $seconds in
*[!0-9]* | '') usage ;;
esac

fuzz_dir=$build/tests/fuzz
src_dir=$(dirname "$0")
if [ ! -x "$fuzz_dir/fuzz_gen_seeds" ]; then
    echo "$0: no fuzz targets in $fuzz_dir; build them first:" >&2
    echo "  CC=clang cmake -S . -B $build -DRUNNEL_FUZZ=ON && cmake --build $build" >&2
    exit 2
fi

corpus=$fuzz_dir/corpus
"$fuzz_dir/fuzz_gen_seeds" "$corpus"

# UBSan only reports by default; halting makes undefined behaviour a finding.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

status=0
for target in frame batch sql json; do
    artifacts=$fuzz_dir/artifacts/$target
    mkdir -p "$corpus/$target" "$artifacts"
    set -- -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$artifacts/"
    [ ! -f "$src_dir/$target.dict" ] || set -- "$@" -dict="$src_dir/$target.dict"
    echo "== fuzz_$target: ${seconds}s"
    if ! "$fuzz_dir/fuzz_$target" "$@" "$corpus/$target"; then
        echo "== fuzz_$target FAILED; reproduce with: $fuzz_dir/fuzz_$target $artifacts/<crash file>" >&2
        status=1
    fi
done
exit $status
