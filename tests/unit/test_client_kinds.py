"""Real client libraries as clients (simulation/clients.py): each kind runs against a local server
(127.0.0.1, no Docker) and is recorded; the matrix counts per kind and per swap; only the kinds a
run requires must see zero failures."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from local_server import server

from simulation.assertions import client_libraries, client_matrix
from simulation.clients import KINDS, PYTHON_KINDS, parse_kinds
from simulation.records import RequestRecord
from simulation.scenario import RunResult, Scenario, SwapRun
from simulation.traffic import Traffic, TrafficPlan

T0 = 1_700_000_000.0


def test_kinds_are_parsed_and_an_unknown_one_is_refused_with_the_list() -> None:
    assert parse_kinds("requests, fetch,requests") == ("requests", "fetch")
    assert parse_kinds("all") == KINDS and parse_kinds("none") == () and parse_kinds("") == ()
    with pytest.raises(ValueError, match=r"unknown client kind.*curl.*choose from requests"):
        parse_kinds("requests,curl")


@pytest.mark.parametrize("kinds", [PYTHON_KINDS, ("fetch",)], ids=["python libraries", "node fetch"])
def test_every_kind_sends_through_its_own_library_and_is_recorded(kinds: tuple[str, ...]) -> None:
    if "fetch" in kinds and shutil.which("node") is None:
        pytest.skip("node is not installed")

    async def run() -> Traffic:
        async with server() as srv:
            plan = TrafficPlan(srv.url, rate=1, keepalive_clients=1, fresh_clients=0, ws_path=None, processes=1)
            plan.client_kinds, plan.client_rate = kinds, 20.0
            traffic = Traffic(plan, lambda upstream: "blue" if upstream else None)
            await traffic.start_clients()
            await asyncio.sleep(1.5)
            await traffic.stop()
            return traffic

    traffic = asyncio.run(run())
    clients = [r for r in traffic.requests if r.kind == "client"]
    for kind in kinds:
        mine = [r for r in clients if r.model == kind]
        assert len(mine) >= 10, (kind, len(mine))
        assert all(r.status == 200 and r.slot == "blue" and not r.failed for r in mine), kind


def _client(kind: str, t: float, *, error: str | None = None) -> RequestRecord:
    status = 0 if error else 200
    return RequestRecord("client", kind, 0, T0 + t, T0 + t + 0.01, status, 0, "blue", "b:1", error)


def _result(requests: list[RequestRecord], **scenario: object) -> RunResult:
    return RunResult(
        scenario=Scenario(**scenario),  # type: ignore[arg-type]
        requests=requests,
        websockets=[],
        swaps=[SwapRun("green", None, None, T0 + 1, T0 + 2), SwapRun("blue", None, None, T0 + 3, T0 + 4)],
        traffic_started_at=T0,
        traffic_ended_at=T0 + 5,
        startup_s=0.0,
        wall_s=0.0,
        lb_workers_after=[],
        diagnostics={},
        slot_addresses={},
        skipped_clients={"fetch": "skipped: node is not installed on this machine (apt-get install nodejs)"},
    )


def test_the_matrix_counts_failures_per_kind_and_per_swap() -> None:
    requests = [_client("requests", t / 10) for t in range(50)]
    requests += [_client("requests", 1.5, error="ConnectionError: reset"), _client("requests", 3.2, error="X: y")]
    matrix = client_matrix(_result(requests, client_kinds=("requests",)))
    assert matrix["requests"]["requests"] == 52 and matrix["requests"]["failed"] == 2
    assert matrix["requests"]["per_swap"] == [0, 1, 1], "before the first swap, during swap 1, during swap 2"


def test_only_the_required_kinds_fail_the_run_and_a_skipped_required_kind_fails_it() -> None:
    requests = [_client("requests", 1.5, error="ConnectionError: reset"), _client("urllib3", 1.5)]
    reported = client_libraries(_result(requests, client_kinds=("requests", "urllib3")))
    assert reported.passed and "requests 1/1 failed [ConnectionError: reset x1]" in reported.summary
    required = client_libraries(_result(requests, client_kinds=("urllib3",), require_zero=("requests",)))
    assert not required.passed and "requests (required) 1/1 failed" in required.summary
    skipped = client_libraries(_result(requests, require_zero=("fetch",)))
    assert not skipped.passed and "fetch skipped: node is not installed" in skipped.summary
