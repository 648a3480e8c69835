#!/bin/sh
# Read what the engine needs to know about the LB in one round trip.
# usage: probe.sh MANAGED_FILE
set -u
echo "--- nginx"
command -v nginx >/dev/null 2>&1 && nginx -v 2>&1 || echo "missing"
echo "--- curl"
command -v curl >/dev/null 2>&1 && echo present || echo missing
echo "--- master"
ps -eo pid=,args= | awk '$2 == "nginx:" && $3 == "master" { print $1; exit }'
echo "--- error_log"
nginx -T 2>/dev/null | awk '/^[[:space:]]*error_log[[:space:]]/ { gsub(";", "", $2); print $2; exit }'
nginx -V 2>&1 | tr ' ' '\n' | sed -n 's/^--error-log-path=//p'
echo "--- file"
if [ -e "$1" ]; then cat "$1"; else echo "__missing__"; fi
