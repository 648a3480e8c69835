# For the drain: established TCP connections from this host to the old slot's servers, and the
# nginx workers that are shutting down. Reads /proc: no iproute2, no procps.
connections() {
    # connections PIDFILE|- HOST:PORT... -> target=SERVER IP PORT, tcp=REMOTE (hex), draining=PID
    # (draining: old workers of the master PIDFILE names, and of no other Nginx)
    pid_file "$1"
    shift
    for _server in "$@"; do
        _host=${_server%:*}
        _port=${_server##*:}
        for _ip in $(getent ahosts "$_host" 2>/dev/null | awk '{ print $1 }' | sort -u); do
            field target "$_server $_ip $_port"
        done
    done
    cat "$BG_PROC/net/tcp" "$BG_PROC/net/tcp6" 2>/dev/null | awk '$4 == "01" { print "tcp=" $3 }'
    nginx_master "$_pidfile"
    nginx_procs "$_master"
    for _p in $_procs; do case "$_p" in *:shutting) field draining "${_p%:*}" ;; esac; done
}

cut_old_workers() {
    # The sudo helper's one job (bluegreen-swap-cut, no arguments): SIGTERM to every old worker
    # ('shutting down') of the master its pid file names, and to nothing else.
    BG_PROC=/proc
    pid_file -
    nginx_master "$_pidfile"
    nginx_procs "$_master"
    for _p in $_procs; do
        case "$_p" in *:shutting) kill -TERM "${_p%:*}" 2>/dev/null && field stopped "${_p%:*}" ;; esac
    done
}

stop_workers() {
    # stop_workers PIDFILE|- PID...: SIGTERM to each, only if it is still an nginx worker shutting
    # down and a child of the master PIDFILE names (a pid reused by anything else is left alone).
    pid_file "$1"
    shift
    if [ "$BG_SUDO" = 1 ]; then
        # Old workers run as Nginx's user, not this one: the root helper stops them (all of them:
        # they are past this run's deadline, or an earlier run's).
        as_root "$CUT_HELPER"
        return 0
    fi
    nginx_master "$_pidfile"
    for _pid in "$@"; do
        read_title "$_pid"
        parent_of "$_pid"
        case "$_title" in
            "nginx: worker process is shutting down"*)
                if [ -n "$_master" ] && [ "$_ppid" = "$_master" ]; then
                    kill -TERM "$_pid" 2>/dev/null && field stopped "$_pid"
                else
                    field skipped "$_pid"
                fi ;;
            *) field skipped "$_pid" ;;
        esac
    done
}

marker() {
    # marker SOCKET MAX_SECONDS -> generation= (what the config Nginx serves answers)
    marker_url "$1"
    _g=$(curl -s --fail --max-time "$2" "$_mo" "$_ma" "$_mu" | head -c 100)
    _g=${_g%% *}
    field generation "${_g%%[!A-Za-z0-9_-]*}"
}
