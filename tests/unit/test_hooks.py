"""swap_action.hooks: the commands around the switch, run for real (sh -c, subprocesses)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from swap_action import hooks
from swap_action.errors import HookError
from swap_action.hooks import HOOK_NAMES, OUTPUT_CAP, hook_env, hook_error, run_hook
from swap_action.inputs import Slots
from swap_action.outcome import HookRun, Step


class Recorder:
    """An Observer that keeps what it is told, with when."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def step_started(self, step: Step) -> None:
        pass

    def step_finished(self, step: Step) -> None:
        pass

    def info(self, message: str) -> None:
        self.lines.append((time.monotonic(), message))

    def warning(self, message: str) -> None:
        self.lines.append((time.monotonic(), f"warning: {message}"))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.lines]


SLOTS = Slots(blue=("10.0.1.10:8080", "10.0.1.11:8080"), green=("10.0.2.10:8080",))


def facts(hook: str = "pre-switch", **changes: object) -> dict[str, str]:
    values: dict[str, object] = {
        "hook": hook,
        "live": "blue",
        "target": "green",
        "slots": SLOTS,
        "generation": "g42-abc",
        "lbs": ["ssh://deploy@lb1.example.com", "docker://lb2"],
        "staging_slot": "blue",
        "staging_url": "https://user:pw@staging.example.com/",
        "staging_upstream": "app_staging",
        "upstream": "app",
    }
    values.update(changes)
    return hook_env(**values)  # type: ignore[arg-type]


def test_hook_env_holds_the_swaps_facts_as_strings() -> None:
    assert facts() == {
        "SWAP_HOOK": "pre-switch",
        "SWAP_LIVE_SLOT": "blue",
        "SWAP_PREVIOUS_SLOT": "blue",
        "SWAP_TARGET_SLOT": "green",
        "SWAP_BLUE_SERVERS": "10.0.1.10:8080,10.0.1.11:8080",
        "SWAP_GREEN_SERVERS": "10.0.2.10:8080",
        "SWAP_TARGET_SERVERS": "10.0.2.10:8080",
        "SWAP_GENERATION": "g42-abc",
        "SWAP_LBS": "ssh://deploy@lb1.example.com,docker://lb2",
        "SWAP_LB_COUNT": "2",
        "SWAP_UPSTREAM": "app",
        "SWAP_STAGING_UPSTREAM": "app_staging",
        "SWAP_STAGING_SLOT": "blue",
        "SWAP_STAGING_URL": "https://user:pw@staging.example.com/",  # the user's own, as given
        "SWAP_DRY_RUN": "false",
    }
    empty = facts("post-drain", live=None, staging_slot=None, staging_url=None, staging_upstream=None, dry_run=True)
    assert empty["SWAP_LIVE_SLOT"] == empty["SWAP_PREVIOUS_SLOT"] == ""
    assert empty["SWAP_STAGING_UPSTREAM"] == empty["SWAP_STAGING_SLOT"] == empty["SWAP_STAGING_URL"] == ""
    assert empty["SWAP_DRY_RUN"] == "true" and empty["SWAP_HOOK"] == "post-drain"
    # A password in a target is never passed on.
    assert facts(lbs=["ssh://deploy:secret@lb1"])["SWAP_LBS"] == "ssh://deploy:***@lb1"
    with pytest.raises(ValueError):
        facts("pre-deploy")


def test_the_env_reaches_the_command_and_the_actions_own_inputs_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BG_SSH_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----")
    monkeypatch.setenv("INPUT_SSH-KEY", "-----BEGIN OPENSSH PRIVATE KEY-----")
    monkeypatch.setenv("DATABASE_URL", "postgres://db/app")  # the step's own env: the hook needs it
    command = 'echo "$SWAP_TARGET_SLOT $SWAP_LB_COUNT $DATABASE_URL"; env | grep -c -e ^BG_ -e ^INPUT_ || true; pwd'
    run = run_hook("pre-switch", command, facts(), 10, Recorder())
    assert run.ok and run.exit_code == 0 and not run.timed_out
    assert run.output.splitlines() == ["green 2 postgres://db/app", "0", os.getcwd()]


def test_exit_code_and_output_are_kept_stdout_and_stderr_together() -> None:
    recorder = Recorder()
    run = run_hook("post-switch", "echo out; echo err >&2; exit 3", {}, 10, recorder)
    assert (run.name, run.command, run.exit_code, run.timed_out, run.ok) == (
        "post-switch",
        "echo out; echo err >&2; exit 3",
        3,
        False,
        False,
    )
    assert run.output == "out\nerr\n" and recorder.messages == ["out", "err"]
    assert run.duration_ms > 0


def test_each_line_reaches_the_observer_as_it_arrives() -> None:
    recorder = Recorder()
    started = time.monotonic()
    run = run_hook("pre-switch", "echo one; sleep 0.3; printf 'two\\r\\nthree'", {}, 10, recorder)
    assert run.ok and recorder.messages == ["one", "two", "three"]  # a last line without newline too
    (first, _), (second, _) = recorder.lines[0], recorder.lines[1]
    assert first - started < 0.25 and second - first >= 0.25  # "one" before the sleep, not at the end


def test_a_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    command = f"sleep 30 & echo $! > {pidfile}; echo started; sleep 30"
    recorder = Recorder()
    started = time.monotonic()
    run = run_hook("post-switch", command, {}, 0.3, recorder)
    assert time.monotonic() - started < 1.5
    assert run.timed_out and run.exit_code is None and not run.ok
    assert run.output == "started\n" and recorder.messages[0] == "started"
    assert "hook-timeout" in recorder.messages[-1]
    child = int(pidfile.read_text())
    assert _gone_soon(child), "the background child is still running"


def test_what_a_hook_says_after_sigterm_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "TERM_GRACE_S", 0.3)
    pidfile = tmp_path / "child.pid"
    command = f"trap 'echo bye' TERM; sleep 30 & echo $! > {pidfile}; wait; wait"
    run = run_hook("post-drain", command, {}, 0.3, Recorder())
    assert run.timed_out and run.exit_code is None
    assert "bye" in run.output.splitlines()  # what it says after SIGTERM is kept
    assert _gone_soon(int(pidfile.read_text()))


def test_a_hook_that_ignores_sigterm_entirely_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "TERM_GRACE_S", 0.3)
    pidfile = tmp_path / "child.pid"
    command = f"trap '' TERM; sleep 30 & echo $! > {pidfile}; sleep 30"
    started = time.monotonic()
    run = run_hook("post-drain", command, {}, 0.3, Recorder())
    assert run.timed_out and time.monotonic() - started < 1.5
    assert _gone_soon(int(pidfile.read_text()))


def _gone_soon(pid: int, within_s: float = 1.0) -> bool:
    """No such process (or only a zombie left for its new parent to reap)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.02)
    return False


def test_output_is_capped_keeping_the_tail() -> None:
    # 200 KiB of numbered lines (6 bytes each), then an end line.
    command = "i=0; while [ $i -lt 34000 ]; do i=$((i+1)); printf '%05d\\n' $i; done; echo the-end"
    run = run_hook("post-drain", command, {}, 10, Recorder())
    assert run.ok
    assert len(run.output.encode()) == OUTPUT_CAP
    assert run.output.endswith("33999\n34000\nthe-end\n")
    assert "00001\n" not in run.output


def test_a_missing_command_exits_127_with_the_shells_message() -> None:
    run = run_hook("pre-switch", "./no-such-migration.sh", {}, 10, Recorder())
    assert run.exit_code == 127 and not run.ok
    assert "no-such-migration.sh" in run.output and "not found" in run.output


def test_a_command_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sh on it
    recorder = Recorder()
    run = run_hook("pre-switch", "true", {}, 10, recorder)
    assert run.exit_code is None and not run.timed_out and not run.ok
    assert "cannot start the pre-switch hook" in run.output and recorder.messages == [run.output]


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("pre-switch", "nothing was changed on any load balancer; fix the command"),
        ("post-switch", "the previous config was restored on every load balancer"),
        ("post-drain", "the swap stays:"),
    ],
)
def test_hook_error_names_the_hook_its_exit_and_last_line_with_a_fix_for_that_hook(name: str, fix: str) -> None:
    output = "".join(f"line {n}\n" for n in range(1, 31)) + "ERROR: column users.email exists\n\n"
    error = hook_error(HookRun(name, "./migrate.sh", 2, 120.0, output))
    assert isinstance(error, HookError) and error.hook == name
    assert error.title == f"{name} hook failed"
    assert error.cause == f"the {name} hook exited with 2: ERROR: column users.email exists"
    assert error.fix.startswith(fix)
    assert error.detail.splitlines() == [f"line {n}" for n in range(12, 31)] + ["ERROR: column users.email exists"]


def test_hook_error_for_a_timeout_and_for_no_output() -> None:
    error = hook_error(HookRun("post-switch", "sleep 600", None, 300_012.0, "", timed_out=True))
    assert error.cause == "the post-switch hook did not finish within hook-timeout: stopped after 300.0 s: (no output)"
    assert error.detail == ""
    cannot = hook_error(HookRun("pre-switch", "x", None, 1.0, "cannot start the pre-switch hook: No such file"))
    assert cannot.cause.startswith("the pre-switch hook could not start: cannot start")


def test_hook_error_never_shows_a_password_from_the_output() -> None:
    error = hook_error(HookRun("pre-switch", "x", 1, 1.0, "connecting to postgres://app:hunter2@db/app\n"))
    assert "hunter2" not in error.cause and "hunter2" not in error.detail


def test_every_hook_name_has_its_own_fix() -> None:
    fixes = {hook_error(HookRun(name, "false", 1, 1.0)).fix for name in HOOK_NAMES}
    assert len(fixes) == len(HOOK_NAMES)
