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

from ..report.fleet import FleetReport
from ..report.model import Bucket, RunReport, Swap
from ..report.output import lb_swap_text
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
class LbRow:
    """One LB's traffic over the run, and what it served once the run was over."""

    lb: str
    name: str
    requests: str
    failed: str
    before: str
    after: str
    other: str  # long requests, WebSocket connections, staging probes
    end: str
    bad: bool = False


@dataclass(frozen=True)
class LbSwapLine:
    """One LB's part in one swap."""

    swap: int
    lb: str
    target: str
    slots: str  # before -> after
    changed: str
    restored: str
    confirm: str
    drain: str
    error: str
    bad: bool = False


@dataclass(frozen=True)
class FleetView:
    lbs: int
    skew: str
    skew_bad: bool
    rows: list[LbRow]
    swaps: list[LbSwapLine]
    skew_rows: list[str]


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
    fleet: FleetView | None = None  # two LBs or more: per-LB rows and the skew


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
        *([_skew_figure(report.fleet)] if report.fleet else []),
    ]


def _skew_figure(fleet: FleetReport) -> Figure:
    worst = fleet.worst_skew_ms
    return Figure(
        "Skew between LBs",
        fmt_ms(worst) if worst is not None else "-",
        [
            f"{fleet.lbs} LBs, bound {fmt_ms(fleet.max_skew_ms)}",
            f"{len(fleet.skew)} step(s) measured" if fleet.skew else "no step was proven live on two LBs",
            "first to last LB proving a step live (LB clocks)",
        ],
        worst is None or worst > fleet.max_skew_ms,
    )


def fleet_view(fleet: FleetReport | None) -> FleetView | None:
    """The per-LB rows, each LB's part in each swap and the skew, formatted."""
    if fleet is None:
        return None
    ends = {state.index + 1: state for state in fleet.end_state}
    rows = []
    for t in fleet.traffic:
        end = ends.get(t.lb)
        end_text = (
            f"file {end.file_live or 'unreadable'}, answers {_slots(end.answered)}"
            + (f" ({end.error})" if end.error else "")
            if end
            else "-"
        )
        rows.append(
            LbRow(
                f"lb{t.lb}",
                t.name,
                f"{t.requests:,}",
                str(t.failed),
                _slots(t.by_slot_before_switch),
                _slots(t.by_slot_after_switch),
                f"{t.long_requests} long, {t.websockets} WebSocket connections"
                + (f", {t.staging} staging probes" if t.staging else ""),
                end_text,
                bool(t.failed) or (end is not None and len(set(end.answered)) != 1),
            )
        )
    swaps = [
        LbSwapLine(
            swap=row.swap,
            lb=f"lb{row.lb}",
            target=row.target,
            slots=f"{row.before or '?'} → {row.after or '?'}" if row.reported else "-",
            changed="yes" if row.changed else "no",
            restored="FAILED" if row.restore_failed else ("yes" if row.restored else "no"),
            confirm=fmt_ms(row.confirm_ms),
            drain=(
                f"{row.drain.outcome} in {fmt_ms(row.drain.duration_ms)}, {row.drain.connections_left} connection(s) "
                f"and {row.drain.workers_left} worker(s) left"
                if row.drain
                else "-"
            ),
            error=(f"{row.error.type}: {row.error.cause}" if row.error else "")
            or ("" if row.reported else lb_swap_text(row)),
            bad=bool(row.error or row.restore_failed or row.in_doubt or not row.reported),
        )
        for row in fleet.swaps
    ]
    worst = fleet.worst_skew_ms
    skew = (
        f"widest {fmt_ms(worst)} against a bound of {fmt_ms(fleet.max_skew_ms)}"
        if worst is not None
        else f"no step was proven live on two LBs (bound {fmt_ms(fleet.max_skew_ms)})"
    )
    return FleetView(
        lbs=fleet.lbs,
        skew=skew,
        skew_bad=worst is None or worst > fleet.max_skew_ms,
        rows=rows,
        swaps=swaps,
        skew_rows=[
            f"swap {w.swap}: {w.percent}% to {w.slot}, {fmt_ms(w.window_ms)} across {w.lbs} LBs" for w in fleet.skew
        ],
    )


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
        fleet=fleet_view(report.fleet),
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
