"""The latency lane: p50 and p99 of the steady requests due in each 100 ms bucket, counted from
when they were due (open loop), so a stall at a reload shows as a spike where it happened."""

from __future__ import annotations

from ...report.model import Bucket
from ..geometry import BUCKET_S, LEFT, RIGHT, WIDTH, Chart, Line, Text, XScale, fmt_ms, nice_ceiling, r2

LATENCY_H = 70.0


def latency_lane(chart: Chart, buckets: list[Bucket], x: XScale, y: float) -> float:
    """Draws p99 (and p50 under it) as lines over the buckets; returns the y below the lane."""
    base = y + LATENCY_H
    chart.lane_label(y, LATENCY_H, "latency", "p50 / p99, from due")
    points = [(i, b.p50_ms, b.p99_ms) for i, b in enumerate(buckets) if b.p99_ms is not None]
    if not points:
        chart.none_text(y + LATENCY_H / 2, "no answered steady request")
        return base + 8
    top = nice_ceiling(max(p99 or 0.0 for _i, _p50, p99 in points))
    for frac in (0.0, 1.0):
        gy = r2(base - LATENCY_H * frac)
        chart.grid.append(Line(LEFT, gy, WIDTH - RIGHT, gy, "hgrid" if frac else "axis"))
        chart.texts.append(Text(LEFT - 4, r2(gy + 3.5), fmt_ms(top * frac) if frac else "0", "tick", "end"))

    def level(ms: float) -> float:
        return r2(base - LATENCY_H * min(ms, top) / top)

    for key, cls in (("p50", "lat p50"), ("p99", "lat p99")):
        previous: tuple[float, float] | None = None
        for index, p50, p99 in points:
            value = p99 if key == "p99" else p50
            if value is None:
                continue
            mid = x((index + 0.5) * BUCKET_S)
            here = (mid, level(value))
            title = f"+{index * BUCKET_S:.1f} s: {key} {fmt_ms(value)}"
            if previous is not None and mid - previous[0] <= x(BUCKET_S) - x(0) + 0.01:
                chart.caps.append(Line(previous[0], previous[1], here[0], here[1], cls, title))
            else:  # the first point, or after a gap with no answer: a dot
                chart.caps.append(Line(here[0] - 0.8, here[1], here[0] + 0.8, here[1], cls, title))
            previous = here
    worst_index, _p50, worst = max(points, key=lambda point: point[2] or 0.0)
    chart.notes.append(f"worst p99 of a 100 ms bucket: {fmt_ms(worst)} at +{worst_index * BUCKET_S:.1f} s")
    return base + 8
