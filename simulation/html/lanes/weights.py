"""The Nginx weights lane: the share of each slot as configured, from each reload's signal on."""

from __future__ import annotations

from ...report.model import RunReport
from ..geometry import Chart, Rect, Text, XScale, num, other_slot, r2
from ..markers import reload_signal

WEIGHTS_H = 14.0


def weight_changes(report: RunReport) -> list[tuple[float, int | None]]:
    """(seconds since traffic start, green's share of the weights, None when unknown), in time order.

    The live slot has everything until the first reload; each reload sets its slot's share
    (``reload.slot``, ``reload.percent``) from its signal on. A swap that claims a confirmation but
    recorded no reload (a hand-rolled swap) leaves the weights unknown from its start.
    """
    if not report.swaps:
        return []
    t0 = num(report.traffic_started_at)
    first = report.swaps[0]
    live = (first.report.outcome.previous if first.report else None) or other_slot(first.target)
    changes: list[tuple[float, int | None]] = [(0.0, 100 if live == "green" else 0)]
    for swap in report.swaps:
        if swap.report is None:
            continue
        if not swap.report.reloads and swap.report.confirmed_at is not None:
            changes.append((num(swap.started_at, t0) - t0, None))
        for reload in swap.report.reloads:
            percent = min(100, max(0, reload.percent))
            green = percent if reload.slot == "green" else 100 - percent
            changes.append((num(reload_signal(reload), t0) - t0, green))
    return sorted(changes, key=lambda c: c[0])


def weights_lane(chart: Chart, report: RunReport, x: XScale, y: float) -> float:
    changes = weight_changes(report)
    if not changes:
        return y + 8
    for n, (start, green) in enumerate(changes):
        end = changes[n + 1][0] if n + 1 < len(changes) else x.t_max
        sx, sw = x.span(start, end, 0.5)
        if green is None:
            title = f"from +{start:.3f} s: this swap reported no reload, so its weights are unknown"
            chart.spans.append(Rect(sx, r2(y), sw, WEIGHTS_H, "w unknown", title))
            if sw > 70:
                chart.texts.append(Text(r2(sx + 4), r2(y + 10), "not reported", "in-w dim"))
            continue
        green_h = r2(WEIGHTS_H * green / 100)
        blue_h = r2(WEIGHTS_H - green_h)
        title = f"Nginx weights from +{start:.3f} s: blue {100 - green}%, green {green}%"
        if blue_h > 0:
            chart.spans.append(Rect(sx, r2(y), sw, blue_h, "w blue", title))
        if green_h > 0:
            chart.spans.append(Rect(sx, r2(y + blue_h), sw, green_h, "w green", title))
        if 0 < green < 100 and sw > 60:
            chart.texts.append(Text(r2(sx + 4), r2(y + 10), f"{green}% green", "in-w"))
    chart.lane_label(y, WEIGHTS_H, "Nginx weights")
    return y + WEIGHTS_H + 8
