#!/bin/sh
# readme_keys.sh BROKER_BIN SOURCE_DIR - the README documents every setting with its default:
# each broker key that `runnel-broker --help` lists (the table in broker/config.c) and each
# librunnel key of client/conf.c must appear as a table row "| `key` | default |", the default
# in backticks, or bare when it is a phrase in parentheses such as "(required)".
set -eu
bin=$1
src=$2
readme=$src/README.md
tmp=$(mktemp -d "${TMPDIR:-/tmp}/readme-keys.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$bin" --help | sed -n 's/^  \([a-z.]*\) (default \(.*\))$/\1 \2/p' >"$tmp/broker"
sed -n 's/^ *{"\([a-z.]*\)", T_[A-Z]*, "\([^"]*\)".*/\1 \2/p' "$src/client/conf.c" >"$tmp/client"
for what in broker client; do
    [ -s "$tmp/$what" ] || { echo "readme_keys: found no $what keys" >&2; exit 1; }
done

status=0
for what in broker client; do
    while read -r key def; do
        grep -qF "| \`$key\` | \`$def\` |" "$readme" && continue
        case "$def" in
            "("*")") grep -qF "| \`$key\` | $def |" "$readme" && continue ;;
        esac
        echo "README.md: no table row for $what key '$key' with its default '$def'" >&2
        status=1
    done <"$tmp/$what"
done
[ "$status" -eq 0 ] &&
    echo "README.md documents all $(wc -l <"$tmp/broker") broker keys and $(wc -l <"$tmp/client") librunnel keys"
exit "$status"
