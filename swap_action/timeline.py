"""Each step of a swap, timed, and who is told about it (the CLI's log, GitHub's groups)."""

from __future__ import annotations

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
    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.steps: list[Step] = []
        self.started_at = time.time()
        self._t0 = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._t0) * 1000

    @contextmanager
    def step(self, phase: Phase, *, slot: str | None = None, percent: int | None = None) -> Iterator[Step]:
        record = Step(phase=phase, started_at=time.time(), slot=slot, percent=percent)
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
        self.steps.append(step)
        self.observer.step_started(step)
        self.observer.step_finished(step)
