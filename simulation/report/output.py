"""The report's files (``report.json``, ``junit.xml``, ``report.html``) and the terminal summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from ..assertions import Check
from .build import build, histogram
from .fleet import FleetReport, LbSwapRow
from .model import RunReport

if TYPE_CHECKING:
    from ..scenario import RunResult


def write(report_dir: Path, result: RunResult, checks: list[Check]) -> RunReport:
    from ..html import render_html

    report_dir.mkdir(parents=True, exist_ok=True)
    report = build(result, checks)
    (report_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    (report_dir / "junit.xml").write_bytes(junit(checks, result.wall_s))
    buckets = histogram(result.requests, result.traffic_started_at, result.traffic_ended_at)
    (report_dir / "report.html").write_text(render_html(report, buckets))
    return report


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


LOG_LINES = 15


def summary_lines(report: RunReport) -> list[str]:
    req, long, ws = report.requests, report.long_requests, report.websockets
    lines = [
        "",
        f"RESULT: {'PASSED' if report.passed else 'FAILED'}",
        f"  total requests            {req.total}  ({req.rate_rps} req/s; asked {req.asked_rps:g}, held "
        f"{req.held_rps:g} over the swap window; {req.arrivals} arrivals"
        + (", closed loop)" if req.arrivals == "closed" else ", open loop)"),
        f"  failed requests           {req.failed_all}  (keep-alive {req.failed_keepalive}, fresh {req.failed_fresh}, "
        f"long {req.failed_long}, WebSocket {req.broken_websockets}); strict count {req.strict_failed}",
        f"  per slot before switch    {req.by_slot_before_switch}",
        f"  per slot after switch     {req.by_slot_after_switch}",
        f"  long requests completed   {long.completed}/{long.total} {long.by_slot}",
        f"  WebSockets held through   {ws.held_through_swap}/{ws.opened} "
        f"(close codes {ws.close_codes}, {ws.reconnections} reconnected)",
        f"  latency p50/p99           {req.latency_ms.p50} / {req.latency_ms.p99} ms "
        f"(p99 during swaps {req.latency_ms.p99_during_swap} ms from when due; "
        f"{req.latency_ms.p99_during_swap_from_send} ms from when sent)",
    ]
    for index, swap in enumerate(report.swaps, 1):
        drain = swap.report.drain if swap.report else None
        drained = f"drain {drain.outcome} in {round(drain.duration_ms)} ms" if drain else "drain - in 0 ms"
        lines.append(
            f"  swap {index} -> {swap.target:<5}         confirmed live after {swap.confirm_ms} ms; "
            f"total {swap.duration_ms} ms; {drained}"
        )
        for reload in swap.report.reloads if swap.report else []:
            lines.append(
                f"      reload ({reload.slot} at {reload.percent}%): signal {reload.signal_ms} ms, "
                f"new workers +{reload.new_workers_ms} ms, old stopped accepting +{reload.old_stopped_ms} ms, "
                f"marker +{reload.marker_ms} ms"
            )
    if report.fleet:
        lines.extend(fleet_lines(report.fleet))
    for kind, row in report.clients.items():
        if row.get("skipped"):
            lines.append(f"  client {kind:<18}  {row['skipped']}")
        else:
            lines.append(
                f"  client {kind:<18}  {row['failed']} failed of {row['requests']} (before the first swap, "
                f"then per swap: {row['per_swap']})"
            )
    if report.lb:
        lb = report.lb
        conf = f", config {lb['nginx_conf']}" if lb.get("nginx_conf") else ""
        lines.append(
            f"  LB                        {lb['image']} ({lb['nginx_version']}{conf}); managed file {lb['managed_file']}"
        )
        for added in lb.get("added_by_harness") or ["nothing"]:
            lines.append(f"      harness added: {added}")
    timings = report.timings
    lines.append(f"  timings                   environment {timings.environment_startup_s} s, wall {timings.wall_s} s")
    lines.append("")
    for check in report.assertions:
        verdict = "WARN" if check.warning else ("PASS" if check.passed else "FAIL")
        lines.append(f"  [{verdict}] {check.name}: {check.summary}")
    lines.append("")
    lines.append("  client model: " + report.client_model)
    logged = report.diagnostics.get("nginx_error_log", "").strip().splitlines()
    errors = [line for line in logged if any(f"[{level}]" in line for level in ("error", "crit", "alert", "emerg"))]
    if logged:  # only a failed run keeps diagnostics: what Nginx said is often the cause
        shown, what = (errors, "errors") if errors else (logged, "lines")
        lines.append("")
        lines.append(f"  the LB's error log, last {min(len(shown), LOG_LINES)} {what} (all of it in report.json):")
        lines.extend("    " + line for line in shown[-LOG_LINES:])
    return lines


def fleet_lines(fleet: FleetReport) -> list[str]:
    """The terminal's per-LB rows: traffic, each LB's part in each swap, the skew, the end state."""
    worst = fleet.worst_skew_ms
    skew = f"widest skew {worst:.0f} ms" if worst is not None else "no skew measured"
    lines = [
        f"  LBs                       {fleet.lbs}, clients dealt out in turn; {skew} (bound {fleet.max_skew_ms:g} ms)"
    ]
    for t in fleet.traffic:
        lines.append(
            f"      lb{t.lb} {t.name}: {t.requests} requests, {t.failed} failed; before its first switch "
            f"{t.by_slot_before_switch}, after its last {t.by_slot_after_switch}; {t.long_requests} long, "
            f"{t.websockets} WebSocket connections" + (f", {t.staging} staging probes" if t.staging else "")
        )
    for row in fleet.swaps:
        lines.append(f"      swap {row.swap} lb{row.lb}: {lb_swap_text(row)}")
    for window in fleet.skew:
        lines.append(
            f"      swap {window.swap} skew at {window.percent}% to {window.slot}: {window.window_ms:.0f} ms "
            f"across {window.lbs} LBs"
        )
    for state in fleet.end_state:
        lines.append(
            f"      after the run lb{state.index + 1}: managed file says {state.file_live or 'unreadable'}, "
            f"answers {state.answered}" + (f" ({state.error})" if state.error else "")
        )
    return lines


def lb_swap_text(row: LbSwapRow) -> str:
    """One LB's part in one swap, in words (terminal and HTML)."""
    if not row.reported:
        return "no outcome from the engine"
    parts = [f"{row.before or '?'} -> {row.after or '?'}"]
    if row.confirm_ms is not None:
        parts.append(f"{'switched' if row.restored else 'confirmed live'} +{row.confirm_ms:.0f} ms")
    if row.restored:
        parts.append("then restored (the previous config back, confirmed)")
    if row.restore_failed:
        parts.append("RESTORE FAILED")
    if row.in_doubt:
        parts.append("in doubt")
    if row.drain:
        parts.append(f"drain {row.drain.outcome} in {row.drain.duration_ms:.0f} ms")
    if row.error:
        parts.append(f"error {row.error.type}: {row.error.cause}")
    return ", ".join(parts)
