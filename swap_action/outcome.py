"""What a run did, as types: its phases, each step it took, and one outcome.

Every face (the action's outputs, the CLI's text and ``--json``, the step summary, the
simulation's report.json and HTML) reads these fields; none re-derives meaning from text.

Words used with one meaning each:

- *rollback*: swapping back to the slot that was live before the last swap (a command of its own);
- *restore*: putting the previous bytes of the managed file back after a failed step;
- *generation*: the id of one rendered config, answered by its marker server once Nginx serves it.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import SwapError


class Phase(enum.StrEnum):
    """The phases of a swap, in the order they run (verify/pause repeat per canary step)."""

    LOCK = "lock"
    PROBE = "probe"
    GATE = "gate"
    RENDER = "render"
    TEST = "test"
    APPLY = "apply"
    RELOAD_CONFIRM = "reload-confirm"
    VERIFY = "verify"
    PAUSE = "pause"
    DRAIN = "drain"
    RESTORE = "restore"
    HOOK = "hook"  # a pre-switch, post-switch or post-drain command on the runner


@dataclass
class Step:
    """One phase of one canary step: what ran, on which slot, at which percentage, how long."""

    phase: Phase
    started_at: float  # unix time
    slot: str | None = None  # the slot the step moves traffic to (drain: the slot drained)
    percent: int | None = None  # that slot's share of traffic after the step
    duration_ms: float = 0.0
    ok: bool = True
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    lb: str | None = None  # the load balancer it ran on, in a fleet (None: the only one, or the runner)

    @property
    def label(self) -> str:
        """For people only (logs, tables): never parsed back."""
        if self.lb:
            return f"{self.lb}: {Step(self.phase, self.started_at, self.slot, self.percent, data=self.data).label}"
        if self.phase is Phase.HOOK and self.data.get("hook"):
            return f"{self.phase.value} {self.data['hook']}"
        if self.percent is not None and self.slot:
            return f"{self.phase.value} ({self.percent}% to {self.slot})"
        if self.slot:
            return f"{self.phase.value} ({self.slot})"
        return self.phase.value

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        data["label"] = self.label
        return data


@dataclass(frozen=True)
class Reload:
    """One confirmed reload: the LB's own timings (ms after the signal, LB clock)."""

    generation: str
    slot: str  # the slot this reload moved traffic to
    percent: int  # its share after the reload
    started_at: float  # unix time (runner clock) the reload step started
    reload_at_ms: int | None = None  # unix time (ms, LB clock) the signal was sent
    signal_ms: int = 0
    new_workers_ms: int | None = None
    old_stopped_ms: int | None = None
    marker_ms: int | None = None
    confirmed_ms: int | None = None
    old_workers: tuple[int, ...] = ()
    lb: str | None = None  # in a fleet: the load balancer that reloaded

    @property
    def confirmed_at(self) -> float | None:
        """Unix time (LB clock) the reload was proven live."""
        if self.reload_at_ms is None or self.confirmed_ms is None:
            return None
        return (self.reload_at_ms + self.confirmed_ms) / 1000

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["old_workers"] = list(self.old_workers)
        return data


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    title: str
    cause: str
    fix: str
    detail: str = ""

    @classmethod
    def of(cls, error: SwapError) -> ErrorInfo:
        return cls(type(error).__name__, error.title, error.cause, error.fix, error.detail)

    def text(self) -> str:
        """For people: the kind, the cause and the fix."""
        return f"{self.type}: {self.cause}" + (f"\nFix: {self.fix}" if self.fix else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DrainOutcome:
    outcome: str  # "complete", "cut" or "timeout"
    duration_ms: float
    connections_left: int
    workers_left: int
    hook: tuple[tuple[str, int], ...] = ()  # (url, status) of each drain hook call
    # keepalive_min_timeout (Nginx >= 1.27.4): the hook waited until that long after the switch
    keepalive_min_ms: int = 0

    @property
    def hook_failures(self) -> tuple[tuple[str, int], ...]:
        """Drain hook calls that got no HTTP answer (status 0) or one other than 2xx."""
        return tuple((url, status) for url, status in self.hook if not 200 <= status < 300)

    def summary(self) -> str:
        answers = ", ".join(str(status) if status else "nothing (no HTTP answer)" for _, status in self.hook)
        hook = f"; drain hook answered {answers}" if self.hook else ""
        if self.hook and self.keepalive_min_ms:
            hook += (
                f" (called {self.keepalive_min_ms} ms after the switch: keepalive_min_timeout, old workers "
                "answer recently used connections until then)"
            )
        if self.outcome == "complete":
            return f"drained in {self.duration_ms:.0f} ms: the old workers hold no connection to the old slot and are gone{hook}"
        action = "stopped them" if self.outcome == "cut" else "left them running"
        return (
            f"drain deadline reached after {self.duration_ms:.0f} ms with {self.connections_left} connection(s) "
            f"and {self.workers_left} old worker(s) left: {action}{hook}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "duration_ms": round(self.duration_ms, 1),
            "connections_left": self.connections_left,
            "workers_left": self.workers_left,
            "hook": [{"url": url, "status": status} for url, status in self.hook],
            "keepalive_min_ms": self.keepalive_min_ms,
        }


@dataclass(frozen=True)
class HookRun:
    """One hook command on the runner: what ran, how it ended, what it printed (capped)."""

    name: str  # pre-switch, post-switch or post-drain
    command: str
    exit_code: int | None  # None: it was stopped at its timeout (or could not start)
    duration_ms: float
    output: str = ""  # stdout and stderr together, the last 64 KiB
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_ms": round(self.duration_ms, 1), "ok": self.ok}


@dataclass(frozen=True)
class Skew:
    """One canary step on a fleet: the window between the first and the last LB proving it live
    (each LB's own clock; LBs whose clocks disagree widen or narrow it by their offset)."""

    slot: str
    percent: int
    first_confirmed_at: float  # unix time
    last_confirmed_at: float
    lbs: int  # how many LBs confirmed this step

    @property
    def window_ms(self) -> float:
        return (self.last_confirmed_at - self.first_confirmed_at) * 1000

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "window_ms": round(self.window_ms, 1)}


@dataclass
class LbOutcome:
    """One load balancer of a swap: its slot before and after, what the run did there, its error."""

    target: str  # as given (ssh://..., docker://..., local): display only
    before: str | None = None  # live slot when the run read it
    after: str | None = None  # live slot at the end (None: unknown)
    changed: bool = False
    restored: bool = False
    restore_failed: bool = False
    in_doubt: bool = False
    config_path: str | None = None
    duration_ms: float = 0.0
    confirmed_at: float | None = None  # unix time (LB clock) its final switch was proven live
    drain: DrainOutcome | None = None
    error: ErrorInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_ms"] = round(self.duration_ms, 1)
        data["drain"] = self.drain.to_dict() if self.drain else None
        data["error"] = self.error.to_dict() if self.error else None
        return data


class Result(enum.StrEnum):
    SWAPPED = "swapped"
    UNCHANGED = "unchanged"
    PLANNED = "planned"
    FAILED = "failed"
    RESTORED = "restored"  # failed, and the previous config was put back and confirmed


@dataclass
class Outcome:
    """The one outcome of a run, computed by the engine on every path.

    ``changed`` means traffic changed: a slot other than the one live at the start is serving at
    the end (a failed step whose config was restored, a plan, or a no-op: false).
    """

    result: Result = Result.UNCHANGED
    changed: bool = False
    active: str | None = None  # live at the end (None: unknown)
    previous: str | None = None  # live at the start
    target: str | None = None
    restored: bool = False
    restore_failed: bool = False  # a restore was tried and not confirmed: what is live is unknown
    # A change was sent and its answer lost (the connection broke): the LB finishes what it started,
    # so that step may be live. What is live is unknown here.
    in_doubt: bool = False
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def state_sentence(self) -> str:
        """What the LB is left with, in one sentence (for failures)."""
        if self.in_doubt:
            return (
                "The connection broke while the LB was changing: the LB finishes what it started, so that step "
                "may be live. python -m swap_action status says what is."
            )
        if self.restore_failed and not self.changed:
            return (
                "Traffic did not move (Nginx never loaded the new config), but the managed file still holds it: "
                "put the previous bytes back by hand (the .previous file) before the next reload."
            )
        if self.restore_failed:
            return (
                "The previous config could not be put back and confirmed: what Nginx serves is unknown "
                "until someone checks (python -m swap_action status)."
            )
        if self.restored:
            return f"The previous config was restored: {self.active or 'unknown'} is live again."
        if self.changed:
            return f"Not restored: the new config stays live ({self.active or 'unknown'} is live)."
        return "Nothing was changed for traffic on the load balancer."

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result.value,
            "changed": self.changed,
            "active": self.active,
            "previous": self.previous,
            "target": self.target,
            "restored": self.restored,
            "restore_failed": self.restore_failed,
            "in_doubt": self.in_doubt,
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass
class SwapReport:
    """Everything a run recorded: the outcome, its steps, reloads, drain and the config diff."""

    outcome: Outcome = field(default_factory=Outcome)
    dry_run: bool = False
    started_at: float = 0.0
    duration_ms: float = 0.0
    confirmed_at: float | None = None  # unix time the final switch was confirmed live
    config_diff: str = ""
    steps: list[Step] = field(default_factory=list)
    reloads: list[Reload] = field(default_factory=list)
    drain: DrainOutcome | None = None  # in a fleet: the longest of the LBs' drains
    lbs: list[LbOutcome] = field(default_factory=list)  # one per load balancer, in the order given
    skew: list[Skew] = field(default_factory=list)  # per canary step, on a fleet of two or more
    hooks: list[HookRun] = field(default_factory=list)
    staging_slot: str | None = None  # where the staging upstream points at the end (None: no such upstream)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.to_dict(),
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "duration_ms": round(self.duration_ms, 1),
            "confirmed_at": self.confirmed_at,
            "config_diff": self.config_diff,
            "steps": [step.to_dict() for step in self.steps],
            "reloads": [reload.to_dict() for reload in self.reloads],
            "drain": self.drain.to_dict() if self.drain else None,
            "lbs": [lb.to_dict() for lb in self.lbs],
            "skew": [window.to_dict() for window in self.skew],
            "hooks": [hook.to_dict() for hook in self.hooks],
            "staging_slot": self.staging_slot,
        }
