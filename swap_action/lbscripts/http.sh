# HTTP requests made from the LB host, each on a fresh connection. The status comes from curl's
# own report, the body from a separate file: a body can never be read as a status.
http_get() {
    # http_get METHOD MAX_SECONDS URL... -> per URL: url= answer=CODE SECONDS body:
    _method=$1 _max=$2
    shift 2
    _own=""
    [ -n "${_hb:-}" ] || { _hb=$(mktemp) || return 1; _own=1; }
    for _url in "$@"; do
        : > "$_hb"
        _w=$(curl -s --proto '=http,https' -X "$_method" --max-time "$_max" -H 'Connection: close' \
            -o "$_hb" -w '%{http_code} %{time_total}' "$_url" 2>/dev/null) || true
        case "$_w" in [0-9][0-9][0-9]\ *) ;; *) _w="000 $_max" ;; esac
        field url "$_url"
        field answer "$_w"
        [ -n "${_codes:-}" ] && echo "${_w%% *}" >> "$_codes"
        blob_file body "$_hb" 2048
    done
    [ -n "$_own" ] && rm -f "$_hb"
    _hb=""
}

# The health gate: the target's health path on each of its servers, in the background while
# the caller does its own work (the lock and probe, or nginx -t), so it costs no time of its own.
gate_start() {
    # gate_start MAX_SECONDS [URL...]: health-check in the background, into a private directory.
    _gt="" _gate_pid=""
    [ "$#" -gt 1 ] || return 0
    _gt=$(mktemp -d) || return 20
    ( _codes="$_gt/codes" _hb="$_gt/body"; http_get GET "$@" > "$_gt/out" 2>/dev/null ) &
    _gate_pid=$!
}

gate_finish() {
    # Prints the gate's answers; returns 1 when any answered other than 2xx.
    [ -n "$_gt" ] || return 0
    [ -n "$_gate_pid" ] && wait "$_gate_pid"
    _healthy=0
    if [ -e "$_gt/out" ]; then
        cat "$_gt/out"
        # Statuses from curl's own report (a file of their own): a body can never pass or fail the gate.
        while read -r _code; do case "$_code" in 2[0-9][0-9]) ;; *) _healthy=1 ;; esac; done < "$_gt/codes"
    fi
    rm -rf "$_gt"
    return "$_healthy"
}

gate_cancel() {
    [ -n "$_gate_pid" ] && kill "$_gate_pid" 2>/dev/null && wait "$_gate_pid" 2>/dev/null
    [ -n "$_gt" ] && rm -rf "$_gt"
    return 0
}
