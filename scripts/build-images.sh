#!/usr/bin/env bash
# Build the project's images from their Dockerfiles (layer cache makes a second run fast).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${IMAGE_TAG:-dev}"

# The Debian bases, side by side (on a machine without a registry each is a debootstrap of a
# minute or so; present ones are skipped at once).
pids=()
for suite in bookworm trixie sid; do
  bash scripts/ensure-base-image.sh "$suite" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid" || { echo "error: a base image could not be made (see above)" >&2; exit 1; }
done

build() {
  local name=$1 context=$2
  shift 2
  local start=$SECONDS
  if ! out=$(docker build -q -t "$name" "$@" "$context" 2>&1); then
    echo "$out" >&2
    echo "error: building $name failed" >&2
    exit 1
  fi
  echo "image $name: ready ($((SECONDS - start)) s)"
}
# The load balancers: Debian's Nginx of each suite (the version matrix, README "Supported Nginx
# versions"), and one shaped like the official nginx image (conf.d/, no procps).
build "bluegreen/lb:$TAG" images/lb
build "bluegreen/lb-trixie:$TAG" images/lb --build-arg BASE_IMAGE=debian:trixie-slim
# sid's package lists in a mirror may be past their Valid-Until date.
build "bluegreen/lb-sid:$TAG" images/lb --build-arg BASE_IMAGE=debian:sid-slim \
  --build-arg "APT_OPTIONS=-o Acquire::Check-Valid-Until=false"
build "bluegreen/lb-official:$TAG" images/lb-official
build "bluegreen/app:$TAG" images/app
build "bluegreen/action:$TAG" . -f Dockerfile
# A third-party app, unmodified (Debian's httpbin): what the simulation tests validate as a team would.
build "bluegreen/httpbin:$TAG" tests/images/httpbin
build "bluegreen/websocketd:$TAG" tests/images/websocketd
# The runner image act uses for the publish workflow: git, the Docker CLI, Python (tests/images/act-runner).
build "bluegreen/act-runner:$TAG" tests/images/act-runner
