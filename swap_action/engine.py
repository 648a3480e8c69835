"""The engine's public faces against one load balancer host: swap, rollback, plan and status.

``Engine`` is a ``fleet.FleetEngine`` of one member (the sequence itself lives in ``run.Run``,
one method per phase; the LB operations behind the ``host.LbHost`` interface), plus ``status``.
A face returns the run's ``SwapReport``; on failure it raises the ``SwapError`` and the report
(with its outcome) stays in ``last_report``.
"""

from __future__ import annotations

from . import adopt
from .fleet import FleetEngine
from .host import LbHost, Probe
from .inputs import Slots
from .timeline import Observer
from .upstream import State


class Engine(FleetEngine):
    """Runs swaps against one load balancer host."""

    def __init__(self, host: LbHost, observer: Observer | None = None) -> None:
        super().__init__([(host.description, host)], observer)
        self.host = host

    def status(self, config_path: str, upstream: str = "app") -> tuple[Probe, State | None]:
        """What the managed file says is live (for a hand-written upstream: inferred from it)."""
        probe = self.host.probe(config_path)
        text = probe.managed_file
        if not text:
            return probe, None
        return probe, adopt.read_state(text, upstream, Slots((), ()))
