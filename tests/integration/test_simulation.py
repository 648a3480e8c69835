"""The simulated swap, end to end against real Nginx and real app containers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from simulation.pytest_plugin import SimulationOutcome, assert_swap_correct

pytestmark = pytest.mark.docker


def test_swap_under_load_loses_no_request_and_drains_cleanly(
    swap_simulation: Callable[..., SimulationOutcome], tmp_path: Path
) -> None:
    outcome = swap_simulation(rate=400, long_requests=5, websockets=5)
    assert_swap_correct(outcome)
    data = outcome.data
    requests = data["requests"]
    # Load really was there, on both sides of the switch.
    assert requests["rate_rps"] >= 300
    assert requests["failed"] == 0
    assert requests["by_slot_before_switch"].get("blue", 0) > 300
    assert set(requests["by_slot_after_switch"]) == {"green"}
    # Long requests started on blue finished there, whole.
    assert data["long_requests"] == {**data["long_requests"], "total": 5, "completed": 5, "by_slot": {"blue": 5}}
    # WebSockets opened on blue were held through the swap, then closed with 1001 and reconnected to green.
    ws = outcome.check("websockets_drained").evidence
    assert ws["on_old"] == 5 and ws["close_codes"] == {"1001": 5}
    assert ws["reconnected_slots"] == {"green": 5}
    assert all(ticks > 5 for ticks in ws["ticks"])
    # The report on disk says the same.
    on_disk = json.loads((tmp_path / "report" / "report.json").read_text())
    assert on_disk["passed"] is True and on_disk["requests"]["total"] == requests["total"]


def test_canary_steps_keep_long_requests_on_the_old_slot_until_the_end(
    swap_simulation: Callable[..., SimulationOutcome],
) -> None:
    outcome = swap_simulation(steps=(10, 50, 100), step_pause=1.0, rate=300, websockets=3, long_requests=3)
    assert_swap_correct(outcome)
    reloads = outcome.data["swaps"][0]["report"]["reloads"]
    assert [(r["slot"], r["percent"]) for r in reloads] == [("green", 10), ("green", 50), ("green", 100)]
    # Between the first and the last step both slots served new requests.
    before = outcome.data["requests"]["by_slot_before_switch"]
    assert before.get("blue", 0) > 0 and before.get("green", 0) > 0


def test_consecutive_swaps_alternate_slots_and_each_drains(swap_simulation: Callable[..., SimulationOutcome]) -> None:
    outcome = swap_simulation(swaps=3, rate=300, websockets=3, long_requests=3)
    assert_swap_correct(outcome)
    assert [s["target"] for s in outcome.data["swaps"]] == ["green", "blue", "green"]
    assert all(s["report"]["drain"]["outcome"] == "complete" for s in outcome.data["swaps"])
