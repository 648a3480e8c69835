"""A team validates its own, unmodified app and its own server block with one command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

TEMPLATE = Path(__file__).parent / "data" / "team-site.conf.j2"


def test_unmodified_third_party_app_is_validated_with_one_command(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "simulation", "run",
        "--blue-image", "bluegreen/httpbin:dev", "--green-image", "bluegreen/httpbin:dev",
        "--app-port", "8000", "--health-path", "/status/200", "--path", "/get",
        "--long-path", "/drip?duration=4&numbytes=8&delay=0", "--ws-path", "none",
        "--rate", "300", "--long-requests", "3",
        "--nginx-template", str(TEMPLATE), "--report-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True
    assert report["requests"]["failed"] == 0
    assert report["requests"]["by_slot_before_switch"].get("blue", 0) > 0
    assert set(report["requests"]["by_slot_after_switch"]) == {"green"}
    # /drip streams its 8 bytes over 4 s: every one started on blue finished there, whole.
    assert report["long_requests"]["completed"] == 3 and report["long_requests"]["by_slot"] == {"blue": 3}
    assert (tmp_path / "junit.xml").read_text().count("<testcase") == len(report["assertions"])
    assert "RESULT: PASSED" in done.stdout


def test_a_server_block_without_the_harness_headers_is_refused_with_the_fix(tmp_path: Path) -> None:
    template = tmp_path / "site.conf.j2"
    template.write_text("server { listen {{ listen }}; location / { proxy_pass http://{{ upstream }}; } }\n")
    done = subprocess.run(
        [sys.executable, "-m", "simulation", "run", "--nginx-template", str(template), "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "{{ bluegreen_headers }}" in done.stderr


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--drain-policy",
            "graceful",
            "error: input 'drain-policy': 'graceful' is not a drain policy\nfix: use cut or wait",
        ),
        ("--drain-hook", "PATCH /drain", "error: input 'drain-hook': 'PATCH /drain' is not a drain hook\nfix: write a"),
        ("--health-path", "healthz", "error: input 'health-path': 'healthz' is not an HTTP path\nfix: write a path"),
    ],
    ids=["drain-policy", "drain-hook", "health-path"],
)
def test_bad_swap_values_are_refused_with_the_actions_message_before_any_container(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    """The simulation's swap goes through the action's validators: same words, same messages."""
    done = subprocess.run(
        [sys.executable, "-m", "simulation", "run", flag, value, "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "starting LB" not in done.stderr and not (tmp_path / "report.json").exists()


def test_third_party_websockets_are_checked_by_ping_pong_and_echo_and_cut_by_policy(tmp_path: Path) -> None:
    """websocketd sends no ticks and gets no drain hook: liveness is ping/pong and echoes; its
    WebSockets stay open on the old slot until the drain deadline, where drain-policy cut ends
    them (1006), then they reconnect to green."""
    command = [
        sys.executable, "-m", "simulation", "run",
        "--blue-image", "bluegreen/websocketd:dev", "--green-image", "bluegreen/websocketd:dev",
        "--app-port", "8000", "--health-path", "/healthz", "--path", "/index.html",
        "--long-requests", "0", "--ws-path", "/ws", "--websockets", "4", "--rate", "300",
        "--drain-hook", "none", "--drain-policy", "cut", "--drain-timeout", "3s", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    ws = next(a for a in report["assertions"] if a["name"] == "websockets_drained")["evidence"]
    assert ws["on_old"] == 4 and ws["close_codes"] == {"1006": 4}, ws
    assert all(int(pongs) > 3 for pongs in ws["pongs"]) and all(int(e.split("/")[0]) > 0 for e in ws["echoes"])
    assert ws["reconnected_slots"] == {"green": 4}
    assert report["websockets"]["close_codes"].get("1006") == 4
