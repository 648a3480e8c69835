"""What a correct fleet swap means, beyond the one-LB assertions (``Scenario.lbs`` of 2 or more),
each with its evidence:

- ``drain_finished_every_lb``: every LB's own drain, by the rule of ``drain_finished``;
- ``traffic_on_new_slot_every_lb``: after the last swap, every request through each LB lands on the new slot;
- ``skew_within_bound``: the widest window between the first and the last LB proving a step live
  (the engine's ``SwapReport.skew``, LB clocks) stays under ``Scenario.max_skew``;
- ``lbs_end_on_one_slot``: once the run is over, each LB's managed file and the requests sent
  through it say the slot the run left live: the new slot after a swap, the old one on every LB
  after a fleet swap that failed (its changed LBs restored).

LB ``i`` is position ``i`` everywhere: the records' ``lb``, the engine's ``SwapReport.lbs`` (in
the order the members were given) and ``RunResult.end_states``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from swap_action.outcome import DrainOutcome, LbOutcome, SwapReport

from .assertions import Check

if TYPE_CHECKING:
    from .scenario import RunResult, SwapRun


def fleet_checks(result: RunResult) -> list[Check]:
    return [
        drain_finished_every_lb(result),
        traffic_on_new_slot_every_lb(result),
        skew_within_bound(result),
        lbs_end_on_one_slot(result),
    ]


def lb_outcomes(report: SwapReport | None, lbs: int) -> list[LbOutcome | None]:
    """The engine's outcome of each of ``lbs`` LBs, by position (None: the engine left none for it)."""
    given = list(report.lbs) if report else []
    return [given[index] if index < len(given) else None for index in range(lbs)]


def lb_label(result: RunResult, index: int) -> str:
    """``lb2 (bgsim-1234-lb2)``: the LB's number and, when known, its container."""
    names = result.lb_names
    return f"lb{index + 1}" + (f" ({names[index]})" if index < len(names) else "")


def live_after_run(swaps: list[SwapRun], initial: str = "blue") -> str:
    """The slot the run left live: the target of the last swap that succeeded (blue when none did)."""
    live = initial
    for swap in swaps:
        if swap.error is None and swap.report is not None and swap.report.confirmed_at:
            live = swap.target
    return live


def drain_ok(drain: DrainOutcome, timeout_s: float, *, allowed_cut: bool) -> bool:
    """``drain_finished``'s rule for one drain: complete within the timeout (or, when the scenario
    cuts what is left by design, cut), and the drain hook answered 2xx."""
    if drain.hook_failures:
        return False
    complete = drain.outcome == "complete" and drain.duration_ms <= timeout_s * 1000
    return complete or (allowed_cut and drain.outcome in ("complete", "cut"))


def drain_finished_every_lb(result: RunResult) -> Check:
    scenario = result.scenario
    allowed_cut = scenario.drain_policy == "cut" and not scenario.hook_closes_websockets
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, swap in enumerate(result.swaps, 1):
        for index, lb in enumerate(lb_outcomes(swap.report, scenario.lbs)):
            label = lb_label(result, index)
            drain = lb.drain if lb else None
            rows.append({"swap": number, "lb": index + 1, "drain": drain.to_dict() if drain else None})
            if drain is None:
                problems.append(f"swap {number} {label}: no drain (the swap did not reach it there)")
            elif not drain_ok(drain, scenario.drain_timeout, allowed_cut=allowed_cut):
                problems.append(f"swap {number} {label}: {drain.summary()}")
    shutting = [w for w in result.lb_workers_after if "shutting down" in w]
    if shutting:
        problems.append(f"{len(shutting)} old worker(s) still running after the run")
    ok = bool(result.swaps) and not problems
    drained = [row for row in rows if row["drain"]]
    longest = max((row["drain"]["duration_ms"] for row in drained), default=0.0)
    summary = (
        f"{len(drained)} drain(s) over {scenario.lbs} LBs and {len(result.swaps)} swap(s), the longest {longest:.0f} ms"
        if result.swaps
        else "no swap ran"
    )
    if problems:
        summary += "; " + "; ".join(problems[:4])
    return Check(
        "drain_finished_every_lb",
        "on every LB, connections to the old slot reach zero and old Nginx workers exit within the drain timeout",
        ok,
        summary,
        {"drains": rows, "timeout_s": scenario.drain_timeout, "problems": problems},
    )


def traffic_on_new_slot_every_lb(result: RunResult) -> Check:
    title = "after the swap, 100% of the traffic through every LB is on the new slot"
    last = result.swaps[-1] if result.swaps else None
    if last is None or last.error is not None or last.report is None or not last.report.confirmed_at:
        return Check("traffic_on_new_slot_every_lb", title, False, "no confirmed swap", {})
    per_lb: list[dict[str, Any]] = []
    parts = []
    ok = True
    for index in range(result.scenario.lbs):
        after = [r for r in result.requests if r.kind == "steady" and r.lb == index and r.start >= last.ended_at]
        slots = Counter(str(r.slot) for r in after)
        on_new = slots.get(last.target, 0)
        ok = ok and bool(after) and on_new == len(after)
        share = 100.0 * on_new / len(after) if after else 0.0
        parts.append(f"lb{index + 1} {share:.1f}% of {len(after)}")
        per_lb.append({"lb": index + 1, "requests_after": len(after), "by_slot": dict(slots)})
    return Check(
        "traffic_on_new_slot_every_lb",
        title,
        ok,
        f"on {last.target} after the swap: " + ", ".join(parts),
        {"target": last.target, "lbs": per_lb},
    )


def skew_within_bound(result: RunResult) -> Check:
    bound_ms = result.scenario.max_skew * 1000
    title = f"the skew between the LBs (first to last proving a step live) stays under {bound_ms:.0f} ms"
    windows = [
        {"swap": number, **window.to_dict()}
        for number, swap in enumerate(result.swaps, 1)
        if swap.report
        for window in swap.report.skew
    ]
    unmeasured = [
        number
        for number, swap in enumerate(result.swaps, 1)
        if swap.error is None and swap.report is not None and swap.report.confirmed_at and not swap.report.skew
    ]
    evidence = {"bound_ms": bound_ms, "windows": windows, "unmeasured_swaps": unmeasured}
    if not windows:
        return Check(
            "skew_within_bound",
            title,
            False,
            "no step was proven live on two LBs or more: no skew to measure",
            evidence,
        )
    worst = max(windows, key=lambda w: w["window_ms"])
    over = [w for w in windows if w["window_ms"] > bound_ms]
    ok = not over and not unmeasured
    summary = (
        f"widest {worst['window_ms']:.0f} ms (swap {worst['swap']} at {worst['percent']}% to {worst['slot']}, "
        f"{worst['lbs']} LBs) of {len(windows)} step(s); bound {bound_ms:.0f} ms"
    )
    if over:
        summary += f"; {len(over)} step(s) over the bound"
    if unmeasured:
        summary += f"; swap(s) {', '.join(map(str, unmeasured))} confirmed without a skew from the engine"
    return Check("skew_within_bound", title, ok, summary, evidence)


def lbs_end_on_one_slot(result: RunResult) -> Check:
    expected = live_after_run(result.swaps)
    title = "once the run is over, every LB serves the slot the run left live (its managed file and its answers)"
    states = result.end_states
    evidence: dict[str, Any] = {"expected": expected, "lbs": [s.to_dict() for s in states]}
    failed = next(((n, s) for n, s in enumerate(result.swaps, 1) if s.error is not None), None)
    undone = ""
    if failed is not None:
        number, swap = failed
        parts = []
        for index, lb in enumerate(lb_outcomes(swap.report, result.scenario.lbs)):
            if lb is None:
                parts.append(f"lb{index + 1} no outcome")
                continue
            did = "restored" if lb.restored else ("RESTORE FAILED" if lb.restore_failed else "unchanged")
            parts.append(f"lb{index + 1} {did}" + (f" ({lb.error.type})" if lb.error and did == "unchanged" else ""))
        undone = f"swap {number} to {swap.target} failed; " + ", ".join(parts) + "; "
        evidence["failed_swap"] = number
    if not states:
        return Check("lbs_end_on_one_slot", title, False, undone + "the LBs were not read after the run", evidence)
    wrong = [s for s in states if not s.on(expected)]
    answers = sum(sum(s.answered.values()) for s in states)
    if not wrong:
        summary = f"every LB on {expected} after the run: {len(states)} managed files and {answers} answers"
    else:
        summary = "; ".join(
            f"lb{s.index + 1} file {s.file_live or 'unreadable' + (f' ({s.error})' if s.error else '')}, "
            f"answers {s.answered}"
            for s in wrong
        )
        summary = f"expected {expected} on every LB: {summary}"
    return Check("lbs_end_on_one_slot", title, not wrong, undone + summary, evidence)
