# A lock on the LB that two swap runs cannot both hold, kept as a short lease.
#
# The lock is a directory (mkdir is atomic on every filesystem) holding the holder's one-line
# name (owner), when it took the lock (since) and when its lease ends (expires), all in the LB's
# own clock: a runner whose clock is minutes off changes nothing. The holder renews its lease every
# few seconds while it runs, through canary pauses and drains; a holder that died (a cancelled job,
# SIGKILL, a runner gone) stops renewing and loses the lock when its lease ends.
#
# Every change of hands (take, take over, renew, release, break) happens under one mutex, the
# kernel's flock on the lock's parent directory: two runs that both read "expired" take it over
# one after the other, and the second then sees the first's fresh lease. The kernel drops a flock
# when its process dies, so the mutex is never left behind. Without flock(1) (util-linux; busybox
# has it too) a mkdir mutex stands in, taken over after 10 s (only a run killed inside its few
# milliseconds of critical section leaves one).

lock_mutex() {
    # lock_mutex LOCKDIR: hold the mutex until lock_unmutex (or the shell's end).
    _mx_parent=${1%/*}
    [ "$_mx_parent" = "$1" ] && _mx_parent=.
    [ -z "$_mx_parent" ] && _mx_parent=/
    # (command exec: a redirection that fails must not end the shell.)
    if command -v flock >/dev/null 2>&1 && [ -d "$_mx_parent" ] && command exec 9<"$_mx_parent"; then
        if flock -x -w 10 9 2>/dev/null; then _mx=flock; return 0; fi
        exec 9<&-
    fi
    _mx="$1.mutex"
    _mx_tries=0
    until mkdir "$_mx" 2>/dev/null; do
        # Not there yet cannot be made at all (no such directory, read-only): what the caller
        # does next fails the same way and says so.
        [ -d "$_mx" ] || { _mx=none; return 0; }
        _mx_tries=$((_mx_tries + 1))
        if [ "$_mx_tries" -gt 200 ]; then
            # Held for 10 s: its holder died inside the critical section. Clear it.
            rmdir "$_mx" 2>/dev/null
            _mx_tries=0
        fi
        sleep 0.05
    done
}

lock_unmutex() {
    # Children started later (a background nginx -V, the gate's curls) must not inherit the fd.
    case "$_mx" in
        flock) exec 9<&- ;;
        none) ;;
        *) rmdir "$_mx" 2>/dev/null ;;
    esac
    return 0
}

lock_read() {
    # lock_read LOCKDIR NOW: $_holder, $_since, $_expires of the lock there (untrusted text).
    first_line "$1/owner"
    _holder=${_line:-unknown}
    first_line "$1/since"
    _since=$_line
    case "$_since" in ''|*[!0-9]*|?????????????*) _since=$(stat -c %Y "$1" 2>/dev/null || echo "$2") ;; esac
    first_line "$1/expires"
    _expires=$_line
    # No lease written yet: the holder may be between its mkdir and its write; give it a minute.
    # Untrusted: digits only, and short enough for shell arithmetic.
    case "$_expires" in ''|*[!0-9]*|?????????????*) _expires=$((_since + 60)) ;; esac
}

lock_write() {
    # lock_write LOCKDIR OWNER LEASE NOW: the holder's files (expires last, renamed into place);
    # fails when one cannot be written (a full disk): the lock is then not taken.
    printf '%s\n' "$2" > "$1/owner" && echo "$4" > "$1/since" \
        && echo $(($4 + $3)) > "$1/expires.new" && mv -f "$1/expires.new" "$1/expires"
}

lock_unwritable() {
    # lock_unwritable LOCKDIR: the lock made but not written: removed again, and why.
    rm -rf "$1"
    lock_unmutex
    field lock error
    field error "cannot write the lock's files in ${1%/*} (is its disk full?)"
    return 1
}

lock_acquire() {
    # lock_acquire LOCKDIR OWNER LEASE_SECONDS -> lock=acquired [stale_from=]
    #                                           | lock=held holder= age_s= left_s=
    _dir=$1 _owner=$2 _ttl=$3
    lock_mutex "$_dir"
    _now=$(date +%s)
    if mkdir "$_dir" 2>/dev/null; then
        lock_write "$_dir" "$_owner" "$_ttl" "$_now" || { lock_unwritable "$_dir"; return 1; }
        lock_unmutex
        field lock acquired
        return 0
    fi
    if [ ! -d "$_dir" ]; then
        lock_unmutex
        field lock error
        field error "cannot create the lock directory $_dir"
        return 1
    fi
    # Asked again by its own holder (an answer lost on the way): it is still this run's.
    _held=""
    [ -r "$_dir/owner" ] && read -r _held < "$_dir/owner" 2>/dev/null
    if [ "$_held" = "$_owner" ]; then
        echo $((_now + _ttl)) > "$_dir/expires.new" && mv -f "$_dir/expires.new" "$_dir/expires"
        lock_unmutex
        field lock acquired
        return 0
    fi
    lock_read "$_dir" "$_now"
    if [ "$_now" -gt "$_expires" ]; then
        # Its lease ended: the holder died without releasing. Take the lock over.
        if mv "$_dir" "$_dir.stale.$$" 2>/dev/null && mkdir "$_dir" 2>/dev/null; then
            rm -rf "$_dir.stale.$$"
            lock_write "$_dir" "$_owner" "$_ttl" "$_now" || { lock_unwritable "$_dir"; return 1; }
            lock_unmutex
            field lock acquired
            field stale_from "$_holder"
            return 0
        fi
    fi
    lock_unmutex
    field lock held
    field holder "$_holder"
    field age_s $((_now - _since))
    field left_s $((_expires - _now))
    return 1
}

lock_renew() {
    # lock_renew LOCKDIR OWNER LEASE_SECONDS -> lock=held left_s= | lock=lost [holder=]
    lock_mutex "$1"
    _now=$(date +%s)
    _held=""
    [ -r "$1/owner" ] && read -r _held < "$1/owner" 2>/dev/null
    if [ -n "$_held" ] && [ "$_held" = "$2" ]; then
        echo $((_now + $3)) > "$1/expires.new" && mv -f "$1/expires.new" "$1/expires"
        lock_unmutex
        field lock held
        field left_s "$3"
        return 0
    fi
    lock_unmutex
    field lock lost
    [ -d "$1" ] && { first_line "$1/owner"; field holder "${_line:-unknown}"; }
    return 0
}

lock_status() {
    # lock_status LOCKDIR -> lock=free | lock=held holder= since= age_s= left_s=
    _now=$(date +%s)
    if [ ! -d "$1" ]; then
        field lock free
        return 0
    fi
    lock_read "$1" "$_now"
    field lock held
    field holder "$_holder"
    field since "$_since"
    field age_s $((_now - _since))
    field left_s $((_expires - _now))
}

lock_break() {
    # lock_break LOCKDIR -> broken=1 holder= since= age_s= left_s= | broken=0 (it was free)
    lock_mutex "$1"
    _now=$(date +%s)
    if [ ! -d "$1" ]; then
        lock_unmutex
        field broken 0
        return 0
    fi
    lock_read "$1" "$_now"
    mv "$1" "$1.broken.$$" 2>/dev/null
    lock_unmutex
    rm -rf "$1.broken.$$"
    field broken 1
    field holder "$_holder"
    field since "$_since"
    field age_s $((_now - _since))
    field left_s $((_expires - _now))
}

lock_release() {
    # lock_release LOCKDIR OWNER: only the holder removes it.
    # The whole first line (not cut to 200 bytes): only the very same owner matches.
    lock_mutex "$1"
    _held=""
    [ -r "$1/owner" ] && read -r _held < "$1/owner" 2>/dev/null
    if [ -n "$_held" ] && [ "$_held" = "$2" ]; then
        mv "$1" "$1.released.$$" 2>/dev/null
        lock_unmutex
        rm -rf "$1.released.$$"
    else
        lock_unmutex
    fi
    field released 1
}
