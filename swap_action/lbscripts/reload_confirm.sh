#!/bin/sh
# Reload Nginx and prove the new config is live, without trusting `nginx -s reload`'s exit status:
#   - every worker that was accepting before is gone or 'shutting down' (it stopped accepting),
#   - new workers exist,
#   - no [emerg] was logged after the reload,
#   - the generation marker answers the new generation on 3 fresh connections in a row.
# Prints key=value lines. Exit 0 confirmed, 2 reload command failed, 3 [emerg] logged, 4 timeout.
# usage: reload_confirm.sh GENERATION MARKER_SOCKET|- TIMEOUT_MS ERROR_LOG|-
# (MARKER_SOCKET '-' skips the marker: for restoring a file the engine did not write)
set -u
gen=$1
sock=$2
timeout_ms=$3
errlog=$4
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
workers() { ps -eo pid=,args= | awk '$2 == "nginx:" && $3 == "worker" && $4 == "process" && NF == 4 { print $1 }'; }
marker_ok() {
    [ "$sock" = "-" ] && return 0
    for _ in 1 2 3; do
        answer=$(curl -s --max-time 1 --unix-socket "$sock" http://bluegreen-swap/generation) || return 1
        [ "$answer" = "$gen" ] || return 1
    done
    return 0
}
old=" $(workers | tr '\n' ' ') "
echo "old_workers=$old"
offset=0
if [ "$errlog" != "-" ] && [ -f "$errlog" ]; then offset=$(wc -c < "$errlog"); fi
t0=$(now_ms)
out=$(nginx -s reload 2>&1)
rc=$?
echo "reload_at_ms=$t0"
echo "reload_exit=$rc"
echo "reload_ms=$(( $(now_ms) - t0 ))"
if [ "$rc" -ne 0 ]; then
    printf '%s\n' "$out" | sed 's/^/reload_output=/'
    exit 2
fi
new_ms=""
old_ms=""
marker_ms=""
while :; do
    t=$(( $(now_ms) - t0 ))
    if [ "$errlog" != "-" ] && [ -f "$errlog" ]; then
        emerg=$(tail -c +$((offset + 1)) "$errlog" | grep -m1 '\[emerg\]')
        if [ -n "$emerg" ]; then
            echo "emerg=$emerg"
            exit 3
        fi
    fi
    new=0
    left=0
    for pid in $(workers); do
        case "$old" in
            *" $pid "*) left=$((left + 1)) ;;
            *) new=$((new + 1)) ;;
        esac
    done
    [ "$new" -gt 0 ] && [ -z "$new_ms" ] && new_ms=$t
    [ "$left" -eq 0 ] && [ -z "$old_ms" ] && old_ms=$t
    # The marker is asked only once no old worker accepts: before that a fresh connection may
    # still reach an old worker, which answers the old generation.
    if [ -z "$marker_ms" ] && [ "$new" -gt 0 ] && [ "$left" -eq 0 ] && marker_ok; then marker_ms=$t; fi
    if [ -n "$marker_ms" ]; then
        # Confirmed as of now, after the checks that proved it (not the loop's start).
        echo "new_workers_ms=$new_ms"
        echo "old_stopped_ms=$old_ms"
        echo "marker_ms=$marker_ms"
        echo "confirmed_ms=$(( $(now_ms) - t0 ))"
        exit 0
    fi
    if [ "$t" -gt "$timeout_ms" ]; then
        echo "new_workers=$new"
        echo "old_left=$left"
        echo "marker_ok=$([ -n "$marker_ms" ] && echo 1 || echo 0)"
        exit 4
    fi
    sleep 0.01
done
