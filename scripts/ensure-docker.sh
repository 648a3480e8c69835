#!/usr/bin/env bash
# Make a Docker engine answer. On Debian as root, install docker.io and start dockerd in the
# background if needed; anywhere else, say what to install. Also makes sure a compose command
# exists (docker-compose.test.yml is tested with Debian's docker-compose v1 or docker compose v2).
set -euo pipefail
# apt_install PACKAGE: as root with apt-get, quietly; 1 (nothing done) anywhere else.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "docker: installing $1 (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "$1" >/dev/null
}
ensure_compose() {
  if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
    return 0
  fi
  if ! apt_install docker-compose; then
    echo "warning: neither 'docker compose' nor 'docker-compose' is installed; the compose test will fail" >&2
  fi
}
# Debian's docker-registry: the local registry that stands in for ghcr.io in the publish test
# (tests/integration/test_publish_image.py runs its own on 127.0.0.1; the package's service is not used).
ensure_registry() {
  if command -v docker-registry >/dev/null 2>&1; then
    return 0
  fi
  if apt_install docker-registry; then
    if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled -q docker-registry 2>/dev/null; then
      systemctl disable --now -q docker-registry || true
    fi
  else
    echo "warning: docker-registry is not installed; the publish test will be skipped (apt-get install docker-registry)" >&2
  fi
}
if docker info >/dev/null 2>&1; then
  ensure_compose
  ensure_registry
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no Docker engine answers ('docker info' failed)." >&2
  echo "fix: install and start Docker (Docker Desktop, or your distribution's docker package), then run make again." >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  apt_install docker.io
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker: starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker: engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"
    ensure_compose
    ensure_registry
    exit 0
  fi
  sleep 1
done
echo "error: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
tail -20 /var/log/dockerd.log >&2 || true
exit 1
