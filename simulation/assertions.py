"""What a correct swap means, checked against the records, each with its evidence.

``FAILED_REQUEST`` is the definition of a failed request the pass/fail uses; the report shows
it as the description of ``zero_failed_requests`` (a constant: no docstring is parsed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from swap_action.inputs import other
from swap_action.outcome import Phase

from .records import RequestRecord, WebSocketRecord

if TYPE_CHECKING:
    from .scenario import RunResult, SwapRun

FAILED_REQUEST = (
    "Failed request (the definition the pass/fail uses): a request whose final outcome under its "
    "client model is a transport error, no response, a status >= 500, or a body that ended early. "
    "The models counted for pass/fail are keepalive (real-client behaviour: one retry of an "
    "idempotent request whose reused connection the server closed, RFC 9112 section 9.3.1) and "
    "fresh (a new connection per request). The strict count (every error on a reused connection, "
    "before any retry) is reported beside it: it is not zero with Nginx, whose old workers close "
    "idle keep-alive connections at a reload, and a client that retries nothing would see those errors. "
    "Long requests count too (one cut mid-body or failed is a failed request), and WebSocket exchanges: a "
    "WebSocket that could not open, or lost an echo on a connection that was not cut (a cut is judged by "
    "websockets_drained). The steady load is open loop unless the run says closed: requests are due at the "
    "asked rate whatever the responses do, and latency counts from when each was due."
)
WS_MAX_GAP_S = 1.0
EXAMPLES = 5
LOAD_HELD_SHARE = 0.95  # of the asked rate, over the swap window
GENERATOR_LAG_S = 0.05  # requests leaving this late (median) with connections free: the generator is the limit


@dataclass
class Check:
    """One assertion's verdict. ``evidence`` is for people and junit (shown as JSON, never read back);
    ``description`` says what the assertion's terms mean (set from a constant). ``warning``: it did
    not hold, and the scenario asked for that to be a warning (``--allow-saturation``)."""

    name: str
    title: str
    passed: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    warning: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "passed": self.passed,
            "summary": self.summary,
            "description": self.description,
            "evidence": self.evidence,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class FailedRequests:
    """The steady requests by client model, and those that failed (pass/fail) or the strict count;
    beside them the long requests cut or failed, and the WebSocket exchanges broken."""

    total: int
    keepalive_total: int
    fresh_total: int
    keepalive: list[RequestRecord]
    fresh: list[RequestRecord]
    strict: list[RequestRecord]
    long_total: int = 0
    long: list[RequestRecord] = field(default_factory=list)
    websockets_total: int = 0
    websockets: list[WebSocketRecord] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """The steady load's failed requests (pass/fail models)."""
        return len(self.keepalive) + len(self.fresh)

    @property
    def all_failed(self) -> int:
        """The headline figure: steady, long and WebSocket, every kind together."""
        return self.failed + len(self.long) + len(self.websockets)


def broken_websockets(records: list[WebSocketRecord]) -> list[WebSocketRecord]:
    """WebSocket connections that could not open, or lost an echo while not cut (a cut, 1006, is
    websockets_drained's to judge; one echo may still be in flight when a close frame arrives)."""
    return [
        w
        for w in records
        if (w.slot is None and w.error is not None) or (w.close_code != 1006 and w.echoes_sent - w.echoes_ok > 1)
    ]


def failed_requests(requests: list[RequestRecord], websockets: list[WebSocketRecord] | None = None) -> FailedRequests:
    steady = [r for r in requests if r.kind == "steady"]
    keepalive = [r for r in steady if r.model == "keepalive"]
    fresh = [r for r in steady if r.model == "fresh"]
    long = [r for r in requests if r.kind == "long"]
    return FailedRequests(
        total=len(steady),
        keepalive_total=len(keepalive),
        fresh_total=len(fresh),
        keepalive=[r for r in keepalive if r.failed],
        fresh=[r for r in fresh if r.failed],
        strict=[r for r in keepalive if r.strict_error is not None or r.failed],
        long_total=len(long),
        long=[r for r in long if r.failed],
        websockets_total=len(websockets or []),
        websockets=broken_websockets(websockets or []),
    )


def evaluate(result: RunResult) -> list[Check]:
    """Every assertion; a fleet's (``fleet_checks``) and the staging route's (``staging``) only when
    the scenario has them."""
    checks = [
        swaps_completed(result),
        load_held(result),
        zero_failed_requests(result),
        in_flight_completed_on_old(result),
        no_new_requests_on_old(result),
        websockets_drained(result),
        drain_finished(result),
        client_libraries(result),
        traffic_on_new_slot(result),
    ]
    if result.scenario.lbs > 1:
        from .fleet_checks import fleet_checks

        checks += fleet_checks(result)
    if result.scenario.staging_check:
        from .staging import staging_idle

        checks.append(staging_idle(result))
    return checks


def failure_kind(record: RequestRecord) -> str:
    """What a failed request ran into, in a few words: the error's class, or its status and who answered."""
    prefix = "long request: " if record.kind == "long" else ""
    if record.error:
        # A client library's error keeps its cause ('TypeError: UND_ERR_SOCKET'), the rest their class.
        return prefix + ":".join(record.error.split(":", 2)[: 2 if record.kind == "client" else 1]).strip()
    if record.status >= 500 or not record.status:
        answered = record.slot or record.upstream or "the LB itself"
        return prefix + (f"HTTP {record.status} from {answered}" if record.status else "no response")
    return prefix + "body ended early"


def failure_kinds(records: list[RequestRecord]) -> str:
    """``HTTP 502 from bluegreen_upstream x340, ServerDisconnectedError x37``: most common first."""
    return ", ".join(f"{kind} x{count}" for kind, count in Counter(map(failure_kind, records)).most_common(4))


def _examples(records: list[RequestRecord]) -> list[dict[str, Any]]:
    return [
        {
            "start": r.start,
            "status": r.status,
            "slot": r.slot,
            "model": r.model,
            "kind": r.kind,
            "error": r.error or r.strict_error,
        }
        for r in records[:EXAMPLES]
    ]


def swaps_completed(result: RunResult) -> Check:
    failed = [s for s in result.swaps if s.error]
    ok = bool(result.swaps) and not failed and all(s.report and s.report.confirmed_at for s in result.swaps)
    return Check(
        "swaps_completed",
        "every swap completed and was confirmed live",
        ok,
        f"{len(result.swaps) - len(failed)}/{len(result.swaps)} swaps confirmed"
        + (f"; failed: {failed[0].error.text()}" if failed and failed[0].error else ""),
        {
            "swaps": [
                {
                    "target": s.target,
                    "error": s.error.text() if s.error else None,
                    "confirmed_at": s.report.confirmed_at if s.report else None,
                }
                for s in result.swaps
            ]
        },
    )


def zero_failed_requests(result: RunResult) -> Check:
    counts = failed_requests(result.requests, result.websockets)
    failed = counts.keepalive + counts.fresh + counts.long
    return Check(
        "zero_failed_requests",
        "zero failed requests (keep-alive clients with one retry, fresh connections, long requests, "
        "WebSocket exchanges)",
        counts.all_failed == 0 and counts.total > 0,
        f"{counts.all_failed} failed: steady {counts.failed} of {counts.total} (keep-alive "
        f"{len(counts.keepalive)}/{counts.keepalive_total}, fresh {len(counts.fresh)}/{counts.fresh_total}), "
        f"long {len(counts.long)}/{counts.long_total}, WebSocket {len(counts.websockets)}/{counts.websockets_total}; "
        f"strict count {len(counts.strict)}"
        + (f"; what failed: {failure_kinds(failed)}" if failed else "")
        + (
            f"; WebSockets broken: {', '.join(_broken(w) for w in counts.websockets[:EXAMPLES])}"
            if counts.websockets
            else ""
        ),
        {
            "requests": counts.total,
            "failed": counts.failed,
            "failed_keepalive": len(counts.keepalive),
            "failed_fresh": len(counts.fresh),
            "failed_long": len(counts.long),
            "broken_websockets": len(counts.websockets),
            "strict_failed": len(counts.strict),
            "examples": _examples(failed),
            "strict_examples": _examples(counts.strict),
        },
        FAILED_REQUEST,
    )


def _broken(record: WebSocketRecord) -> str:
    if record.slot is None and record.error is not None:
        return f"#{record.id} did not open ({record.error[:80]})"
    return f"#{record.id} on {record.slot}: {record.echoes_sent - record.echoes_ok} echoes unanswered"


def swap_window(result: RunResult) -> tuple[float, float]:
    """From the first swap's start to the last one's end; the whole traffic when no swap ran."""
    if result.swaps:
        return result.swaps[0].started_at, max(result.swaps[-1].ended_at, result.swaps[0].started_at + 1.0)
    return result.traffic_started_at, result.traffic_ended_at


def per_second(result: RunResult) -> list[int]:
    """Steady requests sent in each second of the run (by when they went out)."""
    start, end = result.traffic_started_at, result.traffic_ended_at
    counts = [0] * max(1, int(end - start) + 1)
    for r in result.requests:
        if r.kind == "steady" and start <= r.start <= end:
            counts[int(r.start - start)] += 1
    return counts


def load_held(result: RunResult) -> Check:
    """The asked rate was held over the swap window, or the report says where the limit was."""
    asked = result.scenario.rate
    start, end = swap_window(result)
    sent = [r for r in result.requests if r.kind == "steady" and start <= r.start < end]
    held = len(sent) / max(end - start, 1e-9)
    share = held / asked if asked else 1.0
    ok = share >= LOAD_HELD_SHARE
    summary = (
        f"{held:.0f} of {asked:.0f} req/s asked ({100 * share:.1f}%) over the swap window "
        f"({end - start:.1f} s; {result.scenario.arrivals} arrivals, {result.generator_processes} generator "
        f"process{'es' if result.generator_processes > 1 else ''})"
    )
    cause = "" if ok else _saturation_cause(result, sent)
    warning = not ok and result.scenario.allow_saturation
    if cause:
        summary += f"; held less than {100 * LOAD_HELD_SHARE:.0f}%: {cause}"
    if warning:
        summary = "warning (--allow-saturation): " + summary
    return Check(
        "load_held",
        f"the steady load held at least {100 * LOAD_HELD_SHARE:.0f}% of the asked rate over the swap window",
        ok or warning,
        summary,
        {
            "asked_rps": asked,
            "held_rps": round(held, 1),
            "window_s": [start, end],
            "per_second": per_second(result),
            "cause": cause,
        },
        warning=warning,
    )


def _saturation_cause(result: RunResult, sent: list[RequestRecord]) -> str:
    """Where the limit was: the system under test (latency and errors up, every connection busy)
    or the load generator (requests leaving late while connections were free)."""
    if result.scenario.arrivals == "closed":
        return (
            "closed loop: each client waits for its response, so a slow system under test lowers the rate by "
            "itself; run open loop (--arrivals constant) to see by how much"
        )
    waited = [r for r in sent if r.waited]
    failed = [r for r in sent if r.failed]
    p99 = _percentile([r.latency_s for r in sent], 0.99) * 1000
    if waited or len(failed) > 0.01 * max(1, len(sent)):
        return (
            f"the system under test: {len(waited)} requests waited for a connection (all of them busy, up to "
            f"the bound), {len(failed)} failed, latency p99 {p99:.0f} ms from when they were due; it answers "
            "slower than the rate asked (lower --rate to find what it holds)"
        )
    free = [r.start - r.intended for r in sent if r.intended and not r.waited]
    lag = _percentile(free, 0.5)
    if lag >= GENERATOR_LAG_S or not sent:
        return (
            f"the load generator's CPU: requests left a median of {1000 * lag:.0f} ms after they were due while "
            f"connections were free ({result.generator_processes} generator process(es)); raise --processes, "
            "run on a bigger machine, or lower --rate"
        )
    return (
        f"neither the generator (requests left {1000 * lag:.0f} ms late, median) nor the system under test "
        f"(no request waited for a connection, latency p99 {p99:.0f} ms) shows a limit; the window may be too "
        "short for the rate (more --swaps or a longer drain give a longer one)"
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def client_matrix(result: RunResult) -> dict[str, dict[str, Any]]:
    """Per real client library: requests, failed, what failed, and failed per swap (index 0: before
    the first swap; i: from swap i's start to the next one's)."""
    starts = [s.started_at for s in result.swaps]
    matrix: dict[str, dict[str, Any]] = {}
    kinds = dict.fromkeys(result.scenario.client_kinds + result.scenario.require_zero)
    for kind in kinds:
        records = [r for r in result.requests if r.kind == "client" and r.model == kind]
        failed = [r for r in records if r.failed]
        per_swap = [0] * (len(starts) + 1)
        for r in failed:
            per_swap[sum(1 for start in starts if start <= r.start)] += 1
        matrix[kind] = {
            "requests": len(records),
            "failed": len(failed),
            "per_swap": per_swap,
            "what_failed": dict(Counter(map(failure_kind, failed)).most_common(4)),
            "skipped": result.skipped_clients.get(kind),
        }
    return matrix


def client_libraries(result: RunResult) -> Check:
    """The client libraries the run requires (``--require-zero``) saw no failed request."""
    matrix = client_matrix(result)
    title = "the client libraries required to see zero failures saw none (the others are reported)"
    if not matrix:
        return Check("client_libraries", title, True, "not exercised (no client library ran)", {})
    required = set(result.scenario.require_zero)
    bad = [k for k in required if matrix[k]["skipped"] or matrix[k]["failed"] or not matrix[k]["requests"]]
    parts = []
    for kind, row in matrix.items():
        if row["skipped"]:
            parts.append(f"{kind} {row['skipped']}")
            continue
        mark = " (required)" if kind in required else ""
        what = f" [{', '.join(f'{k} x{n}' for k, n in row['what_failed'].items())}]" if row["failed"] else ""
        parts.append(f"{kind}{mark} {row['failed']}/{row['requests']} failed{what}")
    return Check(
        "client_libraries",
        title,
        not bad,
        "; ".join(parts) + (f"; required to see zero: {', '.join(sorted(required))}" if required else ""),
        {"matrix": matrix, "required": sorted(required)},
    )


def _first_confirm(result: RunResult) -> tuple[SwapRun | None, float | None]:
    for swap in result.swaps:
        if swap.report and swap.report.confirmed_at:
            return swap, swap.report.confirmed_at
    return None, None


def in_flight_completed_on_old(result: RunResult) -> Check:
    long = [r for r in result.requests if r.kind == "long"]
    swap, confirmed = _first_confirm(result)
    if not long:
        return Check(
            "in_flight_completed_on_old",
            "requests in flight at the switch complete on the old slot",
            True,
            "not exercised (no long requests)",
            {},
        )
    old = other(swap.target) if swap else "blue"
    spanning = [r for r in long if confirmed is not None and r.start < confirmed < r.end]
    early = [r for r in long if confirmed is not None and r.end <= confirmed]
    bad = [r for r in long if r.failed or r.slot != old]
    ok = not bad and confirmed is not None and len(spanning) == len(long)
    return Check(
        "in_flight_completed_on_old",
        "requests in flight at the switch complete on the old slot with full bodies",
        ok,
        f"{len(long) - len(bad)}/{len(long)} long requests completed on {old} with full bodies; "
        f"{len(spanning)} spanned the switch"
        + (f"; {too_fast_hint(early, confirmed)}" if early and confirmed is not None else ""),
        {
            "long_requests": len(long),
            "completed_on_old": len(long) - len(bad),
            "spanning_switch": len(spanning),
            "durations_s": [round(r.end - r.start, 2) for r in long],
            "bytes": [r.nbytes for r in long],
            "failures": [{"slot": r.slot, "status": r.status, "complete": r.complete, "error": r.error} for r in bad],
        },
    )


def too_fast_hint(early: list[RequestRecord], confirmed: float) -> str:
    """Why long requests did not span the switch: they were over before it."""
    longest = max(r.end - r.start for r in early)
    return (
        f"{len(early)} ended before the switch was confirmed (the longest lasted {longest:.2f} s): "
        "set --long-path to an endpoint slower than the swap (a few seconds), or --long-path none"
    )


def websocket_fix(result: RunResult, swap: SwapRun | None, problems: list[str], cut: int) -> str:
    """What to change when WebSockets on the old slot were not drained as the scenario expects."""
    scenario = result.scenario
    drain = swap.report.drain if swap and swap.report else None
    if scenario.hook_closes_websockets and cut:
        answered = ", ".join(str(status) for _url, status in drain.hook) if drain and drain.hook else "nothing"
        return (
            f"{cut} WebSocket(s) were cut at the drain deadline (1006, no close frame): the drain hook "
            f"'{scenario.drain_hook}' (it answered {answered}) did not make the app close them with 1001. "
            "If the app has no drain hook, run with --drain-hook none --drain-policy cut (they are then cut "
            "at the deadline by design and clients reconnect to the new slot); otherwise set --drain-hook to "
            "the app's endpoint that closes its WebSockets with 1001"
        )
    if not scenario.hook_closes_websockets and any("after the drain deadline" in p for p in problems):
        return (
            "the app has no drain hook, so its WebSockets stay open until the drain deadline, and "
            f"--drain-policy {scenario.drain_policy} leaves them there: set --drain-hook '[METHOD] /path' (the "
            "app's endpoint that closes them with 1001) or --drain-policy cut"
        )
    return ""


def _windows(result: RunResult) -> list[tuple[str, float, float]]:
    """(slot that must serve, from, to): from each confirmed switch to the next swap's start."""
    windows = []
    for index, swap in enumerate(result.swaps):
        if not swap.report or not swap.report.confirmed_at:
            continue
        end = result.swaps[index + 1].started_at if index + 1 < len(result.swaps) else result.traffic_ended_at + 3600
        windows.append((swap.target, swap.report.confirmed_at, end))
    return windows


def no_new_requests_on_old(result: RunResult) -> Check:
    """With keepalive_min_timeout (Nginx >= 1.27.4) the old workers answer, through the old config,
    a request on a keep-alive connection they already had, for that long after the switch: such a
    request is allowed (and counted); a new connection, or a later request, never."""
    keepalive_min = result.lb.keepalive_min_s if result.lb else 0.0
    checked = 0
    wrong: list[tuple[RequestRecord, float]] = []
    allowed = 0
    for slot, start, end in _windows(result):
        for r in result.requests:
            if r.kind == "steady" and start <= r.start < end and r.slot is not None:
                checked += 1
                if r.slot == slot:
                    continue
                if r.model == "keepalive" and r.start - start <= keepalive_min:
                    allowed += 1
                else:
                    wrong.append((r, r.start - start))
    ok = checked > 0 and not wrong
    late = max((after for _r, after in wrong), default=0.0)
    grace = (
        f"; {allowed} on reused keep-alive connections within keepalive_min_timeout ({keepalive_min * 1000:.0f} ms) "
        "of the switch, answered by the old workers as Nginx allows"
        if keepalive_min
        else ""
    )
    return Check(
        "no_new_requests_on_old",
        "once the switch is confirmed, no new request lands on the old slot",
        ok,
        f"{len(wrong)} of {checked} requests sent after the confirmed switch went to the old slot"
        + (f" (latest {late * 1000:.0f} ms after its switch)" if wrong else "")
        + grace,
        {
            "checked": checked,
            "on_old_slot": len(wrong),
            "allowed_keepalive_min": allowed,
            "keepalive_min_s": keepalive_min,
            "examples": _examples([r for r, _after in wrong]),
        },
    )


def websockets_drained(result: RunResult) -> Check:
    scenario = result.scenario
    swap, confirmed = _first_confirm(result)
    if not scenario.ws_path or scenario.websockets == 0:
        return Check("websockets_drained", "WebSockets drained cleanly", True, "not exercised (no WebSockets)", {})
    old = other(swap.target) if swap else "blue"
    first = [w for w in result.websockets if w.attempt == 1]
    on_old = websockets_on_old(result)
    graceful = scenario.hook_closes_websockets  # else they stay open until the deadline ends them
    drain_start = _drain_start(swap)
    deadline = drain_start + scenario.drain_timeout if drain_start else None
    problems: list[str] = []
    for w in on_old:
        label = f"ws#{w.id}"
        if confirmed is not None and (w.closed_at or 0) < confirmed:
            problems.append(f"{label} closed before the switch ({w.close_code})")
        if w.max_gap_s > WS_MAX_GAP_S:
            problems.append(f"{label} went silent for {w.max_gap_s:.2f}s")
        if graceful and (w.close_code != 1001 or w.closed_by != "server"):
            problems.append(
                f"{label} ended with {w.close_code} ({'cut: no close frame' if w.close_code == 1006 else w.closed_by}), expected 1001"
            )
        if scenario.ws_echo and w.echoes_sent and not w.echoes_ok:
            problems.append(f"{label} sent {w.echoes_sent} echo messages and got none back")
        if deadline and w.closed_at and w.closed_at > deadline + 0.5:
            problems.append(f"{label} closed {w.closed_at - deadline:.1f}s after the drain deadline")
    reconnected = [w for w in result.websockets if w.attempt > 1]
    ok = len(on_old) == len(first) and len(first) > 0 and not problems
    codes = Counter(str(w.close_code) for w in on_old)
    fix = "" if ok else websocket_fix(result, swap, problems, codes.get("1006", 0))
    return Check(
        "websockets_drained",
        "WebSockets on the old slot stay open through the switch, then close with 1001 before the deadline"
        if graceful
        else "WebSockets on the old slot stay open through the switch until the deadline cuts them",
        ok,
        f"{len(on_old)}/{len(first)} WebSockets opened on {old}; close codes {dict(codes)}; "
        f"max silence {max((w.max_gap_s for w in on_old), default=0):.2f}s; {len(reconnected)} reconnected"
        + (f"; problems: {'; '.join(problems[:3])}" if problems else "")
        + (f". {fix}" if fix else ""),
        {
            "fix": fix,
            "opened": len(first),
            "on_old": len(on_old),
            "close_codes": dict(codes),
            "problems": problems,
            "reconnected": len(reconnected),
            "reconnected_slots": dict(Counter(str(w.slot) for w in reconnected)),
            "ticks": [w.ticks for w in on_old],
            "pongs": [w.pongs for w in on_old],
            "echoes": [f"{w.echoes_ok}/{w.echoes_sent}" for w in on_old],
            "held_s": [round((w.closed_at or 0) - w.opened_at, 2) for w in on_old],
            "policy": scenario.drain_policy,
            "hook_closes_websockets": graceful,
        },
    )


def websockets_on_old(result: RunResult) -> list[WebSocketRecord]:
    """The WebSockets opened before the first confirmed switch on the slot it left."""
    swap, _confirmed = _first_confirm(result)
    old = other(swap.target) if swap else "blue"
    return [w for w in result.websockets if w.attempt == 1 and w.slot == old]


def _drain_start(swap: SwapRun | None) -> float | None:
    if swap and swap.report:
        for step in swap.report.steps:
            if step.phase == Phase.DRAIN:
                return step.started_at
    return None


def drain_finished(result: RunResult) -> Check:
    timeout = result.scenario.drain_timeout
    drains = [s.report.drain for s in result.swaps if s.report and s.report.drain]
    shutting = [w for w in result.lb_workers_after if "shutting down" in w]
    complete = [d for d in drains if d.outcome == "complete" and d.duration_ms <= timeout * 1000]
    # Without a hook, what is left at the deadline is cut by design; with one, the drain must complete.
    allowed_cut = result.scenario.drain_policy == "cut" and not result.scenario.hook_closes_websockets
    hook_failures = [failure for d in drains for failure in d.hook_failures]
    ok = (
        not hook_failures
        and bool(drains)
        and len(drains) == len(result.swaps)
        and not shutting
        and (len(complete) == len(drains) or (allowed_cut and all(d.outcome in ("complete", "cut") for d in drains)))
    )
    return Check(
        "drain_finished",
        "connections to the old slot reach zero and old Nginx workers exit within the drain timeout",
        ok,
        "".join(
            f"the drain hook {url} got {f'HTTP {status}' if status else 'no HTTP answer'}; "
            for url, status in hook_failures
        )
        + "; ".join(d.summary() for d in drains)
        + (f"; {len(shutting)} old worker(s) still running after the run" if shutting else "")
        if drains
        else "no drain was observed (the swap did not reach it)",
        {"drains": [d.to_dict() for d in drains], "timeout_s": timeout, "workers_after": result.lb_workers_after},
    )


def traffic_on_new_slot(result: RunResult) -> Check:
    if not result.swaps or not result.swaps[-1].report or not result.swaps[-1].report.confirmed_at:
        return Check(
            "traffic_on_new_slot", "after the swap, 100% of traffic is on the new slot", False, "no confirmed swap", {}
        )
    last = result.swaps[-1]
    after = [r for r in result.requests if r.kind == "steady" and r.start >= last.ended_at]
    slots = Counter(str(r.slot) for r in after)
    ok = len(after) > 0 and slots.get(last.target, 0) == len(after)
    share = 100.0 * slots.get(last.target, 0) / len(after) if after else 0.0
    return Check(
        "traffic_on_new_slot",
        "after the swap, 100% of traffic is on the new slot",
        ok,
        f"{share:.1f}% of {len(after)} requests after the swap on {last.target} ({dict(slots)})",
        {"requests_after": len(after), "by_slot": dict(slots)},
    )
