"""The open-loop steady load, against a tiny local HTTP server (127.0.0.1, no Docker): requests go
out at the asked rate whatever the responses do, a stall shows in the latency of every request
due during it (the closed loop shows one per client), and ``load_held`` names where a limit was."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from local_server import server

from simulation.assertions import load_held, zero_failed_requests
from simulation.records import RequestRecord, WebSocketRecord
from simulation.scenario import RunResult, Scenario, SwapRun
from simulation.traffic import Traffic, TrafficPlan, processes_for

STALL_S = 0.25


async def _run(arrivals: str, *, rate: float = 200.0, seconds: float = 1.5, stall_at: float | None = None) -> Traffic:
    async with server() as srv:
        plan = TrafficPlan(srv.url, rate=rate, keepalive_clients=8, fresh_clients=2, ws_path=None, processes=1)
        plan.arrivals = arrivals
        traffic = Traffic(plan, lambda upstream: "blue" if upstream else None)
        traffic.start_steady()
        if stall_at is not None:
            await asyncio.sleep(stall_at)
            srv.stall_until = time.time() + STALL_S
            await asyncio.sleep(seconds - stall_at)
        else:
            await asyncio.sleep(seconds)
        await traffic.stop()
        return traffic


def test_open_loop_sends_at_the_asked_rate_and_records_when_each_was_due() -> None:
    traffic = asyncio.run(_run("constant", rate=200.0, seconds=1.5))
    steady = [r for r in traffic.requests if r.kind == "steady"]
    assert 270 <= len(steady) <= 310, len(steady)
    assert all(r.intended > 0 and not r.failed for r in steady)
    late = sorted(r.start - r.intended for r in steady)
    assert late[len(late) // 2] < 0.01, "sent when due"
    assert {r.model for r in steady} == {"keepalive", "fresh"}
    fresh_share = sum(r.model == "fresh" for r in steady) / len(steady)
    assert 0.15 <= fresh_share <= 0.25, "2 of 10 shares on new connections"


def test_poisson_arrivals_average_the_rate() -> None:
    traffic = asyncio.run(_run("poisson", rate=200.0, seconds=1.5))
    steady = [r for r in traffic.requests if r.kind == "steady"]
    assert 220 <= len(steady) <= 380, len(steady)
    gaps = sorted(b.intended - a.intended for a, b in itertools.pairwise(steady) if a.model == b.model)
    assert gaps[-1] > 3 * gaps[len(gaps) // 2], "exponential gaps: some far longer than the median"


def test_a_stall_delays_every_request_due_during_it_in_the_open_loop_only() -> None:
    open_loop = asyncio.run(_run("constant", rate=200.0, seconds=1.5, stall_at=0.6))
    closed = asyncio.run(_run("closed", rate=200.0, seconds=1.5, stall_at=0.6))

    def slow(traffic: Traffic) -> int:
        return sum(1 for r in traffic.requests if r.kind == "steady" and r.latency_s >= 0.05)

    # 200 req/s through a 250 ms stall: the 40 requests due in its first 200 ms waited 50 ms or more.
    assert slow(open_loop) >= 30, slow(open_loop)
    # The closed loop had at most one request in flight per client (10): the rest were never sent.
    assert slow(closed) <= 12, slow(closed)
    assert max(r.latency_s for r in open_loop.requests) >= 0.2
    assert any(r.intended and r.start - r.intended < 0.01 for r in open_loop.requests if r.latency_s >= 0.05), (
        "sent when due, answered late: the time is the system's, not the generator's"
    )


def test_past_the_connection_bound_a_due_request_waits_and_says_so() -> None:
    async def run() -> Traffic:
        async with server() as srv:
            plan = TrafficPlan(srv.url, rate=200.0, keepalive_clients=1, fresh_clients=0, ws_path=None, processes=1)
            plan.max_connections = 2
            traffic = Traffic(plan, lambda _u: "blue")
            traffic.start_steady()
            await asyncio.sleep(0.3)
            srv.stall_until = time.time() + STALL_S
            await asyncio.sleep(0.6)
            await traffic.stop()
            return traffic

    traffic = asyncio.run(run())
    assert any(r.waited for r in traffic.requests), "all 2 connections busy: the next due request waited"
    assert len({r.client for r in traffic.requests}) <= 2


def test_processes_follow_the_rate_up_to_the_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert processes_for(400) == 1
    assert processes_for(1000) == 2
    assert processes_for(50_000) == 2


# -- load_held and the headline figure, from hand-made records -----------------------------------
T0 = 1_700_000_000.0


def _steady(t: float, *, intended_lag: float = 0.0, waited: bool = False, status: int = 200) -> RequestRecord:
    return RequestRecord(
        "steady", "keepalive", 1, T0 + t + intended_lag, T0 + t + intended_lag + 0.002, status, 2, "blue",
        "b:1", intended=T0 + t, waited=waited,
    )  # fmt: skip


def _result(requests: list[RequestRecord], *, rate: float = 100.0, **scenario: object) -> RunResult:
    return RunResult(
        scenario=Scenario(rate=rate, **scenario),  # type: ignore[arg-type]
        requests=requests,
        websockets=[],
        swaps=[SwapRun("green", None, None, T0 + 1.0, T0 + 3.0)],
        traffic_started_at=T0,
        traffic_ended_at=T0 + 4.0,
        startup_s=0.0,
        wall_s=0.0,
        lb_workers_after=[],
        diagnostics={},
        slot_addresses={},
    )


def test_load_held_passes_at_the_asked_rate_and_reports_each_second() -> None:
    check = load_held(_result([_steady(i / 100) for i in range(400)]))
    assert check.passed and not check.warning
    assert check.evidence["held_rps"] == 100.0 and check.evidence["per_second"] == [100, 100, 100, 100, 0]


def test_load_held_names_the_system_under_test_when_requests_waited_for_a_connection() -> None:
    check = load_held(_result([_steady(i / 50, waited=True) for i in range(200)]))
    assert not check.passed
    assert "50 of 100 req/s" in check.summary and "the system under test" in check.summary


def test_load_held_names_the_generator_when_requests_left_late_with_connections_free() -> None:
    check = load_held(_result([_steady(i / 50, intended_lag=0.2) for i in range(200)]))
    assert not check.passed and "the load generator's CPU" in check.summary


def test_allow_saturation_makes_it_a_warning() -> None:
    check = load_held(_result([_steady(i / 50, waited=True) for i in range(200)], allow_saturation=True))
    assert check.passed and check.warning and check.summary.startswith("warning (--allow-saturation)")


def test_cut_long_requests_and_broken_websockets_count_in_the_headline() -> None:
    cut = RequestRecord("long", "keepalive", 1000, T0 + 1, T0 + 2, 200, 5, "blue", "b:1", complete=False)
    lost_echo = WebSocketRecord(1, 1, T0, "blue", "b:1", T0 + 2, 1001, "server", echoes_sent=4, echoes_ok=1)
    cut_ws = WebSocketRecord(2, 1, T0, "blue", "b:1", T0 + 2, 1006, "network", echoes_sent=4, echoes_ok=1)
    result = _result([_steady(i / 100) for i in range(400)] + [cut])
    result.websockets = [lost_echo, cut_ws]
    check = zero_failed_requests(result)
    assert not check.passed
    assert check.summary.startswith("2 failed: steady 0 of 400")
    assert "long 1/1" in check.summary and "WebSocket 1/2" in check.summary
    assert "long request: body ended early x1" in check.summary
    assert "#1 on blue: 3 echoes unanswered" in check.summary, "the cut one (1006) is websockets_drained's"
