#!/bin/sh
# Stage the candidate (from stdin), test it on its own with nginx -t, and health-check the target
# slot's servers at the same time: one round trip before anything live changes.
# usage: prepare.sh TEST_SCRIPT HTTP_SCRIPT CANDIDATE MAX_SECONDS [URL...]
# Prints '--- test <exit code>' and test_isolated.sh's output, then '--- health' and http.sh's.
set -u
test_script=$1
http_script=$2
cand=$3
max=$4
shift 4
cat > "$cand" || exit 20
health=$(mktemp) || exit 20
trap 'rm -f "$health"' EXIT
pid=""
if [ "$#" -gt 0 ]; then
    sh -c "$http_script" http.sh GET "$max" "$@" > "$health" 2>&1 &
    pid=$!
fi
out=$(sh -c "$test_script" test_isolated.sh "$cand" 2>&1)
rc=$?
[ -n "$pid" ] && wait "$pid"
echo "--- test $rc"
[ -n "$out" ] && printf '%s\n' "$out"
echo "--- health"
cat "$health"
