"""A team validates its own LB with the harness: its Nginx image (any version) and its whole
nginx.conf; the harness adds only what it needs and says so. Endpoints that cannot do their part,
and an LB without curl, stop the run before any swap, naming what to change."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

pytestmark = pytest.mark.docker

DATA = Path(__file__).parent / "data"
HTTPBIN = ["--blue-image", "bluegreen/httpbin:dev", "--green-image", "bluegreen/httpbin:dev"]
HTTPBIN += ["--app-port", "8000", "--health-path", "/status/200"]
NO_CURL_IMAGE = "bluegreen/test-lb-nocurl:dev"


def _simulate(tmp_path: Path, *flags: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "simulation", "run", *flags, "--report-dir", str(tmp_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def test_a_teams_nginx_conf_on_another_nginx_version_passes_and_says_what_was_added(tmp_path: Path) -> None:
    conf = DATA / "team-nginx.conf"
    done = _simulate(tmp_path, "--nginx-image", "bluegreen/lb-trixie:dev", "--nginx-conf", str(conf))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    lb = report["lb"]
    assert lb["nginx_version"].startswith("nginx/1.26.") and lb["nginx_conf"] == str(conf)
    assert lb["managed_file"] == "/etc/nginx/bluegreen/upstream.conf"
    added = "\n".join(lb["added_by_harness"])
    assert "'add_header X-Upstream-Addr $upstream_addr always;' added to 'location /'" in added
    assert "'include /etc/nginx/bluegreen/upstream.conf;' added to the http block of /etc/nginx/nginx.conf" in added
    assert "upstream 'app' cut out of /etc/nginx/nginx.conf:26" in added and len(lb["added_by_harness"]) == 4
    # Said in the run's output too, and the team's own site (port 8080) carried the traffic.
    assert "the harness added to the LB's config:" in done.stderr and "harness added: " in done.stdout
    assert report["requests"]["failed"] == 0 and set(report["requests"]["by_slot_after_switch"]) == {"green"}
    assert report["long_requests"]["by_slot"] == {"blue": 5}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            [],
            [
                "long /slow?seconds=5: GET answered 404 (the default: the demo app's slow endpoint)",
                "fix: --long-path /your/slow/path (an endpoint that streams or waits a few seconds) or --long-path none",
                "websocket /ws: not upgraded: answered 404 instead of 101 Switching Protocols",
                "fix: --ws-path /your/websocket/path or --ws-path none",
            ],
        ),
        (
            ["--long-path", "/get", "--ws-path", "none"],
            ["long /get: GET answered 200 at once", "--long-path none"],
        ),
    ],
    ids=["no-slow-no-ws", "slow-path-answers-at-once"],
)
def test_an_app_without_a_slow_endpoint_fails_fast_with_the_flag_to_set(
    tmp_path: Path, flags: list[str], expected: list[str]
) -> None:
    started = time.monotonic()
    done = _simulate(tmp_path, *HTTPBIN, *flags, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr
    # Stopped before any traffic or swap, in seconds (the environment's start included).
    assert "traffic:" not in done.stderr and "swap 1/1" not in done.stderr
    assert not (tmp_path / "report.json").exists() and elapsed < 30, elapsed


@pytest.fixture
def lb_without_curl() -> Iterator[str]:
    try:
        client = docker.from_env(timeout=120)
        client.images.get("bluegreen/lb-official:dev")
    except Exception as exc:
        pytest.skip(f"no Docker engine or no LB image: {exc}")
    dockerfile = b"FROM bluegreen/lb-official:dev\nRUN rm -f /usr/bin/curl\n"
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=NO_CURL_IMAGE, rm=True)
    try:
        yield NO_CURL_IMAGE
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(NO_CURL_IMAGE, force=True)
        client.close()


def test_an_lb_image_without_curl_is_refused_naming_what_to_install(tmp_path: Path, lb_without_curl: str) -> None:
    done = _simulate(tmp_path, "--nginx-image", lb_without_curl, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"error: the LB image {lb_without_curl} lacks curl:" in done.stderr
    assert "apt-get install curl" in done.stderr and "traffic:" not in done.stderr
