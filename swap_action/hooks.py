"""Commands run around the switch: ``pre-switch``, ``post-switch`` and ``post-drain``.

A hook is the workflow author's own shell command (like a ``run:`` step), run with ``sh -c`` on
this machine: the runner (inside the action's container) or the CLI's host, in the current
working directory (``GITHUB_WORKSPACE`` in the action), never on a load balancer.

- ``pre-switch``: after the health gate, before any load balancer changes (e.g. an expand
  migration). A failure stops the run; nothing was changed anywhere.
- ``post-switch``: after the last step was verified, before the drain (e.g. smoke tests through
  the LB). A failure restores the previous config on every load balancer.
- ``post-drain``: after the drain (e.g. scale the old version down). A failure is reported; the
  swap stays.

Its environment is this process's, less the action's own inputs (``BG_*`` and ``INPUT_*``: the
SSH key and verify-url's password live there), plus the swap's facts (``hook_env``), all strings:

==========================  ========================================================================
``SWAP_HOOK``               the hook's name: ``pre-switch``, ``post-switch`` or ``post-drain``
``SWAP_LIVE_SLOT``          the slot live before the switch (empty when unknown)
``SWAP_PREVIOUS_SLOT``      the same: the slot live before the switch (empty when unknown)
``SWAP_TARGET_SLOT``        the slot the swap makes live
``SWAP_BLUE_SERVERS``       blue's servers, ``host:port`` separated by commas
``SWAP_GREEN_SERVERS``      green's servers, the same way
``SWAP_TARGET_SERVERS``     the target slot's servers, the same way
``SWAP_GENERATION``         the id of the config that makes the target live (its marker answers it)
``SWAP_LBS``                the load balancers as given, separated by commas (a password: ``***``)
``SWAP_LB_COUNT``           how many load balancers
``SWAP_UPSTREAM``           the upstream's name
``SWAP_STAGING_UPSTREAM``   the staging upstream's name (empty: none)
``SWAP_STAGING_SLOT``       the slot the staging upstream points at (empty: none)
``SWAP_STAGING_URL``        staging-url as given (empty: unset)
``SWAP_DRY_RUN``            ``true`` or ``false``
==========================  ========================================================================

stdout and stderr are merged and passed line by line to the observer as they arrive (the caller
wraps the call in a timeline step: a collapsed log group on GitHub); the last 64 KiB are kept in
``HookRun.output``. The command runs in a session (so a process group) of its own: at the
timeout the whole group gets SIGTERM, then SIGKILL after ``TERM_GRACE_S``, so nothing it started
in the background is left running. A command that ends normally is waited for, not its
background processes: their output after it exited is not read (redirect it).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import HookError, SwapError
from .inputs import Slots
from .outcome import HookRun
from .redact import redact_credentials
from .timeline import Observer

HOOK_NAMES = ("pre-switch", "post-switch", "post-drain")

OUTPUT_CAP = 64 * 1024  # bytes of output kept in HookRun.output (the tail)
TERM_GRACE_S = 2.0  # after SIGTERM at the timeout: how long the group has before SIGKILL
EXIT_GRACE_S = 1.0  # after the shell exited: how long a background process may keep its output open
DETAIL_LINES = 20  # lines of output in the error's detail
MAX_LINE_BYTES = 8 * 1024  # a longer line (a progress bar redrawn with CR) is passed on in pieces
_POLL_S = 0.05
_READ_BYTES = 65536
_OWN_VARIABLES = ("BG_", "INPUT_")  # the action's inputs, secrets among them: never a hook's

_FIXES = {
    "pre-switch": (
        "nothing was changed on any load balancer; fix the command (its output is in the log group and the "
        "report) and run again"
    ),
    "post-switch": (
        "the previous config was restored on every load balancer (with rollback-on-failure: true, the default), "
        "so the slot live before serves again; fix what the hook found (its output is in the log group and the "
        "report) and run again"
    ),
    "post-drain": (
        "the swap stays: the target slot is live and the old one drained; do the hook's work by hand or in a "
        "later step (its output is in the log group and the report): running the swap again would swap back"
    ),
}


def hook_env(
    *,
    hook: str,
    live: str | None,
    target: str,
    slots: Slots,
    generation: str,
    lbs: Sequence[str],
    staging_slot: str | None,
    staging_url: str | None,
    staging_upstream: str | None,
    upstream: str,
    dry_run: bool = False,
) -> dict[str, str]:
    """The swap's facts as SWAP_* variables (strings)."""
    if hook not in HOOK_NAMES:
        raise ValueError(f"unknown hook {hook!r}: one of {', '.join(HOOK_NAMES)}")
    return {
        "SWAP_HOOK": hook,
        "SWAP_LIVE_SLOT": live or "",
        "SWAP_PREVIOUS_SLOT": live or "",
        "SWAP_TARGET_SLOT": target,
        "SWAP_BLUE_SERVERS": ",".join(slots.blue),
        "SWAP_GREEN_SERVERS": ",".join(slots.green),
        "SWAP_TARGET_SERVERS": ",".join(slots.servers(target)),
        "SWAP_GENERATION": generation,
        "SWAP_LBS": ",".join(redact_credentials(lb) for lb in lbs),
        "SWAP_LB_COUNT": str(len(lbs)),
        "SWAP_UPSTREAM": upstream,
        "SWAP_STAGING_UPSTREAM": staging_upstream or "",
        "SWAP_STAGING_SLOT": staging_slot or "",
        "SWAP_STAGING_URL": staging_url or "",  # the user's own URL, as given (it may hold their credentials)
        "SWAP_DRY_RUN": "true" if dry_run else "false",
    }


def run_hook(name: str, command: str, env: Mapping[str, str], timeout_s: float, observer: Observer) -> HookRun:
    """Run `command` with `sh -c` on this machine (the runner, or the CLI's host), in the current
    working directory (GITHUB_WORKSPACE in the action), with os.environ + env; stdout and stderr
    merged, each line passed to observer.info as it arrives (the caller wraps the call in a
    timeline step, which GitHub shows as a collapsed log group), and the last 64 KiB kept in
    HookRun.output. At timeout_s the whole process group is stopped (SIGTERM, then SIGKILL after
    a short grace), timed_out=True, exit_code=None. A command that cannot start gives
    exit_code=None with the reason in output. Never raises for the command's own failure.

    os.environ less the action's own inputs (``BG_*``, ``INPUT_*``). A command killed by a signal
    it was not sent here has the shell's exit code for it (128 + the signal's number).
    """
    start = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    output = _Output(observer.info)
    try:
        process = subprocess.Popen(
            ["sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_environment(env),
            start_new_session=True,
        )
    except OSError as exc:
        reason = f"cannot start the {name} hook with 'sh -c' in {_cwd()}: {exc.strerror or exc}"
        observer.info(reason)
        return HookRun(name, command, None, (time.perf_counter() - start) * 1000, reason)
    assert process.stdout is not None
    pipe = process.stdout
    try:
        timed_out = _pump(process, pipe.fileno(), deadline, output)
        if timed_out:
            observer.info(
                f"{name} hook: still running after {timeout_s:g} s (hook-timeout): stopping its process group"
            )
            _stop_group(process, pipe.fileno(), output)
    except BaseException:  # KeyboardInterrupt or SystemExit (a cancelled job): leave nothing running
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=TERM_GRACE_S)
        raise
    finally:
        output.close()
        pipe.close()
    code = process.returncode
    exit_code = None if timed_out or code is None else (code if code >= 0 else 128 - code)
    duration_ms = (time.perf_counter() - start) * 1000
    return HookRun(name, command, exit_code, duration_ms, output.text(), timed_out=timed_out)


def hook_error(run: HookRun) -> SwapError:
    """The SwapError (HookError) naming the hook, its exit code or timeout, its last output line,
    with a fix sentence that depends on the hook (what the failure did to the swap); its last
    ``DETAIL_LINES`` lines of output are the detail."""
    lines = [line for line in redact_credentials(run.output).splitlines() if line.strip()]
    if run.timed_out:
        how = f"did not finish within hook-timeout: stopped after {run.duration_ms / 1000:.1f} s"
    elif run.exit_code is None:
        how = "could not start"
    else:
        how = f"exited with {run.exit_code}"
    last = _shorten(lines[-1].strip()) if lines else "(no output)"
    fix = _FIXES.get(run.name, "fix the command (its output is in the log group and the report) and run again")
    return HookError(f"the {run.name} hook {how}: {last}", fix, detail="\n".join(lines[-DETAIL_LINES:]), hook=run.name)


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cwd() -> str:
    with contextlib.suppress(OSError):
        return str(Path.cwd())
    return "the current directory"


def _environment(env: Mapping[str, str]) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_VARIABLES)}
    return {**inherited, **env}


class _Output:
    """Bytes as they arrive: complete lines to ``emit``, the last ``OUTPUT_CAP`` bytes kept."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._tail = bytearray()
        self._partial = bytearray()

    def feed(self, data: bytes) -> None:
        self._tail += data
        if len(self._tail) > OUTPUT_CAP:
            del self._tail[: len(self._tail) - OUTPUT_CAP]
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        for line in lines:
            self._line(line)
        while len(rest) > MAX_LINE_BYTES:
            self._line(rest[:MAX_LINE_BYTES])
            rest = rest[MAX_LINE_BYTES:]
        self._partial = bytearray(rest)

    def close(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = bytearray()

    def text(self) -> str:
        return self._tail.decode(errors="replace")

    def _line(self, line: bytes | bytearray) -> None:
        self._emit(line.decode(errors="replace").rstrip("\r"))


def _pump(process: subprocess.Popen[bytes], fd: int, deadline: float, output: _Output) -> bool:
    """Read the command's output until it exits (and its output closes, or ``EXIT_GRACE_S`` later);
    True when ``deadline`` came first."""
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        eof = False
        while True:
            now = time.monotonic()
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and (eof or now - exited_at >= EXIT_GRACE_S):
                return False
            if now >= deadline:
                return exited_at is None
            if eof:  # it closed its output but runs on
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=deadline - now)
                continue
            if selector.select(timeout=min(_POLL_S, deadline - now)):
                data = os.read(fd, _READ_BYTES)
                if data:
                    output.feed(data)
                else:
                    eof = True


def _stop_group(process: subprocess.Popen[bytes], fd: int, output: _Output) -> None:
    """SIGTERM to the command's process group, SIGKILL to what is left after ``TERM_GRACE_S``;
    what it prints meanwhile is still read (a trap's last words)."""
    _signal_group(process.pid, signal.SIGTERM)
    grace_ends = time.monotonic() + TERM_GRACE_S
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        eof = False
        while time.monotonic() < grace_ends:
            process.poll()  # reaps the shell, so it no longer counts as a member of the group
            if not _group_alive(process.pid):
                break
            if not eof and selector.select(timeout=_POLL_S):
                data = os.read(fd, _READ_BYTES)
                if data:
                    output.feed(data)
                else:
                    eof = True
            elif eof:
                time.sleep(_POLL_S)
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=TERM_GRACE_S)
        # What is left in the pipe; a process that left the group may hold it open, so not until EOF.
        drain_ends = time.monotonic() + EXIT_GRACE_S
        while not eof and time.monotonic() < drain_ends and selector.select(timeout=0):
            data = os.read(fd, _READ_BYTES)
            if data:
                output.feed(data)
            else:
                eof = True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    """Does a process of group ``pgid`` still run? Zombies do not count: when this process is the
    container's PID 1 (the action), nobody reaps the group's orphans."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after its last ')'
        fields = stat.rpartition(")")[2].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
