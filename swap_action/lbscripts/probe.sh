# What the engine needs to know about the LB, in one round trip with few processes.
probe() {
    # probe MANAGED_FILE -> nginx_version= conf= curl= master_pid= error_log=... file=present|missing file:
    _version="missing" _conf="" _default_log=""
    if command -v nginx >/dev/null 2>&1; then
        # nginx -V says the version, the main config and the default error log in one call.
        _build=$(nginx -V 2>&1 | awk 'NR == 1 { print "V " $0 }
            { for (i = 1; i <= NF; i++) {
                if ($i ~ /^--conf-path=/) print "C " substr($i, 13)
                if ($i ~ /^--error-log-path=/) print "E " substr($i, 18) } }')
        while read -r _k _v; do
            case "$_k" in V) _version=$_v ;; C) _conf=$_v ;; E) _default_log=$_v ;; esac
        done <<LINES
$_build
LINES
    fi
    field nginx_version "$_version"
    field conf "$_conf"
    command -v curl >/dev/null 2>&1 && field curl present || field curl missing
    for _p in $(nginx_procs); do case "$_p" in *:master) field master_pid "${_p%:*}" ;; esac; done
    # The main config's own error_log (top level, before any block), then the build's default.
    if [ -n "$_conf" ] && [ -r "$_conf" ]; then
        _log=$(awk '/^[[:space:]]*(events|http|stream|mail)[[:space:]{]/ { exit }
            /^[[:space:]]*error_log[[:space:]]/ { gsub(";", "", $2); print $2; exit }' "$_conf")
        [ -n "$_log" ] && field error_log "$_log"
    fi
    [ -n "$_default_log" ] && field error_log "$_default_log"
    if [ -f "$1" ]; then
        field file present
        blob_file file "$1"
    else
        field file missing
    fi
}

begin() {
    # begin LOCKDIR OWNER TTL MANAGED_FILE GATE_MAX_SECONDS [GATE_URL...]: take the lock, settle a
    # run that died, read the state; the gate's URLs are health-checked in the background from
    # here on, into LOCKDIR/gate.<id> (field gate=<id>), for install to collect.
    _ld=$1 _lo=$2 _lt=$3 _mf=$4 _gm=${5:-5}
    shift 4
    [ "$#" -gt 0 ] && shift
    lock_acquire "$_ld" "$_lo" "$_lt" || return 0
    if [ "$#" -gt 0 ] && mkdir "$_ld/gate.$$" 2>/dev/null; then
        gate_start "$_ld/gate.$$" "$_gm" "$@"
        field gate "$$"
    fi
    # A run that died inside install left MANAGED.before-swap: the install never finished, so no
    # reload followed and Nginx still serves those bytes. Put them back before reading the state.
    if [ -e "$_mf.before-swap" ]; then
        mv -f "$_mf.before-swap" "$_mf" && field recovered restored
    fi
    for _c in "${_mf%/*}/.${_mf##*/}.candidate-"*; do [ -e "$_c" ] && rm -f "$_c"; done
    probe "$_mf"
}
