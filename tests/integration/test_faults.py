"""The fault suite: whatever happens mid-swap, the LB keeps serving and the next run converges.

Each test injects one fault into a swap on a real Nginx (the harness's LB container, blue and
green behind it) and then checks, with ``assert_converged``:

- Nginx answers 200, and ``nginx -t`` passes;
- exactly one slot answers, and the managed file's state line names that slot;
- the next plain swap (``to: auto``) succeeds within 60 s and moves traffic to the other slot.

The engine is killed with SIGKILL (a cancelled runner) at exact phases through its failpoints
(``BG_FAILPOINT``, swap_action/failpoints.py). The README's "Faults" table is this file's summary.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lb_fixtures import MANAGED, ROOT, CliRun, LbStack, start_environment, start_ssh_environment

from swap_action.upstream import parse_state

VERIFY = ("--verify-url", "http://127.0.0.1/")
CONVERGE_WITHIN_S = 60
# A wrapper in front of the LB's nginx (first on PATH): 'nginx -t' takes 3 s while /tmp/slow-t
# exists; the wrapper drops a flag when it starts waiting, so a test can act mid-test.
# With /tmp/kill-master, it then kills the Nginx master (SIGKILL) as the reload is about to come.
SLOW_NGINX_T = r"""#!/bin/sh
if [ "${1:-}" = "-t" ] && [ -e /tmp/slow-t ]; then
    : > /tmp/slow-t.waiting
    sleep 3
    : > /tmp/slow-t.done
    if [ -e /tmp/kill-master ]; then
        rm -f /tmp/kill-master
        /usr/sbin/nginx "$@" && kill -9 "$(cat /run/nginx.pid)"
        exit 0
    fi
fi
exec /usr/sbin/nginx "$@"
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[LbStack]:
    """One LB with blue and green for the whole suite: each test leaves it converged."""
    started = LbStack(start_environment("bgfault"))
    yield started
    started.env.stop()


@pytest.fixture(autouse=True)
def diagnostics_on_failure(request: pytest.FixtureRequest, stack: LbStack) -> Iterator[None]:
    yield
    if any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")):
        print(f"\n===== diagnostics of {stack.env.name} (test failed) =====\n{stack.diagnostics()}")


# -- what every fault must leave ---------------------------------------------------------------
def served_slots(stack: LbStack, count: int = 10) -> set[str]:
    answers = [stack.get("/") for _ in range(count)]
    assert all(answer.status == 200 for answer in answers), [(a.status, a.body) for a in answers]
    return {answer.body for answer in answers}


def live_in_file(stack: LbStack, path: str = MANAGED) -> str | None:
    state = parse_state(file_text(stack, path))
    return state.live if state else None


def file_text(stack: LbStack, path: str) -> str:
    code, output = stack.exec("cat", path)
    assert code == 0, output
    return output.decode()


def assert_converged(stack: LbStack, path: str = MANAGED) -> str:
    """Nginx serves 200, nginx -t passes, what answers is what the file says (one slot, or both
    at a canary step's weights when a run was killed mid-canary); then the next plain swap
    succeeds within 60 s and leaves one slot live. Returns that slot."""
    code, output = stack.exec("/usr/sbin/nginx", "-t", "-q")
    assert code == 0, output.decode(errors="replace")
    state = parse_state(file_text(stack, path))
    assert state is not None
    weighted = {slot for slot, weight in state.weights.items() if weight > 0}
    served = served_slots(stack, 20)
    if len(weighted) == 1:
        assert served == weighted == {state.live}, f"the file says {state.live} ({state.weights})"
    else:
        assert served <= weighted, f"the file says {state.weights}, served {served}"
    live = state.live
    swap = stack.cli("swap", "--config-path", path, *VERIFY, "--json", timeout=CONVERGE_WITHIN_S + 30)
    assert swap.code == 0, swap
    assert swap.seconds < CONVERGE_WITHIN_S, swap
    after = live_in_file(stack, path)
    assert after != live and served_slots(stack) == {after}
    assert not stack.exists(f"{path}.before-swap") and not stack.exists(f"{path}.lock")
    return after


def run_cli(stack: LbStack, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliRun:
    started = time.monotonic()
    done = subprocess.run(
        stack.argv("swap", *args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def lb_sh(stack: LbStack, script: str, *args: str) -> str:
    code, output = stack.exec("sh", "-c", script, "fault", *args)
    assert code == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


# -- the engine killed (a cancelled runner) ----------------------------------------------------
# Each phase as it begins, and a few moments inside one: '+ms' after the phase began.
KILL_POINTS = [
    "lock", "probe", "install", "install+30", "reload-confirm", "verify", "pause", "drain", "drain+300", "release",
]  # fmt: skip


@pytest.mark.parametrize("point", KILL_POINTS)
def test_engine_killed_at_each_phase_leaves_one_slot_live_and_the_next_swap_converges(
    stack: LbStack, point: str
) -> None:
    before = live_in_file(stack)

    # A long request on the old slot keeps the drain going (to its 2 s deadline): a kill 300 ms
    # into it lands mid-drain, not after a drain that had nothing to wait for.
    with stack.long_request(4):
        killed = run_cli(
            stack, *VERIFY, "--steps", "50,100", "--step-pause", "500ms", "--drain-timeout", "2s",
            env={"BG_FAILPOINT": point},
        )  # fmt: skip
    assert killed.code == -9, killed
    after_kill = live_in_file(stack)
    print(f"killed at {point}: {before} -> file says {after_kill}")
    assert_converged(stack)


def test_engine_killed_at_random_moments_converges(stack: LbStack) -> None:
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    for _ in range(4):
        delay_ms = rng.randrange(0, 1500)
        proc = subprocess.Popen(
            stack.argv("swap", *VERIFY, "--steps", "10,50,100", "--step-pause", "300ms", "--drain-timeout", "1s"),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(delay_ms / 1000)
        proc.kill()
        proc.wait(timeout=30)
        print(f"killed {delay_ms} ms in (exit {proc.returncode})")
        assert_converged(stack)


# -- the LB side -------------------------------------------------------------------------------
def slow_nginx_t(stack: LbStack) -> None:
    lb_sh(stack, 'printf "%s" "$1" > /usr/local/sbin/nginx && chmod 755 /usr/local/sbin/nginx', SLOW_NGINX_T)
    lb_sh(stack, "rm -f /tmp/slow-t.waiting && : > /tmp/slow-t")


def wait_for(stack: LbStack, path: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not stack.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture
def no_slow_nginx(stack: LbStack) -> Iterator[None]:
    yield
    stack.exec("rm", "-f", "/usr/local/sbin/nginx", "/tmp/slow-t", "/tmp/slow-t.waiting", "/tmp/kill-master")


def test_an_nginx_t_that_takes_seconds_still_swaps(stack: LbStack, no_slow_nginx: None) -> None:
    slow_nginx_t(stack)
    swap = stack.cli("swap", *VERIFY, "--json")
    assert swap.code == 0, swap
    test_step = next(s for s in swap.json()["steps"] if s["phase"] == "test")
    assert test_step["duration_ms"] >= 3000, test_step
    assert_converged(stack)


def test_ssh_like_session_loss_mid_install_runs_the_install_to_its_end(stack: LbStack, no_slow_nginx: None) -> None:
    # The engine's session vanishes while the LB is inside nginx -t (the candidate in place):
    # the LB script ignores the hang-up and finishes apply and reload; nothing is half done.
    slow_nginx_t(stack)
    proc = subprocess.Popen(stack.argv("swap", *VERIFY), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(stack, "/tmp/slow-t.waiting")
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(4)  # the LB finishes what it started
    assert not stack.exists(f"{MANAGED}.before-swap")
    assert_converged(stack)


@pytest.fixture(scope="module")
def ssh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LbStack, list[str]]]:
    """An LB with sshd (root, key only), and the CLI flags that reach it over SSH."""
    env, flags = start_ssh_environment("bgfaultssh", tmp_path_factory.mktemp("ssh"))
    yield LbStack(env), flags
    env.stop()


# Where the session dies, held on the LB until it has died (no timing): a wrapper in front of the
# LB's nginx holds the live config's test ('nginx -t -q', the candidate in place) while
# /tmp/hold-apply exists; with /tmp/hold-confirm.arm it arms /tmp/hold-confirm, and a wrapper in
# front of curl then holds each question to the generation marker (what the reload's confirmation
# waits for, asked only once the reload signal was sent) while /tmp/hold-confirm exists. Each hold
# drops '<hold>.waiting' when it starts, and gives up after 30 s.
HOLD_NGINX_T = r"""#!/bin/sh
if [ "$*" = "-t -q" ]; then
    if [ -e /tmp/hold-apply ]; then
        : > /tmp/hold-apply.waiting
        i=0; while [ -e /tmp/hold-apply ] && [ "$i" -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    fi
    [ -e /tmp/hold-confirm.arm ] && mv /tmp/hold-confirm.arm /tmp/hold-confirm
fi
exec /usr/sbin/nginx "$@"
"""
HOLD_MARKER_CURL = r"""#!/bin/sh
case "$*" in
    */generation*)
        if [ -e /tmp/hold-confirm ]; then
            : > /tmp/hold-confirm.waiting
            i=0; while [ -e /tmp/hold-confirm ] && [ "$i" -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
        fi ;;
esac
exec /usr/bin/curl "$@"
"""
HOLD_FILES = ("/tmp/hold-apply", "/tmp/hold-apply.waiting", "/tmp/hold-confirm.arm", "/tmp/hold-confirm",
              "/tmp/hold-confirm.waiting")  # fmt: skip


@pytest.mark.parametrize("moment", ["apply", "confirm"], ids=["mid-apply", "mid-confirm"])
def test_ssh_session_killed_on_the_lb_mid_install_lets_the_install_finish(
    ssh_stack: tuple[LbStack, list[str]], moment: str
) -> None:
    # mid-apply: while nginx -t tests the candidate in place; mid-confirm: after the reload signal,
    # while its confirmation waits for the marker (the same round trip). The LB holds the install
    # at that point until the session is dead, then lets it go on alone.
    stack, flags = ssh_stack
    try:
        lb_sh(
            stack,
            'printf "%s" "$1" > /usr/local/sbin/nginx && printf "%s" "$2" > /usr/local/sbin/curl'
            " && chmod 755 /usr/local/sbin/nginx /usr/local/sbin/curl",
            HOLD_NGINX_T,
            HOLD_MARKER_CURL,
        )
        stack.exec("rm", "-f", *HOLD_FILES)
        lb_sh(stack, ': > "$1"', "/tmp/hold-apply" if moment == "apply" else "/tmp/hold-confirm.arm")
        hold = f"/tmp/hold-{moment}"
        before, reloads = live_in_file(stack), stack.reloads()
        argv = stack.argv("swap", *VERIFY, *flags)
        argv[argv.index("--target") + 1] = stack.env.ssh_url
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(stack, f"{hold}.waiting", timeout=60)
        # Held there: the signal not yet sent (mid-apply) or sent and not yet confirmed (mid-confirm).
        assert proc.poll() is None, "the engine finished before the session was killed"
        if moment == "confirm":
            deadline = time.monotonic() + 10  # the master logs the signal it took
            while stack.reloads() == reloads:
                assert time.monotonic() < deadline, "held before the reload signal"
                time.sleep(0.05)
        assert stack.reloads() == reloads + (moment == "confirm")
        # The session's sshd process on the LB, killed: the connection drops mid-install; then
        # the hold is let go (it was still held: only this test removes it).
        lb_sh(stack, 'pkill -KILL -f "^sshd: root@notty" && test -e "$1" && rm -f "$1"', hold)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and "error:" in err and "fix:" in err, err
        deadline = time.monotonic() + 20  # the LB finishes the install on its own
        while stack.exists(f"{MANAGED}.before-swap") or live_in_file(stack) == before:
            assert time.monotonic() < deadline, "the install did not finish without its session"
            time.sleep(0.1)
        after = live_in_file(stack)
        deadline = time.monotonic() + 20
        while stack.get("/").body != after:
            assert time.monotonic() < deadline, "the new config did not go live"
            time.sleep(0.1)
        assert served_slots(stack) == {after}
        assert stack.reloads() == reloads + 1, "one reload, the install's: nothing after it"
    finally:
        stack.exec("rm", "-f", "/usr/local/sbin/nginx", "/usr/local/sbin/curl", *HOLD_FILES)
    assert_converged(stack)


def test_lb_container_restarted_mid_install_converges(stack: LbStack, no_slow_nginx: None) -> None:
    slow_nginx_t(stack)
    proc = subprocess.Popen(stack.argv("swap", *VERIFY), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(stack, "/tmp/slow-t.waiting")
    stack.exec("rm", "-f", "/tmp/slow-t")
    stack.env.restart_lb()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert b"error:" in err and b"fix:" in err, err
    _wait_serving(stack)
    assert_converged(stack)


def test_nginx_master_killed_at_the_reload_fails_the_run_and_a_restart_converges(
    stack: LbStack, no_slow_nginx: None
) -> None:
    slow_nginx_t(stack)
    lb_sh(stack, ": > /tmp/kill-master")
    before = live_in_file(stack)
    dead = stack.cli("swap", *VERIFY)
    assert dead.code == 1, dead
    assert "error:" in dead.err and "fix:" in dead.err, dead.err
    print(dead.err)
    # The orphaned workers keep serving the old config; the file says so again (restored).
    assert live_in_file(stack) == before and served_slots(stack) == {before}
    stack.exec("rm", "-f", "/usr/local/sbin/nginx", "/tmp/slow-t")
    stack.env.restart_lb()  # what to do: start Nginx again
    _wait_serving(stack)
    assert_converged(stack)


def _wait_serving(stack: LbStack, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if stack.get("/").status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the LB did not serve again after its restart"
        time.sleep(0.2)


def test_managed_files_owner_and_mode_survive_a_swap_and_a_restore(stack: LbStack) -> None:
    lb_sh(stack, 'chown www-data:adm "$1" && chmod 0640 "$1"', MANAGED)
    assert stack.cli("swap", *VERIFY).code == 0
    assert lb_sh(stack, 'stat -c "%U:%G %a" "$1"', MANAGED).strip() == "www-data:adm 640"
    failed = stack.cli("swap", *VERIFY, "--verify-expect", "no-such-text")  # verify fails: restored
    assert failed.code == 1 and "restored" in failed.err, failed
    assert lb_sh(stack, 'stat -c "%U:%G %a" "$1"', MANAGED).strip() == "www-data:adm 640"
    lb_sh(stack, 'chown root:root "$1" && chmod 0644 "$1"', MANAGED)
    assert_converged(stack)


# -- a health check that flaps during a canary --------------------------------------------------------
def set_failing(stack: LbStack, slot: str, on: bool) -> None:
    code = (
        "import urllib.request; urllib.request.urlopen(urllib.request.Request("
        f"'http://127.0.0.1:8080/admin/fail?on={int(on)}', method='POST'), timeout=5)"
    )
    result = stack.env.containers[slot].exec(["python3", "-c", code])
    assert result.exit_code == 0, result.output


def canary(stack: LbStack, target: str, pause: str) -> subprocess.Popen[str]:
    """A 10,50,100 canary to ``target`` with ``pause`` between steps, running (its --json report on stdout)."""
    return subprocess.Popen(
        stack.argv("swap", "--to", target, *VERIFY, "--steps", "10,50,100", "--step-pause", pause, "--json"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def assert_restored_by_the_health_check(stack: LbStack, out: str, live: str, target: str) -> dict[str, Any]:
    """The run restored ``live`` because the step's own health check of ``target`` failed (through
    the LB at 10% most verify requests would not reach it), and the LB converges."""
    outcome: dict[str, Any] = json.loads(out)["outcome"]
    assert (outcome["result"], outcome["restored"], outcome["active"]) == ("restored", True, live), outcome
    cause = outcome["error"]["cause"]
    assert f"{target} stopped being healthy during the canary at" in cause, outcome
    assert f"http://{target}:8080/healthz answered 503" in cause, outcome
    assert live_in_file(stack) == live and served_slots(stack) == {live}
    assert_converged(stack)
    return outcome


def test_a_slot_that_starts_failing_mid_canary_is_restored(stack: LbStack) -> None:
    live = live_in_file(stack)
    target = "green" if live == "blue" else "blue"
    proc = canary(stack, target, "2s")
    try:
        deadline = time.monotonic() + 20
        while parse_state(file_text(stack, MANAGED)).weights.get(target, 0) == 0:  # the first step is live
            assert time.monotonic() < deadline and proc.poll() is None, "the canary never started"
            time.sleep(0.05)
        set_failing(stack, target, True)  # healthy at the gate, failing from the next verify on
        out, err = proc.communicate(timeout=120)
    finally:
        set_failing(stack, target, False)
    assert proc.returncode == 1, err
    assert_restored_by_the_health_check(stack, out, live, target)


def test_a_health_check_that_flaps_during_a_canary_is_restored(stack: LbStack) -> None:
    # Healthy at the gate and at the first step's verify; then, in the pause after it: failing,
    # healthy again, failing (and left failing). The engine checks at each step, not in between:
    # the first failing window is not seen (only 10% of traffic got the 500s); the 50% step's own
    # health check of the new slot sees the second: restored.
    live = live_in_file(stack)
    target = "green" if live == "blue" else "blue"
    proc = canary(stack, target, "3s")
    assert proc.stderr is not None and proc.stdout is not None
    flaps: list[tuple[bool, float]] = []
    err_lines: list[str] = []
    try:
        for line in proc.stderr:  # each step's line as it ends
            err_lines.append(line)
            if line.startswith("[ok ] verify (10% to"):
                break
        else:
            pytest.fail("the first step was never verified:\n" + "".join(err_lines))
        paused = time.monotonic()
        for index, on in enumerate((True, False, True)):  # flapping, within the 3 s pause
            if index:
                time.sleep(0.4)
            set_failing(stack, target, on)
            flaps.append((on, round(time.monotonic() - paused, 2)))
        rest, out = proc.stderr.read(), proc.stdout.read()
        proc.wait(timeout=120)
    finally:
        set_failing(stack, target, False)
    err = "".join(err_lines) + rest
    print(f"flaps (failing?, s into the pause): {flaps}\n{err}")
    assert proc.returncode == 1, err
    assert flaps[-1][1] < 3, "the flaps outlasted the pause: the test's timing, not the engine's"
    failed_verify = [line for line in err.splitlines() if line.startswith("[ERR] verify (")]
    assert len(failed_verify) == 1 and f"(50% to {target})" in failed_verify[0], err
    outcome = assert_restored_by_the_health_check(stack, out, live, target)
    fix = outcome["error"]["fix"]
    assert fix and f"fix: {fix}" in err, err


# -- Nginx refuses a reload it accepted: another Nginx holds a port the site now wants --------------
OTHER_NGINX = """pid /tmp/other-nginx.pid;
error_log /tmp/other-nginx.log notice;
events {}
http { server { listen 8089; return 200 "other\\n"; } }
"""


def test_a_reload_refused_after_the_signal_is_restored_and_never_touches_another_nginx(stack: LbStack) -> None:
    lb_sh(stack, 'printf "%s" "$1" > /tmp/other-nginx.conf && /usr/sbin/nginx -c /tmp/other-nginx.conf', OTHER_NGINX)
    site = "/etc/nginx/site/default.conf"
    lb_sh(stack, 'cp "$1" /tmp/site.bak && printf "server { listen 8089; return 204; }\\n" >> "$1"', site)
    try:
        before = live_in_file(stack)
        refused = stack.cli("swap", *VERIFY)
        assert refused.code == 1, refused
        assert "Address already in use" in refused.err or "refused" in refused.err, refused.err
        assert "fix:" in refused.err
        assert live_in_file(stack) == before and served_slots(stack) == {before}
        other_log = lb_sh(stack, "cat /tmp/other-nginx.log")
        assert "reconfiguring" not in other_log and "signal" not in other_log, other_log
    finally:
        lb_sh(stack, 'cp /tmp/site.bak "$1"', site)
        stack.exec("sh", "-c", "kill $(cat /tmp/other-nginx.pid)")
    assert_converged(stack)


# -- the clock on the LB ten minutes ahead of, or behind, the runner's --------------------------------
@pytest.mark.parametrize("offset", [600, -600], ids=["ahead", "behind"])
def test_a_clock_on_the_lb_minutes_away_changes_nothing(stack: LbStack, offset: int) -> None:
    lb_sh(
        stack,
        'printf "%s\\n" "#!/bin/sh" "exec /bin/date -d \\"$1 seconds\\" \\"\\$@\\"" > /usr/local/bin/date'
        " && chmod 755 /usr/local/bin/date",
        f"{offset:+d}",
    )
    try:
        away = int(lb_sh(stack, "date +%s")) - int(time.time())
        assert abs(away - offset) <= 10, away
        killed = run_cli(stack, *VERIFY, env={"BG_FAILPOINT": "probe"})  # a dead holder, its lease in LB time
        assert killed.code == -9
        expires = int(lb_sh(stack, 'cat "$1/expires"', f"{MANAGED}.lock"))
        assert 0 < expires - int(lb_sh(stack, "date +%s")) <= 15
        started = time.monotonic()
        assert_converged(stack)
        assert time.monotonic() - started < 30, "taken over once its 15 s lease ended, not 10 minutes off"
    finally:
        stack.exec("rm", "-f", "/usr/local/bin/date")


# -- runs racing -----------------------------------------------------------------------------------
def _race(stack: LbStack, *args: str) -> list[dict[str, Any]]:
    procs = [
        subprocess.Popen(stack.argv("swap", *args, "--json"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        reports.append(json.loads(out))
    return reports


def test_two_runs_started_at_the_same_instant_change_the_lb_once_20_times(stack: LbStack) -> None:
    target = "green" if live_in_file(stack) == "blue" else "blue"
    for _ in range(20):
        reports = _race(stack, "--to", target)
        assert sorted(r["outcome"]["changed"] for r in reports) == [False, True], reports
        assert live_in_file(stack) == target and served_slots(stack, 3) == {target}
        target = "blue" if target == "green" else "green"
    assert_converged(stack)


def test_two_runs_racing_for_a_stale_lock_change_the_lb_once(stack: LbStack) -> None:
    lock = f"{MANAGED}.lock"
    for _ in range(5):
        target = "green" if live_in_file(stack) == "blue" else "blue"
        lb_sh(
            stack,
            'mkdir "$1" && echo dead-run > "$1/owner" && echo $(( $(date +%s) - 5 )) > "$1/expires"',
            lock,
        )
        reports = _race(stack, "--to", target)
        assert sorted(r["outcome"]["changed"] for r in reports) == [False, True], reports
        assert live_in_file(stack) == target and not stack.exists(lock)
    assert_converged(stack)


# -- the disk: full where the candidate is written, a read-only config directory ---------------------
TIGHT, READ_ONLY = "/etc/nginx/tight", "/etc/nginx/ro"


@pytest.fixture(scope="module")
def disk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LbStack]:
    """An LB with a 64 KiB tmpfs and a read-only bind mount, each to hold the managed file."""
    host_dir = tmp_path_factory.mktemp("ro-conf")
    host_dir.chmod(0o755)
    started = LbStack(start_environment("bgdisk", lb_tmpfs={TIGHT: "size=64k"}, lb_binds={str(host_dir): READ_ONLY}))
    started.env.host_dir = host_dir  # type: ignore[attr-defined]
    yield started
    started.env.stop()


def move_managed_file(stack: LbStack, directory: str) -> str:
    """The managed file moved into ``directory`` and included from there (Nginx reloaded)."""
    source = getattr(stack.env, "managed_dir", "/etc/nginx/bluegreen")
    text = file_text(stack, f"{source}/upstream.conf")
    if directory == READ_ONLY:  # written from the host: the container cannot
        (stack.env.host_dir / "upstream.conf").write_text(text)  # type: ignore[attr-defined]
    else:
        lb_sh(stack, 'printf "%s" "$2" > "$1"', f"{directory}/upstream.conf", text)
    if source != READ_ONLY:
        lb_sh(stack, 'rm -f "$1"', f"{source}/upstream.conf")
    lb_sh(stack, 'sed -i "s|include $1/\\*.conf;|include $2/*.conf;|" /etc/nginx/nginx.conf', source, directory)
    lb_sh(stack, "/usr/sbin/nginx -t -q && /usr/sbin/nginx -s reload && sleep 0.5")
    stack.env.managed_dir = directory  # type: ignore[attr-defined]
    return f"{directory}/upstream.conf"


def test_a_full_disk_where_the_candidate_is_written_changes_nothing(disk_stack: LbStack) -> None:
    stack = disk_stack
    path = move_managed_file(stack, TIGHT)
    before, live = file_text(stack, path), live_in_file(stack, path)
    lb_sh(stack, 'dd if=/dev/zero of="$1/filler" bs=1k count=1024 2>/dev/null; true', TIGHT)
    try:
        full = stack.cli("swap", "--config-path", path, *VERIFY)
        assert full.code == 1, full
        assert "error:" in full.err and "fix:" in full.err, full.err
        print(full.err)
        assert file_text(stack, path) == before and served_slots(stack) == {live}
    finally:
        stack.exec("rm", "-f", f"{TIGHT}/filler")
    assert_converged(stack, path)


def test_a_read_only_config_directory_is_refused_before_any_change(disk_stack: LbStack) -> None:
    stack = disk_stack
    path = move_managed_file(stack, READ_ONLY)
    before, live = file_text(stack, path), live_in_file(stack, path)
    refused = stack.cli("swap", "--config-path", path, *VERIFY)
    assert refused.code == 1, refused
    assert "cannot write /etc/nginx/ro" in refused.err and "nothing was changed" in refused.err, refused.err
    fix = next((line for line in refused.err.splitlines() if line.startswith("fix: ")), "")
    assert f"make it writable for root (mounted read-only, or another owner: chown root {READ_ONLY})" in fix, (
        refused.err
    )
    assert file_text(stack, path) == before and served_slots(stack) == {live}
    assert_converged(stack, move_managed_file(stack, "/etc/nginx/bluegreen"))


# -- Nginx refuses a reload it accepted: the error log it must open has become unwritable ----------
SITE_LOG = "/var/log/site/error.log"
# A wrapper in front of the LB's nginx: with /tmp/break-log, the live config's test ('nginx -t -q')
# passes, and then the site's log directory turns read-only (its symlink moved onto the read-only
# mount) before the reload comes: a log partition remounted read-only between the test and the
# reload. The master, root like the test, opens every log again at a reload: EROFS, [emerg].
BREAK_LOG_AFTER_T = r"""#!/bin/sh
if [ "$*" = "-t -q" ] && [ -e /tmp/break-log ]; then
    /usr/sbin/nginx "$@" || exit
    rm -f /tmp/break-log
    ln -sfn /etc/nginx/ro /var/log/site
    exit 0
fi
exec /usr/sbin/nginx "$@"
"""


def test_an_error_log_unwritable_at_the_reload_is_refused_and_the_old_config_keeps_serving(
    disk_stack: LbStack,
) -> None:
    stack = disk_stack
    path = f"{getattr(stack.env, 'managed_dir', '/etc/nginx/bluegreen')}/upstream.conf"
    lb_sh(
        stack,
        'mkdir -p /var/log/site-rw && ln -sfn /var/log/site-rw /var/log/site && printf "error_log %s;\\n" "$1" '
        "> /etc/nginx/site/zz-log.conf && /usr/sbin/nginx -t -q && /usr/sbin/nginx -s reload && sleep 0.5",
        SITE_LOG,
    )
    lb_sh(stack, 'printf "%s" "$1" > /usr/local/sbin/nginx && chmod 755 /usr/local/sbin/nginx', BREAK_LOG_AFTER_T)
    try:
        before, live = file_text(stack, path), live_in_file(stack, path)
        reloads = stack.reloads()
        lb_sh(stack, ": > /tmp/break-log")
        refused = stack.cli("swap", "--config-path", path, *VERIFY, "--json")
        assert not stack.exists("/tmp/break-log"), "the live config's test never ran"
        assert refused.code == 1, refused
        assert stack.reloads() > reloads, "the reload signal was never sent"
        assert "Nginx refused the new config after the reload signal" in refused.err, refused.err
        assert f'open() "{SITE_LOG}" failed (30: Read-only file system)' in refused.err, refused.err
        assert "fix:" in refused.err, refused.err
        outcome = refused.json()["outcome"]
        assert (outcome["changed"], outcome["restored"], outcome["active"]) == (False, True, live), outcome
        # The old config keeps serving, and the file says so: Nginx never loaded anything of this
        # run, so the old bytes went back as they are (an nginx -t of them fails on the same log).
        assert served_slots(stack) == {live} and live_in_file(stack, path) == live
        assert file_text(stack, path) == before and not stack.exists(f"{path}.before-swap")
        # What to do: make the log writable again; the next swap (assert_converged) then goes through.
        lb_sh(stack, "ln -sfn /var/log/site-rw /var/log/site")
        assert_converged(stack, path)
    finally:
        stack.exec("rm", "-f", "/usr/local/sbin/nginx", "/tmp/break-log")
        lb_sh(stack, "ln -sfn /var/log/site-rw /var/log/site && rm -f /etc/nginx/site/zz-log.conf")
        lb_sh(stack, "/usr/sbin/nginx -t -q && /usr/sbin/nginx -s reload && sleep 0.5")
