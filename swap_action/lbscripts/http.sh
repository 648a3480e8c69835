# HTTP requests made from the LB host, each on a fresh connection. The status comes from curl's
# own report, the body from a separate file: a body can never be read as a status. -g: a URL is
# one URL ([1-99999] or {a,b} in it is never a curl glob).
http_get() {
    # http_get METHOD MAX_SECONDS URL... -> per URL: url= answer=CODE SECONDS body:
    # With _codes set (the gate): 'URL CODE' lines appended there, and a body only for an answer
    # that is not 2xx (nobody reads a healthy one; each blob costs forks on a busy LB).
    # With _marker set ('ENDPOINT FILE'): the generation marker at ENDPOINT is asked first, its
    # answer into FILE (empty unless 2xx).
    # One curl for all of them, one transfer after the other ('Connection: close': each on a fresh
    # connection): every curl started costs milliseconds of CPU on a busy LB.
    _method=$1 _max=$2
    shift 2
    _own=""
    [ -n "${_hb:-}" ] || { _hb=$(mktemp) || return 1; _own=1; }
    _n=$# _i=0 _next=""
    if [ -n "${_marker:-}" ]; then
        marker_url "${_marker%% *}"
        : > "${_marker#* }"
        set -- "$@" -s --fail --max-time 2 "$_mo" "$_ma" -o "${_marker#* }" "$_mu"
        _next=--next
    fi
    for _url in "$@"; do
        _i=$((_i + 1))
        [ "$_i" -le "$_n" ] || break
        : > "$_hb.$_i"
        # shellcheck disable=SC2086 (_next: one word or none)
        set -- "$@" $_next -s -g --proto '=http,https' -X "$_method" --max-time "$_max" \
            -H 'Connection: close' -o "$_hb.$_i" -w '%{http_code} %{time_total}\n' "$_url"
        _next=--next
    done
    # curl's report goes to a file read back with the builtin read: no subshell to fork.
    : > "$_hb.w"
    # (The subshell drops the URLs ahead of curl's arguments; exec: no extra process.)
    [ -z "$_next" ] || (shift "$_n"; exec curl "$@") > "$_hb.w" 2>/dev/null
    _i=0
    while [ "$_i" -lt "$_n" ]; do
        _i=$((_i + 1))
        eval "_url=\${$_i}"
        IFS= read -r _w || _w=""
        case "$_w" in [0-9][0-9][0-9]\ *) ;; *) _w="000 $_max" ;; esac
        field url "$_url"
        field answer "$_w"
        if [ -n "${_codes:-}" ]; then
            echo "$_url ${_w%% *}" >> "$_codes"
            case "$_w" in 2??\ *) continue ;; esac
        fi
        blob_file body "$_hb.$_i" 2048
    done < "$_hb.w"
    [ -z "$_own" ] || rm -f "$_hb" "$_hb".*
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
    # With _marker set ('ENDPOINT DIR', begin): the file's marker is asked first in the same curl,
    # into DIR/marker.out, and DIR/marker.done made once it answered.
    _gd=$1
    shift
    (
        _codes="${_gd}codes" _hb="${_gd}body" _mdir=""
        if [ -n "${_marker:-}" ]; then _mdir=${_marker#* }; _marker="${_marker%% *} $_mdir/marker.out"; fi
        : > "$_codes"
        http_get GET "$@" > "${_gd}out"
        [ -z "$_mdir" ] || : > "$_mdir/marker.done"
        echo 1 > "${_gd}done"
    ) > /dev/null 2>&1 &
    _gate_pid=$!
    _marker=""
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
        _seen=" " _bodies=0
        while read -r _u _code; do
            # A body blob follows each answer that is not 2xx (http_get).
            case "$_code" in 2[0-9][0-9]) ;; *) _bodies=1 ;; esac
            _counts=$#
            for _want in "$@"; do [ "$_want" = "$_u" ] && _counts=0; done
            [ "$_counts" -eq 0 ] || continue
            _seen="$_seen$_u "
            case "$_code" in 2[0-9][0-9]) ;; *) _healthy=1 ;; esac
        done < "${_gd}codes"
        # The answers as http_get wrote them: with no body, every line is a field, copied with the
        # builtin read; a body's bytes go through cat.
        if [ "$_bodies" = 1 ]; then
            cat "${_gd}out"
        else
            while IFS= read -r _l; do printf '%s\n' "$_l"; done < "${_gd}out"
        fi
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
