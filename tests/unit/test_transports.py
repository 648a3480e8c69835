"""The transports themselves: no blind resends (issue 9, Deliver 2).

A command that may have reached the LB is never sent again: a resent ``install`` finds its own
work half done and reports the wrong thing. Only what certainly never left may be tried on a new
connection, and an error says which of the two happened (``TransportError.sent``: the engine then
knows whether the LB may have changed).

The real transport classes run against the smallest fake at their boundary, no Docker engine and no
SSH server: for Docker, a fake API client whose exec sessions are socket pairs, the far end played
by a thread that speaks the session's framing (the Docker stream header, the markers of
``_Session.run``) and records every byte it gets; for SSH, a fake paramiko client; the local
transport runs real processes.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import paramiko
import pytest
import requests.exceptions

from swap_action.errors import CommandTimeout, TransportError
from swap_action.transport.docker import DockerTransport
from swap_action.transport.local import LocalTransport
from swap_action.transport.ssh import SshTransport

# The last line of each command _Session.run writes: printf '\n__bg_done__ TAG %s\n' "$rc"
_DONE_LINE = re.compile(rb"__bg_done__ ([0-9a-f]{16}) %s[^\n]*\n")
APPLY = ["sh", "-c", 'mv "$1" "$2"', "apply", "/etc/nginx/.upstream.conf.candidate-g7", "/etc/nginx/upstream.conf"]


def frame(data: bytes, stream: int = 1) -> bytes:
    """One frame of Docker's multiplexed stream: stream, 0, 0, 0, big-endian size, the bytes."""
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(data)) + data


# What the container's shell does with each whole command it reads: True to go on reading.
Behaviour = Callable[["Shell", bytes, str], bool]


def answers(stdout: bytes = b"done\n", code: int = 0) -> Behaviour:
    def answer(shell: Shell, script: bytes, tag: str) -> bool:
        reply = stdout + f"\n__bg_err__ {tag}\n".encode() + f"\n__bg_done__ {tag} {code}\n".encode()
        shell.sock.sendall(frame(reply))
        return True

    return answer


def hangs_up(shell: Shell, script: bytes, tag: str) -> bool:
    """The whole command arrived (so it runs in the container), then the connection dropped."""
    return False


class Shell(threading.Thread):
    """The container's end of one exec session (its ``sh -s``): records every byte the transport
    sends, and hands each whole command to ``behaviour``."""

    def __init__(self, sock: socket.socket, behaviour: Behaviour) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.behaviour = behaviour
        self.received = b""
        self.commands: list[bytes] = []

    def run(self) -> None:
        pending = b""
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
                pending += chunk
                while found := _DONE_LINE.search(pending):
                    script, pending = pending[: found.end()], pending[found.end() :]
                    self.commands.append(script)
                    if not self.behaviour(self, script, found.group(1).decode()):
                        return
        except OSError:
            pass
        finally:
            self.hang_up()

    def hang_up(self) -> None:
        """The container closes the session (restarted, or the engine closed an idle stream)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def got(self, argv: list[str]) -> int:
        """How many times the command ``argv`` reached this shell whole."""
        return sum(shlex.join(argv).encode() in script for script in self.commands)


class BreaksMidSend:
    """A socket whose ``sendall`` puts the first half of the bytes on the wire, then fails as a
    connection reset in the middle of a write does."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real

    def sendall(self, data: bytes) -> None:
        self.real.sendall(data[: len(data) // 2])
        raise ConnectionResetError(104, "Connection reset by peer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class FakeDockerApi:
    """The low-level API calls DockerTransport makes (``exec_create``, ``exec_start``)."""

    def __init__(self) -> None:
        self.shells: list[Shell] = []
        self.exec_creates = 0
        self.behaviours: list[Behaviour] = []  # one per new session, in order; then answers()
        self.wrap: list[Callable[[socket.socket], Any]] = []  # the transport's end of the next sessions
        self.refuse_create: Exception | None = None
        self.refuse_start: Exception | None = None

    def exec_create(self, container: str, cmd: list[str], **_: object) -> dict[str, str]:
        self.exec_creates += 1
        if self.refuse_create is not None:
            raise self.refuse_create
        return {"Id": f"exec-{self.exec_creates}"}

    def exec_start(self, exec_id: str, socket: bool, demux: bool) -> SimpleNamespace:
        assert socket and not demux
        if self.refuse_start is not None:
            raise self.refuse_start
        ours, theirs = _socketpair()
        shell = Shell(theirs, self.behaviours.pop(0) if self.behaviours else answers())
        shell.start()
        self.shells.append(shell)
        wrapped = self.wrap.pop(0)(ours) if self.wrap else ours
        return SimpleNamespace(_sock=wrapped)  # as docker's SocketIO: the socket is its _sock

    def sent_anywhere(self, argv: list[str]) -> int:
        return sum(shell.got(argv) for shell in self.shells)


def _socketpair() -> tuple[socket.socket, socket.socket]:
    """A connected pair (exec_start's own parameter named ``socket`` hides the module there)."""
    return socket.socketpair()


class FakeDockerClient:
    def __init__(self, api: FakeDockerApi) -> None:
        self.api = api
        self.containers = SimpleNamespace(get=lambda name: SimpleNamespace(status="running", id="c0ffee", name=name))

    def close(self) -> None:
        pass


@pytest.fixture
def api() -> Iterator[FakeDockerApi]:
    fake = FakeDockerApi()
    yield fake
    for shell in fake.shells:
        shell.hang_up()
        shell.join(5)
        shell.sock.close()


def transport(api: FakeDockerApi) -> DockerTransport:
    return DockerTransport("lb", client=FakeDockerClient(api))


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


# -- Docker: what may have run is never sent again ---------------------------------------------------


def test_a_command_answers_through_the_session(api: FakeDockerApi) -> None:
    """The fake speaks the session's protocol: what the other tests break works when nothing breaks."""
    api.behaviours = [answers(b"lock=acquired\n", 3)]
    with transport(api) as lb:
        result = lb.run(APPLY, timeout=5)
        assert (result.exit_code, result.stdout, result.raw_stdout) == (3, "lock=acquired\n", b"lock=acquired\n")
        lb.run(["true"], timeout=5)
    assert api.exec_creates == 1, "one session for every command"
    assert api.shells[0].got(APPLY) == 1 and api.shells[0].got(["true"]) == 1


def test_a_command_whose_send_broke_after_bytes_went_out_is_not_resent(api: FakeDockerApi) -> None:
    api.wrap = [BreaksMidSend]
    lb = transport(api)
    with pytest.raises(TransportError) as caught:
        lb.run(APPLY, timeout=5)
    error = caught.value
    assert error.sent is True, "part of it reached the LB: it may have run"
    assert not isinstance(error, CommandTimeout)
    assert "broke during 'sh'" in error.cause and "settles a half-done swap" in error.fix
    _wait_for(lambda: bool(api.shells[0].received))
    assert api.shells[0].received, "bytes of the command went out before the send failed"
    assert api.exec_creates == 1, "no new session was opened to send it again"
    assert api.sent_anywhere(APPLY) == 0
    # The next command opens a new session, and only that command travels on it.
    assert lb.run(["true"], timeout=5).ok
    assert api.exec_creates == 2
    assert api.shells[1].got(["true"]) == 1 and b"candidate-g7" not in api.shells[1].received
    lb.close()


@pytest.mark.parametrize("how", ["run", "write_file"])
def test_a_session_lost_after_the_command_was_sent_is_an_error_and_never_a_resend(api: FakeDockerApi, how: str) -> None:
    api.behaviours = [hangs_up]
    lb = transport(api)
    with pytest.raises(TransportError) as caught:
        if how == "run":
            lb.run(APPLY, timeout=5)
        else:
            lb.write_file("/etc/nginx/upstream.conf", b"upstream app { server 10.0.0.2:8080; }\n")
    assert caught.value.sent is True and not isinstance(caught.value, CommandTimeout)
    assert len(api.shells[0].commands) == 1, "the whole command reached the LB once"
    assert api.exec_creates == 1, "and was not sent again on a new session"
    assert lb.run(["true"], timeout=5).ok
    assert [len(shell.commands) for shell in api.shells] == [1, 1]
    assert api.shells[1].got(["true"]) == 1 and b"upstream.conf" not in api.shells[1].received
    lb.close()


def test_a_session_that_died_before_anything_was_sent_is_replaced_once(api: FakeDockerApi) -> None:
    lb = transport(api)
    assert lb.run(["true"], timeout=5).ok
    api.shells[0].hang_up()  # the container restarted between two commands
    api.shells[0].join(5)
    result = lb.run(APPLY, timeout=5)
    assert result.ok and result.stdout == "done\n"
    assert api.exec_creates == 2, "one new session"
    assert api.shells[0].got(APPLY) == 0 and api.shells[1].got(APPLY) == 1, "sent once, on the new session"
    lb.close()


def test_a_dead_session_whose_replacement_is_refused_sent_nothing(api: FakeDockerApi) -> None:
    lb = transport(api)
    assert lb.run(["true"], timeout=5).ok
    api.shells[0].hang_up()
    api.shells[0].join(5)
    api.refuse_create = docker.errors.APIError("409 Client Error: Conflict (container c0ffee is not running)")
    with pytest.raises(TransportError) as caught:
        lb.run(APPLY, timeout=5)
    assert caught.value.sent is False
    assert api.exec_creates == 2, "one attempt at a new session, not a loop"
    assert api.sent_anywhere(APPLY) == 0
    lb.close()


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(
            ("create", docker.errors.APIError("409 Client Error: Conflict (not running)")), id="exec-create-409"
        ),
        pytest.param(("start", requests.exceptions.ConnectionError("Connection refused")), id="exec-start-refused"),
    ],
)
def test_a_refused_exec_counts_as_not_sent(api: FakeDockerApi, refusal: tuple[str, Exception]) -> None:
    where, error = refusal
    if where == "create":
        api.refuse_create = error
    else:
        api.refuse_start = error
    lb = transport(api)
    with pytest.raises(TransportError) as caught:
        lb.run(APPLY, timeout=5)
    assert caught.value.sent is False, "the command never left: nothing of it can have run"
    assert caught.value.cause.startswith("docker exec into docker://lb failed")
    assert api.exec_creates == 1, "not retried"
    assert api.shells == [] or api.sent_anywhere(APPLY) == 0
    lb.close()


# -- SSH and local: no retries at all ------------------------------------------------------------------


class FakeChannelFile:
    def __init__(self, data: bytes = b"", error: Exception | None = None) -> None:
        self.data, self.error = data, error
        self.channel = SimpleNamespace(shutdown_write=lambda: None, recv_exit_status=lambda: 0)
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def read(self) -> bytes:
        if self.error is not None:
            raise self.error
        return self.data


class FakeSshClient:
    """paramiko.SSHClient as SshTransport uses it; each exec_command is recorded."""

    def __init__(self, exec_error: Exception | None = None, read_error: Exception | None = None) -> None:
        self.exec_error, self.read_error = exec_error, read_error
        self.commands: list[str] = []
        self.puts = 0

    def exec_command(self, command: str, timeout: float) -> tuple[FakeChannelFile, ...]:
        self.commands.append(command)
        if self.exec_error is not None:
            raise self.exec_error
        return FakeChannelFile(), FakeChannelFile(b"done\n", self.read_error), FakeChannelFile()

    def open_sftp(self) -> Any:
        client = self

        class Sftp:
            def __enter__(self) -> Sftp:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def putfo(self, handle: Any, path: str) -> None:
                client.puts += 1
                handle.read(10)
                raise OSError("Socket is closed")

        return Sftp()

    def close(self) -> None:
        pass


def ssh(client: FakeSshClient) -> SshTransport:
    """An SshTransport over ``client`` (the constructor's connect and host key check are tested elsewhere)."""
    lb = SshTransport.__new__(SshTransport)
    lb.description = "ssh://deploy@lb:22"
    lb._client = client  # type: ignore[assignment]
    return lb


def test_ssh_a_command_whose_session_broke_while_it_ran_is_not_resent() -> None:
    client = FakeSshClient(read_error=paramiko.SSHException("Socket is closed"))
    with pytest.raises(TransportError) as caught:
        ssh(client).run(APPLY, stdin=b"candidate", timeout=5)
    assert caught.value.sent is True, "it was running on the LB"
    assert client.commands == [shlex.join(APPLY)]


@pytest.mark.parametrize(
    "error",
    [paramiko.SSHException("SSH session not active"), ConnectionResetError(104, "Connection reset by peer")],
)
def test_ssh_never_retries_a_command(error: Exception) -> None:
    client = FakeSshClient(exec_error=error)
    with pytest.raises(TransportError):
        ssh(client).run(APPLY, timeout=5)
    assert client.commands == [shlex.join(APPLY)]


def test_ssh_never_retries_a_file_write() -> None:
    client = FakeSshClient()
    with pytest.raises(TransportError, match="over SFTP"):
        ssh(client).write_file("/etc/nginx/upstream.conf", b"upstream app { server 10.0.0.2:8080; }\n")
    assert client.puts == 1


@pytest.mark.parametrize(
    ("script", "timeout"),
    [('echo ran >> "$1"; exit 1', 10.0), ('echo ran >> "$1"; exec sleep 30', 1.0)],
    ids=["fails", "times-out"],
)
def test_local_runs_each_command_once(tmp_path: Path, script: str, timeout: float) -> None:
    runs = tmp_path / "runs"
    lb = LocalTransport()
    if timeout < 5:
        with pytest.raises(CommandTimeout) as caught:
            lb.run(["sh", "-c", script, "sh", str(runs)], timeout=timeout)
        assert caught.value.sent is True, "it was running"
    else:
        assert lb.run(["sh", "-c", script, "sh", str(runs)], timeout=timeout).exit_code == 1
    time.sleep(0.2)
    assert runs.read_text() == "ran\n"
