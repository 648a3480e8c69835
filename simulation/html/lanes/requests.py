"""The requests lanes: steady requests per 100 ms stacked by the slot that served them (failures
on top), and under it a strip marking every bucket with a failed request, so one failure among
thousands still shows."""

from __future__ import annotations

from dataclasses import dataclass

from ...report.model import Bucket
from ..geometry import (
    BUCKET_S,
    LEFT,
    RIGHT,
    WIDTH,
    Chart,
    Column,
    Line,
    Rect,
    Text,
    XScale,
    nice_ceiling,
    r2,
    text_width,
)

HIST_H = 170.0
ERRORS_H = 16.0
MIN_ERROR_H = 3.0  # one failed request among thousands must still show
MAX_ERROR_COUNTS = 40  # with more buckets with failures, their counts are not written


@dataclass(frozen=True)
class ErrorMark:
    x: float  # the bucket's left edge
    t: float  # the bucket's start, seconds since traffic start
    count: int


def histogram_lane(chart: Chart, buckets: list[Bucket], x: XScale, y: float) -> tuple[float, list[ErrorMark]]:
    """Draws the stacked columns; returns the y below them and the buckets with failures."""
    base = y + HIST_H
    y_max = nice_ceiling(max((b.total for b in buckets), default=0))
    for frac in (0.0, 0.5, 1.0):
        gy = r2(base - HIST_H * frac)
        chart.grid.append(Line(LEFT, gy, WIDTH - RIGHT, gy, "hgrid" if frac else "axis"))
        chart.texts.append(Text(LEFT - 4, r2(gy + 3.5), f"{y_max * frac:g}", "tick", "end"))
    chart.texts.append(Text(LEFT - 30, r2(y + HIST_H / 2 - 6), "requests", "lane", "end"))
    chart.texts.append(Text(LEFT - 30, r2(y + HIST_H / 2 + 6), "per 100 ms", "lane-sub", "end"))
    bar_w = x(BUCKET_S) - x(0)
    gap = min(1.0, bar_w * 0.12) if bar_w >= 3 else 0.0
    chart.dense = not gap
    # Narrow bars overlap a little so that no hairline seams show between them.
    width = r2(bar_w - gap if gap else bar_w + 0.4)
    marks: list[ErrorMark] = []
    for i, bucket in enumerate(buckets):
        bx = x(i * BUCKET_S)
        rects = _column(bucket, bx, width, base, y_max)
        if not rects:
            continue
        if bucket.error:
            marks.append(ErrorMark(bx, i * BUCKET_S, bucket.error))
        chart.columns.append(
            Column(
                f"+{i * BUCKET_S:.1f} to +{(i + 1) * BUCKET_S:.1f} s: blue {bucket.blue}, "
                f"green {bucket.green}, failed {bucket.error}",
                tuple(rects),
            )
        )
    if not any(b.total for b in buckets):
        chart.texts.append(Text(LEFT + 6, r2(base - 8), "no steady request was recorded", "none"))
    return base, marks


def _column(bucket: Bucket, bx: float, width: float, base: float, y_max: float) -> list[Rect]:
    level = base
    rects: list[Rect] = []
    for key, count in (("blue", bucket.blue), ("green", bucket.green), ("error", bucket.error)):
        if count <= 0:
            continue
        height = HIST_H * count / y_max
        ex, ew = bx, width
        if key == "error":
            height = max(height, MIN_ERROR_H)
            ew = max(width, MIN_ERROR_H)
            ex = r2(bx + width / 2 - ew / 2)
        level -= height
        rects.append(Rect(ex, r2(level), ew, r2(height), f"bar {key}"))
    return rects


def failures_lane(chart: Chart, marks: list[ErrorMark], x: XScale, y: float) -> float:
    """A red mark per bucket with failures, and the count when there is room."""
    bar_w = x(BUCKET_S) - x(0)
    mark_w = max(bar_w, MIN_ERROR_H)
    chart.lane_label(y + 2, ERRORS_H, "failed requests")
    if not marks:
        chart.none_text(y + 13, "none", "none ok")
        return y + ERRORS_H + 12
    for mark in marks:
        mx = r2(mark.x + bar_w / 2 - mark_w / 2)
        title = f"{mark.count} failed request(s) at +{mark.t:.1f} s"
        chart.spans.append(Rect(mx, r2(y + 4), r2(mark_w), 10.0, "errmark", title))
    if len(marks) <= MAX_ERROR_COUNTS:
        last_end = -1e9
        for mark in marks:
            label = str(mark.count)
            if mark.x + bar_w + 2 > last_end:
                chart.texts.append(Text(r2(mark.x + mark_w + 2), r2(y + 12.5), label, "errcount"))
                last_end = mark.x + bar_w + 2 + text_width(label, 9) + 3
    total = sum(m.count for m in marks)
    chart.notes.append(f"{total} failed request{'s' if total != 1 else ''}, in {len(marks)} of the 100 ms buckets")
    return y + ERRORS_H + 12
