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
