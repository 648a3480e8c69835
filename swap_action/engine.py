"""The engine's public faces: swap, rollback, plan and status against one load balancer host.

The sequence itself lives in ``run.Run`` (one method per phase); the LB operations behind the
``host.LbHost`` interface. A face returns the run's ``SwapReport``; on failure it raises the
``SwapError`` and the report (with its outcome) stays in ``last_report``.
"""

from __future__ import annotations

from dataclasses import replace

from . import adopt
from .host import LbHost, Probe
from .inputs import Slots, SwapOptions
from .outcome import SwapReport
from .run import Run
from .timeline import Observer, PlainObserver
from .upstream import State


class Engine:
    """Runs swaps against one load balancer host."""

    def __init__(self, host: LbHost, observer: Observer | None = None) -> None:
        self.host = host
        self.observer = observer or PlainObserver()
        # The report of the last run, also when it raised (its outcome carries the error).
        self.last_report: SwapReport | None = None

    def swap(self, options: SwapOptions) -> SwapReport:
        return self._run(options, rollback=False)

    def rollback(self, options: SwapOptions) -> SwapReport:
        """Back to the slot that was live before the last swap."""
        return self._run(options, rollback=True)

    def plan(self, options: SwapOptions) -> SwapReport:
        return self._run(replace(options, dry_run=True), rollback=False)

    def status(self, config_path: str, upstream: str = "app") -> tuple[Probe, State | None]:
        """What the managed file says is live (for a hand-written upstream: inferred from it)."""
        probe = self.host.probe(config_path)
        text = probe.managed_file
        if not text:
            return probe, None
        return probe, adopt.read_state(text, upstream, Slots((), ()))

    def _run(self, options: SwapOptions, *, rollback: bool) -> SwapReport:
        run = Run(self.host, options, self.observer, rollback=rollback)
        self.last_report = run.report
        return run.execute()
