# A lock on the LB that two swap runs cannot both hold: mkdir is atomic on every filesystem.
# The holder says how long it may need (TTL); a lock is taken over only once its holder's own
# deadline has passed (a run that died), never because a long canary or drain is still going.
lock_acquire() {
    # lock_acquire LOCKDIR OWNER TTL_SECONDS -> lock=acquired [stale_from=] | lock=held holder= age_s= left_s=
    _dir=$1 _owner=$2 _ttl=$3
    _now=$(date +%s)
    if mkdir "$_dir" 2>/dev/null; then
        printf '%s\n' "$_owner" > "$_dir/owner"
        echo $((_now + _ttl)) > "$_dir/expires"
        field lock acquired
        return 0
    fi
    if [ ! -d "$_dir" ]; then
        field lock error
        field error "cannot create the lock directory $_dir"
        return 1
    fi
    first_line "$_dir/owner"
    _holder=${_line:-unknown}
    _since=$(stat -c %Y "$_dir" 2>/dev/null || echo "$_now")
    # No deadline written yet: the holder may be between its mkdir and its write; give it a minute.
    first_line "$_dir/expires"
    _expires=$_line
    # Untrusted: digits only, and short enough for shell arithmetic.
    case "$_expires" in ''|*[!0-9]*|?????????????*) _expires=$((_since + 60)) ;; esac
    if [ "$_now" -gt "$_expires" ]; then
        # The holder's deadline passed: it died without releasing. Take the lock over.
        if mv "$_dir" "$_dir.stale.$$" 2>/dev/null && mkdir "$_dir" 2>/dev/null; then
            rm -rf "$_dir.stale.$$"
            printf '%s\n' "$_owner" > "$_dir/owner"
            echo $((_now + _ttl)) > "$_dir/expires"
            field lock acquired
            field stale_from "$_holder"
            return 0
        fi
    fi
    field lock held
    field holder "$_holder"
    field age_s $((_now - _since))
    field left_s $((_expires - _now))
    return 1
}

lock_release() {
    # lock_release LOCKDIR OWNER: only the holder removes it.
    # The whole first line (not cut to 200 bytes): only the very same owner matches.
    _held=""
    [ -r "$1/owner" ] && read -r _held < "$1/owner" 2>/dev/null
    if [ -n "$_held" ] && [ "$_held" = "$2" ]; then rm -rf "$1"; fi
    field released 1
}
