"""The timeline picture: the lanes one under the other, swap windows behind them, the time axis
under them and the markers over everything."""

from __future__ import annotations

from dataclasses import replace

from ..report.model import Bucket, RunReport
from .geometry import (
    BUCKET_S,
    LABEL_ROW_H,
    LEFT,
    MAX_LABEL_ROWS,
    RIGHT,
    WIDTH,
    Chart,
    Line,
    Rect,
    Text,
    XScale,
    num,
    r2,
    ticks,
)
from .lanes.latency import latency_lane
from .lanes.long_requests import long_requests_lane
from .lanes.requests import failures_lane, histogram_lane
from .lanes.steps import steps_lane
from .lanes.websockets import websockets_lane
from .lanes.weights import weights_lane
from .markers import LABEL_TOP, Marker, drain_end, draw_markers, label_rows, markers_of, place_labels

BUSY_SWAPS = 3  # with more swaps, only their starts, confirmations and bad drains are labelled
CLOCK_JUMP_S = 30.0  # a record stamped later than this after the traffic does not stretch the picture


def t_max(report: RunReport, buckets: list[Bucket]) -> float:
    """Seconds since traffic start the picture spans."""
    t0 = num(report.traffic_started_at)
    ends = [len(buckets) * BUCKET_S, num(report.traffic_ended_at, t0) - t0]
    for swap in report.swaps:
        ends.append(num(swap.ended_at, t0) - t0)
        end = drain_end(swap.report)
        if end is not None:
            ends.append(end - t0)
    for w in report.websockets.records:
        ends.append(num(w.closed_at, num(w.opened_at, t0)) - t0)
    for r in report.long_requests.records:
        ends.append(num(r.end, t0) - t0)
    # A record stamped far beyond the traffic (a clock jump) must not squash the picture.
    return max(BUCKET_S, min(max(ends), max(ends[:2]) + CLOCK_JUMP_S))


def build_chart(report: RunReport, buckets: list[Bucket]) -> Chart:
    t0 = num(report.traffic_started_at)
    x = XScale(t_max(report, buckets))
    markers = markers_of(report)
    labels = _labels(markers, x, busy=len(report.swaps) > BUSY_SWAPS)
    chart = Chart(WIDTH, 0.0)
    lanes_top = LABEL_TOP + label_rows(labels) * LABEL_ROW_H + 4
    y = steps_lane(chart, report, x, lanes_top)
    y = weights_lane(chart, report, x, y)
    y, error_marks = histogram_lane(chart, buckets, x, y)
    y = failures_lane(chart, error_marks, x, y)
    y = latency_lane(chart, buckets, x, y)
    y = long_requests_lane(chart, report.long_requests, x, t0, y)
    y = websockets_lane(chart, report.websockets, x, t0, y)
    lanes_bottom = y + 4
    _swap_windows(chart, report, x, lanes_top, lanes_bottom)
    _time_axis(chart, x, lanes_top, lanes_bottom)
    draw_markers(chart, markers, labels, x, lanes_top, lanes_bottom)
    chart.height = r2(lanes_bottom + 36)
    return chart


def _labels(markers: list[Marker], x: XScale, *, busy: bool) -> list[Text | None]:
    """With many swaps only the important markers are labelled; the rest keep their tooltips."""
    important = ("swap", "swap failed", "confirm", "drain bad")
    candidates = [m if not busy or m.kind in important else replace(m, labels=()) for m in markers]
    return place_labels(candidates, x, WIDTH - 4, 3 if busy else MAX_LABEL_ROWS)


def _swap_windows(chart: Chart, report: RunReport, x: XScale, top: float, bottom: float) -> None:
    t0 = num(report.traffic_started_at)
    for index, swap in enumerate(report.swaps, 1):
        start = num(swap.started_at, t0) - t0
        end = num(swap.ended_at, t0 + start) - t0
        sx, sw = x.span(start, end, 1.0)
        cls = "swapwin" + (" failed" if swap.error else "")
        title = f"swap {index}: +{start:.2f} s to +{end:.2f} s"
        chart.shades.append(Rect(sx, r2(top), sw, r2(bottom - top), cls, title))


def _time_axis(chart: Chart, x: XScale, top: float, bottom: float) -> None:
    for t in ticks(x.t_max):
        tx = x(t)
        chart.grid.append(Line(tx, r2(top), tx, r2(bottom), "vgrid"))
        chart.grid.append(Line(tx, r2(bottom), tx, r2(bottom + 4), "axis"))
        chart.texts.append(Text(tx, r2(bottom + 15), f"{t:g}", "tick", "middle"))
    chart.grid.append(Line(LEFT, r2(bottom), WIDTH - RIGHT, r2(bottom), "axis"))
    chart.texts.append(Text(WIDTH - RIGHT, r2(bottom + 29), "seconds since traffic start", "tick", "end"))
