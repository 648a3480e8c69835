"""The WebSockets lane: a row per client id, each connection a bar from open to close (a
reconnection continues the row), its end capped and labelled with the close code."""

from __future__ import annotations

from ...records import WebSocketRecord
from ...report.model import WebSockets
from ..geometry import Chart, Line, Rect, Text, XScale, num, r2, slot_class, ws_code

MAX_WS_ROWS = 60
ROUTINE_LABELS = 30  # with more connections, only abnormal closes keep their label


def websockets_lane(chart: Chart, ws: WebSockets, x: XScale, t0: float, y: float) -> float:
    if not ws.records:
        chart.lane_label(y, 16.0, "WebSockets")
        chart.none_text(y + 11.5, "none in this run")
        return y + 16.0
    rows: dict[int, list[WebSocketRecord]] = {}
    for w in sorted(ws.records, key=lambda w: (num(w.opened_at), w.attempt)):
        rows.setdefault(w.id, []).append(w)
    ordered = sorted(rows.values(), key=lambda items: num(items[0].opened_at))[:MAX_WS_ROWS]
    row_h = 20.0 if len(ordered) <= 12 else max(4.0, 240.0 / len(ordered))
    routine = len(ws.records) <= ROUTINE_LABELS
    top = y
    for items in ordered:
        for w in items:
            _connection(chart, w, x, t0, y, row_h, routine)
        y += row_h
    chart.lane_label(top, y - top, "WebSockets", f"{ws.held_through_swap}/{ws.opened} held through")
    if len(rows) > len(ordered):
        chart.notes.append(f"{len(rows) - len(ordered)} more WebSockets not drawn")
    return y


def _connection(chart: Chart, w: WebSocketRecord, x: XScale, t0: float, y: float, row_h: float, routine: bool) -> None:
    labelled = row_h >= 16
    start = num(w.opened_at, t0) - t0
    end = num(w.closed_at) - t0 if w.closed_at is not None else x.t_max
    code_cls, code_label = ws_code(w.close_code)
    bar_y = y + (row_h * 0.5 if labelled else row_h * 0.15)
    bar_h = row_h * 0.38 if labelled else row_h * 0.7
    sx, sw = x.span(start, end)
    ended = f"+{end:.2f} s, closed {w.close_code} by {w.closed_by or '?'}" if w.closed_at else "end"
    title = (
        f"WebSocket #{w.id} (attempt {w.attempt}) on {w.slot or 'no slot'}: +{start:.2f} s to {ended}"
        f"; {w.messages} messages, max silence {num(w.max_gap_s):.2f} s" + (f"; error: {w.error}" if w.error else "")
    )
    chart.spans.append(Rect(sx, r2(bar_y), sw, r2(bar_h), f"ws {slot_class(w.slot)}", title))
    if w.closed_at is None:
        return
    cx = r2(sx + sw)
    chart.caps.append(Line(cx, r2(bar_y - 2), cx, r2(bar_y + bar_h + 2), f"cap {code_cls}", title))
    if labelled and (routine or code_cls not in ("ok", "done")):
        chart.texts.append(Text(r2(cx - 1), r2(y + row_h * 0.5 - 2), code_label, f"code {code_cls}", "end"))
