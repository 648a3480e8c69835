"""The markers lane: vertical lines at each swap's start, reload signal, confirmation and drain
end, across every lane, with labels placed in rows above the lanes without overlaps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from swap_action.outcome import DrainOutcome, Phase, Reload, SwapReport

from ..report.model import RunReport, Swap
from .geometry import LABEL_ROW_H, MAX_LABEL_ROWS, Chart, Line, Text, XScale, num, r2, text_width

MARKER_PRIORITY = {"swap": 0, "swap failed": 0, "confirm": 1, "drain bad": 2, "drain": 2, "reload": 3}
LABEL_TOP = 6.0  # the first label row's top


@dataclass(frozen=True)
class Marker:
    t: float  # seconds since traffic start
    kind: str  # swap, swap failed, reload, confirm, drain, drain bad
    labels: tuple[str, ...]  # candidates, longest first; the first that fits is drawn
    title: str


def reload_signal(reload: Reload) -> float:
    """Unix time of a reload's signal: ``reload_at_ms`` (LB clock), else its step's start."""
    return reload.reload_at_ms / 1000 if reload.reload_at_ms is not None else reload.started_at


def drain_end(report: SwapReport | None) -> float | None:
    """Unix time the drain step ended (None: the swap did not reach its drain)."""
    for step in report.steps if report else []:
        if step.phase == Phase.DRAIN:
            return num(step.started_at) + num(step.duration_ms) / 1000
    return None


def markers_of(report: RunReport) -> list[Marker]:
    markers: list[Marker] = []
    for index, swap in enumerate(report.swaps, 1):
        markers.extend(_swap_markers(index, swap, num(report.traffic_started_at)))
    return markers


def _swap_markers(index: int, swap: Swap, t0: float) -> list[Marker]:
    start = num(swap.started_at, t0) - t0
    failed = " FAILED" if swap.error else ""
    markers = [
        Marker(
            start,
            "swap failed" if failed else "swap",
            (f"swap {index} → {swap.target}{failed}", f"#{index}{failed}"),
            f"swap {index} to {swap.target} started at +{start:.3f} s"
            + (f": {swap.error.text()}" if swap.error else ""),
        )
    ]
    report = swap.report
    if report is None:
        return markers
    for reload in report.reloads:
        at = num(reload_signal(reload), t0) - t0
        markers.append(
            Marker(
                at,
                "reload",
                (f"reload {reload.percent}%" if reload.percent < 100 else "reload",),
                f"swap {index}: reload signal ({reload.slot} at {reload.percent}%) at +{at:.3f} s; "
                f"new workers +{reload.new_workers_ms} ms, old stopped accepting "
                f"+{reload.old_stopped_ms} ms, confirmed +{reload.confirmed_ms} ms",
            )
        )
    if report.confirmed_at is not None:
        confirmed, ms = num(report.confirmed_at) - t0, swap.confirm_ms
        markers.append(
            Marker(
                confirmed,
                "confirm",
                (f"✓ {swap.target} live +{ms:.0f} ms" if ms is not None else f"✓ {swap.target} live", "✓ live"),
                f"swap {index}: {swap.target} confirmed live at +{confirmed:.3f} s"
                + (f" ({ms:.0f} ms after the swap started)" if ms is not None else ""),
            )
        )
    end = drain_end(report)
    if end is not None:
        labels, kind = _drain_labels(report.drain)
        outcome = report.drain.outcome if report.drain else "?"
        duration = num(report.drain.duration_ms) if report.drain else 0.0
        markers.append(
            Marker(
                end - t0,
                kind,
                labels,
                f"swap {index}: drain ended at +{end - t0:.3f} s ({outcome}, {duration:.0f} ms)",
            )
        )
    return markers


def _drain_labels(drain: DrainOutcome | None) -> tuple[tuple[str, ...], str]:
    """(label candidates, marker kind) of a drain's end: a cut or timed-out drain stands out."""
    if drain is None or drain.outcome == "complete":
        return ("drained",), "drain"
    return (f"drain {drain.outcome} at deadline", f"drain {drain.outcome}"), "drain bad"


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


def label_rows(labels: list[Text | None]) -> int:
    """How many label rows the placed labels use (the lanes start below them)."""
    return max((int(t.y) + 1 for t in labels if t), default=0)


def draw_markers(
    chart: Chart, markers: list[Marker], labels: list[Text | None], x: XScale, lanes_top: float, lanes_bottom: float
) -> None:
    """Each marker's line down to the axis, from its label (or from the lanes' top when unlabelled)."""
    for marker, placed in zip(markers, labels, strict=True):
        mx = x(marker.t)
        top = LABEL_TOP + (placed.y + 1) * LABEL_ROW_H - 10 if placed else lanes_top
        chart.markers.append(Line(mx, r2(top), mx, r2(lanes_bottom), f"mk {marker.kind}", marker.title))
        if placed:
            baseline = r2(LABEL_TOP + (placed.y + 1) * LABEL_ROW_H - 3)
            chart.texts.append(Text(placed.x, baseline, placed.text, placed.cls, placed.anchor))
