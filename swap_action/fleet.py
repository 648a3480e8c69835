"""A swap across a fleet of load balancers: all of them, or none.

One ``Run`` per LB does the work through its phase methods; this module orders them in two
phases, so that no LB changes before every LB has said yes::

    prepare   locks, one LB after another in a fixed order (two fleet runs never deadlock), then
              on every LB at once: probe -> agree on the live slot -> render -> check (the gate
              and nginx -t of the whole config with the candidate in place, put back after)
    pre-switch hook
    commit    per canary step, on every LB at once: apply (nginx -t again, in place); then on every
              LB at once: reload + confirm; then verify through each LB; pause
    post-switch hook -> drain (every LB at once) -> post-drain hook

A failure in commit, verify or the post-switch hook restores every LB that was changed (each
restore confirmed on its LB) and fails the run. The skew of each step is the window between the
first and the last LB proving it live, by each LB's own clock (``Skew``).

The LBs' runs go on side by side in threads; what each tells its observer is kept and passed on
in LB order after each phase, so a GitHub log group never mixes two LBs.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from . import failpoints
from .errors import RestoreError, StateError, SwapError
from .host import LbHost
from .inputs import SwapOptions
from .outcome import DrainOutcome, ErrorInfo, LbOutcome, Outcome, Phase, Result, Skew, SwapReport
from .run import Run, hook_facts, hook_step
from .timeline import BufferedObserver, Observer, PlainObserver, Timeline


class FleetEngine:
    """Swaps, rolls back and plans on several load balancers as one (also one: ``Engine``'s path)."""

    def __init__(self, members: Sequence[tuple[str, LbHost]], observer: Observer | None = None) -> None:
        if not members:
            raise ValueError("a fleet needs at least one load balancer")
        self.members = list(members)
        self.observer = observer or PlainObserver()
        self.last_report: SwapReport | None = None

    def swap(self, options: SwapOptions) -> SwapReport:
        return self._run(options, rollback=False)

    def rollback(self, options: SwapOptions) -> SwapReport:
        return self._run(options, rollback=True)

    def plan(self, options: SwapOptions) -> SwapReport:
        return self._run(replace(options, dry_run=True), rollback=False)

    def _run(self, options: SwapOptions, *, rollback: bool) -> SwapReport:
        if len(self.members) == 1:
            name, host = self.members[0]
            run = Run(host, options, self.observer, rollback=rollback)
            self.last_report = run.report
            try:
                return run.execute()
            finally:
                run.report.lbs = [_lb_outcome(name, run)]
        fleet = Fleet(self.members, options, self.observer, rollback=rollback)
        self.last_report = fleet.report
        return fleet.execute()


class Fleet:
    def __init__(
        self, members: Sequence[tuple[str, LbHost]], options: SwapOptions, observer: Observer, *, rollback: bool
    ) -> None:
        self.options = options
        self.observer = observer
        self.timeline = Timeline(observer)  # the fleet's own steps: hooks, pauses
        self.report = SwapReport(started_at=self.timeline.started_at, dry_run=options.dry_run)
        self.buffers = [BufferedObserver() for _ in members]
        self.runs = [
            Run(host, options, buffer, rollback=rollback, lb=name)
            for (name, host), buffer in zip(members, self.buffers, strict=True)
        ]
        self.names = [name for name, _ in members]
        self.errors: dict[int, SwapError] = {}  # each LB's own error, by its index
        self.active: list[int] = []  # the LBs this swap changes (not those already on the target)
        self.switched = False
        self.target = ""
        self.rendered: dict[str, tuple[str, str]] = {}  # each active LB's candidate (text, generation)

    # -- the sequence ------------------------------------------------------------------------------
    def execute(self) -> SwapReport:
        error: SwapError | None = None
        try:
            self.prepare()
            if not self.active:
                return self.report
            if self.options.dry_run:
                return self.report
            self.commit()
            self.hook("post-switch")
            self.switched = True
            self.each(self.active, lambda run: run.drain())
            self.hook("post-drain")
        except SwapError as exc:
            error = exc
            if not self.switched and self.options.rollback_on_failure:
                failed = self.restore()
                if failed is not None:
                    error = failed  # the outcome names what needs a human
                    raise failed from exc
            raise
        except BaseException as exc:  # interrupted: never a success
            error = SwapError(
                f"interrupted ({type(exc).__name__})", "run the swap again: the next run settles a half-done one"
            )
            raise
        finally:
            self.release()
            self.finish(error)
        return self.report

    # -- phases ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Every LB says yes (locked, agreed, healthy, its candidate accepted) before any changes."""
        # One lock after another, in one order for every fleet run: two runs never hold one each.
        for index in sorted(range(len(self.runs)), key=lambda i: self.names[i]):
            self.each([index], lambda run: run.lock())
        everyone = list(range(len(self.runs)))
        self.each(everyone, lambda run: run.probe())
        self.agree()
        self.active = [index for index in everyone if not self._nothing_to_do(index)]
        if not self.active:
            self.observer.info(f"{self.target} is already live on every load balancer: nothing to change")
            return
        first = self.options.steps[0]
        self.rendered = self.each_value(self.active, functools.partial(Run.render, percent=first))
        if self.options.dry_run:
            self.each(self.active, lambda run: run.plan(*self.rendered[run.lb or ""], first))
            self.report.config_diff = "".join(self.runs[i].report.config_diff for i in self.active)
            return
        self.each(self.active, lambda run: run.check(*self.rendered[run.lb or ""], first))
        self.hook("pre-switch")

    def agree(self) -> None:
        """Every LB must serve the same live slot, unless ``to`` names the slot to make live."""
        states = [(self.names[i], run.state.live if run.state else None) for i, run in enumerate(self.runs)]
        targets = {run.target for run in self.runs}
        if len(targets) != 1 or len({live for _, live in states}) != 1:
            table = "; ".join(f"{name}: live {live or 'unknown'}" for name, live in states)
            if self.options.to == "auto" or len(targets) != 1:
                raise StateError(
                    f"the load balancers disagree on the live slot ({table})",
                    "pass to: blue or to: green: every LB then ends on that slot (those already on it are left "
                    "as they are); or swap the odd one alone first",
                )
            self.observer.info(f"the load balancers start from different slots ({table}); to: {self.options.to}")
        self.target = targets.pop()

    def commit(self) -> None:
        """Per canary step: every LB applies, reloads and confirms at once; then each is verified."""
        failpoints.reach("commit")
        steps = self.options.steps
        for index, percent in enumerate(steps):
            if index:
                self.rendered = self.each_value(self.active, functools.partial(Run.render, percent=percent))

            # Apply everywhere (nginx -t again, in place: the pre-switch hook may have taken minutes),
            # then reload everywhere: the skew between LBs is the reloads' alone.
            self.each(self.active, functools.partial(self._apply, percent=percent))
            self.each(self.active, functools.partial(self._reload, percent=percent))
            self.skew(percent)
            self.each(self.active, functools.partial(Run.verify, percent=percent))
            if self.options.step_pause and index < len(steps) - 1:
                with self.timeline.step(Phase.PAUSE, slot=self.target, percent=percent):
                    time.sleep(self.options.step_pause)
        for index in self.active:
            self.runs[index].record_diff()

    def _apply(self, run: Run, *, percent: int) -> None:
        text, generation = self.rendered[run.lb or ""]
        run.install(text, generation, percent, gate=False, reload=False)

    def _reload(self, run: Run, *, percent: int) -> None:
        run.reload_confirm(self.rendered[run.lb or ""][1], percent)

    def hook(self, name: str) -> None:
        command = self.options.hook_command(name)
        if not command:
            return
        lead = self.runs[self.active[0]]
        generation = self.rendered[lead.lb or ""][1]
        facts = hook_facts(self.options, name, self.names, lead, generation)
        hook_step(self.timeline, self.report, self.options, name, command, facts)

    def restore(self) -> SwapError | None:
        """Every LB this run changed gets its previous bytes back, confirmed; the first failure is
        returned (it needs a human), else None."""
        changed = [i for i in self.active if self.runs[i].applied]
        if not changed:
            return None
        self.observer.info(
            "restoring the previous config on " + ", ".join(self.names[i] for i in changed) + " (all or nothing)"
        )

        def restore(run: Run) -> None:
            if run._still_locked():
                try:
                    run.restore()
                except RestoreError:
                    run.restore_failed = True
                    raise

        failed = self.each(changed, restore, stop=False)
        return failed[0] if failed else None

    def skew(self, percent: int) -> None:
        """The window between the first and the last LB proving this step live (LB clocks)."""
        confirmed = [
            reload.confirmed_at
            for i in self.active
            for reload in self.runs[i].report.reloads[-1:]
            if reload.percent == percent and reload.confirmed_at is not None
        ]
        if len(confirmed) >= 2:
            window = Skew(self.target, percent, min(confirmed), max(confirmed), len(confirmed))
            self.report.skew.append(window)
            self.observer.info(
                f"skew at {percent}% to {self.target}: {window.window_ms:.0f} ms across {len(confirmed)} LBs"
            )

    def release(self) -> None:
        self.each(list(range(len(self.runs))), lambda run: run.release(), stop=False)

    def finish(self, error: SwapError | None) -> None:
        """Each LB's outcome from its own run, and the fleet's from theirs."""
        for index, run in enumerate(self.runs):
            run.finish(self.errors.get(index) or (error if index in self.active else None))
            self.buffers[index].flush(self.observer)
        lbs = [_lb_outcome(name, run) for name, run in zip(self.names, self.runs, strict=True)]
        outcomes = [run.report.outcome for run in self.runs]
        changed = any(outcome.changed for outcome in outcomes)
        restore_failed = any(outcome.restore_failed for outcome in outcomes)
        restored = any(outcome.restored for outcome in outcomes) and not restore_failed
        in_doubt = any(outcome.in_doubt for outcome in outcomes)
        actives = {outcome.active for outcome in outcomes}
        previous = {outcome.previous for outcome in outcomes}
        if error is not None:
            result = Result.RESTORED if restored and not changed and not in_doubt else Result.FAILED
        elif self.options.dry_run:
            result = Result.PLANNED if self.report.config_diff else Result.UNCHANGED
        else:
            result = Result.SWAPPED if changed else Result.UNCHANGED
        self.report.outcome = Outcome(
            result=result,
            changed=changed,
            active=actives.pop() if len(actives) == 1 else None,
            previous=previous.pop() if len(previous) == 1 else None,
            target=self.target or None,
            restored=restored and not changed,
            restore_failed=restore_failed,
            in_doubt=in_doubt,
            error=ErrorInfo.of(error) if error is not None else None,
        )
        self.report.lbs = lbs
        self.report.steps = sorted(
            [*self.timeline.steps, *(step for run in self.runs for step in run.report.steps)],
            key=lambda step: step.started_at,
        )
        self.report.reloads = sorted(
            (reload for run in self.runs for reload in run.report.reloads), key=lambda reload: reload.started_at
        )
        drains = [run.report.drain for run in self.runs if run.report.drain is not None]
        self.report.drain = _longest(drains)
        # The fleet's switch: the last LB proving it (none when it was restored everywhere).
        self.report.confirmed_at = max(
            (run.report.confirmed_at for run in self.runs if run.report.confirmed_at is not None and not run.restored),
            default=None,
        )
        if not self.report.config_diff:
            self.report.config_diff = "".join(run.report.config_diff for run in self.runs)
        stagings = {run.report.staging_slot for run in self.runs}
        self.report.staging_slot = stagings.pop() if len(stagings) == 1 else None
        self.report.duration_ms = self.timeline.elapsed_ms()

    # -- running on several LBs at once --------------------------------------------------------------
    def each(self, indexes: Sequence[int], work: Callable[[Run], object], *, stop: bool = True) -> list[SwapError]:
        """``work`` on each LB at once; their logs passed on in LB order. With ``stop``, the first
        error (in LB order) is raised, naming its LB; else this call's errors are returned."""
        return self._each(indexes, work, stop=stop)[1]

    def each_value(self, indexes: Sequence[int], work: Callable[[Run], tuple[str, str]]) -> dict[str, tuple[str, str]]:
        """``each`` for work that returns a candidate (text, generation): by LB."""
        values, _ = self._each(indexes, work, stop=True)
        return {self.names[i]: value for i, value in zip(indexes, values, strict=True)}  # type: ignore[misc]

    def _each(
        self, indexes: Sequence[int], work: Callable[[Run], object], *, stop: bool
    ) -> tuple[list[object], list[SwapError]]:
        errors: dict[int, SwapError] = {}

        def one(index: int) -> object:
            try:
                return work(self.runs[index])
            except SwapError as exc:
                errors[index] = exc
                self.errors.setdefault(index, exc)  # each LB's first error is its outcome's
                return None

        if len(indexes) == 1:
            values = [one(indexes[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(indexes), thread_name_prefix="lb") as pool:
                values = list(pool.map(one, indexes))
        for index in indexes:
            self.buffers[index].flush(self.observer)
        found = [errors[i] for i in indexes if i in errors]
        if stop and found:
            first = next(i for i in indexes if i in errors)
            raise _naming(self.names[first], errors[first])
        return values, found

    def _nothing_to_do(self, index: int) -> bool:
        values, _ = self._each([index], Run.nothing_to_do, stop=True)
        return bool(values[0])


def _naming(name: str, error: SwapError) -> SwapError:
    """The same error, its cause prefixed with the LB it happened on."""
    named = copy.copy(error)
    named.cause = f"{name}: {error.cause}"
    named.args = (named.cause,)
    return named


def _lb_outcome(name: str, run: Run) -> LbOutcome:
    outcome = run.report.outcome
    return LbOutcome(
        target=name,
        before=outcome.previous,
        after=outcome.active,
        changed=outcome.changed,
        restored=outcome.restored,
        restore_failed=outcome.restore_failed,
        in_doubt=outcome.in_doubt,
        config_path=run.config_path,
        duration_ms=run.report.duration_ms,
        confirmed_at=run.report.confirmed_at,
        drain=run.report.drain,
        error=outcome.error,
    )


def _longest(drains: list[DrainOutcome]) -> DrainOutcome | None:
    return max(drains, key=lambda drain: drain.duration_ms, default=None)
