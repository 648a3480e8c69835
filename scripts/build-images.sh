#!/usr/bin/env bash
# Build the project's images from their Dockerfiles (layer cache makes a second run fast).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${IMAGE_TAG:-dev}"
bash scripts/ensure-base-image.sh
build() {
  local name=$1 context=$2 file=${3:-}
  local start=$SECONDS
  if ! out=$(docker build -q -t "$name" ${file:+-f "$file"} "$context" 2>&1); then
    echo "$out" >&2
    echo "error: building $name failed" >&2
    exit 1
  fi
  echo "image $name: ready ($((SECONDS - start)) s)"
}
build "bluegreen/lb:$TAG" images/lb
build "bluegreen/app:$TAG" images/app
build "bluegreen/action:$TAG" . Dockerfile
# A third-party app, unmodified (Debian's httpbin): what the simulation tests validate as a team would.
build "bluegreen/httpbin:$TAG" tests/images/httpbin
build "bluegreen/websocketd:$TAG" tests/images/websocketd
