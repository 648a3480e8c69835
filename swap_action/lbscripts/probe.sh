#!/bin/sh
# Read what the engine needs to know about the LB in one round trip.
# usage: probe.sh MANAGED_FILE
set -u
# nginx -V says the version, the main config and the default error log in one call.
build=$(nginx -V 2>&1) || build=""
echo "--- nginx"
if [ -n "$build" ]; then printf '%s\n' "$build" | head -n 1; else echo "missing"; fi
echo "--- curl"
command -v curl >/dev/null 2>&1 && echo present || echo missing
echo "--- master"
ps -eo pid=,args= | awk '$2 == "nginx:" && $3 == "master" { print $1; exit }'
echo "--- error_log"
conf=$(printf '%s\n' "$build" | tr ' ' '\n' | sed -n 's/^--conf-path=//p')
# The main config's own error_log (top level, before any block), then the build's default.
[ -n "$conf" ] && [ -r "$conf" ] && awk '/^[[:space:]]*(events|http|stream|mail)[[:space:]{]/ { exit }
    /^[[:space:]]*error_log[[:space:]]/ { gsub(";", "", $2); print $2; exit }' "$conf"
printf '%s\n' "$build" | tr ' ' '\n' | sed -n 's/^--error-log-path=//p'
echo "--- file"
if [ -e "$1" ]; then cat "$1"; else echo "__missing__"; fi
