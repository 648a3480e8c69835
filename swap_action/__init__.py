"""Zero-downtime blue-green swaps on Nginx.

``Engine`` runs the swap sequence (``run.Run``, one method per phase) against an ``LbHost``;
``ScriptedHost`` is that host over a ``Transport`` (docker, ssh or local). Errors are the
``SwapError`` hierarchy in ``swap_action.errors``; what a run did is ``outcome.SwapReport``.
"""

from .engine import Engine
from .errors import SwapError
from .host import LbHost, ScriptedHost
from .inputs import Slots, SwapOptions
from .outcome import Outcome, SwapReport
from .transport import Transport, open_transport

__all__ = [
    "Engine",
    "LbHost",
    "Outcome",
    "ScriptedHost",
    "Slots",
    "SwapError",
    "SwapOptions",
    "SwapReport",
    "Transport",
    "open_transport",
]
