"""Exec into the load balancer's container through the Docker API (the socket GitHub mounts).

Each ``docker exec`` costs tens of milliseconds of API round trips, and a swap runs a dozen
commands, so the transport keeps one shell open in the container (an exec session with stdin
attached) and runs every command through it: a command then costs about a millisecond. Arguments
are quoted with ``shlex.quote``; the shell never parses user input as code.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import shlex
import socket
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ..errors import CommandTimeout, TransportError
from . import CommandResult, Transport, describe

_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


class _Session:
    """A shell in the container speaking a tiny framed protocol over the exec's stdin/stdout."""

    def __init__(self, api: Any, container_id: str) -> None:
        exec_id = api.exec_create(
            container_id,
            ["sh", "-c", "d=$(mktemp -d); export d; exec sh -s"],
            stdin=True,
            stdout=True,
            stderr=False,
            tty=False,
        )["Id"]
        raw = api.exec_start(exec_id, socket=True, demux=False)
        self._sock: socket.socket = getattr(raw, "_sock", raw)
        self._buffer = b""

    def run(self, argv: Sequence[str], timeout: float, stdin_data: bytes | None = None) -> tuple[int, bytes, bytes]:
        """Run one command; its stdout streams back as is, framed by markers carrying a random tag:

            <stdout> \n__bg_err__ TAG\n <stderr> \n__bg_done__ TAG <exit code>\n

        (no temporary file or extra process for stdout: a command costs about one fork.)
        """
        tag = secrets.token_hex(8)
        command = shlex.join(argv)
        if timeout:
            command = f"timeout {int(max(1, timeout))} {command}"
        if stdin_data is not None:
            encoded = base64.b64encode(stdin_data).decode()
            payload = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
            first = f"{{ base64 -d | {command}; }} 2>\"$d/e\" <<'__bg_{tag}__'\n{payload}\n__bg_{tag}__\nrc=$?\n"
        else:
            first = f'{command} </dev/null 2>"$d/e"; rc=$?\n'
        script = (
            first
            + f'printf \'\\n__bg_err__ {tag}\\n\'; [ -s "$d/e" ] && cat "$d/e"; '
            + f"printf '\\n__bg_done__ {tag} %s\\n' \"$rc\"\n"
        )
        self._sock.sendall(script.encode())
        deadline = time.monotonic() + timeout + 10
        err_marker = f"\n__bg_err__ {tag}\n".encode()
        done_marker = f"\n__bg_done__ {tag} ".encode()
        while True:
            head, found, tail = self._buffer.partition(done_marker)
            if found and b"\n" in tail:
                break
            self._read(deadline)
        code, _, self._buffer = tail.partition(b"\n")
        out, _, err = head.partition(err_marker)
        return int(code), out, err

    def alive(self) -> bool:
        """False when the container closed the session (restarted, idle streams closed): checked
        before a command is sent, so a dead session is replaced without resending anything."""
        try:
            self._sock.setblocking(False)
            try:
                return self._sock.recv(1, socket.MSG_PEEK) != b""
            finally:
                self._sock.setblocking(True)
        except BlockingIOError:
            return True  # nothing to read and not closed: alive
        except OSError:
            return False

    def _read(self, deadline: float) -> None:
        """Read one multiplexed frame (8-byte header: stream, 0, 0, 0, size) of stdout."""
        header = self._exactly(8, deadline)
        size = struct.unpack(">I", header[4:])[0]
        data = self._exactly(size, deadline)
        if header[0] == 1:
            self._buffer += data

    def _exactly(self, size: int, deadline: float) -> bytes:
        chunks = b""
        while len(chunks) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(size - len(chunks))
            if not chunk:
                raise ConnectionError("the exec session closed")
            chunks += chunk
        return chunks

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"exit\n")
        self._sock.close()


class DockerTransport(Transport):
    def __init__(self, container: str, client: Any | None = None) -> None:
        self.description = f"docker://{container}"
        # One shell per calling thread: the lock's lease is renewed from a thread of its own while
        # the run's own command (a drain, a health gate) is still going on the other session.
        self._sessions: dict[int, _Session] = {}
        self._lock = threading.Lock()  # guards the dict, never held across a command
        try:
            self._client = client or docker.from_env(timeout=120)
            self._container = self._client.containers.get(container)
        except docker.errors.NotFound:
            raise TransportError(
                f"no container named '{container}' on this Docker engine",
                "check the name with 'docker ps' (compose names containers <project>-<service>-1 or <project>_<service>_1)",
            ) from None
        except _DOCKER_ERRORS as exc:
            raise TransportError(
                f"cannot talk to the Docker engine: {exc}",
                "mount the Docker socket (/var/run/docker.sock) or set DOCKER_HOST",
            ) from None
        if self._container.status != "running":
            raise TransportError(f"container '{container}' is {self._container.status}", "start it first")

    def _run(self, argv: Sequence[str], timeout: float, stdin_data: bytes | None = None) -> CommandResult:
        try:
            session = self._sessions.get(threading.get_ident())
            if session is not None and not session.alive():
                self._drop()  # nothing was sent on it: a new session is safe
                session = None
            if session is None:
                session = _Session(self._client.api, self._container.id)
                with self._lock:
                    self._sessions[threading.get_ident()] = session
            code, out, err = session.run(argv, timeout, stdin_data)
        except _DOCKER_ERRORS as exc:
            # The engine refused the exec itself (e.g. 409: not running): the command never left here.
            self._drop()
            raise TransportError.unsent(
                f"docker exec into {self.description} failed: {exc}", "check the container is running"
            ) from None
        except TimeoutError:
            self._drop()
            raise CommandTimeout(
                f"'{describe(argv)}' did not finish within {timeout:.0f}s", "check the LB container"
            ) from None
        except (ConnectionError, OSError) as exc:
            # Once a command was sent it may have run: it is never sent again (no blind resends).
            self._drop()
            raise TransportError(
                f"the exec session to {self.description} broke during '{argv[0]}': {exc}",
                "check the container is running; the next run settles a half-done swap",
            ) from None
        if code == 124 and timeout:
            raise CommandTimeout(f"'{describe(argv)}' did not finish within {timeout:.0f}s", "check the LB container")
        if code in (126, 127):
            raise TransportError(
                f"'{argv[0]}' cannot be run in {self.description}: {err.decode(errors='replace').strip()}",
                f"install {argv[0]} in the load balancer image",
            )
        return CommandResult(tuple(argv), code, out.decode(errors="replace"), err.decode(errors="replace"), out)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        return self._run(argv, timeout, stdin)

    def write_file(self, path: str, data: bytes) -> None:
        result = self._run(["sh", "-c", 'cat > "$1"', "write", path], 60.0, stdin_data=data)
        if not result.ok:
            raise TransportError(
                f"cannot write {path} in {self.description}: {result.output}",
                "check the directory exists and is writable",
            )

    def _drop(self) -> None:
        """Close this thread's session (the next command opens a new one)."""
        with self._lock:
            session = self._sessions.pop(threading.get_ident(), None)
        if session is not None:
            session.close()

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()
        self._client.close()
