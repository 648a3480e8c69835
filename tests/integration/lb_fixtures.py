"""Real containers for the integration tests: the harness's ``Environment`` (LB, blue and green on
a private network, port 80 published on 127.0.0.1), with what the CLI tests read and run.

``start_environment`` skips without a Docker engine and fails naming a missing image. ``LbStack``
wraps a started environment: the LB's files and error log, requests from the host through the
published port, and the CLI as a subprocess (``python -m swap_action``) against
``docker://<name>-lb``.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest

from simulation.environment import (
    ERROR_LOG,
    MANAGED_FILE,
    AppSpec,
    DockerUnavailable,
    Environment,
    StartupError,
)

ROOT = Path(__file__).resolve().parents[2]
MANAGED = MANAGED_FILE


def start_environment(
    prefix: str,
    *,
    blue_env: dict[str, str] | None = None,
    green_env: dict[str, str] | None = None,
    green_healthy: bool = True,
    ssh_authorized_keys: str | None = None,
    ssh_user: str = "root",
    lb_tmpfs: dict[str, str] | None = None,
    lb_binds: dict[str, str] | None = None,
    lbs: int = 1,
) -> Environment:
    """A started ``Environment`` (of ``lbs`` LBs) named ``<prefix>-<random>``; the caller stops it."""
    env = Environment(
        AppSpec(env=dict(blue_env or {})),
        AppSpec(env=dict(green_env or {}), healthy=green_healthy),
        name=f"{prefix}-{secrets.token_hex(4)}",
        ssh_authorized_keys=ssh_authorized_keys,
        ssh_user=ssh_user,
        lb_tmpfs=lb_tmpfs,
        lb_binds=lb_binds,
        lbs=lbs,
    )
    try:
        return env.start()
    except DockerUnavailable as exc:
        pytest.skip(str(exc))
    except StartupError as exc:
        pytest.fail(str(exc), pytrace=False)


def start_ssh_environment(prefix: str, files: Path, *, user: str = "root") -> tuple[Environment, list[str]]:
    """A started ``Environment`` whose LB runs sshd for ``user`` (a fresh key; any other user than
    root: no root login at all), and the CLI flags that reach it: key and known-hosts files in ``files``."""
    key = paramiko.ECDSAKey.generate()
    buffer = io.StringIO()
    key.write_private_key(buffer)
    env = start_environment(prefix, ssh_authorized_keys=f"{key.get_name()} {key.get_base64()}", ssh_user=user)
    (files / "key").write_text(buffer.getvalue())
    (files / "known_hosts").write_text(env.known_hosts())
    return env, ["--ssh-key-file", str(files / "key"), "--known-hosts-file", str(files / "known_hosts")]


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    upstream_addr: str


def http_get(url: str) -> Answer:
    """One request on a new connection: its status, body and the LB's X-Upstream-Addr."""
    request = urllib.request.Request(url, headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Answer(
                response.status, response.read().decode().strip(), response.headers.get("X-Upstream-Addr", "")
            )
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode().strip(), exc.headers.get("X-Upstream-Addr", ""))


@dataclass
class LbStack:
    env: Environment

    @property
    def lb_name(self) -> str:
        return self.env.lb_container_name

    @property
    def port(self) -> int:
        return self.env.lb_port

    # -- on the LB ------------------------------------------------------------------------
    def exec(self, *argv: str) -> tuple[int, bytes]:
        result = self.env.lb.exec(list(argv))
        return -1 if result.exit_code is None else result.exit_code, bytes(result.output or b"")

    def managed_bytes(self) -> bytes:
        code, output = self.exec("cat", MANAGED)
        assert code == 0, output
        return output

    def error_log(self) -> str:
        return self.exec("cat", ERROR_LOG)[1].decode(errors="replace")

    def reloads(self) -> int:
        """How many times the master has started a reload so far (``... [notice] 8#8: reconfiguring``).

        Each reload logs ``signal 1 (SIGHUP) received from N, reconfiguring`` then ``M#M: reconfiguring``;
        only the second ends with ``: reconfiguring``.
        """
        return sum(1 for line in self.error_log().splitlines() if line.rstrip().endswith(": reconfiguring"))

    def exists(self, path: str) -> bool:
        return self.exec("test", "-e", path)[0] == 0

    # -- from the host, through the published port ------------------------------------------
    def get(self, path: str = "/") -> Answer:
        return http_get(f"http://127.0.0.1:{self.port}{path}")

    @contextlib.contextmanager
    def long_request(self, seconds: int, lead: float = 0.2) -> Iterator[None]:
        """A long request (the demo app's /slow) held open on the live slot for what the block does:
        a drain then waits for it, to its deadline. A cut may end it mid-body: expected."""

        def hold() -> None:
            with contextlib.suppress(http.client.IncompleteRead, ValueError, OSError):
                self.get(f"/slow?seconds={seconds}")

        held = threading.Thread(target=hold, daemon=True)
        held.start()
        time.sleep(lead)  # the request reaches the old slot before the swap starts
        try:
            yield
        finally:
            held.join(timeout=seconds + 5)

    def bodies(self, count: int = 10) -> set[str]:
        return {self.get().body for _ in range(count)}

    # -- the CLI ----------------------------------------------------------------------------
    def argv(self, command: str, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "swap_action",
            command,
            "--target",
            f"docker://{self.lb_name}",
            "--config-path",
            MANAGED,
            *args,
        ]

    def cli(self, command: str, *args: str, timeout: float = 180) -> CliRun:
        started = time.monotonic()
        done = subprocess.run(
            self.argv(command, *args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def popen(self, command: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, *args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    # -- after a failure --------------------------------------------------------------------
    def diagnostics(self) -> str:
        """The LB's error log, managed file and processes, and each slot's last log lines."""
        parts = [f"--- {self.lb_name}: {label} ---\n{text[-8000:]}" for label, text in self.env.diagnostics().items()]
        parts += [f"--- {self.env.name}-{slot} logs ---\n{self.env.slot_logs(slot)}" for slot in ("blue", "green")]
        return "\n".join(parts)


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str
    seconds: float

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data

    def __str__(self) -> str:
        return f"exit {self.code} after {self.seconds:.2f}s\n--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"
