#!/bin/sh
# A lock on the LB that two swap runs cannot both hold: mkdir is atomic on every filesystem.
# usage: lock.sh acquire LOCKDIR OWNER TTL_SECONDS | lock.sh release LOCKDIR OWNER
# The holder says how long it may need (TTL); a lock is taken over only once its holder's own
# deadline has passed (a run that died), never because a long canary or drain is still going.
# acquire prints 'acquired' or 'held_by=<owner> for=<seconds> left=<seconds>' (exit 1).
set -u
action=$1
dir=$2
owner=$3
now=$(date +%s)
case "$action" in
acquire)
    ttl=$4
    if mkdir "$dir" 2>/dev/null; then
        printf '%s\n' "$owner" > "$dir/owner"
        echo $((now + ttl)) > "$dir/expires"
        echo acquired
        exit 0
    fi
    holder=$(cat "$dir/owner" 2>/dev/null || echo unknown)
    since=$(stat -c %Y "$dir" 2>/dev/null || echo "$now")
    # No deadline written yet: the holder may be between its mkdir and its write; give it a minute.
    expires=$(cat "$dir/expires" 2>/dev/null || echo $((since + 60)))
    if [ "$now" -gt "$expires" ]; then
        # The holder's deadline passed: it died without releasing. Take the lock over, atomically.
        if mv "$dir" "$dir.stale.$$" 2>/dev/null && mkdir "$dir" 2>/dev/null; then
            rm -rf "$dir.stale.$$"
            printf '%s\n' "$owner" > "$dir/owner"
            echo $((now + ttl)) > "$dir/expires"
            echo "acquired stale_from=$holder"
            exit 0
        fi
    fi
    echo "held_by=$holder for=$((now - since)) left=$((expires - now))"
    exit 1
    ;;
release)
    if [ "$(cat "$dir/owner" 2>/dev/null)" = "$owner" ]; then rm -rf "$dir"; fi
    exit 0
    ;;
esac
exit 2
