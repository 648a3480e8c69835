#!/bin/sh
# Take the lock and read the state in one round trip (the first step of every run).
# usage: begin.sh LOCK_SCRIPT PROBE_SCRIPT LOCKDIR OWNER TTL_SECONDS MANAGED_FILE
# Prints lock.sh's answer; when the lock was taken, then '--- probe' and probe.sh's output.
set -u
out=$(sh -c "$1" lock.sh acquire "$3" "$4" "$5")
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 0 ] || exit "$rc"
# A run that died inside apply.sh left MANAGED.before-swap: apply never finished, so no reload
# followed and Nginx still serves those bytes. Put them back before reading the state.
if [ -e "$6.before-swap" ]; then
    mv -f "$6.before-swap" "$6" && echo "recovered=restored"
fi
rm -f "$(dirname "$6")/.$(basename "$6").candidate-"* 2>/dev/null
echo "--- probe"
exec sh -c "$2" probe.sh "$6"
