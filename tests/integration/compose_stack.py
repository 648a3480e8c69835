"""docker-compose.test.yml brought up under a unique project name and a free LB port, for tests.

Works with Debian's ``docker-compose`` (v1) and with ``docker compose`` (v2); ``BG_COMPOSE`` picks
one explicitly (e.g. ``BG_COMPOSE="docker compose"``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.test.yml"
IMAGES = ("bluegreen/lb:dev", "bluegreen/app:dev")
LB_CONFIG = "/etc/nginx/bluegreen/upstream.conf"


def compose_command() -> list[str]:
    chosen = os.environ.get("BG_COMPOSE")
    if chosen:
        return shlex.split(chosen)
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    pytest.skip("neither docker-compose (v1) nor 'docker compose' (v2) is installed")


def require_docker(*images: str) -> None:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine answers")
    missing = [i for i in images if subprocess.run(["docker", "image", "inspect", i], capture_output=True).returncode]
    if missing:
        pytest.skip(f"images missing: {', '.join(missing)} (run scripts/build-images.sh)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str = "/", timeout: float = 3.0) -> str:
    """The body of one request on a fresh connection to the LB, or '' when it did not answer 200."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.read().decode().strip())
    except (urllib.error.URLError, OSError):
        return ""


@dataclass
class ComposeStack:
    project: str = field(default_factory=lambda: f"bgact-{uuid.uuid4().hex[:8]}")
    port: int = field(default_factory=free_port)
    command: list[str] = field(default_factory=compose_command)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LB_PORT": str(self.port)}
        argv = [*self.command, "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def up(self) -> None:
        done = self.run("up", "-d")
        if done.returncode != 0:
            self.down()
            raise AssertionError(f"compose up failed:\n{done.stdout}\n{done.stderr}")
        self.wait_for("blue")

    def down(self) -> None:
        self.run("down", "-v", "--remove-orphans", timeout=120)

    def container_id(self, service: str) -> str:
        done = self.run("ps", "-q", service)
        container = done.stdout.strip()
        assert container, f"no container for service {service}: {done.stderr}"
        return container

    def container_name(self, service: str) -> str:
        """What compose called it: <project>_lb_1 (v1) or <project>-lb-1 (v2)."""
        done = subprocess.run(
            ["docker", "inspect", "-f", "{{.Name}}", self.container_id(service)], capture_output=True, text=True
        )
        return done.stdout.strip().lstrip("/")

    def body(self, path: str = "/") -> str:
        return get(self.port, path)

    def bodies(self, count: int = 10) -> set[str]:
        return {self.body() for _ in range(count)}

    def wait_for(self, expected: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            seen = self.body()
            if seen == expected:
                return
            time.sleep(0.5)
        logs = self.run("logs", "--tail", "30").stdout
        raise AssertionError(f"the LB on port {self.port} answers {seen!r}, not {expected!r}\n{logs}")
