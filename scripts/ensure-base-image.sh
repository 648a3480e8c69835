#!/usr/bin/env bash
# Make the base image the Dockerfiles build FROM available to the local engine.
# 1. already present -> nothing to do;  2. a registry answers -> pull it;
# 3. offline -> build an equivalent Debian root with debootstrap and `docker import` it
#    under the same tag, so the same Dockerfiles build here and on a laptop with internet.
set -euo pipefail
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
SUITE="${BASE_SUITE:-bookworm}"

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image $BASE_IMAGE: present"
  exit 0
fi
if timeout 60 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image $BASE_IMAGE: pulled"
  exit 0
fi
echo "base image $BASE_IMAGE: no registry answered; building it with debootstrap (about a minute)"
if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q debootstrap >/dev/null
  else
    echo "error: debootstrap is missing and no registry answers. Install debootstrap (apt-get install debootstrap) or make a registry reachable." >&2
    exit 1
  fi
fi
root="$(mktemp -d /tmp/bg-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
mirror="$(awk '/^deb / && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
fi
debootstrap --variant=minbase "$SUITE" "$root" ${mirror:+"$mirror"} >/tmp/debootstrap.log 2>&1 || {
  echo "error: debootstrap failed; see /tmp/debootstrap.log" >&2; tail -20 /tmp/debootstrap.log >&2; exit 1; }
# Keep images small, like the official slim image does.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
echo "base image $BASE_IMAGE: built locally with debootstrap"
