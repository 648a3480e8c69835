#!/bin/bash
# PID 1 of the LB container: starts sshd (only when keys are given) and Nginx as a daemon, then
# waits. Nginx is not PID 1 so that it can be stopped and started inside a running container
# (the simulation's "naive restart" scenario).
set -euo pipefail

if [ -n "${SSH_AUTHORIZED_KEYS:-}" ]; then
    # SSH_USER (default root) gets the keys; any other user: no root login at all.
    user=${SSH_USER:-root}
    home=$(getent passwd "$user" | cut -d: -f6)
    ssh-keygen -A >/dev/null
    install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
    printf '%s\n' "$SSH_AUTHORIZED_KEYS" > "$home/.ssh/authorized_keys"
    chown "$user:$user" "$home/.ssh/authorized_keys"
    chmod 600 "$home/.ssh/authorized_keys"
    root_login=prohibit-password
    [ "$user" = root ] || root_login=no
    /usr/sbin/sshd -o PermitRootLogin="$root_login" -o PasswordAuthentication=no
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
