"""The typed run report, built from hand-made records: report.json keeps its keys, the counts
and the WebSocket/drain facts come from the records and the engine's typed fields (never from
step labels or an assertion's evidence), and every face (JSON, junit, terminal) reads it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from simulation.assertions import FAILED_REQUEST, evaluate
from simulation.records import RequestRecord, WebSocketRecord
from simulation.report import Bucket, RunReport, build, histogram, junit, summary_lines, write
from simulation.scenario import RunResult, Scenario, SwapRun
from swap_action.outcome import DrainOutcome, Outcome, Phase, Reload, Result, Step, SwapReport

T0 = 1_700_000_000.0
SWAP_AT = T0 + 2.0
CONFIRMED = SWAP_AT + 0.3
DRAIN_AT = SWAP_AT + 0.4


def _request(
    start: float,
    slot: str | None,
    *,
    kind: str = "steady",
    status: int = 200,
    nbytes: int = 10,
    error: str | None = None,
) -> RequestRecord:
    end = T0 + start + (4.0 if kind == "long" else 0.002)
    return RequestRecord(kind, "keepalive", 1, T0 + start, end, status, nbytes, slot, f"{slot}:8080", error)


def _report(*, drain_slot: str = "blue") -> SwapReport:
    return SwapReport(
        outcome=Outcome(Result.SWAPPED, True, "green", "blue", "green"),
        started_at=SWAP_AT,
        duration_ms=1400.0,
        confirmed_at=CONFIRMED,
        steps=[
            Step(Phase.LOCK, SWAP_AT, duration_ms=10.0),
            Step(Phase.RELOAD_CONFIRM, SWAP_AT + 0.1, slot="green", percent=100, duration_ms=200.0),
            Step(Phase.DRAIN, DRAIN_AT, slot=drain_slot, duration_ms=1000.0),
        ],
        reloads=[Reload("g1", "green", 100, SWAP_AT + 0.1, reload_at_ms=int((SWAP_AT + 0.15) * 1000), signal_ms=7)],
        drain=DrainOutcome("complete", 1000.0, 0, 0, (("http://blue:8080/admin/drain", 200),)),
    )


def _result(*, failed: int = 0, ws_close: float = DRAIN_AT + 0.5) -> RunResult:
    requests = [_request(t / 10, "blue" if t / 10 < 2.3 else "green") for t in range(50)]
    requests += [_request(0.5 + i / 100, None, status=0, error="connect: refused") for i in range(failed)]
    requests += [_request(1.0, "blue", kind="long", nbytes=5000)]
    websockets = [
        WebSocketRecord(1, 1, T0 + 0.1, "blue", "blue:8080", ws_close, 1001, "server", max_gap_s=0.1),
        WebSocketRecord(1, 2, ws_close + 0.1, "green", "green:8080", T0 + 5.0, 1000, "client"),
    ]
    return RunResult(
        scenario=Scenario(websockets=1, long_requests=1, rate=10),
        requests=requests,
        websockets=websockets,
        swaps=[SwapRun("green", _report(), None, SWAP_AT, SWAP_AT + 1.5)],
        traffic_started_at=T0,
        traffic_ended_at=T0 + 5.0,
        startup_s=1.234,
        wall_s=9.876,
        lb_workers_after=["1 nginx: worker process"],
        diagnostics={"nginx_error_log": "all quiet"},
        slot_addresses={"blue": "172.29.0.2:8080", "green": "172.29.0.3:8080"},
    )


def _built(result: RunResult) -> RunReport:
    return build(result, evaluate(result))


def test_report_json_keeps_its_keys_and_is_plain_json() -> None:
    data = json.loads(json.dumps(_built(_result()).to_dict()))
    assert set(data) == {
        "passed", "assertions", "client_model", "requests", "long_requests", "websockets", "swaps",
        "timings", "scenario", "traffic_started_at", "traffic_ended_at", "slot_addresses", "diagnostics",
    }  # fmt: skip
    assert set(data["requests"]) == {
        "total", "failed", "failed_keepalive", "failed_fresh", "strict_failed", "by_slot",
        "by_slot_before_switch", "by_slot_after_switch", "rate_rps", "latency_ms", "failed_long",
        "broken_websockets", "failed_all", "asked_rps", "held_rps", "per_second", "arrivals", "generator_processes",
    }  # fmt: skip
    assert set(data["requests"]["latency_ms"]) == {"p50", "p99", "p99_during_swap", "p99_during_swap_from_send"}
    assert set(data["long_requests"]) == {"total", "completed", "by_slot", "durations_s", "records"}
    assert data["long_requests"]["records"][0] | {"start": 0, "end": 0} == {
        "start": 0, "end": 0, "slot": "blue", "complete": True, "bytes": 5000,
    }  # fmt: skip
    assert set(data["websockets"]) == {"opened", "reconnections", "close_codes", "held_through_swap", "records"}
    swap = data["swaps"][0]
    assert set(swap) == {
        "target",
        "error",
        "error_type",
        "started_at",
        "ended_at",
        "duration_ms",
        "confirm_ms",
        "report",
    }
    assert swap["report"]["drain"]["outcome"] == "complete" and swap["report"]["outcome"]["result"] == "swapped"
    assert set(data["timings"]) == {"environment_startup_s", "wall_s", "traffic_s"}
    assert "swapper" not in data["scenario"] and data["scenario"]["blue_image"]
    assert {"name", "title", "passed", "summary", "description", "evidence", "warning"} == set(data["assertions"][0])


def test_counts_come_from_the_records() -> None:
    report = _built(_result(failed=2))
    req = report.requests
    assert (req.total, req.failed, req.failed_keepalive, req.failed_fresh, req.strict_failed) == (52, 2, 2, 0, 2)
    assert req.by_slot_before_switch == {"blue": 23, "None": 2} and req.by_slot_after_switch == {"green": 27}
    assert report.swaps[0].confirm_ms == 300.0 and report.swaps[0].duration_ms == 1500.0
    assert report.long_requests.completed == 1 and report.long_requests.by_slot == {"blue": 1}
    assert report.timings.environment_startup_s == 1.23 and report.timings.traffic_s == 5.0
    assert not report.passed and report.diagnostics == {"nginx_error_log": "all quiet"}


def test_a_passing_run_holds_its_websockets_and_keeps_no_diagnostics() -> None:
    report = _built(_result())
    failing = [c.name for c in report.assertions if not c.passed]
    assert failing == [], [c.summary for c in report.assertions if not c.passed]
    assert report.passed and report.diagnostics == {}
    assert (report.websockets.opened, report.websockets.held_through_swap, report.websockets.reconnections) == (1, 1, 1)
    assert report.websockets.close_codes == {"1001": 1, "1000": 1}


def test_the_drain_is_found_by_its_phase_not_by_its_label() -> None:
    # The WebSocket closes 3 s after the drain's deadline: found from the DRAIN step's start.
    result = _result(ws_close=DRAIN_AT + Scenario().drain_timeout + 3.0)
    check = next(c for c in evaluate(result) if c.name == "websockets_drained")
    assert not check.passed and "after the drain deadline" in check.summary
    step = _report(drain_slot="somewhere else").steps[-1]
    assert step.phase == Phase.DRAIN and "drain" in step.label


def test_the_failed_request_definition_is_a_description_not_evidence() -> None:
    report = _built(_result())
    zero = report.check("zero_failed_requests")
    assert zero is not None and zero.description == FAILED_REQUEST
    assert "definition" not in zero.evidence and "``" not in FAILED_REQUEST


def test_histogram_buckets_by_slot_with_failures() -> None:
    result = _result(failed=1)
    buckets = histogram(result.requests, result.traffic_started_at, result.traffic_ended_at)
    assert len(buckets) == 51 and all(isinstance(b, Bucket) for b in buckets)
    assert sum(b.blue for b in buckets) == 23 and sum(b.green for b in buckets) == 27
    assert [i for i, b in enumerate(buckets) if b.error] == [5]


def test_junit_and_summary_read_the_typed_report() -> None:
    result = _result(failed=1)
    checks = evaluate(result)
    suite = ET.fromstring(junit(checks, 9.9))
    assert suite.get("tests") == str(len(checks)) and suite.get("failures") == "1"
    lines = "\n".join(summary_lines(build(result, checks)))
    assert "RESULT: FAILED" in lines and "confirmed live after 300.0 ms" in lines
    assert "drain complete in 1000 ms" in lines and "reload (green at 100%): signal 7 ms" in lines
    assert "[FAIL] zero_failed_requests" in lines


def test_write_puts_the_same_report_in_every_file(tmp_path: Path) -> None:
    result = _result()
    report = write(tmp_path, result, evaluate(result))
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(report.to_dict()))
    assert (tmp_path / "junit.xml").read_text().count("<testcase") == len(report.assertions)
    html = (tmp_path / "report.html").read_text()
    assert "PASSED" in html and "a status &gt;= 500" in html  # the description of a failed request
    assert "reload-confirm (100% to green)" in html  # the step's display label, from its typed fields
