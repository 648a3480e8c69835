# For the drain: established TCP connections from this host to the old slot's servers, those of them
# the nginx workers that are shutting down hold, and those workers. Reads /proc: no iproute2, no
# procps.
connections() {
    # connections PIDFILE|- HOST:PORT... -> target=SERVER IP PORT, tcp=REMOTE (hex) for every
    # established connection, old_tcp=REMOTE for those a draining worker holds (its sockets in
    # /proc/PID/fd, matched by inode: column 10 of /proc/net/tcp), old_known=1|0 (0: some draining
    # worker's fds could not be read), draining=PID (old workers of the master PIDFILE names, and
    # of no other Nginx). New workers may talk to the old slot too (the staging upstream points at
    # the idle slot): only the old workers' connections end a drain.
    pid_file "$1"
    shift
    for _server in "$@"; do
        _host=${_server%:*}
        _port=${_server##*:}
        for _ip in $(getent ahosts "$_host" 2>/dev/null | awk '{ print $1 }' | sort -u); do
            field target "$_server $_ip $_port"
        done
    done
    nginx_master "$_pidfile"
    nginx_procs "$_master"
    _fds="" _known=1
    for _p in $_procs; do
        case "$_p" in
            *:shutting)
                field draining "${_p%:*}"
                if old_fds "${_p%:*}"; then _fds="$_fds
$_ls"; else _known=0; fi ;;
        esac
    done
    { printf '%s\n#tcp\n' "$_fds"; cat "$BG_PROC/net/tcp" "$BG_PROC/net/tcp6" 2>/dev/null; } | awk '
        !tcp && $0 == "#tcp" { tcp = 1; next }
        !tcp { if (match($0, /-> socket:\[[0-9]+\]$/)) old[substr($0, RSTART + 11, RLENGTH - 12)] = 1; next }
        $4 == "01" { print "tcp=" $3; if ($10 in old) print "old_tcp=" $3 }'
    field old_known "$_known"
}

old_fds() {
    # old_fds PID: the worker's fds as 'ls -ln' lists them ('N -> socket:[INODE]') into $_ls; 1 when
    # they cannot be read. A worker gone since holds nothing. Root without CAP_SYS_PTRACE (a
    # container's root) lists another user's fds but cannot read where they point: then they are
    # read as the worker's own user (setpriv, util-linux), which the kernel allows.
    _ls=""
    [ -d "$BG_PROC/$1" ] || return 0
    _ls=$(ls -ln "$BG_PROC/$1/fd/" 2>/dev/null) && return 0
    [ -d "$BG_PROC/$1" ] || { _ls=""; return 0; }
    [ "$(id -u 2>/dev/null)" = 0 ] && command -v setpriv >/dev/null 2>&1 || return 1
    _uid="" _gid=""
    [ -r "$BG_PROC/$1/status" ] || return 1
    while read -r _k _v _rest; do
        case "$_k" in Uid:) _uid=$_v ;; Gid:) _gid=$_v ;; esac
    done < "$BG_PROC/$1/status"
    case "$_uid" in ''|*[!0-9]*) return 1 ;; esac
    case "$_gid" in ''|*[!0-9]*) return 1 ;; esac
    _ls=$(setpriv --reuid="$_uid" --regid="$_gid" --clear-groups ls -ln "$BG_PROC/$1/fd/" 2>/dev/null)
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
