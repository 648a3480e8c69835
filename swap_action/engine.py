"""The swap sequence, one step at a time, each timed and logged::

    lock -> read state -> health gate -> render -> nginx -t -> apply -> reload -> confirm live
         -> verify through the LB -> (next canary step ...) -> drain the old slot -> unlock

Any failure after the first apply puts the previous config back (rollback), reloads and confirms
it, then re-raises. A swap to the slot that is already live changes nothing and succeeds.
"""

from __future__ import annotations

import difflib
import os
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any

from .drain import DrainResult, drain
from .errors import (
    HealthCheckError,
    InputError,
    LockError,
    RollbackError,
    StateError,
    SwapError,
    TransportError,
    VerificationError,
)
from .inputs import Slots, SwapOptions, other
from .nginx import LoadBalancer, Probe, ReloadResult, candidate_error
from .timeline import Observer, PlainObserver, Step, Timeline
from .upstream import State, marker_socket, new_generation, parse_state, render, weights_for_step

LOCK_POLL_SECONDS = 0.5
LOCK_MARGIN_SECONDS = 300  # on top of the longest a run may take (pauses, confirmations, drain)
HEALTH_TIMEOUT_SECONDS = 5.0
VERIFY_REQUESTS = 5
VERIFY_TIMEOUT_SECONDS = 5.0


@dataclass
class SwapReport:
    changed: bool = False
    active_slot: str | None = None
    previous_slot: str | None = None
    target_slot: str | None = None
    duration_ms: float = 0.0
    config_diff: str = ""
    rolled_back: bool = False
    dry_run: bool = False
    started_at: float = 0.0
    confirmed_at: float | None = None  # unix time the final switch was confirmed live
    reloads: list[dict[str, Any]] = field(default_factory=list)
    drain: DrainResult | None = None
    steps: list[Step] = field(default_factory=list)
    error: SwapError | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "active_slot": self.active_slot,
            "previous_slot": self.previous_slot,
            "target_slot": self.target_slot,
            "duration_ms": round(self.duration_ms, 1),
            "rolled_back": self.rolled_back,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "confirmed_at": self.confirmed_at,
            "reloads": self.reloads,
            "drain": self.drain.to_dict() if self.drain else None,
            "steps": [step.to_dict() for step in self.steps],
            "error": None
            if self.error is None
            else {
                "type": type(self.error).__name__,
                "cause": self.error.cause,
                "fix": self.error.fix,
            },
            "config_diff": self.config_diff,
        }


def _owner() -> str:
    run = os.environ.get("GITHUB_RUN_ID")
    where = f"github-run-{run}" if run else f"{socket.gethostname()}-{os.getpid()}"
    return f"{where}-{time.time_ns()}"


class Engine:
    """Runs swaps against one load balancer."""

    def __init__(self, lb: LoadBalancer, observer: Observer | None = None) -> None:
        self.lb = lb
        self.observer = observer or PlainObserver()
        # The report of the last run, also when it raised (the error is in ``report.error``).
        self.last_report: SwapReport | None = None

    # -- public faces ---------------------------------------------------------------------
    def swap(self, options: SwapOptions) -> SwapReport:
        return self._run(options, rollback_mode=False)

    def rollback(self, options: SwapOptions) -> SwapReport:
        """Back to the slot that was live before the last swap."""
        return self._run(options, rollback_mode=True)

    def status(self, config_path: str) -> tuple[Probe, State | None]:
        probe = self.lb.probe(config_path)
        return probe, parse_state(probe.managed_file) if probe.managed_file else None

    def plan(self, options: SwapOptions) -> SwapReport:
        return self._run(replace(options, dry_run=True), rollback_mode=False)

    # -- the sequence ---------------------------------------------------------------------
    def _run(self, options: SwapOptions, *, rollback_mode: bool) -> SwapReport:
        timeline = Timeline(self.observer)
        report = SwapReport(started_at=timeline.started_at, dry_run=options.dry_run, steps=timeline.steps)
        self.last_report = report
        owner = _owner()
        lock_dir = f"{options.config_path}.lock"
        locked = False
        try:
            with timeline.step("lock + read live state") as step:
                probe_text = self._lock(options.config_path, lock_dir, owner, options.lock_timeout, _lock_ttl(options))
                locked = True
                probe = self.lb.parse_probe(probe_text)
                if not probe.has_curl:
                    raise TransportError(
                        f"curl is not installed on {self.lb.transport.description}",
                        "install curl on the LB host: health checks and the live confirmation run from there",
                    )
                state = parse_state(probe.managed_file) if probe.managed_file else None
                slots, target = self._resolve(options, state, rollback_mode)
                step.detail = f"live: {state.live if state else 'unknown (no managed file)'}; target: {target}"
            report.target_slot = target
            report.previous_slot = state.live if state else None
            report.active_slot = report.previous_slot
            if state and state.live == target and state.weights.get(target) == 100 and state.slots == slots:
                self.observer.info(f"{target} is already live with these servers: nothing to change")
                report.changed = False
                return report
            self._switch(timeline, options, probe, state, slots, target, report)
            return report
        except SwapError as exc:
            report.error = exc
            raise
        finally:
            if locked:
                try:
                    self.lb.script("lock.sh", "release", lock_dir, owner)
                except SwapError as exc:  # never hide the run's own outcome behind this
                    self.observer.warning(f"could not release the lock {lock_dir}: {exc.cause}")
            report.duration_ms = timeline.elapsed_ms()

    def _lock(self, config_path: str, lock_dir: str, owner: str, timeout: float, ttl: int) -> str:
        """Wait for the lock (two runs never interleave); with it, the live state."""
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            result, probe_text = self.lb.begin(config_path, lock_dir, owner, ttl)
            if probe_text is not None:
                if "recovered=restored" in result.stdout:
                    self.observer.warning(
                        f"a previous run died while applying; {config_path} was put back to the bytes Nginx serves"
                    )
                return probe_text
            if result.exit_code != 1:
                raise StateError(
                    f"cannot create the lock {lock_dir}: {result.output}", "check the config directory is writable"
                )
            if not announced:
                self.observer.info(f"waiting for the lock: {result.stdout.strip()}")
                announced = True
            if time.monotonic() >= deadline:
                raise LockError(
                    f"another swap holds the lock on this load balancer ({result.stdout.strip()})",
                    f"wait for it to finish; a run that died is taken over once its own deadline passes "
                    f"('left' above), or remove {lock_dir} if you are sure no swap runs",
                )
            time.sleep(LOCK_POLL_SECONDS)

    def _resolve(self, options: SwapOptions, state: State | None, rollback_mode: bool) -> tuple[Slots, str]:
        slots = options.slots
        if not slots.blue and not slots.green:
            if state is None or not (state.blue or state.green):
                raise InputError(
                    "blue", "no servers given and none recorded in the managed file", "pass blue and green"
                )
            slots = state.slots
        elif state is not None and not (slots.blue and slots.green):
            # Only one slot given: the other keeps the servers the managed file records.
            slots = Slots(blue=slots.blue or state.blue, green=slots.green or state.green)
        if rollback_mode:
            if state is None or state.previous is None:
                raise StateError(
                    "the managed file records no previous slot to go back to", "swap with an explicit 'to'"
                )
            target = state.previous
        elif options.to != "auto":
            target = options.to
        elif state is None or state.live is None:
            raise InputError(
                "to",
                "'auto' needs to know which slot is live, and the managed file does not say",
                "pass to: blue or to: green for the first swap",
            )
        else:
            target = other(state.live)
        if not slots.servers(target):
            # Without this the health gate passes on zero servers and every server renders 'down'.
            raise InputError(target, f"the target slot {target} has no servers", f"pass {target}: host:port,...")
        return slots, target

    def _prepare(
        self,
        timeline: Timeline,
        options: SwapOptions,
        slots: Slots,
        target: str,
        text: str,
        generation: str,
        *,
        label: str,
        gate: bool,
    ) -> None:
        """Stage and ``nginx -t`` the candidate; on the first step, gate on the target's health at the
        same time (before any traffic moves). Either failure leaves everything live as it was."""
        urls = [f"http://{server}{options.health_path}" for server in slots.servers(target)]
        urls = urls if gate and options.health_path else []
        name = f"health gate + nginx -t candidate ({label})" if urls else f"nginx -t candidate ({label})"
        with timeline.step(name) as step:
            prepared = self.lb.prepare(options.config_path, text, generation, urls, HEALTH_TIMEOUT_SECONDS)
            answers = prepared.health
            if urls:
                step.data["answers"] = [
                    {"url": a.url, "status": a.status, "ms": round(a.seconds * 1000, 1)} for a in answers
                ]
                step.detail = ", ".join(f"{a.url} {a.status or 'no answer'}" for a in answers)
            bad = [a for a in answers if not 200 <= a.status < 300]
            if urls and (bad or len(answers) != len(urls)):
                unhealthy = HealthCheckError(
                    f"{target} is not healthy: " + ", ".join(f"{a.url} answered {a.status or 'nothing'}" for a in bad),
                    f"fix or redeploy {target} before swapping; no traffic was moved",
                )
                if not options.dry_run:
                    self.lb.discard(options.config_path, generation)
                    raise unhealthy
                # A plan is often made before the new version is deployed: say so, change nothing.
                self.observer.warning(f"{unhealthy.cause} (a real swap would stop here)")
            if not prepared.test_ok or options.dry_run:
                self.lb.discard(options.config_path, generation)
            if not prepared.test_ok:
                raise candidate_error(prepared.test_output)

    def _switch(
        self,
        timeline: Timeline,
        options: SwapOptions,
        probe: Probe,
        state: State | None,
        slots: Slots,
        target: str,
        report: SwapReport,
    ) -> None:
        original = probe.managed_file
        old_slot = other(target)
        current = original or ""
        old_workers: set[int] = set()
        applied = False
        diffs: list[str] = []
        try:
            for index, percent in enumerate(options.steps):
                label = f"{percent}% to {target}"
                generation = new_generation()
                with timeline.step(f"render ({label})"):
                    text = render(
                        upstream=options.upstream,
                        slots=slots,
                        weights=weights_for_step(target, percent),
                        generation=generation,
                        previous=old_slot,
                        template=options.template,
                    )
                    diff = _diff(current, text, options.config_path)
                    diffs.append(diff)
                self._prepare(timeline, options, slots, target, text, generation, label=label, gate=index == 0)
                if options.dry_run:
                    report.config_diff = diff
                    report.changed = False
                    return
                with timeline.step(f"apply ({label})"):
                    self.lb.apply(options.config_path, text, generation, staged=True)
                    applied = True
                with timeline.step(f"reload + confirm ({label})") as step:
                    result = self.lb.reload_and_confirm(
                        generation,
                        marker_socket(options.upstream),
                        probe.error_log,
                        options.confirm_timeout,
                    )
                    old_workers.update(result.old_workers)
                    step.detail = _reload_detail(result)
                    step.data.update(vars(result))
                    report.reloads.append(
                        {"step": label, "generation": generation, "at": step.started_at, **vars(result)}
                    )
                report.active_slot = target if percent >= 50 else old_slot
                report.confirmed_at = (
                    (result.reload_at_ms + result.confirmed_ms) / 1000
                    if result.reload_at_ms is not None and result.confirmed_ms is not None
                    else time.time()
                )
                if options.verify_url:
                    with timeline.step(f"verify ({label})") as step:
                        step.detail = self._verify(options, final=percent == 100)
                current = text
                if options.step_pause and index < len(options.steps) - 1:
                    with timeline.step(f"pause ({label})"):
                        time.sleep(options.step_pause)
        except SwapError as exc:
            report.config_diff = "\n".join(diffs)
            if applied and options.rollback_on_failure:
                self._rollback(timeline, options, original, state, slots, report)
                exc.fix = (
                    exc.fix.rstrip(". ") + ". " if exc.fix else ""
                ) + f"The previous config was restored: {report.active_slot} is live."
            raise
        report.changed = True
        report.active_slot = target
        report.previous_slot = old_slot
        report.config_diff = _diff(original or "", text, options.config_path)
        with timeline.step(f"drain ({old_slot})") as step:
            report.drain = drain(
                self.lb,
                slots.servers(old_slot),
                old_workers,
                timeout=options.drain_timeout,
                policy=options.drain_policy,
                hook=options.drain_hook,
            )
            step.detail = report.drain.summary()
            if report.drain.outcome != "complete":
                self.observer.warning(report.drain.summary())

    def _verify(self, options: SwapOptions, *, final: bool) -> str:
        assert options.verify_url
        answers = self.lb.http("GET", [options.verify_url] * VERIFY_REQUESTS, VERIFY_TIMEOUT_SECONDS)
        expect = (options.verify_expect or "").strip()
        for answer in answers:
            if expect.isdigit() and len(expect) == 3:
                ok = answer.status == int(expect)
            else:
                ok = 200 <= answer.status < 400 and (not final or not expect or expect in answer.body)
            if not ok:
                seen = answer.body.strip().splitlines()[0][:120] if answer.body.strip() else ""
                raise VerificationError(
                    f"{options.verify_url} answered {answer.status or 'nothing'}"
                    + (f" with '{seen}'" if seen else "")
                    + (f", expected '{expect}'" if expect else ", expected a 2xx/3xx status"),
                    "the new slot does not serve what it should: check its deployment",
                )
        return f"{len(answers)} x {options.verify_url}: {', '.join(str(a.status) for a in answers)}"

    def _rollback(
        self,
        timeline: Timeline,
        options: SwapOptions,
        original: str | None,
        state: State | None,
        slots: Slots,
        report: SwapReport,
    ) -> None:
        with timeline.step("rollback") as step:
            try:
                if original is None:
                    raise RollbackError(
                        f"there was no {options.config_path} before this swap to go back to",
                        "write the upstream file by hand and reload nginx",
                    )
                # The original bytes go back exactly; their own marker proves they are live again.
                text = original
                if state is not None and state.generation != "unknown" and state.generation in original:
                    generation, socket_path = state.generation, marker_socket(options.upstream)
                else:
                    generation, socket_path = new_generation(), "-"
                self.lb.apply(options.config_path, text, generation)
                self.lb.reload_and_confirm(generation, socket_path, "-", options.confirm_timeout)
            except SwapError as exc:
                raise RollbackError(
                    f"rollback failed too: {exc.cause}",
                    f"restore {options.config_path}.previous by hand and reload nginx. {exc.fix}",
                ) from exc
            report.rolled_back = True
            report.active_slot = state.live if state else None
            step.detail = f"{report.active_slot} is live again"


def _lock_ttl(options: SwapOptions) -> int:
    """The longest this run may hold the lock: every step's pause and confirmation, the drain, a margin."""
    steps = len(options.steps)
    worst = (
        steps * (options.confirm_timeout + VERIFY_TIMEOUT_SECONDS * VERIFY_REQUESTS) + (steps - 1) * options.step_pause
    )
    return int(worst + options.drain_timeout + LOCK_MARGIN_SECONDS)


def _diff(old: str, new: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (live)",
            tofile=f"{path} (new)",
        )
    )


def _reload_detail(result: ReloadResult) -> str:
    return (
        f"reload signal {result.reload_ms} ms, new workers +{result.new_workers_ms} ms, "
        f"old workers stopped accepting +{result.old_stopped_ms} ms, marker +{result.marker_ms} ms"
    )
