"""The self-contained HTML report: a timeline picture (SVG) and the assertions with evidence.

Everything the template shows is computed from the typed ``RunReport`` and the per-100 ms
histogram (``Bucket``): the SVG geometry is plain lists of rectangles, lines and texts in viewBox
units (``geometry``), one module per lane (``lanes``), the markers over them (``markers``), put
together in ``chart``; ``page`` formats the rest. A report is most needed when the run went
wrong, so every lane draws something for no swap, a swap without a report, no WebSockets or no
long requests.
"""

from .chart import build_chart
from .geometry import Chart, nice_ceiling, nice_step, ticks
from .lanes.weights import weight_changes
from .markers import Marker, place_labels
from .page import headline, render_html, view

__all__ = [
    "Chart",
    "Marker",
    "build_chart",
    "headline",
    "nice_ceiling",
    "nice_step",
    "place_labels",
    "render_html",
    "ticks",
    "view",
    "weight_changes",
]
