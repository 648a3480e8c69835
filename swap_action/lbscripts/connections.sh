#!/bin/sh
# Established TCP connections from this host to the given host:port servers, and the nginx
# worker processes that are shutting down. Reads /proc directly: no iproute2 needed.
# usage: connections.sh HOST:PORT...
set -u
for server in "$@"; do
    host=${server%:*}
    port=${server##*:}
    for ip in $(getent ahosts "$host" 2>/dev/null | awk '{ print $1 }' | sort -u); do
        echo "target $server $ip $port"
    done
done
echo "--- tcp"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "01" { print $3 }'
echo "--- draining"
ps -eo pid=,args= | awk '$2 == "nginx:" && $3 == "worker" && $6 == "shutting" { print $1 }'
