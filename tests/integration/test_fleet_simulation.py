"""The harness proves a fleet swap: two LB containers in front of the same two slots, the clients
dealt out over them like DNS round robin, the whole fleet swapped in one engine run (FleetEngine);
a seeded bad fleet swap (the second LB refuses its config after the first committed) must fail
and leave both LBs on the old slot; and consecutive swaps keep the staging route on the idle slot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from simulation import bad_swaps
from simulation.pytest_plugin import SimulationOutcome, assert_swap_correct, explain

pytestmark = pytest.mark.docker

FLEET_CHECKS = {"drain_finished_every_lb", "traffic_on_new_slot_every_lb", "skew_within_bound", "lbs_end_on_one_slot"}


def test_a_fleet_of_two_swaps_with_no_failed_request_and_a_small_skew(
    swap_simulation: Callable[..., SimulationOutcome], tmp_path: Path
) -> None:
    outcome = swap_simulation(lbs=2)
    assert_swap_correct(outcome)
    data = outcome.data
    assert {c["name"] for c in data["assertions"]} >= FLEET_CHECKS
    assert data["requests"]["failed_all"] == 0 and data["requests"]["total"] > 1000
    fleet = data["fleet"]
    # Both LBs carried about half the load, each drained, each on green after its switch.
    traffic = fleet["traffic"]
    assert [t["lb"] for t in traffic] == [1, 2]
    assert all(abs(t["requests"] - data["requests"]["total"] / 2) <= 2 for t in traffic), traffic
    assert all(set(t["by_slot_after_switch"]) == {"green"} and t["failed"] == 0 for t in traffic), traffic
    rows = fleet["swaps"]
    assert [(r["lb"], r["before"], r["after"], r["changed"]) for r in rows] == [
        (1, "blue", "green", True),
        (2, "blue", "green", True),
    ]
    assert all(r["drain"]["outcome"] == "complete" for r in rows)
    # The skew figure is the engine's own, under the default bound of 250 ms.
    engine_skew = data["swaps"][0]["report"]["skew"]
    assert engine_skew and fleet["worst_skew_ms"] == max(w["window_ms"] for w in engine_skew)
    assert fleet["worst_skew_ms"] < fleet["max_skew_ms"] == 250.0
    assert [s["file_live"] for s in fleet["end_state"]] == ["green", "green"]
    # WebSockets and long requests went through both LBs.
    assert {w["lb"] for w in data["websockets"]["records"]} == {0, 1}
    page = (tmp_path / "report" / "report.html").read_text()
    assert 'id="fleet"' in page and "Skew between LBs" in page
    assert json.loads((tmp_path / "report" / "report.json").read_text())["fleet"]["lbs"] == 2


def test_the_second_lb_refusing_its_config_leaves_both_lbs_on_the_old_slot(
    swap_simulation: Callable[..., SimulationOutcome], tmp_path: Path
) -> None:
    outcome = swap_simulation(
        lbs=2,
        swapper=bad_swaps.fleet_refused,
        rate=300,
        long_requests=3,
        long_path="/slow?seconds=3",
        websockets=3,
        cooldown=1.0,
    )
    failed = set(outcome.failed_checks)
    assert "swaps_completed" in failed and outcome.data["passed"] is False, explain(outcome)
    # The harness says so: every LB back on blue, by its managed file and by the slot that answers.
    ended = outcome.check("lbs_end_on_one_slot")
    assert ended.passed, explain(outcome)
    assert "every LB on blue" in ended.summary
    end = outcome.data["fleet"]["end_state"]
    assert [(s["file_live"], s["answered"]) for s in end] == [("blue", {"blue": 5}), ("blue", {"blue": 5})]
    # No request failed while the first LB committed and was restored.
    assert "zero_failed_requests" not in failed, explain(outcome)
    # The engine's own account: LB 2 refused (nginx -t), LB 1 was changed and restored, nothing stays changed.
    swap = outcome.data["swaps"][0]
    assert swap["error_type"] == "ConfigTestError" and "bogus_directive" in swap["error"]
    rows = {r["lb"]: r for r in outcome.data["fleet"]["swaps"]}
    assert rows[2]["error"]["type"] == "ConfigTestError" and not rows[2]["changed"]
    assert not rows[1]["changed"] and rows[1]["after"] == "blue"
    if rows[1]["confirm_ms"] is not None:  # LB 1 had committed before LB 2 refused: then it was restored
        assert rows[1]["restored"], rows
    assert swap["report"]["outcome"]["changed"] is False
    # The report shows it, with LB 2's own diagnostics.
    page = (tmp_path / "report" / "report.html").read_text()
    fleet = page[page.index('id="fleet"') :]
    assert "ConfigTestError" in fleet and "bogus_directive" in fleet
    assert "lb2_managed_file" in outcome.data["diagnostics"]


def test_consecutive_fleet_swaps_keep_the_staging_route_on_the_idle_slot(
    swap_simulation: Callable[..., SimulationOutcome],
) -> None:
    outcome = swap_simulation(lbs=2, swaps=3, staging_check=True, rate=300, websockets=3, long_requests=3)
    assert_swap_correct(outcome)
    staging = outcome.check("staging_idle")
    evidence = staging.evidence
    assert evidence["judged"] >= 20 and evidence["wrong"] == 0, staging.summary
    assert len(evidence["windows"]) == 6, "one window per reload: 3 swaps on 2 LBs"
    assert "'lb1'" in staging.summary and "'lb2'" in staging.summary and "'blue'" in staging.summary
    assert [s["target"] for s in outcome.data["swaps"]] == ["green", "blue", "green"]
    added = "\n".join(outcome.data["lb"]["added_by_harness"])
    assert "a server for Host staging.bluegreen.test" in added
