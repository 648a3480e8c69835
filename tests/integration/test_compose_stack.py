"""The harness on a team's whole stack (``--compose``): their compose file, their services, their
database; the example in examples/postgres-app validated with one command, with the harness's LB
and with the team's own Nginx service; a stack whose app cannot reach its database stopped before
any traffic, with the app's own log lines in the message. The team's files are never modified."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from simulation.compose import compose_v2_version
from simulation.environment import LB_IMAGE, DockerUnavailable, StartupError, check_images
from simulation.pytest_plugin import SimulationOutcome, assert_swap_correct

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "postgres-app"
COMPOSE = EXAMPLE / "compose.yaml"
TEAM_LB = EXAMPLE / "compose.lb.yaml"
DB_UNREACHABLE = Path(__file__).parent / "compose_stacks" / "db-unreachable.yaml"
ONE_COMMAND = [sys.executable, "-m", "simulation", "run", "--compose", str(COMPOSE), "--ws-path", "none"]


@pytest.fixture(autouse=True)
def needs_compose_v2() -> Iterator[None]:
    try:
        check_images(LB_IMAGE, "debian:bookworm-slim")
    except DockerUnavailable as exc:
        pytest.skip(str(exc))
    except StartupError as exc:
        pytest.fail(str(exc), pytrace=False)
    if compose_v2_version() is None:
        pytest.skip("Compose v2 ('docker compose') is not installed: bash scripts/ensure-compose.sh")
    before = team_files()
    yield
    assert team_files() == before, "the team's files were modified"
    assert not leftovers(), f"containers left behind: {leftovers()}"


def team_files() -> dict[str, str]:
    """A digest of every file of the example (the team's files: never modified by a run)."""
    return {
        str(path.relative_to(EXAMPLE)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(EXAMPLE.rglob("*"))
        if path.is_file()
    }


def leftovers() -> list[str]:
    client = docker.from_env(timeout=30)
    try:
        return [
            c.name
            for c in client.containers.list(all=True)
            if c.labels.get("com.docker.compose.project", "").startswith("bgcompose-")
            or c.name.startswith("bgcompose-")
        ]
    finally:
        client.close()


def _one_command(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The README's one command (with ``extra`` flags), run from the repository's root."""
    command = [*ONE_COMMAND, *extra, "--report-dir", str(tmp_path)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_the_example_stack_validates_with_one_command(tmp_path: Path) -> None:
    done = _one_command(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: PASSED" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True
    assert all(check["passed"] for check in report["assertions"])
    assert report["requests"]["failed"] == 0
    assert set(report["requests"]["by_slot_after_switch"]) == {"green"}
    stack = report["lb"]["compose"]
    services = {s["service"]: s for s in stack["services"]}
    assert set(services) == {"db", "blue", "green"}
    assert {s["health"] for s in services.values()} == {"healthy"}
    assert (services["blue"]["role"], services["green"]["role"], services["db"]["role"]) == (
        "blue slot",
        "green slot",
        "",
    )
    added = report["lb"]["added_by_harness"]
    assert any("the harness's LB" in line and "published on 127.0.0.1:" in line for line in added), added
    html = (tmp_path / "report.html").read_text()
    assert "The compose stack" in html
    for service in services.values():
        assert service["container"] in html and service["image"] in html


def test_a_stack_whose_app_cannot_reach_its_database_fails_before_traffic(tmp_path: Path) -> None:
    done = _one_command(tmp_path, "--compose", str(DB_UNREACHABLE))
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr
    assert "the compose stack did not come up: service 'blue' is unhealthy" in message, message
    assert "nothing was swapped" in message
    # The app's own log lines, and its health: the cause, in the team's words.
    assert "last 20 log lines of blue:" in message
    assert 'could not translate host name "postgres-typo"' in message
    assert "last health check: exit 1:" in message
    assert "db: container" in message and "health healthy" in message
    assert "traffic:" not in message and "swap 1/1" not in message  # no traffic, no swap
    assert not (tmp_path / "report.json").exists()


def test_the_teams_own_nginx_service_is_the_lb(swap_simulation: Callable[..., SimulationOutcome]) -> None:
    outcome: SimulationOutcome = swap_simulation(
        compose=(COMPOSE, TEAM_LB),
        lb_service="lb",
        ws_path=None,
        websockets=0,
        drain_hook=None,
        rate=300,
    )
    assert_swap_correct(outcome)
    lb = outcome.data["lb"]
    assert lb["image"] == "bluegreen/example-nginx:dev"
    assert lb["compose"]["lb_service"] == "lb"
    assert {s["service"] for s in lb["compose"]["services"]} == {"db", "blue", "green", "lb"}
    added = lb["added_by_harness"]
    assert any("in place of the file's ports 127.0.0.1:8080:80" in line for line in added), added
    assert any("/etc/nginx of the LB service mounted from a generated copy" in line for line in added), added
    assert any("X-Upstream-Addr" in line for line in added), added
    assert "!override" in lb["compose"]["override"]
