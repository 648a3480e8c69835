#!/bin/bash
# PID 1 of the LB container: starts sshd (only when keys are given) and Nginx as a daemon, then
# waits. Nginx is not PID 1 so that it can be stopped and started inside a running container
# (the simulation's "naive restart" scenario).
set -euo pipefail

if [ -n "${SSH_AUTHORIZED_KEYS:-}" ]; then
    ssh-keygen -A >/dev/null
    install -d -m 700 /root/.ssh
    printf '%s\n' "$SSH_AUTHORIZED_KEYS" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    /usr/sbin/sshd -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no
fi

nginx -t -q
nginx

stop() {
    nginx -s quit 2>/dev/null || true
    exit 0
}
trap stop TERM INT
sleep infinity &
wait $!
