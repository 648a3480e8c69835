"""How the engine talks to the load balancer host: one small interface, three implementations.

A transport runs an argument vector on the LB host (never a shell string built from user input)
and writes a file there. Each implementation maps its own errors into ``TransportError``.
"""

from __future__ import annotations

import abc
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""  # stdout as the LB wrote it (the scripts' format counts bytes)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()


class Transport(abc.ABC):
    """Runs commands and writes files on the load balancer host."""

    description = "transport"

    @abc.abstractmethod
    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        """Run ``argv`` (no shell), feeding it ``stdin``; a non-zero exit is not an error here."""

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` (not atomically: callers write a temp name and rename)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def open_transport(target: str, *, ssh_key: str | None = None, known_hosts: str | None = None) -> Transport:
    """``docker://container``, ``ssh://user@host[:port]`` or ``local``."""
    target = target.strip()
    if target.startswith("docker://"):
        from .docker import DockerTransport

        return DockerTransport(target.removeprefix("docker://"))
    if target.startswith("ssh://"):
        from .ssh import SshTransport

        return SshTransport.from_url(target, key=ssh_key, known_hosts=known_hosts)
    if target == "local":
        from .local import LocalTransport

        return LocalTransport()
    raise InputError(
        "target",
        f"'{target}' is not a target",
        "use ssh://user@host[:port], docker://<container name> or local",
    )
