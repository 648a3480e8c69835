"""The run's report: ``report.json`` (the facts), ``junit.xml`` (a case per assertion) and a
self-contained ``report.html`` with the timeline; plus the summary printed on the terminal."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from .assertions import Check, websockets_summary
from .records import RequestRecord
from .scenario import RunResult

CLIENT_MODEL = (
    "Pass/fail counts failed requests of keep-alive clients that retry an idempotent request once when "
    "the server closed their reused connection (what browsers, urllib3 and aiohttp do; RFC 9112 9.3.1), "
    "and of clients that open a new connection per request. The strict count (every error on a reused "
    "connection, before any retry) is reported beside it: Nginx's old workers close idle keep-alive "
    "connections at a reload, so a client that never retries would see those."
)


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build(result: RunResult, checks: list[Check]) -> dict[str, Any]:
    steady = [r for r in result.requests if r.kind == "steady"]
    long = [r for r in result.requests if r.kind == "long"]
    first = next((s for s in result.swaps if s.report and s.report.confirmed_at), None)
    confirmed = first.report.confirmed_at if first and first.report else None
    before = Counter(str(r.slot) for r in steady if confirmed is None or r.start < confirmed)
    after = Counter(str(r.slot) for r in steady if confirmed is not None and r.start >= confirmed)
    span = max(result.traffic_ended_at - result.traffic_started_at, 1e-9)
    latencies = [(r.end - r.start) * 1000 for r in steady if not r.failed]
    swap_windows = [(s.started_at, s.ended_at) for s in result.swaps]
    during = [
        (r.end - r.start) * 1000 for r in steady if not r.failed and any(a <= r.start <= b for a, b in swap_windows)
    ]
    failed = next(c for c in checks if c.name == "zero_failed_requests").evidence
    return {
        "passed": all(c.passed for c in checks),
        "assertions": [c.to_dict() for c in checks],
        "client_model": CLIENT_MODEL,
        "requests": {
            "total": len(steady),
            "failed": failed["failed"],
            "failed_keepalive": failed["failed_keepalive"],
            "failed_fresh": failed["failed_fresh"],
            "strict_failed": failed["strict_failed"],
            "by_slot": dict(Counter(str(r.slot) for r in steady)),
            "by_slot_before_switch": dict(before),
            "by_slot_after_switch": dict(after),
            "rate_rps": round(len(steady) / span, 1),
            "latency_ms": {
                "p50": round(_p(latencies, 0.5), 2),
                "p99": round(_p(latencies, 0.99), 2),
                "p99_during_swap": round(_p(during, 0.99), 2),
            },
        },
        "long_requests": {
            "total": len(long),
            "completed": len([r for r in long if not r.failed]),
            "by_slot": dict(Counter(str(r.slot) for r in long)),
            "durations_s": [round(r.end - r.start, 2) for r in long],
            "records": [
                {"start": r.start, "end": r.end, "slot": r.slot, "complete": not r.failed, "bytes": r.nbytes}
                for r in long
            ],
        },
        "websockets": {
            **websockets_summary(result.websockets),
            "held_through_swap": next(c for c in checks if c.name == "websockets_drained").evidence.get("on_old", 0)
            if next(c for c in checks if c.name == "websockets_drained").passed
            else 0,
            "records": [w.to_dict() for w in result.websockets],
        },
        "swaps": [
            {
                "target": s.target,
                "error": s.error,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "duration_ms": round((s.ended_at - s.started_at) * 1000, 1),
                "confirm_ms": round((s.report.confirmed_at - s.started_at) * 1000, 1)
                if s.report and s.report.confirmed_at
                else None,
                "report": s.report.to_dict() if s.report else None,
            }
            for s in result.swaps
        ],
        "timings": {
            "environment_startup_s": round(result.startup_s, 2),
            "wall_s": round(result.wall_s, 2),
            "traffic_s": round(span, 2),
        },
        "scenario": {
            k: v for k, v in vars(result.scenario).items() if k not in ("swapper", "blue", "green", "nginx_template")
        }
        | {"blue_image": result.scenario.blue.image, "green_image": result.scenario.green.image},
        "traffic_started_at": result.traffic_started_at,
        "traffic_ended_at": result.traffic_ended_at,
        "slot_addresses": result.slot_addresses,
        "diagnostics": result.diagnostics if not all(c.passed for c in checks) else {},
    }


def histogram(requests: list[RequestRecord], start: float, end: float, bucket: float = 0.1) -> list[dict[str, int]]:
    """Requests per bucket (by send time), stacked by slot, with errors."""
    count = max(1, int((end - start) / bucket) + 1)
    rows: list[dict[str, int]] = [{"blue": 0, "green": 0, "error": 0} for _ in range(count)]
    for r in requests:
        if r.kind != "steady":
            continue
        index = int((r.start - start) / bucket)
        if 0 <= index < count:
            key = "error" if r.failed else (r.slot if r.slot in ("blue", "green") else "error")
            rows[index][key] += 1
    return rows


def write(report_dir: Path, result: RunResult, checks: list[Check]) -> dict[str, Any]:
    from .html import render_html

    report_dir.mkdir(parents=True, exist_ok=True)
    data = build(result, checks)
    (report_dir / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (report_dir / "junit.xml").write_bytes(junit(checks, result.wall_s))
    (report_dir / "report.html").write_text(
        render_html(data, histogram(result.requests, result.traffic_started_at, result.traffic_ended_at))
    )
    return data


def junit(checks: list[Check], wall_s: float) -> bytes:
    suite = ET.Element(
        "testsuite",
        name="bluegreen-simulation",
        tests=str(len(checks)),
        failures=str(sum(not c.passed for c in checks)),
        time=f"{wall_s:.2f}",
    )
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname="simulation", name=check.name)
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.summary)
            failure.text = json.dumps(check.evidence, indent=2, default=str)
        else:
            ET.SubElement(case, "system-out").text = check.summary
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def summary_lines(data: dict[str, Any]) -> list[str]:
    req = data["requests"]
    lines = [
        "",
        f"RESULT: {'PASSED' if data['passed'] else 'FAILED'}",
        f"  total requests            {req['total']}  ({req['rate_rps']} req/s)",
        f"  failed requests           {req['failed']}  (keep-alive {req['failed_keepalive']}, fresh {req['failed_fresh']}); "
        f"strict count {req['strict_failed']}",
        f"  per slot before switch    {req['by_slot_before_switch']}",
        f"  per slot after switch     {req['by_slot_after_switch']}",
        f"  long requests completed   {data['long_requests']['completed']}/{data['long_requests']['total']} {data['long_requests']['by_slot']}",
        f"  WebSockets held through   {data['websockets']['held_through_swap']}/{data['websockets']['opened']} "
        f"(close codes {data['websockets']['close_codes']}, {data['websockets']['reconnections']} reconnected)",
        f"  latency p50/p99           {req['latency_ms']['p50']} / {req['latency_ms']['p99']} ms "
        f"(p99 during swaps {req['latency_ms']['p99_during_swap']} ms)",
    ]
    for index, swap in enumerate(data["swaps"], 1):
        rep = swap["report"] or {}
        drain = rep.get("drain") or {}
        lines.append(
            f"  swap {index} -> {swap['target']:<5}         confirmed live after {swap['confirm_ms']} ms; total {swap['duration_ms']} ms; "
            f"drain {drain.get('outcome', '-')} in {round(drain.get('duration_ms', 0))} ms"
        )
        for reload in rep.get("reloads", []):
            lines.append(
                f"      reload: signal {reload.get('reload_ms')} ms, new workers +{reload.get('new_workers_ms')} ms, "
                f"old stopped accepting +{reload.get('old_stopped_ms')} ms, marker +{reload.get('marker_ms')} ms"
            )
    lines.append(
        f"  timings                   environment {data['timings']['environment_startup_s']} s, wall {data['timings']['wall_s']} s"
    )
    lines.append("")
    for check in data["assertions"]:
        lines.append(f"  [{'PASS' if check['passed'] else 'FAIL'}] {check['name']}: {check['summary']}")
    lines.append("")
    lines.append("  client model: " + CLIENT_MODEL)
    return lines
