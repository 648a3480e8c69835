# Shared by every LB operation; each program sent to the LB is this file, the files defining
# the functions it needs, and a call. POSIX sh only (dash, busybox ash), no procps needed.
#
# The one output format, parsed in one place (swap_action/host/wire.py):
#   NAME=VALUE        a field; VALUE is the rest of the line (names may repeat)
#   NAME:LENGTH       a blob: exactly LENGTH bytes follow, then a newline
# Text read on the LB (files, HTTP bodies, nginx output) only ever travels as a blob, so it can
# never forge a field.
set -u
# An operation runs to its end even when the engine that asked for it is gone (a cancelled job,
# an SSH session dropped): half an install is worse than a whole one nobody reads. Writes to a
# closed connection then fail quietly instead of killing the shell between two steps.
trap '' HUP PIPE
BG_PROC=${BG_PROC:-/proc}
# Least privilege: with BG_SUDO=1 (input 'sudo', CLI --sudo) the few commands that need root run
# through 'sudo -n', each with fixed arguments one sudoers line allows exactly (README "Least
# privilege"); nothing else runs as root, and no shell does. The user owns the managed directory.
BG_SUDO=${BG_SUDO:-0}
CUT_HELPER=/usr/local/sbin/bluegreen-swap-cut
_nginx=""

nginx_path() {
    # $_nginx: the nginx binary, also where a non-root PATH lacks the sbin directories.
    # PATH walked with builtins: no fork (every fork delays a swap on a busy LB).
    [ -n "$_nginx" ] && return 0
    _ifs=$IFS
    IFS=:
    for _c in $PATH /usr/sbin /usr/local/sbin /usr/local/nginx/sbin; do
        [ -z "$_nginx" ] && [ -n "$_c" ] && [ -f "$_c/nginx" ] && [ -x "$_c/nginx" ] && _nginx=$_c/nginx
    done
    IFS=$_ifs
    return 0
}

as_root() {
    # as_root COMMAND...: the command, through 'sudo -n' when BG_SUDO=1 (never a password prompt).
    if [ "$BG_SUDO" = 1 ]; then sudo -n "$@"; else "$@"; fi
}

sudo_check() {
    # sudo_check DIR: with BG_SUDO=1, each root command a swap needs that 'sudo -n' would refuse
    # (sudo_missing=, one per command), and the user (sudo_user=); DIR not writable: dir_unwritable=.
    # Returns 1 when something is missing: nothing may be changed then.
    _priv=0
    [ -w "$1" ] || { field dir_unwritable "$1"; field sudo_user "$(id -un 2>/dev/null)"; _priv=1; }
    [ "$BG_SUDO" = 1 ] || return "$_priv"
    field sudo_user "$(id -un 2>/dev/null)"
    if ! command -v sudo >/dev/null 2>&1; then field sudo_missing "sudo itself (not installed)"; return 1; fi
    nginx_path
    for _rule in "$_nginx -t -q" "$_nginx -T" "$_nginx -s reload" "$CUT_HELPER"; do
        # shellcheck disable=SC2086 (a path and fixed words)
        sudo -n -l $_rule >/dev/null 2>&1 || { field sudo_missing "$_rule"; _priv=1; }
    done
    return "$_priv"
}
MAX_BLOB=1048576

# field NAME VALUE: VALUE must be one line (callers read untrusted text with 'read', one line).
# No process is started for a field: every fork on the LB delays the swap.
field() { printf '%s=%s\n' "$1" "$2"; }

blob_file() {
    # blob_file NAME FILE [MAX_BYTES]: the file's first MAX_BYTES bytes (default 1 MiB) as a blob.
    # (Its own variable names: callers keep theirs, e.g. http_get's _max, across a blob.)
    _bmax=${3:-$MAX_BLOB}
    _size=$(wc -c < "$2")
    _size=$((_size + 0))
    if [ "$_size" -gt "$_bmax" ]; then
        printf '%s:%s\n' "$1" "$_bmax"
        head -c "$_bmax" "$2"
    else
        printf '%s:%s\n' "$1" "$_size"
        cat "$2"
    fi
    printf '\n'
}

blob() {
    _bt=$(mktemp) || return 1
    printf '%s' "$2" > "$_bt"
    blob_file "$1" "$_bt"
    rm -f "$_bt"
}

marker_url() {
    # marker_url ENDPOINT: curl's arguments to ask the generation marker there ($_mo $_ma $_mu):
    # a loopback address (127.66.71.83:PORT; never through a proxy) or a unix socket path (files of
    # earlier versions; the unit tests' stand-in).
    case "$1" in
        /*) _mo=--unix-socket _ma=$1 _mu=http://bluegreen-swap/generation ;;
        *) _mo=--noproxy _ma='*' _mu="http://$1/generation" ;;
    esac
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

first_line() {
    # first_line FILE: its first line (at most 200 bytes) into $_line, or "" (builtin read).
    _line=""
    [ -r "$1" ] && read -r _line < "$1" 2>/dev/null
    # Cut in one step (printf's precision): a byte at a time is quadratic, minutes for a long line.
    [ "${#_line}" -gt 200 ] && _line=$(printf '%.200s' "$_line")
    return 0
}

nginx_master() {
    # nginx_master PIDFILE: $_master, the Nginx master named by its pid file, proven: the file
    # holds a pid, that process is titled 'nginx: master process', and it lives in this PID
    # namespace (a stale pid file whose number now belongs to another Nginx, e.g. a container's
    # seen from the host, is refused). Else $_master is "" and $_master_why says why.
    # Only this master and its children are ever signalled: never an Nginx found host-wide.
    _master="" _master_why=""
    first_line "$1"
    case "$_line" in
        ''|*[!0-9]*|????????*)
            if [ -e "$1" ]; then _master_why="$1 holds no pid"; else _master_why="no pid file $1 (is Nginx running?)"; fi
            return 0 ;;
    esac
    read_title "$_line"
    case "$_title" in
        "nginx: master process"*) ;;
        *) _master_why="pid $_line in $1 is not a running nginx master (a stale pid file)"; return 0 ;;
    esac
    # Where both namespace links can be read (root, or the same user), they must be one.
    if [ -e "$BG_PROC/self/ns/pid" ] && [ -e "$BG_PROC/$_line/ns/pid" ] \
        && ! [ "$BG_PROC/$_line/ns/pid" -ef "$BG_PROC/self/ns/pid" ]; then
        _master_why="pid $_line in $1 is an nginx master in another PID namespace (a container's)"
        return 0
    fi
    _master=$_line
}

parent_of() {
    # parent_of PID: its parent's pid into $_ppid, from /proc/PID/stat ('pid (comm) state ppid
    # ...'; comm may hold spaces and parentheses, so cut after the last ') '). Builtin read.
    _ppid="" _st=""
    [ -r "$BG_PROC/$1/stat" ] && read -r _st < "$BG_PROC/$1/stat" 2>/dev/null
    _st=${_st##*) }
    _st=${_st#* }
    _ppid=${_st%% *}
}

nginx_procs() {
    # nginx_procs MASTER: $_procs, ' PID:ROLE' for the master and each of its workers, ROLE
    # master, worker (accepting) or shutting (an old worker), from process titles in /proc read
    # with the shell's builtin read: no ps, no fork (not even a subshell: every fork delays a swap
    # on a busy LB). Only children of MASTER count; no MASTER (none proven): nothing.
    _procs=""
    [ -n "${1:-}" ] || return 0
    _procs=" $1:master"
    for _d in "$BG_PROC"/[0-9]*; do
        _t=""
        [ -r "$_d/cmdline" ] && read -r _t < "$_d/cmdline" 2>/dev/null
        case "$_t" in
            "nginx: worker process") _role=worker ;;
            "nginx: worker process is shutting down"*) _role=shutting ;;
            *) continue ;;
        esac
        parent_of "${_d##*/}"
        [ "$_ppid" = "$1" ] && _procs="$_procs ${_d##*/}:$_role"
    done
}

read_title() {
    # read_title PID: the process's title into $_title (builtin read: no fork).
    _title=""
    [ -r "$BG_PROC/$1/cmdline" ] && read -r _title < "$BG_PROC/$1/cmdline" 2>/dev/null
    return 0
}
