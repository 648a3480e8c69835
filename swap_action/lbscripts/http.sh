# HTTP requests made from the LB host, each on a fresh connection. The status comes from curl's
# own report, the body from a separate file: a body can never be read as a status. -g: a URL is
# one URL ([1-99999] or {a,b} in it is never a curl glob).
http_get() {
    # http_get METHOD MAX_SECONDS URL... -> per URL: url= answer=CODE SECONDS body:
    # With _codes set (the gate): 'URL CODE' lines appended there, and a body only for an answer
    # that is not 2xx (nobody reads a healthy one; each blob costs forks on a busy LB).
    _method=$1 _max=$2
    shift 2
    _own=""
    [ -n "${_hb:-}" ] || { _hb=$(mktemp) || return 1; _own=1; }
    for _url in "$@"; do
        : > "$_hb"
        # curl's report goes to a file read back with the builtin read: no subshell to fork.
        curl -s -g --proto '=http,https' -X "$_method" --max-time "$_max" -H 'Connection: close' \
            -o "$_hb" -w '%{http_code} %{time_total}' "$_url" > "$_hb.w" 2>/dev/null
        _w=""
        read -r _w < "$_hb.w" 2>/dev/null
        case "$_w" in [0-9][0-9][0-9]\ *) ;; *) _w="000 $_max" ;; esac
        field url "$_url"
        field answer "$_w"
        if [ -n "${_codes:-}" ]; then
            echo "$_url ${_w%% *}" >> "$_codes"
            case "$_w" in 2??\ *) continue ;; esac
        fi
        blob_file body "$_hb" 2048
    done
    [ -n "$_own" ] && rm -f "$_hb" "$_hb.w"
    _hb=""
}

# The health gate: the target's health path on each of its servers, in the background while
# the caller does other work (the probe, rendering, nginx -t), so it costs no time of its own.
# Its answers go to files in a directory: begin starts it in the lock's directory, and install
# collects it there (or runs its own).
gate_start() {
    # gate_start PREFIX MAX_SECONDS URL...: PREFIXout (the answers), PREFIXcodes ('URL CODE'
    # lines from curl's own report, never from a body), PREFIXdone once finished.
    # PREFIX is a private directory with its '/' (install) or a name inside the lock (begin).
    _gd=$1
    shift
    (
        _codes="${_gd}codes" _hb="${_gd}body"
        : > "$_codes"
        http_get GET "$@" > "${_gd}out"
        echo 1 > "${_gd}done"
    ) 2>/dev/null &
    _gate_pid=$!
}

gate_finish() {
    # gate_finish PREFIX MAX_WAIT_SECONDS [URL...]: print the answers; return 1 when a
    # URL that counts (all of them when none is named) answered other than 2xx, or not at all.
    _gd=$1 _gw=${2%%.*}
    shift 2
    # Started by this program: wait for it. Started by begin (another program): poll its file.
    if [ -n "${_gate_pid:-}" ]; then wait "$_gate_pid" 2>/dev/null; _gate_pid=""; fi
    _waited=0
    while [ ! -s "${_gd}done" ] && [ "$_waited" -lt $((_gw * 200 + 200)) ]; do
        sleep 0.005
        _waited=$((_waited + 1))
    done
    _healthy=0
    if [ -s "${_gd}done" ]; then
        cat "${_gd}out"
        _seen=" "
        while read -r _u _code; do
            _counts=$#
            for _want in "$@"; do [ "$_want" = "$_u" ] && _counts=0; done
            [ "$_counts" -eq 0 ] || continue
            _seen="$_seen$_u "
            case "$_code" in 2[0-9][0-9]) ;; *) _healthy=1 ;; esac
        done < "${_gd}codes"
        # A URL that counts and was never answered is not healthy either.
        for _want in "$@"; do
            case "$_seen" in *" $_want "*) ;; *) _healthy=1 ;; esac
        done
    else
        field gate_error "the health checks did not finish"
        _healthy=1
    fi
    return "$_healthy"
}
