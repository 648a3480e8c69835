"""The staging route: the managed file's second upstream (``<upstream>_staging``) always points at
the idle slot, and the LB routes the host name ``STAGING_HOST`` to it (``--staging-check``).

A low-rate prober (``Traffic.start_staging``) sends requests for that host through the LBs in
turn; ``staging_idle`` checks that each answer came from the slot that was idle when it was sent,
for every request outside the switch windows. A switch window is one reload: from its start (the
step's, or the signal's when earlier) to its confirmation, widened by ``SWITCH_MARGIN_S`` on both
sides; a swap that failed is a window from its start to its end (its LBs were restored somewhere
in it). The windows come from the engine's report (``reloads``, in a fleet every LB's).

Which slot is idle: blue is live at start; after each confirmed reload of a swap that succeeded,
the slot it moved traffic to is live from its share of 50% (the engine's state line calls the
slot with the larger share live, the target at 50%), and the other slot is idle.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from swap_action.inputs import other
from swap_action.outcome import Phase, Reload

from .assertions import EXAMPLES, Check
from .records import RequestRecord

if TYPE_CHECKING:
    from .scenario import RunResult, SwapRun

STAGING_HOST = "staging.bluegreen.test"
STAGING_RATE = 5.0  # requests per second, all LBs together
SWITCH_MARGIN_S = 0.25


@dataclass(frozen=True)
class SwitchWindow:
    """Unix times between which the staging route may answer from either slot."""

    swap: int  # 1-based
    start: float
    end: float
    lb: str | None = None  # the LB that reloaded (None: the only one, or a failed swap's whole span)

    def holds(self, at: float) -> bool:
        return self.start <= at <= self.end

    def to_dict(self) -> dict[str, object]:
        return {"swap": self.swap, "start": self.start, "end": self.end, "lb": self.lb}


def _reload_start(reload: Reload, swap: SwapRun) -> float:
    """When a reload began: its step's start, or the signal (LB clock) when that was earlier."""
    starts = [reload.started_at]
    if reload.reload_at_ms is not None:
        starts.append(reload.reload_at_ms / 1000)
    report = swap.report
    for step in report.steps if report else []:
        if step.phase == Phase.APPLY and step.lb == reload.lb and step.percent == reload.percent:
            starts.append(step.started_at)
    return min(starts)


def switch_windows(swaps: list[SwapRun], margin: float = SWITCH_MARGIN_S) -> list[SwitchWindow]:
    """Every reload of every swap (each LB's in a fleet) as a window, a failed swap as one window."""
    windows = []
    for number, swap in enumerate(swaps, 1):
        report = swap.report
        if swap.error is not None or report is None:
            windows.append(SwitchWindow(number, swap.started_at - margin, swap.ended_at + margin))
            continue
        for reload in report.reloads:
            confirmed = reload.confirmed_at or swap.ended_at
            start = _reload_start(reload, swap)
            windows.append(SwitchWindow(number, start - margin, max(confirmed, start) + margin, reload.lb))
    return windows


def live_after(reload: Reload) -> str:
    """The slot the state line calls live once ``reload`` is served: the larger share, the target at 50%."""
    return reload.slot if reload.percent >= 50 else other(reload.slot)


def idle_at(swaps: list[SwapRun], at: float, initial_live: str = "blue") -> str:
    """The idle slot at unix time ``at``, from the confirmed reloads of the swaps that succeeded."""
    confirmed = sorted(
        (reload.confirmed_at, live_after(reload))
        for swap in swaps
        if swap.error is None and swap.report is not None
        for reload in swap.report.reloads
        if reload.confirmed_at is not None
    )
    live = initial_live
    for when, slot in confirmed:
        if when > at:
            break
        live = slot
    return other(live)


def staging_idle(result: RunResult) -> Check:
    """Each staging answer outside the switch windows came from the slot idle when it was sent."""
    title = "the staging route answers from the idle slot outside the switch windows"
    probes = [r for r in result.requests if r.kind == "staging"]
    if not probes:
        return Check("staging_idle", title, False, "no staging request was sent (is the staging route there?)", {})
    windows = switch_windows(result.swaps)
    inside = [r for r in probes if any(w.holds(r.start) for w in windows)]
    outside = [r for r in probes if not any(w.holds(r.start) for w in windows)]
    unanswered = [r for r in outside if r.slot is None]
    judged = [r for r in outside if r.slot is not None]
    wrong: list[tuple[RequestRecord, str]] = []
    for record in judged:
        expected = idle_at(result.swaps, record.start)
        if record.slot != expected:
            wrong.append((record, expected))
    ok = bool(judged) and not wrong
    by_lb = Counter(f"lb{r.lb + 1}" for r in judged)
    summary = (
        f"{len(judged) - len(wrong)}/{len(judged)} staging answers outside the switch windows came from the idle "
        f"slot (by slot {dict(Counter(str(r.slot) for r in judged))}, by LB {dict(by_lb)}); {len(inside)} sent "
        f"inside {len(windows)} switch window(s) were not judged; {len(unanswered)} got no answer from a slot"
    )
    if wrong:
        first, expected = wrong[0]
        summary += (
            f"; {len(wrong)} came from the live slot, the first {first.start - result.traffic_started_at:.2f} s "
            f"into the traffic through lb{first.lb + 1}: {first.slot} answered, {expected} was idle"
        )
    return Check(
        "staging_idle",
        title,
        ok,
        summary,
        {
            "host": STAGING_HOST,
            "sent": len(probes),
            "judged": len(judged),
            "wrong": len(wrong),
            "inside_windows": len(inside),
            "unanswered": len(unanswered),
            "statuses": dict(Counter(str(r.status) for r in judged)),
            "windows": [w.to_dict() for w in windows],
            "margin_s": SWITCH_MARGIN_S,
            "examples": [
                {"start": r.start, "lb": r.lb, "slot": r.slot, "idle": expected, "status": r.status}
                for r, expected in wrong[:EXAMPLES]
            ],
            "unanswered_examples": [_unanswered(r) for r in unanswered[:EXAMPLES]],
        },
    )


def _unanswered(record: RequestRecord) -> dict[str, object]:
    return {"start": record.start, "lb": record.lb, "status": record.status, "error": record.error}
