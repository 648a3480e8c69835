"""Real containers for the CLI tests: blue and green apps and the LB on a private network.

Everything is named ``bgcli-<id>-...`` and labelled ``bgcli``; ``LbStack.close`` removes it. The
LB's port 80 is published on 127.0.0.1 at a random port. The CLI runs as a subprocess
(``python -m swap_action``) against ``docker://<lb container>``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

ROOT = Path(__file__).resolve().parents[2]
LB_IMAGE = "bluegreen/lb:dev"
APP_IMAGE = "bluegreen/app:dev"
MANAGED = "/etc/nginx/bluegreen/upstream.conf"
ERROR_LOG = "/var/log/nginx/error.log"
LABEL = "bgcli"
READY_SECONDS = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    upstream_addr: str


@dataclass
class LbStack:
    client: Any
    prefix: str
    network: Any = None
    containers: dict[str, Any] = field(default_factory=dict)
    port: int = 0

    @property
    def lb_name(self) -> str:
        return f"{self.prefix}-lb"

    # -- on the LB ------------------------------------------------------------------------
    def exec(self, *argv: str) -> tuple[int, bytes]:
        code, output = self.containers["lb"].exec_run(list(argv))
        return int(code), bytes(output or b"")

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
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers={"Connection": "close"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return Answer(
                    response.status, response.read().decode().strip(), response.headers.get("X-Upstream-Addr", "")
                )
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode().strip(), exc.headers.get("X-Upstream-Addr", ""))

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

    # -- lifecycle --------------------------------------------------------------------------
    def diagnostics(self) -> str:
        parts = []
        if "lb" in self.containers:
            try:
                parts.append(f"--- {self.lb_name}: {ERROR_LOG} ---\n{self.error_log()[-8000:]}")
                parts.append(f"--- {self.lb_name}: {MANAGED} ---\n{self.managed_bytes().decode(errors='replace')}")
                listing = self.exec("ls", "-la", str(Path(MANAGED).parent))[1].decode(errors="replace")
                parts.append(f"--- {self.lb_name}: ls -la {Path(MANAGED).parent} ---\n{listing}")
            except Exception as exc:  # diagnostics must never hide the real failure
                parts.append(f"(cannot read the LB's files: {exc})")
        for slot in ("blue", "green"):
            if slot in self.containers:
                try:
                    logs = self.containers[slot].logs(tail=30).decode(errors="replace")
                    parts.append(f"--- {self.prefix}-{slot} logs ---\n{logs}")
                except Exception as exc:
                    parts.append(f"(cannot read {slot}'s logs: {exc})")
        return "\n".join(parts)

    def close(self) -> None:
        for container in self.containers.values():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        if self.network is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.network.remove()


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


def docker_client() -> Any:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine: {exc}")
    for image in (LB_IMAGE, APP_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"image {image} is missing: build it with 'make images'")
    return client


def start_stack(
    client: Any, *, blue_env: Mapping[str, str] | None = None, green_env: Mapping[str, str] | None = None
) -> LbStack:
    """Start blue, green and the LB; return once the LB answers through its published port."""
    stack = LbStack(client, prefix=f"bgcli-{secrets.token_hex(3)}")
    try:
        stack.network = client.networks.create(f"{stack.prefix}-net", driver="bridge", labels={LABEL: "1"})
        for slot, extra in (("blue", blue_env), ("green", green_env)):
            stack.containers[slot] = client.containers.run(
                APP_IMAGE,
                name=f"{stack.prefix}-{slot}",
                detach=True,
                labels={LABEL: "1"},
                environment={"APP_VERSION": slot, **(extra or {})},
                network=stack.network.name,
                networking_config={stack.network.name: client.api.create_endpoint_config(aliases=[slot])},
            )
        stack.containers["lb"] = client.containers.run(
            LB_IMAGE,
            name=stack.lb_name,
            detach=True,
            labels={LABEL: "1"},
            network=stack.network.name,
            ports={"80/tcp": ("127.0.0.1", None)},
        )
        _wait_ready(stack)
    except BaseException:
        stack.close()
        raise
    return stack


def _wait_ready(stack: LbStack) -> None:
    deadline = time.monotonic() + READY_SECONDS
    last = ""
    while time.monotonic() < deadline:
        lb = stack.containers["lb"]
        lb.reload()
        if lb.status == "exited":
            raise RuntimeError(f"the LB exited: {lb.logs().decode(errors='replace')}")
        bindings = (lb.attrs["NetworkSettings"]["Ports"] or {}).get("80/tcp") or []
        if bindings and lb.status == "running":
            stack.port = int(bindings[0]["HostPort"])
            # Both apps answer (green may be deliberately unhealthy: any HTTP status will do).
            codes = []
            for slot in ("blue", "green"):
                _code, out = stack.exec(
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "1",
                    f"http://{slot}:8080/healthz",
                )
                codes.append(out.decode())
            last = f"apps: {codes}"
            if all(code not in ("", "000") for code in codes):
                try:
                    answer = stack.get("/__lb/health")
                    if answer.status == 200:
                        return
                    last = f"LB health: {answer.status}"
                except OSError as exc:
                    last = f"LB: {exc}"
        time.sleep(0.2)
    raise RuntimeError(f"the stack {stack.prefix} was not ready after {READY_SECONDS:.0f}s ({last})")
