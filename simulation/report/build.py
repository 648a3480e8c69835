"""From the run's records and checks to the typed report, once."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ..assertions import Check, client_matrix, failed_requests, load_held, websockets_on_old
from ..records import RequestRecord, WebSocketRecord
from .fleet import build_fleet
from .model import Bucket, Latency, LongRequest, LongRequests, Requests, RunReport, Swap, Timings, WebSockets

if TYPE_CHECKING:
    from ..scenario import RunResult

CLIENT_MODEL = (
    "Pass/fail counts failed requests of keep-alive clients that retry an idempotent request once when "
    "the server closed their reused connection (what browsers, urllib3 and aiohttp do; RFC 9112 9.3.1), "
    "and of clients that open a new connection per request. The strict count (every error on a reused "
    "connection, before any retry) is reported beside it: Nginx's old workers close idle keep-alive "
    "connections at a reload, so a client that never retries would see those."
)
SCENARIO_OBJECTS = ("swapper", "blue", "green", "nginx_template", "nginx_conf")  # not settings: left out of the report
BUCKET_S = 0.1


def build(result: RunResult, checks: list[Check]) -> RunReport:
    passed = all(c.passed for c in checks)
    swaps = [Swap(s.target, s.error, s.started_at, s.ended_at, s.report) for s in result.swaps]
    span = max(result.traffic_ended_at - result.traffic_started_at, 1e-9)
    return RunReport(
        passed=passed,
        assertions=list(checks),
        client_model=CLIENT_MODEL,
        requests=_requests(result, swaps, span),
        long_requests=_long_requests(result.requests),
        websockets=_websockets(result, checks),
        swaps=swaps,
        timings=Timings(round(result.startup_s, 2), round(result.wall_s, 2), round(span, 2)),
        scenario=_scenario(result),
        traffic_started_at=result.traffic_started_at,
        traffic_ended_at=result.traffic_ended_at,
        slot_addresses=dict(result.slot_addresses),
        diagnostics={} if passed else dict(result.diagnostics),
        lb=result.lb.to_dict() if result.lb else {},
        clients=client_matrix(result),
        fleet=build_fleet(result),
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _requests(result: RunResult, swaps: list[Swap], span: float) -> Requests:
    records = result.requests
    steady = [r for r in records if r.kind == "steady"]
    confirmed = next((s.confirmed_at for s in swaps if s.confirmed_at is not None), None)
    before = Counter(str(r.slot) for r in steady if confirmed is None or r.start < confirmed)
    after = Counter(str(r.slot) for r in steady if confirmed is not None and r.start >= confirmed)
    latencies = [r.latency_s * 1000 for r in steady if not r.failed]
    # During a swap by when they were due: a request due in the stall and sent after it counts.
    in_swap = [
        r for r in steady if not r.failed and any(s.started_at <= (r.intended or r.start) <= s.ended_at for s in swaps)
    ]
    failed = failed_requests(records, result.websockets)
    held = load_held(result).evidence
    return Requests(
        total=len(steady),
        failed=failed.failed,
        failed_keepalive=len(failed.keepalive),
        failed_fresh=len(failed.fresh),
        failed_long=len(failed.long),
        broken_websockets=len(failed.websockets),
        asked_rps=result.scenario.rate,
        held_rps=held["held_rps"],
        per_second=held["per_second"],
        arrivals=result.scenario.arrivals,
        generator_processes=result.generator_processes,
        strict_failed=len(failed.strict),
        by_slot=dict(Counter(str(r.slot) for r in steady)),
        by_slot_before_switch=dict(before),
        by_slot_after_switch=dict(after),
        rate_rps=round(len(steady) / span, 1),
        latency_ms=Latency(
            round(percentile(latencies, 0.5), 2),
            round(percentile(latencies, 0.99), 2),
            round(percentile([r.latency_s * 1000 for r in in_swap], 0.99), 2),
            round(percentile([(r.end - r.start) * 1000 for r in in_swap], 0.99), 2),
        ),
    )


def _long_requests(records: list[RequestRecord]) -> LongRequests:
    long = [r for r in records if r.kind == "long"]
    return LongRequests(
        total=len(long),
        completed=len([r for r in long if not r.failed]),
        by_slot=dict(Counter(str(r.slot) for r in long)),
        durations_s=[round(r.end - r.start, 2) for r in long],
        records=[LongRequest(r.start, r.end, r.slot, not r.failed, r.nbytes) for r in long],
    )


def _websockets(result: RunResult, checks: list[Check]) -> WebSockets:
    records: list[WebSocketRecord] = result.websockets
    drained = next((c.passed for c in checks if c.name == "websockets_drained"), False)
    return WebSockets(
        opened=len([w for w in records if w.attempt == 1]),
        reconnections=len([w for w in records if w.attempt > 1]),
        close_codes=dict(Counter(str(w.close_code) for w in records)),
        held_through_swap=len(websockets_on_old(result)) if drained else 0,
        records=list(records),
    )


def _scenario(result: RunResult) -> dict[str, Any]:
    scenario = result.scenario
    settings = {k: v for k, v in vars(scenario).items() if k not in SCENARIO_OBJECTS}
    return settings | {"blue_image": scenario.blue.image, "green_image": scenario.green.image}


def histogram(requests: list[RequestRecord], start: float, end: float, bucket: float = BUCKET_S) -> list[Bucket]:
    """Steady requests per bucket (by send time), by slot, with the failed ones; and the latency
    p50/p99 of the answered ones due in each bucket (by intended send time)."""
    count = max(1, int((end - start) / bucket) + 1)
    rows = [Counter[str]() for _ in range(count)]
    latencies: list[list[float]] = [[] for _ in range(count)]
    for r in requests:
        if r.kind != "steady":
            continue
        index = int((r.start - start) / bucket)
        if 0 <= index < count:
            rows[index]["error" if r.failed or r.slot not in ("blue", "green") else str(r.slot)] += 1
        due = int(((r.intended or r.start) - start) / bucket)
        if 0 <= due < count and not r.failed:
            latencies[due].append(r.latency_s * 1000)
    return [
        Bucket(
            row["blue"],
            row["green"],
            row["error"],
            round(percentile(lat, 0.5), 2) if lat else None,
            round(percentile(lat, 0.99), 2) if lat else None,
        )
        for row, lat in zip(rows, latencies, strict=True)
    ]
