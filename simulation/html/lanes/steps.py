"""The swap steps lane: one bar per step of each swap's report, coloured by phase."""

from __future__ import annotations

from swap_action.outcome import Phase, Step

from ...report.model import RunReport
from ..geometry import LEFT, Chart, Rect, Text, XScale, num, r2, text_width

STEPS_H = 18.0
PHASE_CLASSES = {
    Phase.RELOAD_CONFIRM: "st-reload",
    Phase.DRAIN: "st-drain",
    Phase.PAUSE: "st-pause",
    Phase.VERIFY: "st-verify",
}


def step_class(step: Step, n: int) -> str:
    """A failed step is red; reload, verify, pause and drain have their colour; others alternate."""
    if not step.ok:
        return "st-fail"
    return PHASE_CLASSES.get(step.phase, "st-a" if n % 2 == 0 else "st-b")


def steps_lane(chart: Chart, report: RunReport, x: XScale, y: float) -> float:
    if not report.swaps:
        return y
    t0 = num(report.traffic_started_at)
    drawn = 0
    for index, swap in enumerate(report.swaps, 1):
        for n, step in enumerate(swap.report.steps if swap.report else []):
            drawn += 1
            start = num(step.started_at, t0) - t0
            duration = num(step.duration_ms) / 1000
            sx, sw = x.span(start, start + duration, 1.0)
            title = f"swap {index}: {step.label}, {num(step.duration_ms):.0f} ms at +{start:.3f} s" + (
                f": {step.detail}" if step.detail else ""
            )
            chart.spans.append(Rect(sx, r2(y + 2), sw, STEPS_H - 4, f"step {step_class(step, n)}", title))
            short = step.phase.value
            if sw > text_width(short, 9) + 6:
                chart.texts.append(Text(r2(sx + sw / 2), r2(y + 12.5), short, "in-step", "middle"))
    chart.lane_label(y, STEPS_H, "swap steps")
    if not drawn:
        why = "no report" if not any(s.report for s in report.swaps) else "no steps in its report"
        chart.texts.append(Text(LEFT + 4, r2(y + 12.5), f"no step recorded (the swap left {why})", "none"))
    return y + STEPS_H + 3
