"""The harness must fail a bad swap as surely as it passes a good one, naming the assertion."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simulation import bad_swaps
from simulation.pytest_plugin import SimulationOutcome, explain

pytestmark = pytest.mark.docker

# Shorter than the default scenario: the point is which assertion fails.
QUICK = {"rate": 300, "long_requests": 3, "long_path": "/slow?seconds=3", "websockets": 3, "cooldown": 1.0}


def _fails_on(outcome: SimulationOutcome, must_fail: set[str], must_pass: set[str]) -> None:
    failed = set(outcome.failed_checks)
    assert must_fail <= failed, f"expected {must_fail} to fail, failed: {failed}\n{explain(outcome)}"
    assert not (must_pass & failed), f"expected {must_pass} to pass, failed: {failed}\n{explain(outcome)}"
    assert outcome.data["passed"] is False


def test_naive_restart_fails_on_failed_requests(swap_simulation: Callable[..., SimulationOutcome]) -> None:
    outcome = swap_simulation(swapper=bad_swaps.naive_restart, **QUICK)
    _fails_on(outcome, {"zero_failed_requests"}, set())
    assert outcome.data["requests"]["failed"] > 0


def test_websockets_cut_at_the_deadline_fail_the_drain_assertion(
    swap_simulation: Callable[..., SimulationOutcome],
) -> None:
    outcome = swap_simulation(swapper=bad_swaps.cut_websockets, **{**QUICK, "long_path": "/slow?seconds=1"})
    _fails_on(outcome, {"websockets_drained"}, {"zero_failed_requests", "no_new_requests_on_old"})
    assert "1006" in outcome.check("websockets_drained").evidence["close_codes"]


def test_silently_refused_reload_fails_on_traffic_that_did_not_move(
    swap_simulation: Callable[..., SimulationOutcome],
) -> None:
    outcome = swap_simulation(swapper=bad_swaps.silently_refused_reload, **QUICK)
    _fails_on(outcome, {"traffic_on_new_slot", "no_new_requests_on_old"}, {"zero_failed_requests"})
    assert outcome.data["requests"]["by_slot_after_switch"].get("green", 0) == 0


def test_traffic_that_never_moved_fails(swap_simulation: Callable[..., SimulationOutcome]) -> None:
    outcome = swap_simulation(swapper=bad_swaps.never_moved, **QUICK)
    _fails_on(outcome, {"no_new_requests_on_old", "traffic_on_new_slot"}, {"zero_failed_requests"})
