#!/usr/bin/env bash
# Make a Debian base image the Dockerfiles build FROM available to the local engine.
#   scripts/ensure-base-image.sh [SUITE [TAG]]     (default: bookworm debian:bookworm-slim;
#                                                   TAG defaults to debian:SUITE-slim)
# 1. already present -> nothing to do;  2. a registry answers -> pull it;
# 3. offline -> build an equivalent Debian root of SUITE with debootstrap and `docker import` it
#    under the same tag, so the same Dockerfiles build here and on a laptop with internet.
# (BASE_SUITE and BASE_IMAGE in the environment are read too, for older callers.)
set -euo pipefail
SUITE="${1:-${BASE_SUITE:-bookworm}}"
BASE_IMAGE="${2:-${BASE_IMAGE:-debian:$SUITE-slim}}"

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image $BASE_IMAGE: present"
  exit 0
fi
if timeout 60 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image $BASE_IMAGE: pulled"
  exit 0
fi
echo "base image $BASE_IMAGE: no registry answered; building $SUITE with debootstrap (a minute or two)"
has_debootstrap() { command -v debootstrap >/dev/null 2>&1 && [ -e "/usr/share/debootstrap/scripts/$SUITE" ]; }
if ! has_debootstrap; then
  # Several suites may be made side by side (build-images.sh): one apt-get at a time.
  if command -v flock >/dev/null 2>&1; then
    exec 9>/tmp/bg-ensure-base-image.lock
    flock 9
  fi
  if ! has_debootstrap && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q debootstrap debian-archive-keyring >/dev/null
  fi
  exec 9>&-
  if ! has_debootstrap; then
    echo "error: debootstrap (with a script for '$SUITE') is missing and no registry answers. Install debootstrap (apt-get install debootstrap) or make a registry reachable." >&2
    exit 1
  fi
fi
root="$(mktemp -d /tmp/bg-rootfs.XXXXXX)"
log="/tmp/debootstrap-$SUITE.log"
trap 'rm -rf "$root"' EXIT
# The host's Debian mirror (any suite's line names it), else debootstrap's default.
mirror="$(awk '/^deb / && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror="$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
fi
debootstrap --variant=minbase "$SUITE" "$root" ${mirror:+"$mirror"} >"$log" 2>&1 || {
  echo "error: debootstrap of $SUITE failed; see $log" >&2; tail -20 "$log" >&2; exit 1; }
# Keep images small, like the official slim image does.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
echo "base image $BASE_IMAGE: built locally with debootstrap ($SUITE)"
