#!/bin/sh
# Read what the engine needs to know about the LB in one round trip (few processes: it runs on
# every swap, before anything moves).
# usage: probe.sh MANAGED_FILE
set -u
# nginx -V says the version, the main config and the default error log in one call.
version="missing"
conf=""
default_log=""
build=""
command -v nginx >/dev/null 2>&1 && build=$(nginx -V 2>&1 | awk 'NR == 1 { print "V " $0 }
    { for (i = 1; i <= NF; i++) {
        if ($i ~ /^--conf-path=/) print "C " substr($i, 13)
        if ($i ~ /^--error-log-path=/) print "E " substr($i, 18) } }')
while read -r key value; do
    case "$key" in
        V) version=$value ;;
        C) conf=$value ;;
        E) default_log=$value ;;
    esac
done <<LINES
$build
LINES
echo "--- nginx"
echo "$version"
echo "--- curl"
command -v curl >/dev/null 2>&1 && echo present || echo missing
echo "--- master"
ps -eo pid=,args= | awk '$2 == "nginx:" && $3 == "master" { print $1; exit }'
echo "--- error_log"
# The main config's own error_log (top level, before any block), then the build's default.
[ -n "$conf" ] && [ -r "$conf" ] && awk '/^[[:space:]]*(events|http|stream|mail)[[:space:]{]/ { exit }
    /^[[:space:]]*error_log[[:space:]]/ { gsub(";", "", $2); print $2; exit }' "$conf"
echo "$default_log"
echo "--- file"
if [ -e "$1" ]; then cat "$1"; else echo "__missing__"; fi
