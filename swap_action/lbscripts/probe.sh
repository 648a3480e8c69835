# What the engine needs to know about the LB, in one round trip with few processes.
# (nginx_build and the pid file: nginx_build.sh.)
probe() {
    # probe MANAGED_FILE -> nginx_version= conf= curl= master_pid= error_log=... file=present|missing file:
    # (begin starts nginx_build in the background into $_vfile, before it takes the lock.)
    _version="missing" _conf="" _default_log="" _main_log="" _pidfile=""
    if [ -n "${_vfile:-}" ]; then
        wait "$_vpid"
        build_fields < "$_vfile"
        nginx_v_done
    elif nginx_path && [ -n "$_nginx" ]; then
        _build=$(nginx_build)
        build_fields <<LINES
$_build
LINES
    fi
    field nginx_version "$_version"
    field conf "$_conf"
    command -v curl >/dev/null 2>&1 && field curl present || field curl missing
    field pid_file "$_pidfile"
    nginx_master "$_pidfile"
    if [ -n "$_master" ]; then field master_pid "$_master"; else field master_problem "$_master_why"; fi
    [ -n "$_main_log" ] && field error_log "$_main_log"
    [ -n "$_default_log" ] && field error_log "$_default_log"
    # Only a regular file is managed: never through a symlink, never a device or a fifo.
    if [ -L "$1" ]; then
        field file symlink
    elif [ -f "$1" ]; then
        field file present
        blob_file file "$1"
    elif [ -e "$1" ]; then
        field file notregular
    else
        field file missing
    fi
}

nginx_v_done() {
    # The nginx -V answer begin read: removed in the background (no fork on the way to the answer).
    rm -f "$_vfile" > /dev/null 2>&1 &
    _vfile=""
}

nginx_v_discard() {
    # The lock was not taken: nginx -V's answer is not needed.
    [ -n "$_vfile" ] || return 0
    wait "$_vpid"
    rm -f "$_vfile"
    _vfile=""
}

dump_start() {
    # dump_start PREFIX: nginx -T (the whole config as Nginx reads it) in the background.
    _dp=$1
    nginx_path
    ( as_root "$_nginx" -T > "${_dp}out" 2> "${_dp}err"; echo $? > "${_dp}rc" ) &
    _dump_pid=$!
}

dump_finish() {
    # dump_finish PREFIX: dump_exit=, blobs dump (stdout, at most 8 MiB) and dump_err.
    wait "$_dump_pid"
    first_line "${_dp}rc"
    field dump_exit "$_line"
    blob_file dump "${_dp}out" 8388608
    blob_file dump_err "${_dp}err" 4096
}

dump_config() {
    # dump_config: for discovery, before any lock (writes nothing but a private temp directory).
    _dd=$(mktemp -d) || { field error "cannot make a temporary directory"; return 0; }
    dump_start "$_dd/"
    dump_finish
    rm -rf "$_dd"
}

begin() {
    # begin LOCKDIR OWNER TTL MANAGED_FILE DUMP GATE_MAX_SECONDS [GATE_URL...]: take the lock,
    # settle a run that died, read the state, and what the preflight needs. DUMP 1: nginx -T
    # beside it (which files Nginx loads, where). DUMP marker:SOCKET: the file's own marker is
    # asked in the background (LOCKDIR/marker.*: field proof=pending) for install to check that it
    # answers the file's generation and path (then Nginx serves that very file, and nginx -T is
    # not needed); a file without the state line cannot be proven so: nginx -T at once.
    # The gate's URLs are health-checked in the background from here on, into
    # LOCKDIR/gate.<id>.* (field gate=<id>), for install to collect.
    _ld=$1 _lo=$2 _lt=$3 _mf=$4 _dump=${5:-0} _gm=${6:-5}
    shift 4
    [ "$#" -gt 0 ] && shift
    [ "$#" -gt 0 ] && shift
    # nginx -V first, in the background: the longest part of the probe overlaps the lock and the
    # rest (it changes nothing). Its answer waits in a file of its own beside the managed file
    # (the lock is not this run's yet), removed once read, or at once when the lock is not taken.
    _vfile=""
    if [ -w "${_mf%/*}" ] && nginx_path && [ -n "$_nginx" ]; then
        _vfile="${_mf%/*}/.${_mf##*/}.nginx-v.$$"
        nginx_build > "$_vfile" 2>/dev/null &
        _vpid=$!
    fi
    # What this user may do, before anything (the lock included) is changed.
    sudo_check "${_mf%/*}" || { nginx_v_discard; return 0; }
    lock_acquire "$_ld" "$_lo" "$_lt" || { nginx_v_discard; return 0; }
    # A run that died inside install left MANAGED.before-swap: before its signal (Nginx still serves
    # those bytes, unless it restarted or something else reloaded it meanwhile) or after it (the
    # rename to .previous follows the reload). The marker says which, by generation: the
    # candidate's served, it stays (kept); otherwise the old bytes go back (restored). Before the
    # state is read.
    if [ -e "$_mf.before-swap" ]; then
        _served="" _fgen=""
        case "$_dump" in
            marker:?*)
                marker_url "${_dump#marker:}"
                _served=$(curl -s --max-time 2 "$_mo" "$_ma" "$_mu" 2>/dev/null | head -c 200)
                _served=${_served%% *}
                { read -r _l1; read -r _l2; } < "$_mf" 2>/dev/null
                case "$_l2" in *'"generation":"'*) _fgen=${_l2#*'"generation":"'}; _fgen=${_fgen%%'"'*} ;; esac ;;
        esac
        if [ -n "$_fgen" ] && [ "$_served" = "$_fgen" ]; then
            mv -f "$_mf.before-swap" "$_mf.previous" && field recovered kept
        else
            mv -f "$_mf.before-swap" "$_mf" && field recovered restored
        fi
    fi
    _ask_marker=""
    case "$_dump" in
        1) dump_start "$_ld/dump." ;;
        marker:?*)
            # Its second line is the state line in every file the engine writes (builtin read).
            _l1="" _l2=""
            [ -f "$_mf" ] && [ ! -L "$_mf" ] && { read -r _l1; read -r _l2; } < "$_mf" 2>/dev/null
            case "$_l1$_l2" in
                *"# bluegreen-swap state: "*) _ask_marker=${_dump#marker:}; _dump=0 ;;
                *) dump_start "$_ld/dump."; _dump=1 ;;
            esac ;;
    esac
    # The marker and the gate in one curl (each curl costs milliseconds of CPU on a busy LB), in
    # the background beside the probe; install collects them a round trip later. Their files live
    # in the lock's directory (removed with the lock).
    if [ -n "$_ask_marker" ] || [ "$#" -gt 0 ]; then
        [ -z "$_ask_marker" ] || _marker="$_ask_marker $_ld"
        gate_start "$_ld/gate.$$." "$_gm" "$@"
        [ -z "$_ask_marker" ] || field proof pending
        [ "$#" -eq 0 ] || field gate "$$"
    fi
    # What runs that died left: candidates, and nginx -V answers of other begins (with the lock
    # held here, no other begin that could still read its own gets to).
    for _c in "${_mf%/*}/.${_mf##*/}.candidate-"* "${_mf%/*}/.${_mf##*/}.nginx-v."*; do
        [ -e "$_c" ] && [ "$_c" != "$_vfile" ] && rm -f "$_c"
    done
    probe "$_mf"
    [ "$_dump" = 1 ] && dump_finish
    return 0
}
