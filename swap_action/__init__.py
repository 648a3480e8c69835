"""Zero-downtime blue-green swaps on Nginx.

``Engine`` runs the swap sequence against a ``LoadBalancer`` reached through a ``Transport``
(docker, ssh or local); errors are the ``SwapError`` hierarchy in ``swap_action.errors``.
"""

from .engine import Engine, SwapReport
from .errors import SwapError
from .inputs import Slots, SwapOptions
from .nginx import LoadBalancer
from .transport import Transport, open_transport

__all__ = ["Engine", "LoadBalancer", "Slots", "SwapError", "SwapOptions", "SwapReport", "Transport", "open_transport"]
