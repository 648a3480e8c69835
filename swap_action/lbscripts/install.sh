# Writing candidates and putting them live. The live file is only ever replaced by rename, so
# it is never half-written; on any failure the original bytes are put back by rename.
candidate_path() { _cand="${1%/*}/.${1##*/}.candidate-$2"; }

nginx_test() {
    # nginx_test [ARGS...]: nginx -t, its output into $_out, exit status returned (as this user:
    # for a throw-away config). (-q: only problems are printed, so a pass prints nothing.)
    nginx_path
    _out=$("$_nginx" -t "$@" 2>&1)
}

nginx_test_live() {
    # The whole live config, as Nginx will load it (TLS keys included): as root, exactly 'nginx -t -q'.
    nginx_path
    _out=$(as_root "$_nginx" -t -q 2>&1)
}

test_isolated() {
    # test_isolated CANDIDATE: test a candidate on its own in a throw-away main config.
    _tdir=$(mktemp -d) || return 20
    cat > "$_tdir/nginx.conf" <<CONF
pid $_tdir/nginx.pid;
events {}
http {
    include $1;
}
CONF
    # -e (nginx >= 1.19.5) keeps the test from touching the default error log; older builds lack it.
    if nginx_test -q -e stderr -c "$_tdir/nginx.conf"; then _rc=0; else _rc=$?; fi
    case "$_out" in *'invalid option: "e"'*) if nginx_test -q -c "$_tdir/nginx.conf"; then _rc=0; else _rc=$?; fi ;; esac
    rm -rf "$_tdir"
    return "$_rc"
}

plan() {
    # plan LIVE GENERATION MAX_SECONDS [URL...] (candidate on stdin): test it on its own and
    # health-check the target at the same time. Nothing live changes; the candidate is removed.
    candidate_path "$1" "$2"
    shift 2
    cat > "$_cand" || { field error "cannot write $_cand"; return 0; }
    _gm=$1
    shift
    _gd=""
    if [ "$#" -gt 0 ]; then _gd=$(mktemp -d) && gate_start "$_gd/" "$_gm" "$@"; fi
    if test_isolated "$_cand"; then _rc=0; else _rc=$?; fi
    rm -f "$_cand"
    field test_exit "$_rc"
    blob test_output "$_out"
    [ -z "$_gd" ] || { gate_finish "$_gd/" "$_gm" || true; rm -rf "$_gd"; }
}

gate_done() {
    # The gate install waits for: its own (a private directory, removed) or begin's (in the lock).
    if [ -n "$_own_gd" ]; then
        if gate_finish "$_gd/" "$_gm" "$@"; then _gr=0; else _gr=1; fi
        rm -rf "$_gd"
        return "$_gr"
    fi
    gate_finish "$_gd" "$_gm" "$@"
}

discard_file() {
    # discard_file PATH: remove a file adopt created (only a *.upstream file, never anything else).
    case "$1" in /*.upstream) rm -f "$1" && field removed "$1" ;; *) field error "not an adopted upstream file" ;; esac
}

put_back() {
    # put_back LIVE (bytes on stdin): a restore's bytes back in the live file's place, with no
    # nginx -t and no reload: the engine sends only the bytes Nginx still runs (no reload of its run
    # went live), where a test can fail for what broke since outside them (a log Nginx can no
    # longer open) and would leave the file saying what Nginx does not serve. Owner and mode kept
    # (the candidate starts as a copy of the live file); replaced by rename.
    candidate_path "$1" restore
    [ -e "$1" ] && cp -p "$1" "$_cand" 2>/dev/null
    cat > "$_cand" || { rm -f "$_cand"; field error "cannot write $_cand"; return 0; }
    mv -f "$_cand" "$1" || { rm -f "$_cand"; field error "cannot replace $1"; return 0; }
    field applied 1
}

check() {
    # check LIVE GENERATION PROOF GATE MAX_SECONDS [URL...] (candidate on stdin): install's proof,
    # gate and nginx -t of the whole config with the candidate in the live file's place, then the
    # live bytes put back whatever the verdict (field checked=1, applied=0); nothing is reloaded.
    # A fleet's prepare: every LB says yes before any LB changes. A run that dies in between
    # leaves LIVE.before-swap, which the next begin puts back (Nginx never loaded the candidate).
    _check_only=1
    _c1=$1 _c2=$2 _c3=$3 _c4=$4 _c5=$5
    shift 5
    install "$_c1" "$_c2" "$_c3" "$_c4" "$_c5" - - - - "$@"
    _check_only=""
}

install() {
    # install LIVE GENERATION PROOF GATE MAX_SECONDS SOCKET TIMEOUT_MS ERROR_LOG PIDFILE [URL...] (candidate
    # on stdin). PROOF 'LOCKDIR GEN': before anything is written, the marker begin asked
    # (LOCKDIR/marker.*) must have answered 'GEN LIVE': Nginx serves this very file; otherwise field
    # proof=failed and nothing is written (the engine reads nginx -T and decides). PROOF '-': none.
    # Then put the candidate
    # in the live file's place and test the whole config with nginx -t while the target's health
    # is checked. GATE 'new': check URL... now; GATE '<lock dir>/gate.<id>': collect what begin
    # started there, counting only URL...; GATE '-': no gate. Both good: the old bytes are
    # kept as LIVE.previous (applied=1) and, unless TIMEOUT_MS is '-', Nginx is reloaded and the
    # new generation confirmed at once (reload_confirm's fields follow: one round trip less).
    # Either bad: the old bytes are put back (applied=0), nothing is reloaded.
    _live=$1 _gen=$2 _proof=$3
    candidate_path "$1" "$2"
    _gate=$4 _gm=$5 _rsock=$6 _rtimeout=$7 _rlog=$8 _rpid=$9
    shift 9
    # Asked again (its answer lost on the way): the live file holds this generation already, so
    # this install happened. Nothing is written again (.previous keeps the bytes from before it);
    # the reload and its confirmation are repeated, which changes nothing once they are done.
    _l1="" _l2=""
    [ -f "$_live" ] && { read -r _l1; read -r _l2; } < "$_live" 2>/dev/null
    case "$_l2" in
        *"\"generation\":\"$_gen\""*)
            cat > /dev/null
            [ "${_check_only-}" = 1 ] && { field test_exit 0; field applied 0; field checked 1; return 0; }
            field test_exit 0
            field applied 1
            field already 1
            [ "$_rtimeout" = "-" ] || reload_confirm "$_gen" "$_rsock" "$_rtimeout" "$_rlog" "$_rpid"
            return 0 ;;
    esac
    _gd="" _own_gd=""
    case "$_gate" in
        new) [ "$#" -gt 0 ] && _gd=$(mktemp -d) && _own_gd=1 && gate_start "$_gd/" "$_gm" "$@" && set -- ;;
        -) ;;
        */gate.*[!0-9]*|*/gate.) field error "bad gate"; return 0 ;;
        /*/gate.[0-9]*) _gd="$_gate." ;;
        *) field error "bad gate"; return 0 ;;
    esac
    # The file's owner and mode stay the live file's: the candidate starts as a copy of it.
    [ -e "$_live" ] && cp -p "$_live" "$_cand" 2>/dev/null
    cat > "$_cand" || { field error "cannot write $_cand"; gate_done >/dev/null; return 0; }
    # The proof, once the candidate is written (begin's curl had that long to answer): until it
    # holds, the live file is not touched.
    if [ "$_proof" != "-" ]; then
        _pdir=${_proof% *} _pgen=${_proof##* } _waited=0
        while [ ! -e "$_pdir/marker.done" ] && [ "$_waited" -lt 600 ]; do sleep 0.005; _waited=$((_waited + 1)); done
        first_line "$_pdir/marker.out"
        if [ "$_line" = "$_pgen $_live" ]; then
            field proof served
        else
            rm -f "$_cand"
            field proof failed
            [ -z "$_own_gd" ] || gate_done >/dev/null
            return 0
        fi
    fi
    _had=0
    if [ -e "$_live" ]; then
        cp -p "$_live" "$_live.before-swap" || { rm -f "$_cand"; field error "cannot copy $_live"; gate_done >/dev/null; return 0; }
        _had=1
    fi
    mv -f "$_cand" "$_live" || { rm -f "$_cand" "$_live.before-swap"; field error "cannot replace $_live"; gate_done >/dev/null; return 0; }
    if nginx_test_live; then _rc=0; else _rc=$?; fi
    _healthy=1
    if [ -n "$_gd" ]; then
        if gate_done "$@"; then _healthy=1; else _healthy=0; fi
    fi
    field test_exit "$_rc"
    [ "$_rc" -eq 0 ] || blob test_output "$_out"
    if [ "${_check_only-}" = 1 ]; then
        # check: what install would decide, and the live bytes back whatever it is.
        if [ "$_had" = 1 ]; then mv -f "$_live.before-swap" "$_live"; else rm -f "$_live"; fi
        field applied 0
        field checked 1
    elif [ "$_rc" -eq 0 ] && [ "$_healthy" -eq 1 ]; then
        field applied 1
        # The old bytes become LIVE.previous after the signal: a fork less before it. A run that
        # dies in between leaves LIVE.before-swap, which the next begin settles by the marker.
        [ "$_rtimeout" = "-" ] || reload_confirm "$_gen" "$_rsock" "$_rtimeout" "$_rlog" "$_rpid"
        [ "$_had" = 1 ] && mv -f "$_live.before-swap" "$_live.previous"
    else
        if [ "$_had" = 1 ]; then mv -f "$_live.before-swap" "$_live"; else rm -f "$_live"; fi
        field applied 0
    fi
}
