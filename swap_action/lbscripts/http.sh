#!/bin/sh
# HTTP requests made from the LB host, each on a fresh connection.
# usage: http.sh METHOD MAX_SECONDS URL...
# For each URL prints its body (first 2 KiB) then a line '__bluegreen_status__ CODE SECONDS'.
set -u
method=$1
max=$2
shift 2
for url in "$@"; do
    curl -s --proto '=http,https' -X "$method" --max-time "$max" -H 'Connection: close' -o - \
         -w '\n__bluegreen_status__ %{http_code} %{time_total}\n' "$url" 2>/dev/null | tail -c 2200 \
      || echo "
__bluegreen_status__ 000 $max"
done
