"""The rest of the page around the timeline: the verdict's headline, the key figures, the
assertions, the swaps' step tables, diagnostics and the scenario; all formatted here from the
typed report so the template only loops."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from ..report.model import Bucket, RunReport, Swap
from .chart import build_chart
from .geometry import Chart, fmt_ms, num, other_slot

TEMPLATE = Path(__file__).parent.parent / "templates" / "report.html.j2"
DEFINITION_CHECK = "zero_failed_requests"  # its description says what a failed request is


@dataclass(frozen=True)
class Figure:
    title: str
    value: str
    lines: list[str]
    bad: bool = False


@dataclass(frozen=True)
class AssertionRow:
    name: str
    title: str
    passed: bool
    summary: str
    evidence: str  # JSON, for people
    warning: bool = False  # passed only because the scenario made it a warning (--allow-saturation)

    @property
    def verdict(self) -> str:
        return "warn" if self.warning else ("pass" if self.passed else "fail")


@dataclass(frozen=True)
class StepRow:
    label: str
    at: str
    duration: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SwapTable:
    index: int
    target: str
    source: str
    error: str | None
    has_report: bool
    duration: str
    confirm: str
    at: str
    drain: str
    restored: bool
    cause: str
    fix: str
    error_type: str
    config_diff: str
    steps: list[StepRow] = field(default_factory=list)


@dataclass(frozen=True)
class View:
    passed: bool
    headline: list[str]
    when: str
    chart: Chart
    figures: list[Figure]
    assertions: list[AssertionRow]
    failing: list[AssertionRow]
    client_model: str
    definition: str
    swaps: list[SwapTable]
    diagnostics: list[tuple[str, str]]
    scenario: list[tuple[str, str]]
    slot_addresses: dict[str, str]
    lb: list[tuple[str, str]] = field(default_factory=list)  # (label, value): image, version, file
    lb_added: list[str] = field(default_factory=list)  # what the harness added to the LB's config
    preflight: list[str] = field(default_factory=list)  # each endpoint tried before traffic
    # A compose run (--compose): (label, value) of the stack, and each service it ran:
    # (service, role, container, image, state).
    stack: list[tuple[str, str]] = field(default_factory=list)
    services: list[tuple[str, str, str, str, str]] = field(default_factory=list)


def error_type(swap: Swap) -> str:
    return swap.error.type if swap.error else ""


def headline(report: RunReport) -> list[str]:
    """The one-line summary, as parts."""
    req = report.requests
    parts = [
        f"{req.total:,} requests",
        f"{req.failed_all} failed",
        f"strict count {req.strict_failed}",
        f"{req.held_rps:g} of {req.asked_rps:g} req/s held",
    ]
    swaps = report.swaps
    if not swaps:
        return [*parts, "no swap ran"]
    if len(swaps) <= 4:
        return parts + [f"swap {i} → {s.target} {_swap_state(s)}" for i, s in enumerate(swaps, 1)]
    confirmed = [s.confirm_ms for s in swaps if s.confirm_ms is not None]
    text = f"{len(swaps)} swaps, {len(confirmed)} confirmed live"
    if confirmed:
        text += f" in {min(confirmed):.0f}\u2013{max(confirmed):.0f} ms (median {statistics.median(confirmed):.0f} ms)"
    failed = [(i, s) for i, s in enumerate(swaps, 1) if s.error or s.confirm_ms is None]
    return [
        *parts,
        text,
        *(f"swap {i} → {s.target} {'FAILED' if s.error else 'not confirmed'}" for i, s in failed[:3]),
    ]


def _swap_state(swap: Swap) -> str:
    if swap.error:
        kind = error_type(swap)
        return f"FAILED ({kind})" if kind else "FAILED"
    return f"confirmed live in {swap.confirm_ms:.0f} ms" if swap.confirm_ms is not None else "not confirmed"


def _slots(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def figures(report: RunReport) -> list[Figure]:
    req, lat, long, ws, timings = (
        report.requests,
        report.requests.latency_ms,
        report.long_requests,
        report.websockets,
        report.timings,
    )
    codes = ", ".join(f"{k}: {v}" for k, v in ws.close_codes.items()) or "-"
    durations = ", ".join(str(d) for d in long.durations_s[:8]) or "-"
    return [
        Figure(
            "Requests",
            f"{req.total:,}",
            [
                f"{req.failed_all} failed (keep-alive {req.failed_keepalive}, fresh {req.failed_fresh}, "
                f"long {req.failed_long}, WebSocket {req.broken_websockets})",
                f"strict count {req.strict_failed}",
                f"{req.held_rps:g} of {req.asked_rps:g} req/s held over the swaps ({req.arrivals} arrivals, "
                f"{req.generator_processes} generator process{'es' if req.generator_processes > 1 else ''})",
                f"before the switch: {_slots(req.by_slot_before_switch)}",
                f"after the switch: {_slots(req.by_slot_after_switch)}",
            ],
            bool(req.failed_all),
        ),
        Figure(
            "Latency",
            f"p99 {fmt_ms(lat.p99)}",
            [
                f"p50 {fmt_ms(lat.p50)}",
                f"p99 during swaps {fmt_ms(lat.p99_during_swap)}",
                f"(from when sent: {fmt_ms(lat.p99_during_swap_from_send)}; all from when due)",
            ],
        ),
        Figure(
            "Long requests",
            f"{long.completed}/{long.total}",
            ["completed with full bodies", f"served by {_slots(long.by_slot)}", f"durations {durations} s"],
            long.completed != long.total,
        ),
        Figure(
            "WebSockets",
            f"{ws.held_through_swap}/{ws.opened}",
            ["held through the swap", f"close codes {codes}", f"{ws.reconnections} reconnected"],
            ws.held_through_swap != ws.opened,
        ),
        Figure(
            "Timings",
            f"{timings.wall_s} s",
            [
                "wall clock",
                f"environment up in {timings.environment_startup_s} s",
                f"traffic for {timings.traffic_s} s",
            ],
        ),
    ]


def swap_tables(report: RunReport) -> list[SwapTable]:
    t0 = num(report.traffic_started_at)
    return [_swap_table(index, swap, t0) for index, swap in enumerate(report.swaps, 1)]


def _swap_table(index: int, swap: Swap, t0: float) -> SwapTable:
    rep = swap.report
    drain = rep.drain if rep else None
    error = rep.outcome.error if rep else None
    steps = [
        StepRow(
            step.label,
            f"+{num(step.started_at, t0) - t0:.3f} s",
            fmt_ms(step.duration_ms),
            step.ok,
            step.detail,
        )
        for step in (rep.steps if rep else [])
    ]
    return SwapTable(
        index=index,
        target=swap.target,
        source=(rep.outcome.previous if rep else None) or other_slot(swap.target),
        error=swap.error.text() if swap.error else None,
        has_report=rep is not None,
        duration=fmt_ms(swap.duration_ms),
        confirm=fmt_ms(swap.confirm_ms),
        at=f"+{num(swap.started_at, t0) - t0:.2f} s",
        drain=f"{drain.outcome} in {fmt_ms(drain.duration_ms)}, {drain.connections_left} connection(s) "
        f"and {drain.workers_left} worker(s) left"
        if drain
        else "",
        restored=bool(rep and rep.outcome.restored),
        cause=error.cause if error else "",
        fix=error.fix if error else "",
        error_type=error.type if error else "",
        config_diff=rep.config_diff if rep else "",
        steps=steps,
    )


def when(report: RunReport) -> str:
    t0 = num(report.traffic_started_at)
    return datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t0 > 0 else ""


def view(report: RunReport, buckets: list[Bucket]) -> View:
    """Everything the template shows, already formatted."""
    assertions = [
        AssertionRow(
            c.name, c.title or c.name, c.passed, c.summary, json.dumps(c.evidence, indent=2, default=str), c.warning
        )
        for c in report.assertions
    ]
    definition = report.check(DEFINITION_CHECK)
    return View(
        passed=report.passed,
        headline=headline(report),
        when=when(report),
        chart=build_chart(report, buckets),
        figures=figures(report),
        assertions=assertions,
        failing=[a for a in assertions if not a.passed],
        client_model=report.client_model,
        definition=definition.description if definition else "",
        swaps=swap_tables(report),
        diagnostics=list(report.diagnostics.items()),
        scenario=[(k, json.dumps(v, default=str)) for k, v in report.scenario.items()],
        slot_addresses=report.slot_addresses,
        lb=[
            (label, str(report.lb[key]))
            for label, key in (
                ("image", "image"),
                ("Nginx", "nginx_version"),
                ("config given", "nginx_conf"),
                ("managed upstream file", "managed_file"),
            )
            if report.lb.get(key)
        ],
        lb_added=list(report.lb.get("added_by_harness", [])),
        preflight=[f"{p['role']} {p['path']}: {p['detail']}" for p in report.lb.get("preflight", [])],
        stack=stack_rows(report.lb.get("compose") or {}),
        services=service_rows(report.lb.get("compose") or {}),
    )


def stack_rows(compose: dict[str, Any]) -> list[tuple[str, str]]:
    """The compose run's project, files, network and LB (empty for the harness's own world)."""
    if not compose:
        return []
    lb = compose.get("lb_service")
    return [
        ("project", str(compose.get("project", ""))),
        ("compose files", " ".join(f"-f {f}" for f in compose.get("files", []))),
        ("slots", f"{compose.get('blue_service')} (blue), {compose.get('green_service')} (green)"),
        ("LB", f"the team's service {lb}" if lb else "the harness's, on the stack's network"),
        ("network", str(compose.get("network", ""))),
    ]


def service_rows(compose: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for s in compose.get("services", []):
        state = f"{s.get('state', '')}, {s.get('health') or 'no healthcheck'}"
        rows.append((s.get("service", ""), s.get("role", ""), s.get("container", ""), s.get("image", ""), state))
    return rows


def render_html(report: RunReport, buckets: list[Bucket]) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE.read_text()).render(v=view(report, buckets))
