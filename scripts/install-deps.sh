#!/bin/sh
# Installs the Debian packages Runnel needs, and only those that are missing.
# Quiet and quick when everything is already there: no apt-get at all then.
#
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the benchmark peers (redis-server, nats-server)
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev \
libuv1-dev libprotobuf-c-dev protobuf-c-compiler libzstd-dev libxxhash-dev \
libraft-dev libsqlite3-dev sqlite3 libpq-dev postgresql libcmocka-dev \
libhttp-parser-dev prometheus"

if [ "${1:-}" = "--bench" ]; then
    PKGS="$PKGS redis-server nats-server"
fi

missing=""
for p in $PKGS; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: missing packages:$missing" >&2
        echo "install-deps: not root and no sudo; install them with apt-get as root" >&2
        exit 1
    fi
fi

echo "install-deps: installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done" >&2
