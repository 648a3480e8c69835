"""Run on this machine: for an action running on the LB host itself (self-hosted runners)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from ..errors import CommandTimeout, TransportError
from . import CommandResult, Transport, describe


class LocalTransport(Transport):
    description = "local"

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        try:
            done = subprocess.run(list(argv), input=stdin or b"", capture_output=True, timeout=timeout, check=False)
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
        return CommandResult(
            tuple(argv),
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
            done.stdout,
        )

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
