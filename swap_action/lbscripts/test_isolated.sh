#!/bin/sh
# Test a candidate upstream file on its own, in a throw-away main config: changes nothing live.
# usage: test_isolated.sh CANDIDATE
set -u
cand=$1
dir=$(mktemp -d) || exit 20
trap 'rm -rf "$dir"' EXIT
cat > "$dir/nginx.conf" <<CONF
pid $dir/nginx.pid;
events {}
http {
    include $cand;
}
CONF
# -e (nginx >= 1.19.5) keeps the test from touching the default error log; older builds lack it.
if out=$(nginx -t -q -e stderr -c "$dir/nginx.conf" 2>&1); then exit 0; fi
case "$out" in
    *'invalid option: "e"'*) nginx -t -q -c "$dir/nginx.conf" 2>&1 ;;
    *) printf '%s\n' "$out"; exit 1 ;;
esac
