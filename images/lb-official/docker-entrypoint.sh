#!/bin/sh
# As the official image's entrypoint: run /docker-entrypoint.d/*.sh when starting nginx, then
# exec the command (Nginx becomes PID 1, in the foreground).
set -e
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    for f in /docker-entrypoint.d/*.sh; do
        [ -x "$f" ] && "$f"
    done
fi
exec "$@"
