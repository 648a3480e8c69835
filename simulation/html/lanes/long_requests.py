"""The long requests lane: one bar per long request from its start to its end, by slot, with its
duration (or "incomplete") at the end."""

from __future__ import annotations

from ...report.model import LongRequest, LongRequests
from ..geometry import Chart, Rect, Text, XScale, num, r2, slot_class

MAX_LONG_ROWS = 40


def long_requests_lane(chart: Chart, long: LongRequests, x: XScale, t0: float, y: float) -> float:
    if not long.records:
        text = (
            "none in this run"
            if long.total == 0
            else f"{long.total} long request(s), durations {long.durations_s} s: their timing is not in report.json"
        )
        chart.lane_label(y, 16.0, "long requests")
        chart.none_text(y + 11.5, text)
        return y + 16.0 + 6
    shown = sorted(long.records, key=lambda r: num(r.start))[:MAX_LONG_ROWS]
    row_h = 12.0 if len(shown) <= 10 else max(4.0, 120.0 / len(shown))
    top = y
    for record in shown:
        _bar(chart, record, x, t0, y, row_h)
        y += row_h
    y = max(y, top + 24)
    chart.lane_label(top, y - top, "long requests", f"{long.completed}/{long.total} complete")
    if len(long.records) > len(shown):
        chart.notes.append(f"{len(long.records) - len(shown)} more long requests not drawn")
    return y + 6


def _bar(chart: Chart, record: LongRequest, x: XScale, t0: float, y: float, row_h: float) -> None:
    start, end = num(record.start, t0) - t0, num(record.end, t0) - t0
    cls = f"long {slot_class(record.slot)}" + ("" if record.complete else " broken")
    sx, sw = x.span(start, end)
    title = (
        f"long request on {record.slot or 'no slot'}: +{start:.2f} s to +{end:.2f} s ({end - start:.2f} s), "
        f"{record.nbytes} bytes, {'complete' if record.complete else 'INCOMPLETE'}"
    )
    chart.spans.append(Rect(sx, r2(y + row_h * 0.15), sw, r2(row_h * 0.7), cls, title))
    if row_h >= 9:
        mark = f"{end - start:.1f} s ✓" if record.complete else "✗ incomplete"
        cls = "endl ok" if record.complete else "endl cut"
        chart.texts.append(Text(r2(sx + sw + 3), r2(y + row_h * 0.5 + 3.2), mark, cls))
