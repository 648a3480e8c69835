"""Each step of a swap, timed, and who is told about it (the CLI's log, GitHub's groups)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from .outcome import Phase, Step


class Observer(Protocol):
    def step_started(self, step: Step) -> None: ...
    def step_finished(self, step: Step) -> None: ...
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...


class PlainObserver:
    """Writes the timeline to a stream as it happens (the CLI's default)."""

    def __init__(self, write: Any = print) -> None:
        self._write = write

    def step_started(self, step: Step) -> None:
        pass

    def step_finished(self, step: Step) -> None:
        mark = "ok " if step.ok else "ERR"
        detail = f"  {step.detail}" if step.detail else ""
        self._write(f"[{mark}] {step.label:<34} {step.duration_ms:>7.0f} ms{detail}")

    def info(self, message: str) -> None:
        self._write(f"      {message}")

    def warning(self, message: str) -> None:
        self._write(f"[!!!] {message}")


class Timeline:
    def __init__(self, observer: Observer, *, lb: str | None = None) -> None:
        self.observer = observer
        self.lb = lb  # in a fleet: the load balancer every step of this timeline ran on
        self.steps: list[Step] = []
        self.started_at = time.time()
        self._t0 = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._t0) * 1000

    @contextmanager
    def step(
        self, phase: Phase, *, slot: str | None = None, percent: int | None = None, data: dict[str, Any] | None = None
    ) -> Iterator[Step]:
        record = Step(phase=phase, started_at=time.time(), slot=slot, percent=percent, lb=self.lb, data=data or {})
        self.steps.append(record)
        self.observer.step_started(record)
        start = time.perf_counter()
        try:
            yield record
        except BaseException as exc:
            record.ok = False
            lines = str(getattr(exc, "cause", exc)).splitlines() or [type(exc).__name__]
            record.detail = record.detail or lines[0]
            raise
        finally:
            # A step whose work was timed elsewhere (on the LB, inside another round trip) says so.
            record.duration_ms = record.duration_ms or (time.perf_counter() - start) * 1000
            self.observer.step_finished(record)

    def record(self, step: Step) -> None:
        """A step timed elsewhere (one of several phases done on the LB in one round trip)."""
        step.lb = step.lb or self.lb
        self.steps.append(step)
        self.observer.step_started(step)
        self.observer.step_finished(step)


class BufferedObserver:
    """Keeps what one load balancer's run tells while it runs beside others (a fleet's threads),
    for ``flush`` to pass on in one piece: GitHub's log groups never interleave."""

    def __init__(self) -> None:
        self._calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def step_started(self, step: Step) -> None:
        self._add("step_started", step)

    def step_finished(self, step: Step) -> None:
        self._add("step_finished", step)

    def info(self, message: str) -> None:
        self._add("info", message)

    def warning(self, message: str) -> None:
        self._add("warning", message)

    def _add(self, name: str, value: Any) -> None:
        with self._lock:
            self._calls.append((name, value))

    def flush(self, to: Observer) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
        for name, value in calls:
            getattr(to, name)(value)
