#!/usr/bin/env bash
# Make Compose v2 (`docker compose`, what testcontainers' Compose support and `simulation run
# --compose` drive) answer, without touching the host's other packages. Idempotent.
#
# Debian's `docker-compose` package in trixie is Compose v2 (a Go binary that runs on bookworm);
# bookworm's is v1 (Python), kept as it is: tests/integration/test_compose.py runs under both.
# The trixie .deb is fetched with `apt-get download` through a private sources list and package
# cache (the host's own apt configuration and installed packages are left alone), unpacked with
# `dpkg-deb -x`, and only its CLI plugin binary is installed as
# /usr/local/lib/docker/cli-plugins/docker-compose.
set -euo pipefail
PLUGIN_DIR=${COMPOSE_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
SUITE=${COMPOSE_SUITE:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STATE=${COMPOSE_APT_STATE:-/var/cache/bluegreen/apt-$SUITE}

if docker compose version 2>/dev/null | grep -Eq 'v?2\.'; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: Compose v2 ('docker compose') is not installed: 'simulation run --compose' and the v2 compose" \
    "tests need it (install the docker-compose-plugin or your distribution's docker-compose v2 package)" >&2
  exit 0
fi
echo "compose: installing Compose v2 from Debian $SUITE's docker-compose package (CLI plugin only)"
mkdir -p "$STATE/lists/partial" "$STATE/archives/partial" "$STATE/etc"
cat >"$STATE/etc/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main
EOF
apt_opts=(
  -o "Dir::Etc::SourceList=$STATE/etc/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$STATE/lists"
  -o "Dir::Cache=$STATE"
  -o "Dir::Cache::archives=$STATE/archives"
  -o "APT::Get::List-Cleanup=0"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" update -q >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" download -q docker-compose >/dev/null)
deb=$(ls "$work"/docker-compose_*.deb)
dpkg-deb -x "$deb" "$work/root"
binary=""
for candidate in usr/libexec/docker/cli-plugins/docker-compose usr/lib/docker/cli-plugins/docker-compose usr/bin/docker-compose; do
  if [ -f "$work/root/$candidate" ] && [ ! -L "$work/root/$candidate" ]; then
    binary="$work/root/$candidate"
    break
  fi
done
if [ -z "$binary" ]; then
  echo "error: no docker-compose binary in $(basename "$deb")" >&2
  exit 1
fi
install -D -m 0755 "$binary" "$PLUGIN_DIR/docker-compose"
if ! docker compose version 2>/dev/null | grep -Eq 'v?2\.'; then
  echo "error: $PLUGIN_DIR/docker-compose does not run as 'docker compose'" >&2
  docker compose version >&2 || true
  exit 1
fi
echo "compose: $(docker compose version) ($(basename "$deb"), $PLUGIN_DIR/docker-compose)"
