#!/bin/sh
# A lock on the LB that two swap runs cannot both hold: mkdir is atomic on every filesystem.
# usage: lock.sh acquire LOCKDIR OWNER STALE_SECONDS | lock.sh release LOCKDIR OWNER
# acquire prints 'acquired' or 'held_by=<owner> age=<seconds>' (exit 1).
set -u
action=$1
dir=$2
owner=$3
case "$action" in
acquire)
    stale=$4
    if mkdir "$dir" 2>/dev/null; then
        printf '%s\n' "$owner" > "$dir/owner"
        echo acquired
        exit 0
    fi
    holder=$(cat "$dir/owner" 2>/dev/null || echo unknown)
    age=$(( $(date +%s) - $(stat -c %Y "$dir" 2>/dev/null || date +%s) ))
    if [ "$age" -gt "$stale" ]; then
        # A run that died without releasing: take the lock over, atomically.
        if mv "$dir" "$dir.stale.$$" 2>/dev/null && mkdir "$dir" 2>/dev/null; then
            rm -rf "$dir.stale.$$"
            printf '%s\n' "$owner" > "$dir/owner"
            echo "acquired stale_from=$holder"
            exit 0
        fi
    fi
    echo "held_by=$holder age=$age"
    exit 1
    ;;
release)
    if [ "$(cat "$dir/owner" 2>/dev/null)" = "$owner" ]; then rm -rf "$dir"; fi
    exit 0
    ;;
esac
exit 2
