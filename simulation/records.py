"""What the harness records: one row per HTTP request and per WebSocket."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request as the client saw it.

    ``error`` is the outcome under the request's client model (a keep-alive client retries an
    idempotent request once when its reused connection was closed, as browsers and urllib3 do;
    a fresh-connection client never needs to). ``strict_error`` is the first attempt's error on a
    reused connection, before any retry: the strict count.
    """

    kind: str  # "steady", "long" or "client" (a real client library: simulation/clients.py)
    model: str  # "keepalive" or "fresh"; for a "client" record, the library's kind ("requests", "fetch", ...)
    client: int
    start: float  # unix time the request was sent
    end: float
    status: int  # 0: no response
    nbytes: int
    slot: str | None  # which slot served it, from $upstream_addr
    upstream: str
    error: str | None = None
    strict_error: str | None = None
    complete: bool = True  # full body received (long requests: every chunk and the end)
    # Open-loop steady load: when the schedule wanted it sent (unix time; 0: when it was sent), and
    # whether it had to wait for a connection because all of them, up to the bound, were busy.
    intended: float = 0.0
    waited: bool = False
    lb: int = 0  # which load balancer it went through (0: the first; a fleet deals them out in turn)

    @property
    def latency_s(self) -> float:
        """From the intended send time (open loop): a stall delays every request due during it,
        not only the one each client had in flight (coordinated omission)."""
        return self.end - (self.intended or self.start)

    @property
    def failed(self) -> bool:
        return self.error is not None or self.status >= 500 or self.status == 0 or not self.complete

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WebSocketRecord:
    id: int
    attempt: int  # 1: opened before the swap; 2+: reconnections after a server close (not a config generation)
    opened_at: float
    slot: str | None
    upstream: str
    closed_at: float | None = None
    close_code: int | None = None  # 1001 going away, 1006 cut (no close frame), 1000 client done
    closed_by: str = ""  # "server", "client" or "network"
    messages: int = 0
    ticks: int = 0
    pongs: int = 0
    echoes_sent: int = 0
    echoes_ok: int = 0
    max_gap_s: float = 0.0
    error: str | None = None
    events: list[float] = field(default_factory=list, repr=False)
    lb: int = 0  # which load balancer it went through (0: the first)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("events")
        return data


@dataclass(frozen=True)
class LbEndState:
    """What one load balancer of a fleet serves once the run is over: the live slot its managed file
    names, and the slots that answered a few requests sent through it (new connections)."""

    index: int  # 0: the first LB
    name: str  # its container
    file_live: str | None  # None: the file could not be read (``error`` says why)
    answered: dict[str, int]  # slot (or "error") -> answers
    error: str = ""

    def on(self, slot: str) -> bool:
        """Its file names ``slot`` live and every request sent through it was answered by ``slot``."""
        return self.file_live == slot and bool(self.answered) and set(self.answered) == {slot}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "answered": dict(self.answered)}
