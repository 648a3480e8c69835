#!/usr/bin/env bash
# Make a Docker engine answer. On Debian as root, install docker.io and start dockerd in the
# background if needed; anywhere else, say what to install.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no Docker engine answers ('docker info' failed)." >&2
  echo "fix: install and start Docker (Docker Desktop, or your distribution's docker package), then run make again." >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker: installing docker.io (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker: starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker: engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"
    exit 0
  fi
  sleep 1
done
echo "error: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
tail -20 /var/log/dockerd.log >&2 || true
exit 1
