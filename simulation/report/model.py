"""The run's report as types: built once from the records and the checks, written as
``report.json`` (``RunReport.to_dict()``), rendered as HTML and summarised on the terminal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swap_action.outcome import ErrorInfo, SwapReport

from ..assertions import Check
from ..records import WebSocketRecord
from .fleet import FleetReport


@dataclass(frozen=True)
class Bucket:
    """Steady requests sent in one 100 ms bucket, by the slot that served them, and the failed ones;
    the latency (ms, from when they were due) of the answered requests due in it."""

    blue: int = 0
    green: int = 0
    error: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def total(self) -> int:
        return self.blue + self.green + self.error


@dataclass(frozen=True)
class Latency:
    """Milliseconds from when each request was due (open loop: a stall delays every request due
    during it). ``p99_during_swap_from_send`` counts from when each went out instead: what a
    closed-loop client reports, which leaves out the waiting a stall causes (coordinated omission)."""

    p50: float = 0.0
    p99: float = 0.0
    p99_during_swap: float = 0.0
    p99_during_swap_from_send: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50": self.p50,
            "p99": self.p99,
            "p99_during_swap": self.p99_during_swap,
            "p99_during_swap_from_send": self.p99_during_swap_from_send,
        }


@dataclass(frozen=True)
class Requests:
    """The steady load: counts (pass/fail and strict), where it went, how fast it was answered."""

    total: int = 0
    failed: int = 0
    failed_keepalive: int = 0
    failed_fresh: int = 0
    strict_failed: int = 0
    by_slot: dict[str, int] = field(default_factory=dict)
    by_slot_before_switch: dict[str, int] = field(default_factory=dict)
    by_slot_after_switch: dict[str, int] = field(default_factory=dict)
    rate_rps: float = 0.0
    latency_ms: Latency = field(default_factory=Latency)
    failed_long: int = 0  # long requests cut or failed: in the headline figure, with the steady ones
    broken_websockets: int = 0  # WebSockets that did not open or lost an echo (not cut)
    asked_rps: float = 0.0
    held_rps: float = 0.0  # over the swap window (load_held)
    per_second: list[int] = field(default_factory=list)  # steady requests sent in each second
    arrivals: str = "constant"
    generator_processes: int = 1

    @property
    def failed_all(self) -> int:
        """The headline figure: every kind."""
        return self.failed + self.failed_long + self.broken_websockets

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "failed": self.failed,
            "failed_keepalive": self.failed_keepalive,
            "failed_fresh": self.failed_fresh,
            "failed_long": self.failed_long,
            "broken_websockets": self.broken_websockets,
            "failed_all": self.failed_all,
            "asked_rps": self.asked_rps,
            "held_rps": self.held_rps,
            "per_second": list(self.per_second),
            "arrivals": self.arrivals,
            "generator_processes": self.generator_processes,
            "strict_failed": self.strict_failed,
            "by_slot": dict(self.by_slot),
            "by_slot_before_switch": dict(self.by_slot_before_switch),
            "by_slot_after_switch": dict(self.by_slot_after_switch),
            "rate_rps": self.rate_rps,
            "latency_ms": self.latency_ms.to_dict(),
        }


@dataclass(frozen=True)
class LongRequest:
    start: float  # unix time
    end: float
    slot: str | None
    complete: bool
    nbytes: int

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "slot": self.slot,
            "complete": self.complete,
            "bytes": self.nbytes,
        }


@dataclass(frozen=True)
class LongRequests:
    total: int = 0
    completed: int = 0
    by_slot: dict[str, int] = field(default_factory=dict)
    durations_s: list[float] = field(default_factory=list)
    records: list[LongRequest] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "completed": self.completed,
            "by_slot": dict(self.by_slot),
            "durations_s": list(self.durations_s),
            "records": [r.to_dict() for r in self.records],
        }


@dataclass(frozen=True)
class WebSockets:
    opened: int = 0  # first connections (attempt 1)
    reconnections: int = 0
    close_codes: dict[str, int] = field(default_factory=dict)  # "1001": 3, "None": still open
    held_through_swap: int = 0
    records: list[WebSocketRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "reconnections": self.reconnections,
            "close_codes": dict(self.close_codes),
            "held_through_swap": self.held_through_swap,
            "records": [w.to_dict() for w in self.records],
        }


@dataclass(frozen=True)
class Swap:
    """One swap as the harness ran it; ``report`` is the engine's own (None: it left none)."""

    target: str
    error: ErrorInfo | None = None
    started_at: float = 0.0  # unix time
    ended_at: float = 0.0
    report: SwapReport | None = None

    @property
    def duration_ms(self) -> float:
        return round((self.ended_at - self.started_at) * 1000, 1)

    @property
    def confirmed_at(self) -> float | None:
        return self.report.confirmed_at if self.report and self.report.confirmed_at else None

    @property
    def confirm_ms(self) -> float | None:
        """From the swap's start to the switch confirmed live (None: never confirmed)."""
        confirmed = self.confirmed_at
        return round((confirmed - self.started_at) * 1000, 1) if confirmed is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "error": self.error.text() if self.error else None,
            "error_type": self.error.type if self.error else None,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_ms": self.duration_ms,
            "confirm_ms": self.confirm_ms,
            "report": self.report.to_dict() if self.report else None,
        }


@dataclass(frozen=True)
class Timings:
    environment_startup_s: float = 0.0
    wall_s: float = 0.0
    traffic_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"environment_startup_s": self.environment_startup_s, "wall_s": self.wall_s, "traffic_s": self.traffic_s}


@dataclass(frozen=True)
class RunReport:
    """Everything report.json, report.html and the terminal summary say about one run."""

    passed: bool
    assertions: list[Check] = field(default_factory=list)
    client_model: str = ""
    requests: Requests = field(default_factory=Requests)
    long_requests: LongRequests = field(default_factory=LongRequests)
    websockets: WebSockets = field(default_factory=WebSockets)
    swaps: list[Swap] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    scenario: dict[str, Any] = field(default_factory=dict)  # the scenario's settings, for people
    traffic_started_at: float = 0.0  # unix time
    traffic_ended_at: float = 0.0
    slot_addresses: dict[str, str] = field(default_factory=dict)
    diagnostics: dict[str, str] = field(default_factory=dict)  # only when the run failed
    # The LB: image, Nginx version, managed file, what the harness added, the endpoints tried.
    lb: dict[str, Any] = field(default_factory=dict)
    # Real client libraries: kind -> requests, failed, per swap, what failed, skipped (why).
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A fleet (two LBs or more): traffic per LB, each LB's part in each swap, the skew, the end state.
    fleet: FleetReport | None = None

    def check(self, name: str) -> Check | None:
        return next((c for c in self.assertions if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """report.json; ``lb`` is there whenever the run reached an LB (always, from the harness)."""
        return {
            "passed": self.passed,
            "assertions": [c.to_dict() for c in self.assertions],
            "client_model": self.client_model,
            "requests": self.requests.to_dict(),
            "long_requests": self.long_requests.to_dict(),
            "websockets": self.websockets.to_dict(),
            "swaps": [s.to_dict() for s in self.swaps],
            "timings": self.timings.to_dict(),
            "scenario": dict(self.scenario),
            "traffic_started_at": self.traffic_started_at,
            "traffic_ended_at": self.traffic_ended_at,
            "slot_addresses": dict(self.slot_addresses),
            "diagnostics": dict(self.diagnostics),
            **({"lb": dict(self.lb)} if self.lb else {}),
            **({"clients": dict(self.clients)} if self.clients else {}),
            **({"fleet": self.fleet.to_dict()} if self.fleet else {}),
        }
