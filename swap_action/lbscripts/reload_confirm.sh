#!/bin/sh
# Reload Nginx and prove the new config is live, without trusting `nginx -s reload`'s exit status:
#   - every worker that was accepting before is gone or 'shutting down' (it stopped accepting),
#   - new workers exist,
#   - no [emerg] was logged after the reload,
#   - the generation marker answers the new generation (asked on 3 fresh connections: while old
#     workers still accept, some may reach them).
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
    # Three fresh connections ('Connection: close') from one curl: a new worker answering the new
    # generation on any of them proves the new config is loaded; the old workers may still
    # answer the others until they stop accepting, which the worker check proves separately.
    curl -s --max-time 1 -H 'Connection: close' --unix-socket "$sock" \
        http://bluegreen-swap/generation http://bluegreen-swap/generation http://bluegreen-swap/generation \
        | grep -qx "$gen"
}
# One ps, read into shell variables: the accepting workers and the master(s). (Every process
# started before the signal delays the swap: keep them few.)
eval "$(ps -eo pid=,args= | awk '
    $2 == "nginx:" && $3 == "worker" && $4 == "process" && NF == 4 { workers = workers " " $1 }
    $2 == "nginx:" && $3 == "master" { if (!count) first = $1; count++ }
    END { printf "old=\" %s \"\nmaster_count=%d\nmaster=%s\n", workers, count, first }')"
echo "old_workers=$old"
offset=0
if [ "$errlog" != "-" ] && [ -f "$errlog" ]; then offset=$(wc -c < "$errlog"); fi
t0=$(now_ms)
# SIGHUP to the master is what `nginx -s reload` sends, without first parsing the whole config
# to find the pid file (the config was tested already; a refusal shows as [emerg] below), and it
# still works when a pid file was lost. Several masters on one host: let nginx pick its own.
if [ "$master_count" -eq 1 ]; then
    kill -HUP "$master" 2>/dev/null
    rc=$?
    out="cannot signal the nginx master (pid $master)"
else
    out=$(nginx -s reload 2>&1)
    rc=$?
fi
echo "reload_at_ms=$t0"
echo "reload_exit=$rc"
echo "reload_ms=$(( $(now_ms) - t0 ))"
if [ "$rc" -ne 0 ]; then
    printf '%s\n' "$out" | sed 's/^/reload_output=/'
    exit 2
fi
# The marker is asked in the background, so its round trips never delay the worker checks.
marker_file="${TMPDIR:-/tmp}/bluegreen-swap-marker.$$"
rm -f "$marker_file"
(
    while [ $(( $(now_ms) - t0 )) -le "$timeout_ms" ]; do
        if marker_ok; then : > "$marker_file"; exit 0; fi
        sleep 0.005
    done
) &
asker=$!
trap 'kill "$asker" 2>/dev/null; rm -f "$marker_file"' EXIT
new_ms=""
old_ms=""
marker_ms=""
new=0
while :; do
    t=$(( $(now_ms) - t0 ))
    if [ -z "$new_ms" ]; then
        # Until new workers exist the reload may still be refused: watch the log for [emerg].
        if [ "$errlog" != "-" ] && [ -f "$errlog" ]; then
            emerg=$(tail -c +$((offset + 1)) "$errlog" | grep -m1 '\[emerg\]')
            if [ -n "$emerg" ]; then
                echo "emerg=$emerg"
                exit 3
            fi
        fi
        new=0
        for pid in $(workers); do
            case "$old" in
                *" $pid "*) ;;
                *) new=$((new + 1)) ;;
            esac
        done
        [ "$new" -gt 0 ] && new_ms=$t
    fi
    # An old worker still accepts while its title is exactly 'nginx: worker process'; it reads
    # 'is shutting down' once it closed its listening sockets. (Builtin read: no fork per poll.)
    left=0
    for pid in $old; do
        title=""
        [ -r "/proc/$pid/cmdline" ] && read -r title < "/proc/$pid/cmdline" 2>/dev/null
        [ "$title" = "nginx: worker process" ] && left=$((left + 1))
    done
    [ "$left" -eq 0 ] && [ -z "$old_ms" ] && old_ms=$t
    if [ -z "$marker_ms" ] && [ -e "$marker_file" ]; then marker_ms=$t; fi
    if [ -n "$marker_ms" ] && [ "$left" -eq 0 ]; then
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
    sleep 0.005
done
