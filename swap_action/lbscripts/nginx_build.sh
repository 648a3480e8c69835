# What this Nginx build and its main config say: version, config, error logs, pid file.
nginx_build() {
    # One awk over nginx -V: the version (V), the main config (C), the build's default error log
    # (E), pid file (P) and prefix (X), and the main config's own error_log (L) and pid (Q): top
    # level, before any block, from that file.
    nginx_path
    [ -n "$_nginx" ] || return 0
    "$_nginx" -V 2>&1 | awk 'NR == 1 { print "V " $0 }
        { for (i = 1; i <= NF; i++) {
            if ($i ~ /^--conf-path=/) conf = substr($i, 13)
            if ($i ~ /^--error-log-path=/) print "E " substr($i, 18)
            if ($i ~ /^--pid-path=/) print "P " substr($i, 12)
            if ($i ~ /^--prefix=/) print "X " substr($i, 10) } }
        END {
            if (conf == "") exit
            print "C " conf
            while ((getline line < conf) > 0) {
                if (line ~ /^[[:space:]]*(events|http|stream|mail)[[:space:]{]/) break
                if (!seen_log && line ~ /^[[:space:]]*error_log[[:space:]]/) {
                    split(line, words); sub(";.*", "", words[2]); print "L " words[2]; seen_log = 1
                }
                if (!seen_pid && line ~ /^[[:space:]]*pid[[:space:]]/) {
                    split(line, words); sub(";.*", "", words[2]); print "Q " words[2]; seen_pid = 1
                }
            }
        }'
}

build_fields() {
    _build_pid="" _main_pid="" _prefix=""
    while read -r _k _v; do
        case "$_k" in
            V) _version=$_v ;; C) _conf=$_v ;; E) _default_log=$_v ;; L) _main_log=$_v ;;
            P) _build_pid=$_v ;; Q) _main_pid=$_v ;; X) _prefix=$_v ;;
        esac
    done
    # The pid file as Nginx resolves it: the main config's, else the build's, else its default;
    # a relative path is under the prefix.
    _pidfile=${_main_pid:-${_build_pid:-logs/nginx.pid}}
    case "$_pidfile" in
        /*) ;;
        *) _pf_prefix=${_prefix:-/usr/local/nginx}; _pidfile="${_pf_prefix%/}/$_pidfile" ;;
    esac
}

pid_file() {
    # pid_file GIVEN: $_pidfile, GIVEN unless it is '-' (then read from nginx -V and nginx.conf).
    _pidfile=$1
    [ "$_pidfile" = "-" ] || return 0
    _version="" _conf="" _default_log="" _main_log=""
    _build=$(nginx_build)
    build_fields <<LINES
$_build
LINES
}
