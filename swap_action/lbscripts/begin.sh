#!/bin/sh
# Take the lock and read the state in one round trip (the first step of every run).
# usage: begin.sh LOCK_SCRIPT PROBE_SCRIPT LOCKDIR OWNER STALE_SECONDS MANAGED_FILE
# Prints lock.sh's answer; when the lock was taken, then '--- probe' and probe.sh's output.
set -u
out=$(sh -c "$1" lock.sh acquire "$3" "$4" "$5")
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 0 ] || exit "$rc"
echo "--- probe"
exec sh -c "$2" probe.sh "$6"
