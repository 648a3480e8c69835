# Reload Nginx and prove the new config is live, without trusting `nginx -s reload`'s exit status:
#   - every worker that was accepting before is gone or 'shutting down' (it stopped accepting),
#   - new workers exist,
#   - no [emerg] was logged after the reload,
#   - the generation marker answers the new generation (asked in rounds of 6 fresh connections
#     once new workers exist: while old workers still accept, some may reach them).
reload_confirm() {
    # reload_confirm GENERATION MARKER|- TIMEOUT_MS ERROR_LOG|- PIDFILE|-
    #   -> result=confirmed|signal_failed|emerg|timeout and the timings (ms after the signal)
    # (MARKER: its address, upstream.marker_address; '-' skips the marker: for restoring a file the engine did not write;
    # PIDFILE '-': found from nginx -V and nginx.conf)
    _gen=$1 _sock=$2 _timeout_ms=$3 _errlog=$4
    pid_file "${5:--}"
    # The master its pid file names (proven), and its accepting workers, before the signal.
    nginx_master "$_pidfile"
    if [ -z "$_master" ]; then
        field reload_at_ms "$(now_ms)"
        field signal_ms 0
        field result signal_failed
        blob signal_output "no Nginx master to reload: $_master_why"
        return 0
    fi
    _old=" "
    nginx_procs "$_master"
    for _line in $_procs; do
        case "$_line" in *:worker) _old="$_old${_line%:*} " ;; esac
    done
    field old_workers "$_old"
    _offset=0
    if [ "$_errlog" != "-" ] && [ -f "$_errlog" ]; then
        # A log this user cannot read (Debian's is root:adm 0640) hides a refusal: said, so that a
        # timeout can name it.
        [ -r "$_errlog" ] || field errlog_unreadable "$_errlog"
        _offset=$(wc -c < "$_errlog" 2>/dev/null || echo 0)
    fi
    # SIGHUP to the master is what `nginx -s reload` sends, without first parsing the whole config
    # to find the pid file (the config was tested already; a refusal shows as [emerg] below).
    # The builtin kill goes first and the clock is read just after it (a fork later): timings
    # below count from that reading, and every absolute time (reload_at_ms + ms) stays exact.
    if [ "$BG_SUDO" = 1 ]; then
        # Not this user's master to signal: 'nginx -s reload' as root (one fixed sudoers line); it
        # signals the master its pid file names, the one proven above.
        nginx_path
        _t0=$(now_ms)
        _sig_out=$(as_root "$_nginx" -s reload 2>&1)
        _rc=$?
        _sig_ms=$(( $(now_ms) - _t0 ))
    else
        kill -HUP "$_master" 2>/dev/null
        _rc=$?
        _t0=$(now_ms)
        _sig_ms=0
        _sig_out="cannot signal the nginx master (pid $_master)"
    fi
    field reload_at_ms "$_t0"
    field signal_ms "$_sig_ms"
    if [ "$_rc" -ne 0 ]; then
        field result signal_failed
        blob signal_output "$_sig_out"
        return 0
    fi
    # The marker is asked in the background, so its round trips never delay the worker checks,
    # and only once new workers exist (before, only old workers can answer it): every curl costs
    # milliseconds of CPU that the master, reloading, needs. Each round is one curl (6 fresh
    # connections: while old workers still accept, some reach them), read back with the builtin
    # read; the clock is read every 16th round for the deadline.
    _md=$(mktemp -d) || { field result signal_failed; blob signal_output "cannot make a temporary directory"; return 0; }
    _marker_file="$_md/ok"
    _asker=""
    trap '[ -z "$_asker" ] || kill "$_asker" 2>/dev/null; rm -rf "$_md"' EXIT
    [ "$_sock" = "-" ] && : > "$_marker_file"
    _new_ms="" _old_ms="" _marker_ms="" _new=0 _polls=0 _nap=0.005
    # The clock is read only when something happened, and every 16th poll for the deadline: a
    # 'date' per poll would delay each check by a fork. Until new workers exist, polls are 5 ms
    # apart (plus sleep's fork); then the master waits 100 ms before it tells the old workers to
    # stop accepting (nginx's ngx_master_process_cycle), so the next poll is 80 ms later, and the
    # ones after it 2 ms apart: a few forks instead of dozens while the master reloads.
    while :; do
        _polls=$((_polls + 1))
        if [ -z "$_new_ms" ]; then
            # Until new workers exist the reload may still be refused: watch the log for [emerg].
            if [ "$_errlog" != "-" ] && [ -f "$_errlog" ]; then
                # grep per poll (as cheap as it gets); awk's attribution only once an [emerg] shows.
                _emerg=$(tail -c +$((_offset + 1)) "$_errlog" | grep -m1 '\[emerg\]')
                [ -n "$_emerg" ] && _emerg=$(emerg_after "$_errlog" "$_offset" "$$")
                if [ -n "$_emerg" ]; then
                    field result emerg
                    blob emerg "$_emerg"
                    return 0
                fi
            fi
            _new=0
            nginx_procs "$_master"
            for _line in $_procs; do
                case "$_line" in
                    *:worker) case "$_old" in *" ${_line%:*} "*) ;; *) _new=$((_new + 1)) ;; esac ;;
                esac
            done
            [ "$_new" -gt 0 ] && { _new_ms=$(( $(now_ms) - _t0 )); _nap=0.08; }
        fi
        # New workers seen (or no worker can be seen at all, or 40 polls gone by): ask the marker.
        if [ -z "$_asker" ] && [ "$_sock" != "-" ] && { [ -n "$_new_ms" ] || [ "$_old" = " " ] || [ "$_polls" -ge 40 ]; }; then
            marker_ask > /dev/null 2>&1 &
            _asker=$!
        fi
        # An old worker still accepts while its title is exactly 'nginx: worker process'; it reads
        # 'is shutting down' once it closed its listening sockets. (Builtin read: no fork per poll.)
        _left=0
        for _pid in $_old; do
            read_title "$_pid"
            [ "$_title" = "nginx: worker process" ] && _left=$((_left + 1))
        done
        [ "$_left" -eq 0 ] && [ -z "$_old_ms" ] && _old_ms=$(( $(now_ms) - _t0 ))
        if [ -z "$_marker_ms" ] && [ -e "$_marker_file" ]; then _marker_ms=$(( $(now_ms) - _t0 )); fi
        if [ -n "$_marker_ms" ] && [ "$_left" -eq 0 ]; then
            # Confirmed as of the later of the two proofs: its clock was read in this very poll,
            # after the check that proved it (no fork for another reading).
            field result confirmed
            field new_workers_ms "$_new_ms"
            field old_stopped_ms "$_old_ms"
            field marker_ms "$_marker_ms"
            field confirmed_ms $(( _old_ms > _marker_ms ? _old_ms : _marker_ms ))
            return 0
        fi
        if [ $((_polls % 16)) -eq 0 ] && [ $(( $(now_ms) - _t0 )) -gt "$_timeout_ms" ]; then
            field result timeout
            field new_workers "$_new"
            field old_left "$_left"
            field marker_ok "$([ -n "$_marker_ms" ] && echo 1 || echo 0)"
            return 0
        fi
        sleep "$_nap"
        [ -n "$_new_ms" ] && _nap=0.002
    done
}

marker_ask() {
    # Rounds of 6 marker requests until one answers _gen (then _marker_file), or the deadline.
    _round=0
    marker_url "$_sock"
    _u=$_mu
    while :; do
        _round=$((_round + 1))
        if [ $((_round % 16)) -eq 0 ] && [ $(( $(now_ms) - _t0 )) -gt "$_timeout_ms" ]; then exit 0; fi
        curl -s --max-time 1 -H 'Connection: close' "$_mo" "$_ma" \
            "$_u" "$_u" "$_u" "$_u" "$_u" "$_u" > "$_md/answers" 2>/dev/null
        while read -r _a; do
            # The answer is 'GENERATION PATH' (or, from older files, 'GENERATION').
            [ "${_a%% *}" = "$_gen" ] && { : > "$_marker_file"; exit 0; }
        done < "$_md/answers"
        sleep 0.005
    done
}

emerg_after() {
    # emerg_after LOG OFFSET SENDER: the [emerg] line that refused SENDER's reload, from what LOG
    # got past OFFSET; nothing while it may still go live. At notice level the master logs
    # 'signal 1 (SIGHUP) received from PID' per reload: only what follows SENDER's own line is its
    # (an earlier reload's errors can follow our offset; our signal waits until it is over). A
    # bind() failure is not final: the master tries again for ~2.5 s (the port may free up, and
    # the reload then goes live); 'still could not bind()' is.
    tail -c +$(($2 + 1)) "$1" | awk -v me="SIGHUP) received from $3," '
        { line[NR] = $0 }
        index($0, "SIGHUP) received from") { signals = 1; if (index($0, me)) start = NR + 1 }
        END {
            if (!start) start = signals ? NR + 1 : 1
            for (i = start; i <= NR; i++) {
                if (line[i] ~ /\[emerg\]/ && line[i] ~ /bind\(\) to/) { bind = line[i]; continue }
                if (line[i] ~ /still could not bind/) { print (bind != "" ? bind : line[i]); exit }
                if (line[i] ~ /\[emerg\]/) { print line[i]; exit }
            }
        }'
}
