#!/bin/sh
# Put the candidate in place of the live file and test the whole config with `nginx -t`.
# On failure the original bytes are put back (by rename, so the file is never half-written)
# and nginx's message is printed. On success the original is kept as LIVE.previous.
# usage: apply.sh LIVE CANDIDATE
set -u
live=$1
cand=$2
before="$live.before-swap"
had_live=0
if [ -e "$live" ]; then
    cp -p "$live" "$before" || exit 20
    had_live=1
fi
mv -f "$cand" "$live" || exit 21
if out=$(nginx -t 2>&1); then
    [ "$had_live" = 1 ] && mv -f "$before" "$live.previous"
    printf '%s\n' "$out"
    exit 0
fi
if [ "$had_live" = 1 ]; then
    mv -f "$before" "$live"
else
    rm -f "$live"
fi
printf '%s\n' "$out"
exit 10
