"""Shared geometry of the timeline picture: its shapes (viewBox units), the time axis and the
small helpers every lane uses. The template only loops over these lists: no script in the page."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BUCKET_S = 0.1
WIDTH = 1100.0
LEFT = 132.0  # lane labels
RIGHT = 72.0  # room for the labels at the end of bars
CHAR_W = 5.9  # approximate width of a character of the 10-unit font
LABEL_ROW_H = 14.0
MAX_LABEL_ROWS = 4

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

    def lane_label(self, top: float, height: float, text: str, sub: str = "") -> None:
        """A lane's name (and a second, smaller line) right-aligned left of the plot."""
        mid = top + height / 2
        self.texts.append(Text(LEFT - 8, r2(mid + (0 if sub else 3.5)), text, "lane", "end"))
        if sub:
            self.texts.append(Text(LEFT - 8, r2(mid + 10), sub, "lane-sub", "end"))

    def none_text(self, y: float, text: str, cls: str = "none") -> None:
        """The italic note a lane shows when it has nothing to draw."""
        self.texts.append(Text(LEFT + 4, r2(y), text, cls))


class XScale:
    """Seconds since traffic start -> x in viewBox units, clamped to the plot."""

    def __init__(self, t_max: float) -> None:
        self.t_max = max(t_max, BUCKET_S)
        self.plot_w = WIDTH - LEFT - RIGHT

    def __call__(self, t: float) -> float:
        return r2(LEFT + min(max(t, 0.0), self.t_max) / self.t_max * self.plot_w)

    def span(self, start: float, end: float, minimum: float = 1.5) -> tuple[float, float]:
        x0, x1 = self(start), self(end)
        return x0, r2(max(x1 - x0, minimum))


def num(value: float | None, default: float = 0.0) -> float:
    """A finite number, or ``default`` for None, NaN and infinities."""
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return default
    return float(value)


def r2(value: float) -> float:
    return round(value, 2)


def fmt_ms(value: float | None) -> str:
    if value is None or not math.isfinite(value):
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


def other_slot(slot: str) -> str:
    return {"blue": "green", "green": "blue"}.get(slot, "blue")


def slot_class(slot: str | None) -> str:
    return SLOT_CLASSES.get(str(slot), "unknown")


def ws_code(code: int | None) -> tuple[str, str]:
    """(css class, label) of a WebSocket close code."""
    if code is None:
        return "open", "open"
    return WS_CODES.get(code, ("other", str(code)))
