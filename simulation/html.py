"""The self-contained HTML report: a timeline picture (SVG) and the assertions with evidence.

Everything the template shows is computed here from ``report.json``'s dict (``data``) and the
per-100 ms histogram (``buckets``): the SVG geometry is plain lists of rectangles, lines and
texts in viewBox units, so the template only loops and the picture needs no script. Every input
is read defensively (``.get``), because a report is most needed when the run went wrong: no swap,
a swap without a report, no WebSockets, no long requests.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

BUCKET_S = 0.1
WIDTH = 1100.0
LEFT = 132.0  # lane labels
RIGHT = 72.0  # room for the labels at the end of bars
CHAR_W = 5.9  # approximate width of a character of the 10-unit font
LABEL_ROW_H = 14.0
MAX_LABEL_ROWS = 4
HIST_H = 170.0
MAX_WS_ROWS = 60
MAX_LONG_ROWS = 40

SLOT_CLASSES = {"blue": "blue", "green": "green"}
WS_CODES = {1001: ("ok", "1001"), 1006: ("cut", "1006 cut"), 1000: ("done", "1000")}


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str
    title: str = ""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str
    title: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    cls: str = ""
    anchor: str = "start"


@dataclass(frozen=True)
class Column:
    """One 100 ms bucket: its stacked segments share a tooltip."""

    title: str
    rects: tuple[Rect, ...]


@dataclass
class Chart:
    width: float
    height: float
    shades: list[Rect] = field(default_factory=list)
    grid: list[Line] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    spans: list[Rect] = field(default_factory=list)
    caps: list[Line] = field(default_factory=list)
    markers: list[Line] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dense: bool = False  # bars narrower than 3 units: drawn with crisp edges, touching


@dataclass(frozen=True)
class Marker:
    t: float  # seconds since traffic start
    kind: str  # swap, reload, confirm, drain
    labels: tuple[str, ...]  # candidates, longest first; the first that fits is drawn
    title: str


MARKER_PRIORITY = {"swap": 0, "swap failed": 0, "confirm": 1, "drain bad": 2, "drain": 2, "reload": 3}


# ---------------------------------------------------------------------------------------------
# Small pure helpers


def num(value: Any, default: float = 0.0) -> float:
    """A number from report data, or ``default`` for None, text or anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def r2(value: float) -> float:
    return round(value, 2)


def fmt_ms(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def nice_step(span: float, target: int = 12) -> float:
    """A 1/2/5 x 10^n tick step giving about ``target`` ticks over ``span``."""
    raw = max(span, 1e-6) / max(target, 1)
    magnitude = 10 ** _floor_log10(raw)
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _floor_log10(value: float) -> int:
    return math.floor(math.log10(value)) if math.isfinite(value) and value > 0 else 0


def ticks(span: float, target: int = 12) -> list[float]:
    step = nice_step(span, target)
    count = int(span / step + 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^n not below ``value`` (the histogram's y-axis top)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** _floor_log10(value)
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= value - 1e-9:
            return float(factor * magnitude)
    return float(10 * magnitude)


def text_width(text: str, size: float = 10.0) -> float:
    return len(text) * CHAR_W * size / 10.0


def place_labels(
    markers: list[Marker], x_of: Callable[[float], float], right_edge: float, rows: int = MAX_LABEL_ROWS
) -> list[Text | None]:
    """Greedy placement of marker labels in ``rows`` rows without overlaps, one result per marker.

    Markers go by priority (swap start, confirmation, drain end, reload), then time; a marker
    takes the first row where its first candidate label fits, else tries its shorter candidates,
    else goes unlabelled (None: its line keeps a tooltip). The Text's ``y`` is the row index.
    """
    taken: list[list[tuple[float, float]]] = [[] for _ in range(rows)]
    placed: list[Text | None] = [None] * len(markers)
    order = sorted(range(len(markers)), key=lambda i: (MARKER_PRIORITY.get(markers[i].kind, 9), markers[i].t))
    for index in order:
        marker = markers[index]
        x = float(x_of(marker.t))
        for label in marker.labels:
            width = text_width(label) + 4
            anchor = "start"
            lo, hi = x + 1, x + 1 + width
            if hi > right_edge:
                anchor, lo, hi = "end", x - 1 - width, x - 1
            row = next((r for r in range(rows) if all(hi + 6 <= a or lo - 6 >= b for a, b in taken[r])), None)
            if row is not None:
                taken[row].append((lo, hi))
                text_x = r2(x + 3 if anchor == "start" else x - 3)
                placed[index] = Text(text_x, row, label, f"ml {marker.kind}", anchor)
                break
    return placed


def parse_weight(step_label: Any) -> tuple[int, str] | None:
    """``"10% to green"`` -> ``(10, "green")``; None when the label says something else."""
    match = re.search(r"(\d{1,3})%\s+to\s+(\w+)", str(step_label or ""))
    if not match:
        return None
    return min(100, int(match.group(1))), match.group(2)


def weight_changes(data: dict[str, Any]) -> list[tuple[float, int | None]]:
    """(seconds since traffic start, green's share of the weights, None when unknown), in time order.

    The live slot has everything until the first reload; each reload's step (``"10% to green"``)
    sets the split from its signal on. A swap that claims a confirmation but recorded no reload
    (a hand-rolled swap) leaves the weights unknown from its start.
    """
    t0 = num(data.get("traffic_started_at"))
    reports = _reports(data)
    if not reports:
        return []
    first_target = str(reports[0][1].get("target") or "green")
    live = str(reports[0][2].get("previous_slot") or other_slot(first_target))
    changes: list[tuple[float, int | None]] = [(0.0, 100 if live == "green" else 0)]
    for _index, swap, report in reports:
        target = str(swap.get("target") or other_slot(live))
        reloads = [r for r in report.get("reloads") or [] if reload_signal(r) is not None]
        if not reloads and report.get("confirmed_at") is not None:
            changes.append((num(swap.get("started_at"), t0) - t0, None))
        for reload in reloads:
            percent, slot = parse_weight(reload.get("step")) or (100, target)
            changes.append((num(reload_signal(reload)) - t0, percent if slot == "green" else 100 - percent))
    return sorted(changes, key=lambda c: c[0])


def error_kind(error: Any) -> str:
    """``"HealthCheckError: blue is not healthy..."`` -> ``"HealthCheckError"``; "" when there is no such prefix."""
    match = re.match(r"\s*([A-Za-z_][\w.]*(?:Error|Exception|Timeout))\b", str(error or ""))
    return match.group(1) if match else ""


def other_slot(slot: str) -> str:
    return {"blue": "green", "green": "blue"}.get(slot, "blue")


def slot_class(slot: Any) -> str:
    return SLOT_CLASSES.get(str(slot), "unknown")


def ws_code(code: Any) -> tuple[str, str]:
    """(css class, label) of a WebSocket close code."""
    if code is None:
        return "open", "open"
    if isinstance(code, int) and code in WS_CODES:
        return WS_CODES[code]
    return "other", str(code)


def _reports(data: dict[str, Any]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """(1-based index, swap, swap report or {}) for each swap."""
    swaps = data.get("swaps") or []
    return [(i, s, s.get("report") or {}) for i, s in enumerate(swaps, 1) if isinstance(s, dict)]


def drain_end(report: dict[str, Any]) -> float | None:
    for step in report.get("steps") or []:
        if str(step.get("name", "")).startswith("drain") and step.get("started_at") is not None:
            return num(step.get("started_at")) + num(step.get("duration_ms")) / 1000
    return None


def reload_signal(reload: dict[str, Any]) -> float | None:
    """Unix time of a reload's signal: ``reload_at_ms`` (LB clock), else the step's start."""
    if reload.get("reload_at_ms") is not None:
        return num(reload.get("reload_at_ms")) / 1000
    if reload.get("at") is not None:
        return num(reload.get("at"))
    return None


# ---------------------------------------------------------------------------------------------
# The timeline picture


class _X:
    def __init__(self, t_max: float) -> None:
        self.t_max = max(t_max, BUCKET_S)
        self.plot_w = WIDTH - LEFT - RIGHT

    def __call__(self, t: float) -> float:
        return r2(LEFT + min(max(t, 0.0), self.t_max) / self.t_max * self.plot_w)

    def span(self, start: float, end: float, minimum: float = 1.5) -> tuple[float, float]:
        x0, x1 = self(start), self(end)
        return x0, r2(max(x1 - x0, minimum))


def markers_of(data: dict[str, Any]) -> list[Marker]:
    t0 = num(data.get("traffic_started_at"))
    markers: list[Marker] = []
    for index, swap, report in _reports(data):
        target = str(swap.get("target") or "?")
        start = num(swap.get("started_at"), t0) - t0
        failed = " FAILED" if swap.get("error") else ""
        markers.append(
            Marker(
                start,
                "swap failed" if failed else "swap",
                (f"swap {index} → {target}{failed}", f"#{index}{failed}"),
                f"swap {index} to {target} started at +{start:.3f} s" + (f": {swap.get('error')}" if failed else ""),
            )
        )
        for reload in report.get("reloads") or []:
            at = reload_signal(reload)
            if at is None:
                continue
            weight = parse_weight(reload.get("step"))
            short = f"reload {weight[0]}%" if weight and weight[0] < 100 else "reload"
            markers.append(
                Marker(
                    at - t0,
                    "reload",
                    (short,),
                    f"swap {index}: reload signal ({reload.get('step', '')}) at +{at - t0:.3f} s; "
                    f"new workers +{reload.get('new_workers_ms')} ms, old stopped accepting "
                    f"+{reload.get('old_stopped_ms')} ms, confirmed +{reload.get('confirmed_ms')} ms",
                )
            )
        confirmed = report.get("confirmed_at")
        if confirmed is not None:
            ms = swap.get("confirm_ms")
            markers.append(
                Marker(
                    num(confirmed) - t0,
                    "confirm",
                    (f"✓ {target} live +{num(ms):.0f} ms" if ms is not None else f"✓ {target} live", "✓ live"),
                    f"swap {index}: {target} confirmed live at +{num(confirmed) - t0:.3f} s"
                    + (f" ({num(ms):.0f} ms after the swap started)" if ms is not None else ""),
                )
            )
        end = drain_end(report)
        if end is not None:
            drain = report.get("drain") or {}
            labels, kind = _drain_labels(drain)
            markers.append(
                Marker(
                    end - t0,
                    kind,
                    labels,
                    f"swap {index}: drain ended at +{end - t0:.3f} s ({drain.get('outcome', '?')}, "
                    f"{num(drain.get('duration_ms')):.0f} ms)",
                )
            )
    return markers


def _drain_labels(drain: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    """(label candidates, marker kind) of a drain's end: a cut or timed-out drain stands out."""
    outcome = str(drain.get("outcome") or "")
    if outcome in ("", "complete"):
        return ("drained",), "drain"
    return (f"drain {outcome} at deadline", f"drain {outcome}"), "drain bad"


def _t_max(data: dict[str, Any], buckets: list[dict[str, int]]) -> float:
    t0 = num(data.get("traffic_started_at"))
    ends = [len(buckets) * BUCKET_S, num(data.get("traffic_ended_at"), t0) - t0]
    for _i, swap, report in _reports(data):
        ends.append(num(swap.get("ended_at"), t0) - t0)
        end = drain_end(report)
        if end is not None:
            ends.append(end - t0)
    for w in (data.get("websockets") or {}).get("records") or []:
        ends.append(num(w.get("closed_at"), num(w.get("opened_at"), t0)) - t0)
    for r in (data.get("long_requests") or {}).get("records") or []:
        ends.append(num(r.get("end"), t0) - t0)
    base = max(ends)
    # A record stamped far beyond the traffic (a clock jump) must not squash the picture.
    return max(BUCKET_S, min(base, max(ends[:2]) + 30.0))


def build_chart(data: dict[str, Any], buckets: list[dict[str, int]]) -> Chart:
    t0 = num(data.get("traffic_started_at"))
    x = _X(_t_max(data, buckets))
    markers = markers_of(data)
    # With many swaps only their starts and confirmations are labelled; the rest keep tooltips.
    busy = len(_reports(data)) > 3
    labels = place_labels(
        [
            m if not busy or m.kind in ("swap", "swap failed", "confirm", "drain bad") else replace(m, labels=())
            for m in markers
        ],
        x,
        WIDTH - 4,
        3 if busy else MAX_LABEL_ROWS,
    )
    label_rows = max((int(t.y) + 1 for t in labels if t), default=0)
    chart = Chart(WIDTH, 0.0)
    y = 6.0 + label_rows * LABEL_ROW_H + 4
    lanes_top = y

    def lane_label(top: float, height: float, text: str, sub: str = "") -> None:
        mid = top + height / 2
        chart.texts.append(Text(LEFT - 8, r2(mid + (0 if sub else 3.5)), text, "lane", "end"))
        if sub:
            chart.texts.append(Text(LEFT - 8, r2(mid + 10), sub, "lane-sub", "end"))

    # Engine steps, per swap.
    steps_h = 18.0
    any_steps = False
    for index, _swap, report in _reports(data):
        for n, step in enumerate(report.get("steps") or []):
            if step.get("started_at") is None:
                continue
            any_steps = True
            name = str(step.get("name", ""))
            start = num(step.get("started_at")) - t0
            duration = num(step.get("duration_ms")) / 1000
            kind = name.split(" ")[0].split("(")[0]
            cls = {"reload": "st-reload", "drain": "st-drain", "pause": "st-pause", "verify": "st-verify"}.get(
                kind, "st-a" if n % 2 == 0 else "st-b"
            )
            if step.get("ok") is False:
                cls = "st-fail"
            sx, sw = x.span(start, start + duration, 1.0)
            detail = str(step.get("detail") or "")
            chart.spans.append(
                Rect(
                    sx,
                    r2(y + 2),
                    sw,
                    steps_h - 4,
                    f"step {cls}",
                    f"swap {index}: {name}, {num(step.get('duration_ms')):.0f} ms at +{start:.3f} s"
                    + (f": {detail}" if detail else ""),
                )
            )
            short = name.split(" (")[0]
            if sw > text_width(short, 9) + 6:
                chart.texts.append(Text(r2(sx + sw / 2), r2(y + 12.5), short, "in-step", "middle"))
    if any_steps or _reports(data):
        lane_label(y, steps_h, "swap steps")
        if not any_steps:
            why = "no report" if not any(r for _i, _s, r in _reports(data)) else "no steps in its report"
            chart.texts.append(Text(LEFT + 4, r2(y + 12.5), f"no step recorded (the swap left {why})", "none"))
        y += steps_h + 3

    # Configured weights: the live slot until the first reload, then each reload's step.
    weights_h = 14.0
    changes = weight_changes(data)
    if changes:
        for n, (start, green) in enumerate(changes):
            end = changes[n + 1][0] if n + 1 < len(changes) else x.t_max
            sx, sw = x.span(start, end, 0.5)
            if green is None:
                title = f"from +{start:.3f} s: this swap reported no reload, so its weights are unknown"
                chart.spans.append(Rect(sx, r2(y), sw, weights_h, "w unknown", title))
                if sw > 70:
                    chart.texts.append(Text(r2(sx + 4), r2(y + 10), "not reported", "in-w dim"))
                continue
            green_h = r2(weights_h * green / 100)
            blue_h = r2(weights_h - green_h)
            title = f"Nginx weights from +{start:.3f} s: blue {100 - green}%, green {green}%"
            if blue_h > 0:
                chart.spans.append(Rect(sx, r2(y), sw, blue_h, "w blue", title))
            if green_h > 0:
                chart.spans.append(Rect(sx, r2(y + blue_h), sw, green_h, "w green", title))
            if 0 < green < 100 and sw > 60:
                chart.texts.append(Text(r2(sx + 4), r2(y + 10), f"{green}% green", "in-w"))
        lane_label(y, weights_h, "Nginx weights")
        y += weights_h
    y += 8

    # Requests per 100 ms, stacked by slot, errors on top.
    hist_top = y
    totals = [num(b.get("blue")) + num(b.get("green")) + num(b.get("error")) for b in buckets]
    y_max = nice_ceiling(max(totals, default=0.0))
    base = hist_top + HIST_H
    for frac in (0.0, 0.5, 1.0):
        gy = r2(base - HIST_H * frac)
        chart.grid.append(Line(LEFT, gy, WIDTH - RIGHT, gy, "hgrid" if frac else "axis"))
        value = y_max * frac
        chart.texts.append(Text(LEFT - 4, r2(gy + 3.5), f"{value:g}", "tick", "end"))
    chart.texts.append(Text(LEFT - 30, r2(hist_top + HIST_H / 2 - 6), "requests", "lane", "end"))
    chart.texts.append(Text(LEFT - 30, r2(hist_top + HIST_H / 2 + 6), "per 100 ms", "lane-sub", "end"))
    bar_w = x(BUCKET_S) - x(0)
    gap = min(1.0, bar_w * 0.12) if bar_w >= 3 else 0.0
    chart.dense = not gap
    error_marks: list[tuple[float, int, float]] = []
    for i, bucket in enumerate(buckets):
        bx = x(i * BUCKET_S)
        # Narrow bars overlap a little so that no hairline seams show between them.
        width = r2(bar_w - gap if gap else bar_w + 0.4)
        level = base
        rects: list[Rect] = []
        for key in ("blue", "green", "error"):
            count = num(bucket.get(key))
            if count <= 0:
                continue
            height = HIST_H * count / y_max
            ex, ew = bx, width
            if key == "error":  # one failed request among thousands must still show
                height = max(height, 3.0)
                ew = max(width, 3.0)
                ex = r2(bx + width / 2 - ew / 2)
            level -= height
            rects.append(Rect(ex, r2(level), ew, r2(height), f"bar {key}"))
        if not rects:
            continue
        errors = int(num(bucket.get("error")))
        if errors:
            error_marks.append((bx, errors, level))
        chart.columns.append(
            Column(
                f"+{i * BUCKET_S:.1f} to +{(i + 1) * BUCKET_S:.1f} s: blue {int(num(bucket.get('blue')))}, "
                f"green {int(num(bucket.get('green')))}, failed {errors}",
                tuple(rects),
            )
        )
    if not buckets or not any(totals):
        chart.texts.append(Text(LEFT + 6, r2(base - 8), "no steady request was recorded", "none"))
    y = base

    # Failed requests strip: a red mark per bucket with failures, the count when there is room.
    errors_h = 16.0
    lane_label(y + 2, errors_h, "failed requests")
    if error_marks:
        room = len(error_marks) <= 40
        for bx, count, _level in error_marks:
            mx = r2(bx + bar_w / 2 - max(bar_w, 3.0) / 2)
            chart.spans.append(
                Rect(mx, r2(y + 4), r2(max(bar_w, 3.0)), 10.0, "errmark", f"{count} failed request(s) at +{bx:.1f}")
            )
        if room:
            last_end = -1e9
            for bx, count, _level in error_marks:
                label = str(count)
                if bx + bar_w + 2 > last_end:
                    chart.texts.append(Text(r2(bx + max(bar_w, 3.0) + 2), r2(y + 12.5), label, "errcount"))
                    last_end = bx + bar_w + 2 + text_width(label, 9) + 3
        total = sum(c for _x, c, _l in error_marks)
        chart.notes.append(
            f"{total} failed request{'s' if total != 1 else ''}, in {len(error_marks)} of the 100 ms buckets"
        )
    else:
        chart.texts.append(Text(LEFT + 4, r2(y + 13), "none", "none ok"))
    y += errors_h + 12

    # Long requests: one bar each.
    long = data.get("long_requests") or {}
    records = [r for r in long.get("records") or [] if isinstance(r, dict)]
    if records:
        shown = sorted(records, key=lambda r: num(r.get("start")))[:MAX_LONG_ROWS]
        row_h = 12.0 if len(shown) <= 10 else max(4.0, 120.0 / len(shown))
        top = y
        for r in shown:
            start, end = num(r.get("start"), t0) - t0, num(r.get("end"), t0) - t0
            complete = r.get("complete") is not False
            cls = f"long {slot_class(r.get('slot'))}" + ("" if complete else " broken")
            sx, sw = x.span(start, end)
            title = (
                f"long request on {r.get('slot') or 'no slot'}: +{start:.2f} s to +{end:.2f} s ({end - start:.2f} s), "
                f"{r.get('bytes', '?')} bytes, {'complete' if complete else 'INCOMPLETE'}"
            )
            chart.spans.append(Rect(sx, r2(y + row_h * 0.15), sw, r2(row_h * 0.7), cls, title))
            if row_h >= 9:
                mark = f"{end - start:.1f} s ✓" if complete else "✗ incomplete"
                chart.texts.append(
                    Text(r2(sx + sw + 3), r2(y + row_h * 0.5 + 3.2), mark, "endl ok" if complete else "endl cut")
                )
            y += row_h
        y = max(y, top + 24)
        lane_label(top, y - top, "long requests", f"{long.get('completed', '?')}/{long.get('total', '?')} complete")
        if len(records) > len(shown):
            chart.notes.append(f"{len(records) - len(shown)} more long requests not drawn")
    else:
        total = int(num(long.get("total")))
        text = (
            "none in this run"
            if total == 0
            else f"{total} long request(s), durations {long.get('durations_s')} s: their timing is not in report.json"
        )
        lane_label(y, 16.0, "long requests")
        chart.texts.append(Text(LEFT + 4, r2(y + 11.5), text, "none"))
        y += 16.0
    y += 6

    # WebSockets: a row per client id; reconnections continue the row.
    ws = data.get("websockets") or {}
    ws_records = [w for w in ws.get("records") or [] if isinstance(w, dict)]
    if ws_records:
        rows: dict[str, list[dict[str, Any]]] = {}
        for w in sorted(ws_records, key=lambda w: (num(w.get("opened_at")), num(w.get("generation")))):
            rows.setdefault(str(w.get("id")), []).append(w)
        ordered = sorted(rows.items(), key=lambda kv: num(kv[1][0].get("opened_at")))[:MAX_WS_ROWS]
        row_h = 20.0 if len(ordered) <= 12 else max(4.0, 240.0 / len(ordered))
        labelled = row_h >= 16
        routine = len(ws_records) <= 30  # with more, only abnormal closes keep their label
        top = y
        for _id, items in ordered:
            for w in items:
                start = num(w.get("opened_at"), t0) - t0
                closed = w.get("closed_at")
                end = num(closed) - t0 if closed is not None else x.t_max
                code_cls, code_label = ws_code(w.get("close_code"))
                bar_y = y + (row_h * 0.5 if labelled else row_h * 0.15)
                bar_h = row_h * 0.38 if labelled else row_h * 0.7
                sx, sw = x.span(start, end)
                title = (
                    f"WebSocket #{w.get('id')} (generation {w.get('generation')}) on {w.get('slot') or 'no slot'}: "
                    f"+{start:.2f} s to "
                    + (
                        f"+{end:.2f} s, closed {w.get('close_code')} by {w.get('closed_by') or '?'}"
                        if closed
                        else "end"
                    )
                    + f"; {w.get('messages', 0)} messages, max silence {num(w.get('max_gap_s')):.2f} s"
                    + (f"; error: {w.get('error')}" if w.get("error") else "")
                )
                chart.spans.append(Rect(sx, r2(bar_y), sw, r2(bar_h), f"ws {slot_class(w.get('slot'))}", title))
                if closed is not None:
                    cx = r2(sx + sw)
                    chart.caps.append(Line(cx, r2(bar_y - 2), cx, r2(bar_y + bar_h + 2), f"cap {code_cls}", title))
                    if labelled and (routine or code_cls not in ("ok", "done")):
                        chart.texts.append(
                            Text(r2(cx - 1), r2(y + row_h * 0.5 - 2), code_label, f"code {code_cls}", "end")
                        )
            y += row_h
        lane_label(
            top,
            y - top,
            "WebSockets",
            f"{ws.get('held_through_swap', '?')}/{ws.get('opened', '?')} held through",
        )
        if len(rows) > len(ordered):
            chart.notes.append(f"{len(rows) - len(ordered)} more WebSockets not drawn")
    else:
        lane_label(y, 16.0, "WebSockets")
        chart.texts.append(Text(LEFT + 4, r2(y + 11.5), "none in this run", "none"))
        y += 16.0
    lanes_bottom = y + 4

    # Swap windows behind everything; time grid; markers over everything.
    for index, swap, _report in _reports(data):
        start = num(swap.get("started_at"), t0) - t0
        end = num(swap.get("ended_at"), t0 + start) - t0
        sx, sw = x.span(start, end, 1.0)
        chart.shades.append(
            Rect(
                sx,
                r2(lanes_top),
                sw,
                r2(lanes_bottom - lanes_top),
                "swapwin" + (" failed" if swap.get("error") else ""),
                f"swap {index}: +{start:.2f} s to +{end:.2f} s",
            )
        )
    for t in ticks(x.t_max):
        tx = x(t)
        chart.grid.append(Line(tx, r2(lanes_top), tx, r2(lanes_bottom), "vgrid"))
        chart.grid.append(Line(tx, r2(lanes_bottom), tx, r2(lanes_bottom + 4), "axis"))
        chart.texts.append(Text(tx, r2(lanes_bottom + 15), f"{t:g}", "tick", "middle"))
    chart.grid.append(Line(LEFT, r2(lanes_bottom), WIDTH - RIGHT, r2(lanes_bottom), "axis"))
    chart.texts.append(Text(WIDTH - RIGHT, r2(lanes_bottom + 29), "seconds since traffic start", "tick", "end"))

    for marker, placed in zip(markers, labels, strict=True):
        mx = x(marker.t)
        top = 6.0 + (placed.y + 1) * LABEL_ROW_H - 10 if placed else lanes_top
        chart.markers.append(Line(mx, r2(top), mx, r2(lanes_bottom), f"mk {marker.kind}", marker.title))
        if placed:
            baseline = r2(6.0 + (placed.y + 1) * LABEL_ROW_H - 3)
            chart.texts.append(Text(placed.x, baseline, placed.text, placed.cls, placed.anchor))
    chart.height = r2(lanes_bottom + 36)
    return chart


# ---------------------------------------------------------------------------------------------
# The rest of the page


def _definition(data: dict[str, Any]) -> str:
    for check in data.get("assertions") or []:
        if check.get("name") == "zero_failed_requests":
            text = (check.get("evidence") or {}).get("definition")
            if text:
                return str(text)
    from . import assertions  # the definition lives in its docstring

    doc = assertions.__doc__ or ""
    parts = doc.split("\n\n")
    return parts[1].replace("\n", " ") if len(parts) > 1 else ""


def plain(text: str) -> str:
    """Docstring text for people: ``keepalive`` -> keepalive."""
    return text.replace("``", "")


def headline(data: dict[str, Any]) -> list[str]:
    """The one-line summary, as parts."""
    req = data.get("requests") or {}
    parts = [
        f"{req.get('total', 0):,} requests",
        f"{req.get('failed', 0)} failed",
        f"strict count {req.get('strict_failed', 0)}",
        f"{req.get('rate_rps', 0)} req/s",
    ]
    swaps = [s for s in data.get("swaps") or [] if isinstance(s, dict)]
    if not swaps:
        parts.append("no swap ran")
        return parts
    confirmed = [num(s.get("confirm_ms")) for s in swaps if s.get("confirm_ms") is not None]
    failed = [(i, s) for i, s in enumerate(swaps, 1) if s.get("error") or s.get("confirm_ms") is None]
    if len(swaps) <= 4:
        for i, s in enumerate(swaps, 1):
            state = f"confirmed live in {num(s.get('confirm_ms')):.0f} ms" if s.get("confirm_ms") is not None else ""
            kind = error_kind(s.get("error"))
            state = (f"FAILED ({kind})" if kind else "FAILED") if s.get("error") else (state or "not confirmed")
            parts.append(f"swap {i} → {s.get('target')} {state}")
    else:
        text = f"{len(swaps)} swaps, {len(confirmed)} confirmed live"
        if confirmed:
            text += (
                f" in {min(confirmed):.0f}\u2013{max(confirmed):.0f} ms (median {statistics.median(confirmed):.0f} ms)"
            )
        parts.append(text)
        parts.extend(
            f"swap {i} → {s.get('target')} {'FAILED' if s.get('error') else 'not confirmed'}" for i, s in failed[:3]
        )
    return parts


def _figures(data: dict[str, Any]) -> list[dict[str, Any]]:
    req = data.get("requests") or {}
    lat = req.get("latency_ms") or {}
    long = data.get("long_requests") or {}
    ws = data.get("websockets") or {}
    timings = data.get("timings") or {}

    def slots(value: Any) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in (value or {}).items()) or "none"

    return [
        {
            "title": "Requests",
            "value": f"{req.get('total', 0):,}",
            "lines": [
                f"{req.get('failed', 0)} failed (keep-alive {req.get('failed_keepalive', 0)}, fresh {req.get('failed_fresh', 0)})",
                f"strict count {req.get('strict_failed', 0)}",
                f"before the switch: {slots(req.get('by_slot_before_switch'))}",
                f"after the switch: {slots(req.get('by_slot_after_switch'))}",
            ],
            "bad": bool(req.get("failed")),
        },
        {
            "title": "Latency",
            "value": f"p99 {fmt_ms(lat.get('p99'))}",
            "lines": [f"p50 {fmt_ms(lat.get('p50'))}", f"p99 during swaps {fmt_ms(lat.get('p99_during_swap'))}"],
            "bad": False,
        },
        {
            "title": "Long requests",
            "value": f"{long.get('completed', 0)}/{long.get('total', 0)}",
            "lines": [
                "completed with full bodies",
                f"served by {slots(long.get('by_slot'))}",
                f"durations {', '.join(str(d) for d in (long.get('durations_s') or [])[:8]) or '-'} s",
            ],
            "bad": long.get("completed") != long.get("total"),
        },
        {
            "title": "WebSockets",
            "value": f"{ws.get('held_through_swap', 0)}/{ws.get('opened', 0)}",
            "lines": [
                "held through the swap",
                "close codes " + (", ".join(f"{k}: {v}" for k, v in (ws.get("close_codes") or {}).items()) or "-"),
                f"{ws.get('reconnections', 0)} reconnected",
            ],
            "bad": ws.get("held_through_swap") != ws.get("opened"),
        },
        {
            "title": "Timings",
            "value": f"{timings.get('wall_s', '?')} s",
            "lines": [
                "wall clock",
                f"environment up in {timings.get('environment_startup_s', '?')} s",
                f"traffic for {timings.get('traffic_s', '?')} s",
            ],
            "bad": False,
        },
    ]


def _swap_tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    t0 = num(data.get("traffic_started_at"))
    tables = []
    for index, swap, report in _reports(data):
        steps = []
        for step in report.get("steps") or []:
            started = step.get("started_at")
            steps.append(
                {
                    "name": str(step.get("name", "")),
                    "at": f"+{num(started) - t0:.3f} s" if started is not None else "-",
                    "duration": fmt_ms(step.get("duration_ms")),
                    "ok": step.get("ok") is not False,
                    "detail": str(step.get("detail") or ""),
                }
            )
        drain = report.get("drain") or {}
        error = report.get("error") or {}
        tables.append(
            {
                "index": index,
                "target": str(swap.get("target") or "?"),
                "source": str(report.get("previous_slot") or other_slot(str(swap.get("target")))),
                "error": swap.get("error"),
                "has_report": bool(report),
                "duration": fmt_ms(swap.get("duration_ms")),
                "confirm": fmt_ms(swap.get("confirm_ms")),
                "at": f"+{num(swap.get('started_at'), t0) - t0:.2f} s",
                "drain": f"{drain.get('outcome')} in {fmt_ms(drain.get('duration_ms'))}, "
                f"{drain.get('connections_left', '?')} connection(s) and {drain.get('workers_left', '?')} worker(s) left"
                if drain
                else "",
                "rolled_back": bool(report.get("rolled_back")),
                "cause": str(error.get("cause") or ""),
                "fix": str(error.get("fix") or ""),
                "error_type": str(error.get("type") or ""),
                "config_diff": str(report.get("config_diff") or ""),
                "steps": steps,
            }
        )
    return tables


def _when(data: dict[str, Any]) -> str:
    t0 = data.get("traffic_started_at")
    if not isinstance(t0, int | float) or isinstance(t0, bool) or t0 <= 0:
        return ""
    return datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def view(data: dict[str, Any], buckets: list[dict[str, int]]) -> dict[str, Any]:
    """Everything the template shows, already formatted."""
    diagnostics = data.get("diagnostics") or {}
    scenario = data.get("scenario") or {}
    assertions = [
        {
            "name": str(a.get("name", "")),
            "title": str(a.get("title") or a.get("name", "")),
            "passed": bool(a.get("passed")),
            "summary": str(a.get("summary", "")),
            "evidence": json.dumps(a.get("evidence") or {}, indent=2, default=str),
        }
        for a in data.get("assertions") or []
        if isinstance(a, dict)
    ]
    return {
        "passed": bool(data.get("passed")),
        "headline": headline(data),
        "when": _when(data),
        "chart": build_chart(data, buckets),
        "figures": _figures(data),
        "assertions": assertions,
        "failing": [a for a in assertions if not a["passed"]],
        "client_model": str(data.get("client_model") or ""),
        "definition": plain(_definition(data)),
        "swaps": _swap_tables(data),
        "diagnostics": [(str(k), str(v)) for k, v in diagnostics.items()] if isinstance(diagnostics, dict) else [],
        "scenario": [(str(k), json.dumps(v, default=str)) for k, v in scenario.items()]
        if isinstance(scenario, dict)
        else [],
        "slot_addresses": data.get("slot_addresses") or {},
        "has_ws": bool((data.get("websockets") or {}).get("records")),
        "has_long": bool((data.get("long_requests") or {}).get("records")),
    }


def render_html(data: dict[str, Any], buckets: list[dict[str, int]]) -> str:
    template = (Path(__file__).parent / "templates" / "report.html.j2").read_text()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(v=view(data, buckets))
