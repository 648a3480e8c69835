"""The Nginx versions users run: Debian trixie's 1.26, sid's 1.30 and an LB shaped like the official
image (conf.d/, Nginx as PID 1, logs to stdout/stderr, no procps). The whole integration suite runs
on bookworm's 1.22.1 (``bluegreen/lb:dev``); here each other image gets a smoke swap with the
engine's CLI, there and back, and the default simulation.

Each swap's confirmation time (the reload's ``confirmed_ms`` in the CLI's ``--json`` report) is
recorded as a test property (junit) and printed (``pytest -s``).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from simulation.environment import DockerUnavailable, Environment, StartupError
from simulation.pytest_plugin import SimulationOutcome, assert_swap_correct

pytestmark = pytest.mark.docker

VERSION_IMAGES = {
    "trixie-1.26": "bluegreen/lb-trixie:dev",
    "sid-1.30": "bluegreen/lb-sid:dev",
    "official-layout": "bluegreen/lb-official:dev",
}
IMAGES = pytest.mark.parametrize("image", list(VERSION_IMAGES.values()), ids=list(VERSION_IMAGES))


@pytest.fixture
def lb_env(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Environment]]:
    envs: list[Environment] = []

    def start(image: str) -> Environment:
        env = Environment(lb_image=image, name=f"bgver-{secrets.token_hex(4)}")
        envs.append(env)
        try:
            return env.start()
        except DockerUnavailable as exc:
            pytest.skip(str(exc))
        except StartupError as exc:
            pytest.fail(str(exc), pytrace=False)

    yield start
    for env in envs:
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(f"\n===== diagnostics of {env.name} =====\n{env.diagnostics()}")
        env.stop()


def _swap(env: Environment, to: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable, "-m", "swap_action", "swap", "--target", f"docker://{env.lb_container_name}",
            "--config-path", env.managed_file, "--to", to, "--json",
            "--verify-url", f"http://127.0.0.1:{env.http_port}/",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _slots(env: Environment, count: int = 10) -> set[str | None]:
    """Which slots answer through the LB's published port (fresh connections)."""
    seen = set()
    for _ in range(count):
        with urllib.request.urlopen(env.base_url + "/", timeout=5) as response:
            seen.add(env.slot_of(response.headers.get("X-Upstream-Addr", "")))
    return seen


@IMAGES
def test_smoke_swap_there_and_back_moves_traffic_and_drains_the_old_workers(
    image: str, lb_env: Callable[[str], Environment], record_property: Callable[[str, object], None]
) -> None:
    env = lb_env(image)
    _code, version = env.lb_exec("nginx", "-v")
    assert _slots(env) == {"blue"}
    confirmed = []
    for to, live, old in (("green", "green", "blue"), ("auto", "blue", "green")):
        report = _swap(env, to)
        assert report["outcome"]["result"] == "swapped" and report["outcome"]["active"] == live, report["outcome"]
        assert report["outcome"]["changed"] is True and report["outcome"]["previous"] == old
        assert _slots(env) == {live}
        reload = report["reloads"][-1]
        assert reload["confirmed_ms"] is not None
        confirmed.append(reload["confirmed_ms"])
        assert report["drain"]["outcome"] == "complete", report["drain"]
        # The old workers are gone: none left 'shutting down', none of the pids that served before.
        processes = env.nginx_processes()
        assert not [p for p in processes if "shutting down" in p], processes
        pids = {line.split()[0] for line in processes}
        assert not pids & {str(pid) for pid in reload["old_workers"]}, (processes, reload["old_workers"])
    record_property("nginx_version", version.strip())
    record_property("confirmed_ms", confirmed)
    print(f"\n{image} ({version.strip()}): swap confirmed in {confirmed[0]} ms, back in {confirmed[1]} ms")


@IMAGES
def test_default_simulation_passes(image: str, swap_simulation: Callable[..., SimulationOutcome]) -> None:
    outcome = swap_simulation(lb_image=image)
    assert_swap_correct(outcome)
    lb = outcome.data["lb"]
    assert lb["image"] == image and lb["nginx_version"].startswith("nginx/")
    assert all(probe["ok"] for probe in lb["preflight"])


@IMAGES
def test_a_hand_written_upstream_is_adopted_keeping_its_settings(
    image: str, lb_env: Callable[[str], Environment]
) -> None:
    """Issue 'meet the LB where it is': status infers the live slot, to: auto swaps there and back,
    and keepalive, least_conn, max_fails and fail_timeout are all still there afterwards."""
    env = lb_env(image)
    blue, green = env.slots.blue[0], env.slots.green[0]
    text = (
        "# written by hand\nupstream app {\n    least_conn;\n"
        f"    server {blue} max_fails=3 fail_timeout=10s;\n"
        f"    server {green} down max_fails=3 fail_timeout=10s;\n    keepalive 16;\n}}\n"
    )
    code, out = env.lb_exec("sh", "-c", 'printf "%s" "$2" > "$1" && nginx -s reload', "w", env.managed_file, text)
    assert code == 0, out
    base = [sys.executable, "-m", "swap_action"]
    target = ["--target", f"docker://{env.lb_container_name}"]
    status = subprocess.run([*base, "status", *target], capture_output=True, text=True, timeout=60, check=False)
    assert "live slot:   blue (inferred from down/weights" in status.stdout, status.stdout + status.stderr
    for live in ("green", "blue"):
        done = subprocess.run(
            [*base, "swap", *target, "--to", "auto", "--blue", blue, "--green", green, "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["outcome"]["active"] == live
        assert _slots(env) == {live}
        _code, now = env.lb_exec("cat", env.managed_file)
        assert "least_conn;" in now and "keepalive 16;" in now and "# written by hand" in now
        assert now.count("max_fails=3 fail_timeout=10s") == 2, now
