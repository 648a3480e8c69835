"""A fleet's part of the report (``RunReport.fleet``, report.json's ``fleet``; only with two LBs or
more): the traffic through each LB, each LB's part in each swap (the engine's ``LbOutcome``), the
skew of each step, and what each LB served once the run was over."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from swap_action.outcome import DrainOutcome, ErrorInfo

from ..fleet_checks import lb_outcomes
from ..records import LbEndState

if TYPE_CHECKING:
    from ..scenario import RunResult


@dataclass(frozen=True)
class LbTraffic:
    """The requests that went through one LB, and where they landed before its first switch and after
    its last one (each proven live on that LB)."""

    lb: int  # 1-based
    name: str
    requests: int = 0  # steady
    failed: int = 0  # steady, pass/fail models
    by_slot_before_switch: dict[str, int] = field(default_factory=dict)
    by_slot_after_switch: dict[str, int] = field(default_factory=dict)
    long_requests: int = 0
    websockets: int = 0  # connections, reconnections included
    staging: int = 0  # staging route probes

    def to_dict(self) -> dict[str, Any]:
        return {
            "lb": self.lb,
            "name": self.name,
            "requests": self.requests,
            "failed": self.failed,
            "by_slot_before_switch": dict(self.by_slot_before_switch),
            "by_slot_after_switch": dict(self.by_slot_after_switch),
            "long_requests": self.long_requests,
            "websockets": self.websockets,
            "staging": self.staging,
        }


@dataclass(frozen=True)
class LbSwapRow:
    """One LB's part in one swap, as the engine reported it."""

    swap: int  # 1-based
    lb: int  # 1-based
    target: str  # the engine's name for it (docker://<container>)
    before: str | None = None
    after: str | None = None
    changed: bool = False
    restored: bool = False
    restore_failed: bool = False
    in_doubt: bool = False
    confirm_ms: float | None = None  # from the swap's start to this LB's switch proven live
    drain: DrainOutcome | None = None
    error: ErrorInfo | None = None
    reported: bool = True  # False: the engine left no outcome for this LB

    def to_dict(self) -> dict[str, Any]:
        return {
            "swap": self.swap,
            "lb": self.lb,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "changed": self.changed,
            "restored": self.restored,
            "restore_failed": self.restore_failed,
            "in_doubt": self.in_doubt,
            "confirm_ms": self.confirm_ms,
            "drain": self.drain.to_dict() if self.drain else None,
            "error": self.error.to_dict() if self.error else None,
            "reported": self.reported,
        }


@dataclass(frozen=True)
class SkewRow:
    """One canary step of one swap: the window between the first and the last LB proving it live."""

    swap: int
    slot: str
    percent: int
    window_ms: float
    lbs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "swap": self.swap,
            "slot": self.slot,
            "percent": self.percent,
            "window_ms": round(self.window_ms, 1),
            "lbs": self.lbs,
        }


@dataclass(frozen=True)
class FleetReport:
    lbs: int
    max_skew_ms: float  # the bound (--max-skew)
    traffic: list[LbTraffic] = field(default_factory=list)
    swaps: list[LbSwapRow] = field(default_factory=list)
    skew: list[SkewRow] = field(default_factory=list)
    end_state: list[LbEndState] = field(default_factory=list)

    @property
    def worst_skew_ms(self) -> float | None:
        return max((row.window_ms for row in self.skew), default=None)

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst_skew_ms
        return {
            "lbs": self.lbs,
            "max_skew_ms": self.max_skew_ms,
            "worst_skew_ms": round(worst, 1) if worst is not None else None,
            "traffic": [row.to_dict() for row in self.traffic],
            "swaps": [row.to_dict() for row in self.swaps],
            "skew": [row.to_dict() for row in self.skew],
            "end_state": [state.to_dict() for state in self.end_state],
        }


def build_fleet(result: RunResult) -> FleetReport | None:
    """The fleet's part of the report; None for one LB (report.json then has no ``fleet``)."""
    lbs = result.scenario.lbs
    if lbs <= 1:
        return None
    return FleetReport(
        lbs=lbs,
        max_skew_ms=round(result.scenario.max_skew * 1000, 1),
        traffic=[lb_traffic(result, index) for index in range(lbs)],
        swaps=lb_swap_rows(result),
        skew=[
            SkewRow(number, window.slot, window.percent, window.window_ms, window.lbs)
            for number, swap in enumerate(result.swaps, 1)
            if swap.report
            for window in swap.report.skew
        ],
        end_state=list(result.end_states),
    )


def lb_switches(result: RunResult, index: int) -> list[float]:
    """When each of LB ``index``'s switches was proven live, swaps that succeeded only (its own
    confirmation, else the swap's)."""
    times = []
    for swap in result.swaps:
        if swap.report is None or not swap.report.confirmed_at or swap.error is not None:
            continue
        lb = lb_outcomes(swap.report, result.scenario.lbs)[index]
        times.append(lb.confirmed_at if lb and lb.confirmed_at else swap.report.confirmed_at)
    return times


def lb_traffic(result: RunResult, index: int) -> LbTraffic:
    steady = [r for r in result.requests if r.kind == "steady" and r.lb == index]
    switches = lb_switches(result, index)
    first, last = (switches[0], switches[-1]) if switches else (None, None)
    names = result.lb_names
    return LbTraffic(
        lb=index + 1,
        name=names[index] if index < len(names) else f"lb{index + 1}",
        requests=len(steady),
        failed=sum(1 for r in steady if r.failed),
        by_slot_before_switch=dict(Counter(str(r.slot) for r in steady if first is None or r.start < first)),
        by_slot_after_switch=dict(Counter(str(r.slot) for r in steady if last is not None and r.start >= last)),
        long_requests=sum(1 for r in result.requests if r.kind == "long" and r.lb == index),
        websockets=sum(1 for w in result.websockets if w.lb == index),
        staging=sum(1 for r in result.requests if r.kind == "staging" and r.lb == index),
    )


def lb_swap_rows(result: RunResult) -> list[LbSwapRow]:
    rows = []
    for number, swap in enumerate(result.swaps, 1):
        for index, lb in enumerate(lb_outcomes(swap.report, result.scenario.lbs)):
            if lb is None:
                name = result.lb_names[index] if index < len(result.lb_names) else f"lb{index + 1}"
                rows.append(LbSwapRow(number, index + 1, name, reported=False))
                continue
            confirm = round((lb.confirmed_at - swap.started_at) * 1000, 1) if lb.confirmed_at else None
            rows.append(
                LbSwapRow(
                    swap=number,
                    lb=index + 1,
                    target=lb.target,
                    before=lb.before,
                    after=lb.after,
                    changed=lb.changed,
                    restored=lb.restored,
                    restore_failed=lb.restore_failed,
                    in_doubt=lb.in_doubt,
                    confirm_ms=confirm,
                    drain=lb.drain,
                    error=lb.error,
                )
            )
    return rows
