"""The load the harness puts on a real Nginx is trustworthy: open loop, so a stall at the LB shows in
the latency of every request due during it (the closed loop shows one per client, which a p99 can
hide), and a rate the system cannot take fails ``load_held`` with what was held and where the limit
was."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from simulation.environment import Environment
from simulation.pytest_plugin import SimulationOutcome, explain
from simulation.scenario import engine_swap
from swap_action.inputs import SwapOptions
from swap_action.outcome import SwapReport

pytestmark = pytest.mark.docker

STALL_MS = 200
# Every Nginx worker of the LB stopped (SIGSTOP) for STALL_MS, then let go: a stalled LB, as a
# CPU-starved host or a paused VM makes one. One shell, so the stall lasts what it says.
STALL = (
    'w=; for d in /proc/[0-9]*; do t=; read -r t < "$d/cmdline" 2>/dev/null; '
    'case "$t" in "nginx: worker process"*) w="$w ${d#/proc/}" ;; esac; done; '
    f"kill -STOP $w; sleep {STALL_MS / 1000}; kill -CONT $w"
)
# A canary swap (50% for 0.3 s, then 100%) with no long request or WebSocket to drain: a window of
# about 1.2 s, 1,000 requests due in it at 800 req/s. The closed loop runs 5 clients, as a load
# tool run with 5 connections does (wrk -c5): the stall delays the one request each had in flight,
# 5 requests, under the 1% a p99 of that window skips, while the open loop's 160 requests due in
# the stall all wait. (With the harness's default 20 clients the closed loop's own 20 slow ones
# would be over 1% of a window this short: it hides a stall only once its clients are fewer than
# a hundredth of the window's requests, which is what a p99 over a longer window gives too.)
STALLED = {
    "rate": 800, "long_requests": 0, "websockets": 0, "drain_hook": None, "warmup": 1.5, "cooldown": 1.0,
    "keepalive_clients": 4, "fresh_clients": 1, "steps": (50, 100), "step_pause": 0.3,
}  # fmt: skip
CLIENTS = 5


def stalled_then_swapped(env: Environment, options: SwapOptions) -> SwapReport:
    """The LB stalls for STALL_MS inside the swap's window, then the engine swaps."""
    code, out = env.lb_exec("sh", "-c", STALL)
    assert code == 0, out
    return engine_swap(env, options)


def _slow(outcome: SimulationOutcome, threshold_s: float) -> int:
    return sum(1 for r in outcome.result.requests if r.kind == "steady" and r.latency_s >= threshold_s)


def test_a_stall_at_the_lb_shows_in_the_open_loop_p99_where_the_closed_loop_hides_it(
    swap_simulation: Callable[..., SimulationOutcome],
) -> None:
    open_loop = swap_simulation(swapper=stalled_then_swapped, **STALLED)
    closed = swap_simulation(swapper=stalled_then_swapped, arrivals="closed", **STALLED)
    for outcome in (open_loop, closed):
        assert outcome.check("zero_failed_requests").passed, explain(outcome)
    # (The closed loop need not hold the rate here: through the stall its clients just wait.)
    assert open_loop.check("load_held").passed, explain(open_loop)

    p99_open = open_loop.data["requests"]["latency_ms"]["p99_during_swap"]
    p99_closed = closed.data["requests"]["latency_ms"]["p99_during_swap"]
    assert p99_open >= STALL_MS, (p99_open, p99_closed)
    assert p99_closed < STALL_MS / 2, (p99_open, p99_closed)  # hidden: not even half of it shows
    # Requests due in the stall's first half waited at least half of it. Open loop: each of them
    # (about 800 req/s x 0.1 s). Closed loop: only the one each of its clients had in flight.
    assert _slow(open_loop, STALL_MS / 2000) >= 30, _slow(open_loop, STALL_MS / 2000)
    assert _slow(closed, STALL_MS / 2000) <= CLIENTS, _slow(closed, STALL_MS / 2000)
    print(f"p99 during the swap with a {STALL_MS} ms stall: open loop {p99_open} ms, closed loop {p99_closed} ms")


def test_a_rate_beyond_what_the_system_takes_fails_load_held_naming_the_limit(
    swap_simulation: Callable[..., SimulationOutcome],
) -> None:
    outcome = swap_simulation(rate=9000, long_requests=0, websockets=0, drain_hook=None, warmup=1.0, cooldown=0.5)
    check = outcome.check("load_held")
    assert not check.passed and not check.warning, check.summary
    held = check.evidence["held_rps"]
    assert held < 0.95 * 9000 and f"{held:.0f} of 9000 req/s asked" in check.summary
    assert check.evidence["cause"] and check.evidence["cause"] in check.summary
    assert any(word in check.summary for word in ("the system under test", "the load generator's CPU"))
    assert outcome.data["passed"] is False


def test_allow_saturation_turns_load_held_into_a_warning_on_the_command_line(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "simulation", "run", "--rate", "9000", "--allow-saturation",
        "--long-requests", "0", "--websockets", "0", "--drain-hook", "none", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert "[WARN] load_held: warning (--allow-saturation):" in done.stdout, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    check = next(c for c in report["assertions"] if c["name"] == "load_held")
    assert check["passed"] is True and check["warning"] is True
    assert report["requests"]["asked_rps"] == 9000 and report["requests"]["held_rps"] < 0.95 * 9000
    assert len(report["requests"]["per_second"]) >= 3
