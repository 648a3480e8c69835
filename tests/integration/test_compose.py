"""docker-compose.test.yml (the stack the README brings up by hand) really brings up a swappable
stack, and the CLI swaps it.

This is the only test that starts containers with compose: what it checks is the file itself.
Every other real-Nginx test runs in the harness's ``Environment``. Works with Debian's
``docker-compose`` (v1) and with ``docker compose`` (v2): the test runs under each one installed
(``make docker`` installs both on Debian); ``BG_COMPOSE`` picks one explicitly (e.g.
``BG_COMPOSE="docker compose"``).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from lb_fixtures import MANAGED, ROOT

from simulation.environment import APP_IMAGE, LB_IMAGE, DockerUnavailable, StartupError, check_images

pytestmark = pytest.mark.docker

COMPOSE_FILE = ROOT / "docker-compose.test.yml"


VARIANTS = {
    "v1": (["docker-compose"], "1.", "docker-compose v1 (Debian bookworm's docker-compose package) is not installed"),
    "v2": (
        ["docker", "compose"],
        "2.",
        "Compose v2 ('docker compose') is not installed: bash scripts/ensure-compose.sh",
    ),
}


def compose_version(command: list[str]) -> str:
    """``version --short`` of a compose command ('' when it does not run)."""
    try:
        done = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    return done.stdout.strip().lstrip("v") if done.returncode == 0 else ""


def compose_command(variant: str) -> list[str]:
    """The command of a variant (v1: docker-compose 1.x; v2: docker compose 2.x); skips when it is
    absent. ``BG_COMPOSE`` names one command explicitly: only its variant runs then."""
    command, prefix, absent = VARIANTS[variant]
    chosen = os.environ.get("BG_COMPOSE")
    if chosen:
        command = shlex.split(chosen)
        version = compose_version(command)
        if not version.startswith(prefix):
            pytest.skip(f"BG_COMPOSE={chosen!r} is compose {version or '(not runnable)'}, not {variant}")
        return command
    if not compose_version(command).startswith(prefix):
        pytest.skip(absent)
    return command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ComposeStack:
    project: str = field(default_factory=lambda: f"bgcompose-{uuid.uuid4().hex[:8]}")
    port: int = field(default_factory=free_port)
    command: list[str] = field(default_factory=lambda: ["docker", "compose"])
    variant: str = "v2"

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LB_PORT": str(self.port)}
        argv = [*self.command, "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def container_name(self, service: str) -> str:
        """What compose called it: <project>_lb_1 (v1) or <project>-lb-1 (v2)."""
        container = self.run("ps", "-q", service).stdout.strip()
        assert container, f"no container for service {service}"
        done = subprocess.run(["docker", "inspect", "-f", "{{.Name}}", container], capture_output=True, text=True)
        return done.stdout.strip().lstrip("/")

    def body(self) -> str:
        """The body of one request on a fresh connection to the LB, or '' when it did not answer 200."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/", headers={"Connection": "close"})
        try:
            with urllib.request.urlopen(request, timeout=3) as response:
                return str(response.read().decode().strip())
        except (urllib.error.URLError, OSError):
            return ""

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


@pytest.fixture(params=sorted(VARIANTS))
def stack(request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    """The test stack under Compose v1 and under v2 (a variant that is not installed is skipped)."""
    command = compose_command(request.param)
    try:
        check_images(LB_IMAGE, APP_IMAGE)
    except DockerUnavailable as exc:
        pytest.skip(str(exc))
    except StartupError as exc:
        pytest.fail(str(exc), pytrace=False)
    stack = ComposeStack(command=command, variant=request.param)
    try:
        done = stack.run("up", "-d")
        assert done.returncode == 0, f"compose up failed:\n{done.stdout}\n{done.stderr}"
        stack.wait_for("blue")
        yield stack
    finally:
        stack.run("down", "-v", "--remove-orphans", timeout=120)


def test_compose_stack_starts_blue_and_the_cli_swaps_it_to_green_and_back(stack: ComposeStack) -> None:
    """As a new user would: no --config-path (the preflight finds the file the LB's Nginx loads)."""
    assert stack.bodies() == {"blue"}
    name = stack.container_name("lb")
    assert name == (f"{stack.project}_lb_1" if stack.variant == "v1" else f"{stack.project}-lb-1")  # v1 / v2 naming
    for to, expected, previous in (("green", "green", "blue"), ("auto", "blue", "green")):
        done = subprocess.run(
            [
                sys.executable, "-m", "swap_action", "swap",
                "--target", f"docker://{name}",
                "--blue", "blue:8080", "--green", "green:8080",
                "--to", to,
                "--verify-url", "http://127.0.0.1/", "--verify-expect", expected,
                "--json",
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        outcome = report["outcome"]
        assert (outcome["active"], outcome["previous"], outcome["changed"]) == (expected, previous, True)
        assert MANAGED in report["steps"][0]["detail"], "the managed file was found, not given"
        assert stack.bodies() == {expected}
