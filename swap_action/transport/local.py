"""Run on this machine: for an action running on the LB host itself (self-hosted runners).

Each command runs in a session (so a process group) of its own: on a timeout, or when the run is
interrupted, the whole group is killed, so nothing the command started in the background (a
``sh -c '... &'``) is left running. A daemon that starts its own session (nginx) is not touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from ..errors import CommandTimeout, TransportError
from . import CommandResult, Transport, describe

REAP_SECONDS = 2.0  # after the kill: how long to wait for the pipes (a process that left the group may hold them)


class LocalTransport(Transport):
    description = "local"

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        try:
            code, out, err = _run_in_own_group(argv, stdin or b"", timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeout(
                f"'{describe(argv)}' did not finish within {timeout:.0f}s on this machine",
                "check that Nginx answers (nginx -t hangs on unresolvable upstream hosts)",
            ) from None
        except FileNotFoundError:
            raise TransportError(
                f"'{argv[0]}' is not installed on this machine",
                f"install {argv[0]} on the load balancer host",
            ) from None
        except OSError as exc:
            raise TransportError(
                f"cannot run '{describe(argv)}': {exc}", "run the action as a user allowed to manage Nginx"
            ) from None
        return CommandResult(tuple(argv), code, out.decode(errors="replace"), err.decode(errors="replace"), out)

    def write_file(self, path: str, data: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise TransportError(
                f"cannot write {path}: {exc.strerror}", "run as a user that may write the Nginx config directory"
            ) from None


def _run_in_own_group(argv: Sequence[str], stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """Exit code, stdout and stderr; raises ``TimeoutExpired`` once the command's group is killed."""
    pipe = subprocess.PIPE
    with subprocess.Popen(list(argv), stdin=pipe, stdout=pipe, stderr=pipe, start_new_session=True) as process:
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except BaseException:  # TimeoutExpired, and KeyboardInterrupt or SystemExit (a cancelled job)
            _kill_group(process)
            raise
        return process.returncode, out, err


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to every process of the command's group (its pid is the group's id), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=REAP_SECONDS)
