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
nginx -t -q -e stderr -c "$dir/nginx.conf" 2>&1 || nginx -t -c "$dir/nginx.conf" 2>&1
