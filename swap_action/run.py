"""One swap run: the deploy sequence as small phase methods, in the order they run::

    lock -> probe -> (per canary step: render -> gate + test + apply -> reload-confirm -> verify
         -> pause) -> post-switch hook -> drain -> post-drain hook
                                                  ... and on a failure after an apply: restore

With a pre-switch hook, the first step's gate and test come first, in place and changing nothing
(``check``), then the hook, then the apply. A fleet of load balancers (``fleet.Fleet``) drives
one ``Run`` per LB through the same phase methods, in two phases (prepare, then commit).

Each phase records a ``Step`` (phase, slot, percent). The outcome is computed once, in
``finish``, from what is live at the end, on every path (done, nothing to do, refused, failed and
restored, failed and not restored).
"""

from __future__ import annotations

import difflib
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from . import adopt, failpoints, hooks, keepalive, preflight
from . import drain as drain_phase
from .errors import (
    ConfigTestError,
    HealthCheckError,
    InputError,
    LockError,
    ReloadError,
    RestoreError,
    StateError,
    SwapError,
    TransportError,
    VerificationError,
)
from .host import HttpAnswer, Installed, LbHost, Probe, ReloadRequest, ReloadResult
from .inputs import Slots, SwapOptions, other
from .lease import LEASE_SECONDS, Lease, lock_dir_for
from .nginx import candidate_error, emerg_line, hint_for
from .nginxconf import Config
from .outcome import ErrorInfo, Outcome, Phase, Reload, Result, Step, SwapReport
from .timeline import Observer, Timeline
from .upstream import State, marker_address, new_generation, parse_state, render, weights_for_step

LOCK_POLL_SECONDS = 0.5
HEALTH_TIMEOUT_SECONDS = 5.0
VERIFY_REQUESTS = 5
VERIFY_TIMEOUT_SECONDS = 5.0
# Gate, test and apply are one round trip to the LB: their steps carry its one duration and say so.
SHARED_TRIP = {"round_trip": "gate + test + apply"}
CHECK_TRIP = {"round_trip": "gate + test (in place, put back)"}


class Run:
    def __init__(
        self, host: LbHost, options: SwapOptions, observer: Observer, *, rollback: bool = False, lb: str | None = None
    ) -> None:
        self.host = host
        self.options = options
        self.observer = observer
        self.rollback_mode = rollback
        self.lb = lb  # in a fleet: this LB's target, as given (steps and reloads carry it)
        self.timeline = Timeline(observer, lb=lb)
        self.report = SwapReport(started_at=self.timeline.started_at, dry_run=options.dry_run)
        self.report.steps = self.timeline.steps
        self.owner = _owner()
        self.config_path = options.config_path  # None: discovered from the running config
        self.nginx: Config | None = None  # nginx -T, as read with the lock
        self.switched_monotonic = time.monotonic()  # when the runner last got a reload's proof
        self.proof_pending = False  # the file's own marker was asked; install checks it proves the file
        self.locked = False
        self.lease: Lease | None = None  # renewed from its own thread while the lock is held
        self.probe_result: Probe | None = None
        self.state: State | None = None
        self.slots = options.slots
        self.target = ""
        self.original: str | None = None  # the managed file's bytes before this run
        self.current = ""  # what the managed file holds now, as this run knows it
        self.rendered = ""  # the last candidate rendered
        self.applied = False  # a candidate of this run replaced the live file
        self.signalled_percent: int | None = None  # the target's share in the last reloaded config
        self.restored = False
        self.switched = False
        self.restore_failed = False
        self.in_doubt = False  # a changing round trip broke: the LB may have done it (it finishes alone)
        self.early_gate: tuple[str, tuple[str, ...]] | None = None  # (id, URLs) begin started checking
        self.old_workers: set[int] = set()
        self.staging_upstream: str | None = None  # the staging upstream the last candidate defines
        self.served_unknown = False  # Nginx served another generation than the file's (a run died before its reload)

    @property
    def path(self) -> str:
        """The managed file (given, or discovered before the lock)."""
        assert self.config_path is not None
        return self.config_path

    @property
    def lock_dir(self) -> str:
        return lock_dir_for(self.path)

    # -- the sequence ------------------------------------------------------------------------------
    def execute(self) -> SwapReport:
        error: SwapError | None = None
        try:
            self.lock()
            self.probe()
            if self.nothing_to_do():
                return self.report
            for index, percent in enumerate(self.options.steps):
                text, generation = self.render(percent)
                if self.options.dry_run:
                    self.plan(text, generation, percent)
                    return self.report
                gate = index == 0
                if gate and self.options.pre_switch:
                    self.check(text, generation, percent)  # the gate and nginx -t before the hook
                    self.hook("pre-switch", generation)
                    gate = False
                reloaded = self.install(text, generation, percent, gate=gate)
                self.reload_confirm(generation, percent, reloaded)
                self.verify(percent)
                self.pause(index, percent)
            self.record_diff()
            self.hook("post-switch", generation)
            self.switched = True  # verified: a failure from here on (the drain) never undoes the swap
            self.drain()
            self.hook("post-drain", generation)
        except SwapError as exc:
            error = exc
            if not self.switched and self.rendered:
                self.report.config_diff = _diff(self.original or "", self.rendered, self.path)
            if self.applied and not self.switched and self.options.rollback_on_failure and self._still_locked():
                try:
                    self.restore()
                except RestoreError as failed_too:
                    error = failed_too  # the outcome names what needs a human
                    self.restore_failed = True
                    raise
            raise
        except BaseException as exc:  # interrupted (SIGTERM of a cancelled job, Ctrl-C): never a success
            error = SwapError(
                f"interrupted ({type(exc).__name__}) during {self.timeline.steps[-1].label if self.timeline.steps else 'start'}",
                "run the swap again: the next run settles a half-done one",
            )
            raise
        finally:
            self.release()
            self.finish(error)
        return self.report

    # -- phases ------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Wait for the lock (two runs never interleave); with it, the live state in the same trip."""
        failpoints.reach("lock")
        discovered = False
        if self.config_path is None:
            self.discover()
            discovered = True
        with self.timeline.step(Phase.LOCK) as step:
            deadline = time.monotonic() + self.options.lock_timeout
            announced = False
            if self.options.break_lock:
                self._break_lock()
            # The health gate rides along on the first attempt: it costs no time of its own there.
            gate_urls = first_gate_urls = self._early_gate_urls()
            while True:
                begun = self.host.begin(
                    self.path, self.lock_dir, self.owner, LEASE_SECONDS,
                    gate_urls, HEALTH_TIMEOUT_SECONDS, dump=not discovered,
                    proof_socket="" if self.options.dry_run else marker_address(self.options.upstream),
                )  # fmt: skip
                gate_urls = []
                if begun.lock.acquired and begun.probe is not None:
                    break
                holder = (
                    f"held by {begun.lock.holder or 'unknown'} for {begun.lock.age_s}s, "
                    f"its lease renewed {_known(begun.lock.left_s)}s ahead"
                )
                if not announced:
                    self.observer.info(f"waiting for the lock: {holder}")
                    announced = True
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"another swap holds the lock on this load balancer ({holder})",
                        f"wait for it to finish: its holder renews the lease while it runs, and a run that "
                        f"died loses it within {LEASE_SECONDS}s. If you are sure no swap runs, 'python -m "
                        f"swap_action lock break' (or the input break-lock: true) removes {self.lock_dir}",
                    )
                time.sleep(LOCK_POLL_SECONDS)
            self.locked = True
            self.lease = Lease(self.host, self.lock_dir, self.owner)
            self.lease.start()
            self.probe_result = begun.probe
            if begun.dump is not None:
                self.nginx = preflight.config_of(begun.dump)
            self.proof_pending = begun.proof_pending
            self.early_gate = (begun.gate, tuple(first_gate_urls)) if begun.gate else None
            if begun.lock.stale_from:
                step.detail = f"taken over from {begun.lock.stale_from}, whose lease had ended (it stopped renewing)"
            if begun.recovered:
                kept = "kept: Nginx serves its new bytes already" if begun.recovered == "kept" else "put back"
                self.observer.warning(f"a previous run died while applying; {self.path} was settled ({kept})")

    def probe(self) -> None:
        """Understand what ``lock`` read: Nginx, curl, the managed file, the target."""
        failpoints.reach("probe")
        with self.timeline.step(Phase.PROBE) as step:
            probe = self.probe_result
            assert probe is not None
            if not probe.has_curl:
                raise TransportError(
                    f"curl is not installed on {self.host.description}",
                    "install curl on the LB host: health checks and the live confirmation run from there",
                )
            if probe.master_pid is None and not self.options.dry_run:
                raise TransportError(
                    f"no running Nginx master on {self.host.description}: {probe.master_problem or 'not found'}",
                    "start Nginx, or make nginx.conf's pid directive name the file the running master wrote: "
                    "a swap signals only the master its pid file names, and its workers",
                )
            self.check_config(probe)
            self.original = probe.managed_file
            self.current = probe.managed_file or ""
            self.state = self._read_state(probe.managed_file)
            self.slots, self.target = self._resolve()
            step.slot = self.target
            live = self.state.live if self.state and self.state.live else "unknown"
            how = (
                " (inferred from down/weights: adopting a hand-written upstream)"
                if self.state and self.state.inferred
                else ""
            )
            proof = (
                " (proof: its own marker, checked before writing)"
                if self.proof_pending
                else " (nginx -T: loaded in http)"
            )
            step.detail = f"{probe.nginx_version}; {self.path}{proof}; live: {live}{how}; target: {self.target}"
            if keepalive.supported(probe.nginx_version) is False:
                version = probe.nginx_version.removeprefix("nginx version: nginx/")
                self.observer.info(keepalive.EXPOSURE.format(version=version))

    def nothing_to_do(self) -> bool:
        state = self.state
        if state and state.live == self.target and state.weights.get(self.target) == 100 and state.slots == self.slots:
            if not self.options.dry_run and self._file_not_served(state.generation):
                # A run died between writing the file and its reload: the file is what was asked
                # for, Nginx still serves what was before. A reload makes the file live.
                self.served_unknown = True  # what Nginx served before is not what the file says
                self.reload_confirm(state.generation, 100)
                return True
            self.observer.info(f"{self.target} is already live with these servers: nothing to change")
            return True
        return False

    def _file_not_served(self, generation: str) -> bool:
        """Whether Nginx answers another generation than the managed file's (its own marker)."""
        if not generation or generation == "unknown":  # a hand-written upstream: no marker of its own
            return False
        served = self.host.marker_generation(marker_address(self.options.upstream))
        if served is None or served == generation:
            return False
        self.observer.warning(
            f"{self.path} says {self.target} is live (generation {generation}), but Nginx serves generation "
            f"{served}: a run stopped between writing the file and reloading; reloading to make the file live"
        )
        return True

    def render(self, percent: int) -> tuple[str, str]:
        with self.timeline.step(Phase.RENDER, slot=self.target, percent=percent):
            generation = new_generation()
            weights = weights_for_step(self.target, percent)
            # The staging upstream: the idle slot (the target until it has all the traffic).
            staging_slot = self.target if percent < 100 else other(self.target)
            staging = self.options.staging_upstream
            if self.state is not None and self.state.adopted:
                # A hand-written upstream: only down/weight= of the slots' servers change; a
                # staging upstream only when asked for, or kept when the file has one.
                if (
                    staging
                    and not self.options.staging_requested
                    and adopt.find_upstream(self.current, staging) is None
                ):
                    staging = None
                text = adopt.edit(
                    self.current, upstream=self.options.upstream, slots=self.slots, weights=weights,
                    generation=generation, previous=other(self.target), path=self.path,
                    staging_upstream=staging, staging_slot=staging_slot,
                )  # fmt: skip
            else:
                text = render(
                    upstream=self.options.upstream,
                    slots=self.slots,
                    weights=weights,
                    generation=generation,
                    previous=other(self.target),
                    template=self.options.template,
                    path=self.path,
                    staging_upstream=staging,
                    staging_slot=staging_slot,
                )
            rendered = parse_state(text)
            self.staging_upstream = rendered.staging_upstream if rendered else None
            self.report.staging_slot = rendered.staging if rendered else None
            self.rendered = text
            return text, generation

    def plan(self, text: str, generation: str, percent: int) -> None:
        """Dry run: the target's health and the candidate tested on its own; nothing live changes."""
        started = time.time()
        urls = self._health_urls()
        planned = self.host.plan(self.path, text, generation, urls, HEALTH_TIMEOUT_SECONDS)
        took = (time.time() - started) * 1000
        self.report.config_diff = _diff(self.current, text, self.path)
        if urls:
            unhealthy = self._gate_step(planned.health, urls, percent, started, took)
            if unhealthy:
                # A plan is often made before the new version is deployed: say so, change nothing.
                self.observer.warning(f"{unhealthy.cause} (a real swap would stop here)")
        self._test_step(planned.test_ok, planned.test_output, percent, started, took, in_place=False)

    def install(
        self, text: str, generation: str, percent: int, *, gate: bool, reload: bool = True
    ) -> tuple[ReloadResult, float] | None:
        """Gate, test and apply in one round trip: the candidate replaces the live file only when the
        target is healthy (first step) and Nginx accepts the whole config; else nothing changed.
        The health checks begin started with the lock are collected here when they cover the target.
        Once applied, the LB reloads in the same round trip: returns that reload and when it began."""
        failpoints.reach("install")
        self._check_lease()
        urls = self._health_urls() if gate else []
        early = self._early_gate_id(urls)
        started = time.time()

        def attempt(proof: tuple[str, str] | None) -> Installed:
            try:
                return self.host.install(
                    self.path, text, generation, urls, HEALTH_TIMEOUT_SECONDS, gate=early,
                    reload=self._reload_request(generation) if reload else None, proof=proof,
                )  # fmt: skip
            except TransportError as exc:
                # Sent: the LB finishes an install on its own, reload included. Refused before it
                # left (a container that is not running): nothing changed there.
                self.in_doubt = exc.sent
                raise

        installed = self._proven(attempt)
        took = (time.time() - started) * 1000  # one round trip for the phases it did
        reload_ms = _reload_ms(installed.reload, self.options.confirm_timeout) if installed.reload else 0.0
        took = max(took - reload_ms, 0.0)  # the reload's part is the reload-confirm step's
        if urls:
            answers = tuple(a for a in installed.health if a.url in urls)
            unhealthy = self._gate_step(answers, urls, percent, started, took)
            if unhealthy:
                raise unhealthy
        self._test_step(installed.test_ok, installed.test_output, percent, started, took, in_place=True)
        if not installed.applied:  # the LB said neither was bad, yet did not apply: never guess
            raise StateError(f"{self.path} was not replaced", "read the LB's answer above; nothing was changed")
        self.applied = True
        self.current = text
        step = Step(Phase.APPLY, started, self.target, percent, duration_ms=took, data=dict(SHARED_TRIP))
        step.detail = f"{self.path} replaced (previous bytes kept as .previous)"
        self.timeline.record(step)
        return (installed.reload, started + took / 1000) if installed.reload else None

    def check(self, text: str, generation: str, percent: int) -> None:
        """Prepare: the target's health and ``nginx -t`` of the whole config with the candidate in
        the live file's place, then the live bytes back, whatever the verdict: nothing changes and
        nothing reloads (a fleet's prepare on every LB, or the first step before a pre-switch hook).
        Raises what install would have: ``HealthCheckError`` or ``ConfigTestError``."""
        failpoints.reach("check")
        self._check_lease()
        urls = self._health_urls()
        early = self._early_gate_id(urls)
        started = time.time()

        def attempt(proof: tuple[str, str] | None) -> Installed:
            return self.host.check(self.path, text, generation, urls, HEALTH_TIMEOUT_SECONDS, gate=early, proof=proof)

        checked = self._proven(attempt)
        self.early_gate = None  # collected: the apply that follows has no gate of its own
        took = (time.time() - started) * 1000
        if urls:
            answers = tuple(a for a in checked.health if a.url in urls)
            unhealthy = self._gate_step(answers, urls, percent, started, took, trip=CHECK_TRIP)
            if unhealthy:
                raise unhealthy
        self._test_step(checked.test_ok, checked.test_output, percent, started, took, in_place=True, trip=CHECK_TRIP)

    def hook(self, name: str, generation: str) -> None:
        """A pre-switch, post-switch or post-drain command, when one is set (``hook_step``)."""
        command = self.options.hook_command(name)
        if command:
            facts = hook_facts(self.options, name, [self.lb or self.host.description], self, generation)
            hook_step(self.timeline, self.report, self.options, name, command, facts)

    def record_diff(self) -> None:
        """The managed file's change, as this run left it (before -> now)."""
        self.report.config_diff = _diff(self.original or "", self.current, self.path)

    def reload_confirm(self, generation: str, percent: int, done: tuple[ReloadResult, float] | None = None) -> None:
        """Reload and prove the new generation is served (``done``: install already did, in its trip)."""
        failpoints.reach("reload-confirm")
        with self.timeline.step(Phase.RELOAD_CONFIRM, slot=self.target, percent=percent) as step:
            if done is None:
                self._check_lease()
                request = self._reload_request(generation)
                result = self.host.reload_and_confirm(
                    request.generation, request.socket, request.error_log, request.timeout_s
                )
            else:
                result, step.started_at = done
                step.duration_ms = _reload_ms(result, self.options.confirm_timeout)
            if result.result in ("confirmed", "timeout"):
                # Live, or perhaps live (not proven in time). A refused signal or an [emerg] left
                # Nginx serving what it served before.
                self.signalled_percent = percent
            self.old_workers.update(result.old_workers)
            step.data = {"generation": generation, "reload": result.result}
            if not result.confirmed:
                raise _reload_error(result, self.options.confirm_timeout)
            step.detail = _reload_detail(result)
            self.report.reloads.append(
                _reload_record(result, generation, self.target, percent, step.started_at, self.lb)
            )
            self.switched_monotonic = time.monotonic()  # the runner has the proof: no earlier than the switch
            self.report.confirmed_at = (
                (result.reload_at_ms + result.confirmed_ms) / 1000
                if result.reload_at_ms is not None and result.confirmed_ms is not None
                else time.time()
            )

    def verify(self, percent: int) -> None:
        failpoints.reach("verify")
        url = self.options.verify_url
        # A canary step: the new slot's own health too. Through the LB at 10% most verify requests
        # reach the old slot, so a new slot that started failing since the gate could go unseen.
        health = self._health_urls() if percent < 100 else []
        if not url and not health:
            return
        with self.timeline.step(Phase.VERIFY, slot=self.target, percent=percent) as step:
            details = []
            if health:
                checked = self.host.http("GET", health, HEALTH_TIMEOUT_SECONDS)
                bad = [a for a in checked if not 200 <= a.status < 300]
                if bad or len(checked) != len(health):
                    raise VerificationError(
                        f"{self.target} stopped being healthy during the canary at {percent}%: "
                        + ", ".join(f"{a.url} answered {a.status or 'nothing'}" for a in bad or checked),
                        f"the new slot fails while it takes {percent}% of the traffic: check its deployment",
                    )
                details.append(", ".join(f"{a.url} {a.status}" for a in checked))
            if url:
                answers = self.host.http("GET", [url] * VERIFY_REQUESTS, VERIFY_TIMEOUT_SECONDS)
                for answer in answers:
                    self._check_verify(answer, final=percent == 100)
                shown = self.options.shown_verify_url  # never its password
                if len(answers) != VERIFY_REQUESTS:
                    raise VerificationError(
                        f"{shown}: no answer from the LB", "check verify-url is reachable from the LB"
                    )
                details.append(f"{len(answers)} x {shown}: {', '.join(str(a.status) for a in answers)}")
            step.detail = "; ".join(details)

    def pause(self, index: int, percent: int) -> None:
        failpoints.reach("pause")
        if self.options.step_pause and index < len(self.options.steps) - 1:
            with self.timeline.step(Phase.PAUSE, slot=self.target, percent=percent):
                time.sleep(self.options.step_pause)

    def drain(self) -> None:
        failpoints.reach("drain")
        old_slot = other(self.target)
        with self.timeline.step(Phase.DRAIN, slot=old_slot) as step:
            keepalive_min = self._keepalive_min_s()
            delay = max(0.0, keepalive_min - (time.monotonic() - self.switched_monotonic)) if keepalive_min else 0.0
            result = drain_phase.drain(
                self.host,
                self.slots.servers(old_slot),
                self.old_workers,
                timeout=self.options.drain_timeout,
                policy=self.options.drain_policy,
                hook=self.options.drain_hook,
                before_cut=self._check_lease,
                hook_delay_s=delay,
            )
            if keepalive_min:
                result = replace(result, keepalive_min_ms=round(keepalive_min * 1000))
            self.report.drain = result
            step.detail = result.summary()
            if result.outcome != "complete":
                self.observer.warning(result.summary())
            for url, status in result.hook_failures:
                # The switch is done and stays: the old slot just did not confirm it started draining.
                got = f"HTTP {status}" if status else "no HTTP answer"
                self.observer.warning(
                    f"the drain hook {url} got {got}: the old slot may not have closed its WebSockets or "
                    "stopped taking work (check the hook's method and path, and that the app answers it 2xx)"
                )

    def _keepalive_min_s(self) -> float:
        """keepalive_min_timeout of the running config (0: unset, or an Nginx before 1.27.4)."""
        probe = self.probe_result
        if probe is None or not keepalive.supported(probe.nginx_version):
            return 0.0
        try:
            if self.nginx is None:  # proven by the marker, nginx -T was not needed until now
                self.nginx = preflight.config_of(self.host.dump_config())
            found = keepalive.min_timeout(self.nginx)
        except SwapError as exc:
            self.observer.warning(
                f"cannot read keepalive_min_timeout ({exc.cause}): the drain hook is called at once, and old "
                "workers may still send a recently used connection's request to the old slot after it"
            )
            return 0.0
        if not found:
            self.observer.info(
                f"{keepalive.ADVICE} ({probe.nginx_version.removeprefix('nginx version: ')} has it; it is not set)"
            )
        return found

    def restore(self) -> None:
        """Put the managed file's previous bytes back and prove Nginx serves them again."""
        with self.timeline.step(Phase.RESTORE, slot=self.state.live if self.state else None) as step:
            try:
                if self.original is None:
                    raise RestoreError(
                        f"there was no {self.path} before this swap to go back to",
                        "write the upstream file by hand and reload nginx",
                    )
                state = self.state
                # The original bytes go back exactly; their own marker proves they are live again.
                if state is not None and state.generation != "unknown" and state.generation in self.original:
                    generation, marker = state.generation, marker_address(self.options.upstream)
                else:
                    generation, marker = new_generation(), "-"
                if self.signalled_percent is None:
                    # No reload of this run went live (refused, or never sent): Nginx still runs
                    # these very bytes. Back as they are: an nginx -t can fail for what broke since
                    # outside them (a log it cannot open now) and would leave the file saying what
                    # Nginx does not serve.
                    self.host.put_back(self.path, self.original)
                else:
                    installed = self.host.install(self.path, self.original, generation, [], 0)
                    if not installed.applied:
                        raise RestoreError(
                            "nginx -t refused the previous config: " + emerg_line(installed.test_output),
                            "fix the config by hand",
                        )
                self.current = self.original
                if self.signalled_percent is not None:
                    result = self.host.reload_and_confirm(generation, marker, "-", self.options.confirm_timeout)
                    if not result.confirmed:
                        raise _reload_error(result, self.options.confirm_timeout)
                self.restored = True
                step.detail = f"{self.state.live if self.state else 'the previous config'} is live again"
            except SwapError as exc:
                raise RestoreError(
                    f"restoring the previous config failed too: {exc.cause}",
                    f"restore {self.path}.previous by hand and reload nginx. {exc.fix}",
                ) from exc

    def _check_lease(self) -> None:
        """Before anything that changes the LB: the lock must still be this run's."""
        if self.lease is not None:
            self.lease.check()

    def _still_locked(self) -> bool:
        """Whether a restore may run: never over another run that holds the lock now."""
        why = self.lease.lost if self.lease is not None else None
        if why is not None:
            self.observer.warning(f"not restoring: {why}")
        return why is None

    def _break_lock(self) -> None:
        broken = self.host.break_lock(self.lock_dir)
        if broken.held:
            self.observer.warning(
                f"broke the lock held by {broken.holder or 'unknown'} for {_known(broken.age_s)}s "
                f"(break-lock: true); its lease had {_known(broken.left_s)}s left"
            )

    def release(self) -> None:
        failpoints.reach("release")
        if self.lease is not None:
            self.lease.stop()
        if not self.locked:
            return
        try:
            self.host.release(self.lock_dir, self.owner)
        except SwapError as exc:  # never hide the run's own outcome behind this
            self.observer.warning(f"could not release the lock {self.lock_dir}: {exc.cause}")

    def finish(self, error: SwapError | None) -> None:
        """The one outcome, from what is live at the end."""
        previous = self.state.live if self.state and not self.served_unknown else None
        changed = self.signalled_percent is not None and not self.restored
        if (self.restore_failed and changed) or self.in_doubt:
            active: str | None = None  # neither the new nor the old config was proven live
        elif changed:
            assert self.signalled_percent is not None
            active = self.target if self.signalled_percent >= 50 else other(self.target)
        else:
            active = previous
        if error is not None:
            result = Result.RESTORED if self.restored else Result.FAILED
        elif self.options.dry_run:
            result = Result.PLANNED if self.report.config_diff else Result.UNCHANGED
        else:
            result = Result.SWAPPED if changed else Result.UNCHANGED
        if not changed:  # what is live is the file as it was: so is its staging route
            self.report.staging_slot = self.state.staging if self.state else None
        self.report.outcome = Outcome(
            result=result,
            changed=changed,
            active=active,
            previous=previous,
            target=self.target or None,
            restored=self.restored,
            restore_failed=self.restore_failed,
            in_doubt=self.in_doubt,
            error=ErrorInfo.of(error) if error is not None else None,
        )
        self.report.duration_ms = self.timeline.elapsed_ms()

    # -- helpers -------------------------------------------------------------------------------------
    def _resolve(self) -> tuple[Slots, str]:
        state, slots = self.state, self.options.slots
        if not slots.blue and not slots.green:
            if state is None or not (state.blue or state.green):
                raise InputError(
                    "blue", "no servers given and none recorded in the managed file", "pass blue and green"
                )
            slots = state.slots
        elif state is not None and not (slots.blue and slots.green):
            # Only one slot given: the other keeps the servers the managed file records.
            slots = Slots(blue=slots.blue or state.blue, green=slots.green or state.green)
        if self.rollback_mode:
            if state is None or state.previous is None:
                raise StateError(
                    "the managed file records no previous slot to go back to", "swap with an explicit 'to'"
                )
            target = state.previous
        elif self.options.to != "auto":
            target = self.options.to
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

    def _reload_request(self, generation: str) -> ReloadRequest:
        assert self.probe_result is not None
        return ReloadRequest(
            generation, marker_address(self.options.upstream), self.probe_result.error_log, self.options.confirm_timeout
        )

    def discover(self) -> None:
        """No config-path given: find the managed file before anything is written (not even the lock)."""
        with self.timeline.step(Phase.PROBE) as step:
            self.nginx = preflight.config_of(self.host.dump_config())
            self.config_path = preflight.discover(self.nginx, self.options.upstream)
            step.detail = f"managed file: {self.config_path} (defines 'upstream {self.options.upstream}' in http)"

    def check_config(self, probe: Probe) -> None:
        """nginx -T's verdict now, or the cheaper proof install checks before it writes anything:
        the file's own marker (at http level in it) answers the file's generation and path."""
        if self.nginx is None and not self.proof_pending:
            raise StateError("the LB answered neither nginx -T nor the file's marker", "run the swap again")
        preflight.check(self.nginx, self.path, probe.file_kind, self.options.upstream)

    def _read_state(self, text: str | None) -> State | None:
        if not text:
            return None
        state = adopt.read_state(text, self.options.upstream, self.options.slots)
        if state is None:
            raise InputError(
                "config-path",
                f"{self.path} defines no 'upstream {self.options.upstream}': it is not the upstream's file, "
                "and a swap never overwrites a file it does not understand",
                "set config-path to the file that defines the upstream, or set 'upstream' to the name it defines",
            )
        return state

    def _early_gate_urls(self) -> list[str]:
        """The health URLs of every slot that may be the target, from the inputs alone (before the
        state is read). Checking the live slot too is harmless: only the target's answers count."""
        path, slots = self.options.health_path, self.options.slots
        if not path or self.options.dry_run:
            return []
        candidates = [self.options.to] if self.options.to != "auto" and not self.rollback_mode else ["blue", "green"]
        return [f"http://{server}{path}" for slot in candidates for server in slots.servers(slot)]

    def _health_urls(self) -> list[str]:
        path = self.options.health_path
        return [f"http://{server}{path}" for server in self.slots.servers(self.target)] if path else []

    def _early_gate_id(self, urls: list[str]) -> str:
        """The health checks begin started, when they cover ``urls`` ("": check them now)."""
        if urls and self.early_gate and set(urls) <= set(self.early_gate[1]):
            return self.early_gate[0]
        return ""

    def _proven(self, attempt: Callable[[tuple[str, str] | None], Installed]) -> Installed:
        """``attempt`` with the pending proof (the file's own marker, asked by begin); when the
        marker proved nothing (nothing was written), nginx -T decides and it runs again."""
        installed = attempt((self.lock_dir, self.state.generation) if self.proof_pending and self.state else None)
        self.proof_pending = False
        if installed.proof_failed:
            self.nginx = preflight.config_of(self.host.dump_config())
            preflight.check(self.nginx, self.path, "present", self.options.upstream)
            self.observer.info(
                f"the marker did not answer this file's generation; nginx -T: {self.path} is loaded in http"
            )
            installed = attempt(None)
        return installed

    def _gate_step(
        self,
        answers: tuple[HttpAnswer, ...],
        urls: list[str],
        percent: int,
        started: float,
        took: float,
        *,
        trip: dict[str, str] = SHARED_TRIP,
    ) -> HealthCheckError | None:
        step = Step(Phase.GATE, started, self.target, percent, duration_ms=took)
        step.data = {
            **trip,
            "answers": [{"url": a.url, "status": a.status, "ms": round(a.seconds * 1000, 1)} for a in answers],
        }
        step.detail = ", ".join(f"{a.url} {a.status or 'no answer'}" for a in answers)
        bad = [a for a in answers if not 200 <= a.status < 300]
        missing = [url for url in urls if url not in {a.url for a in answers}]
        unhealthy = None
        if bad or missing:
            step.ok = self.options.dry_run
            unhealthy = HealthCheckError(
                f"{self.target} is not healthy: "
                + ", ".join(
                    [f"{a.url} answered {a.status or 'nothing'}" for a in bad] + [f"{u} not checked" for u in missing]
                ),
                (
                    f"the app has no {self.options.health_path}: set health-path to a path it answers 2xx "
                    "(or '' to skip the gate); no traffic was moved"
                    if bad and not missing and all(a.status == 404 for a in bad)
                    else f"fix or redeploy {self.target} before swapping; no traffic was moved"
                ),
            )
        self.timeline.record(step)
        return unhealthy

    def _test_step(
        self,
        ok: bool,
        output: str,
        percent: int,
        started: float,
        took: float,
        *,
        in_place: bool,
        trip: dict[str, str] = SHARED_TRIP,
    ) -> None:
        step = Step(Phase.TEST, started, self.target, percent, duration_ms=took, ok=ok, data=dict(trip))
        step.detail = "nginx -t: the whole config with the candidate" if in_place else "nginx -t: the candidate alone"
        if not ok:
            step.detail = emerg_line(output)
        self.timeline.record(step)
        if ok:
            return
        error: ConfigTestError = candidate_error(output)
        if in_place:
            error.fix = hint_for(output, self.path) + " The live file was put back unchanged."
        raise error

    def _check_verify(self, answer: HttpAnswer, *, final: bool) -> None:
        expect = (self.options.verify_expect or "").strip()
        if expect.isdigit() and len(expect) == 3:
            ok = answer.status == int(expect)
        else:
            ok = 200 <= answer.status < 400 and (not final or not expect or expect in answer.body)
        if not ok:
            seen = answer.body.strip().splitlines()[0][:120] if answer.body.strip() else ""
            raise VerificationError(
                f"{self.options.shown_verify_url} answered {answer.status or 'nothing'}"
                + (f" with '{seen}'" if seen else "")
                + (f", expected '{expect}'" if expect else ", expected a 2xx/3xx status"),
                "the new slot does not serve what it should: check its deployment",
            )


def _owner() -> str:
    """Who holds the lock, as the LB keeps it and ``lock status`` shows it: the GitHub run's URL
    when there is one (else this host and process), and a nanosecond stamp that makes it unique."""
    env = os.environ
    if env.get("GITHUB_RUN_ID"):
        where = f"{env.get('GITHUB_SERVER_URL') or 'https://github.com'}/{env.get('GITHUB_REPOSITORY', '')}"
        where += f"/actions/runs/{env['GITHUB_RUN_ID']}"
        if env.get("GITHUB_RUN_ATTEMPT"):
            where += f"/attempts/{env['GITHUB_RUN_ATTEMPT']}"
    else:
        where = f"{socket.gethostname()} pid {os.getpid()}"
    text = f"{where} ({time.time_ns()})"
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:300]


def _diff(old: str, new: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (live)",
            tofile=f"{path} (new)",
        )
    )


def _reload_error(result: ReloadResult, timeout: float) -> ReloadError:
    if result.result == "signal_failed":
        return ReloadError(
            f"the reload signal failed: {result.message.strip()}",
            "check that the Nginx master runs and its pid file is where nginx.conf says",
        )
    if result.result == "emerg":
        return ReloadError(
            "Nginx refused the new config after the reload signal: " + result.message.strip(),
            hint_for(result.message) + " Nginx kept serving the old config.",
        )
    return ReloadError(
        f"the new config was not live after {timeout:.1f}s (new workers: {_known(result.new_workers)}, "
        f"old workers still accepting: {_known(result.old_left)}, marker answering: "
        f"{'yes' if result.marker_ok else 'no' if result.marker_ok is not None else '?'})",
        "Nginx may have refused the reload silently (e.g. a listen port in use): read its error log"
        + (
            f"; this user cannot read it ({result.errlog_unreadable}), so a refusal could not be told: "
            "let it read the log (Debian: usermod -aG adm USER)"
            if result.errlog_unreadable
            else ""
        ),
    )


def _reload_ms(result: ReloadResult, timeout_s: float) -> float:
    """How long a reload done inside another round trip took, as the LB measured it."""
    if result.confirmed_ms is not None:
        return float(result.confirmed_ms)
    return timeout_s * 1000 if result.result == "timeout" else float(result.signal_ms)


def _known(value: int | None) -> str:
    return "?" if value is None else str(value)


def _reload_detail(result: ReloadResult) -> str:
    return (
        f"signal {result.signal_ms} ms, new workers +{_known(result.new_workers_ms)} ms, "
        f"old workers stopped accepting +{_known(result.old_stopped_ms)} ms, marker +{_known(result.marker_ms)} ms"
    )


def _reload_record(
    result: ReloadResult, generation: str, slot: str, percent: int, started_at: float, lb: str | None
) -> Reload:
    return Reload(
        generation=generation,
        slot=slot,
        percent=percent,
        started_at=started_at,
        reload_at_ms=result.reload_at_ms,
        signal_ms=result.signal_ms,
        new_workers_ms=result.new_workers_ms,
        old_stopped_ms=result.old_stopped_ms,
        marker_ms=result.marker_ms,
        confirmed_ms=result.confirmed_ms,
        old_workers=result.old_workers,
        lb=lb,
    )


def hook_facts(options: SwapOptions, name: str, lbs: Sequence[str], run: Run, generation: str) -> dict[str, str]:
    """The swap's facts for a hook's environment (``hooks.hook_env``), as ``run`` (one LB's, the
    first of a fleet) knows them: before the switch the staging route points at the target, after
    it at the old slot (when the file has one: an adopted file gets one only when asked)."""
    target, staging_upstream = run.target, run.staging_upstream
    staging = (target if name == "pre-switch" else other(target)) if staging_upstream else None
    return hooks.hook_env(
        hook=name,
        live=run.state.live if run.state else None,
        target=target,
        slots=run.slots,
        generation=generation,
        lbs=lbs,
        staging_slot=staging,
        staging_url=options.staging_url,
        staging_upstream=staging_upstream,
        upstream=options.upstream,
        dry_run=options.dry_run,
    )


def hook_step(
    timeline: Timeline, report: SwapReport, options: SwapOptions, name: str, command: str, env: dict[str, str]
) -> None:
    """Run one hook as a step of its own (GitHub: a collapsed log group with its output); its
    record goes in the report. A failure raises ``HookError``: what follows depends on the hook."""
    failpoints.reach(name)
    with timeline.step(Phase.HOOK, data={"hook": name}) as step:
        ran = hooks.run_hook(name, command, env, options.hook_timeout, timeline.observer)
        report.hooks.append(ran)
        step.data |= {"exit_code": ran.exit_code, "timed_out": ran.timed_out}
        step.detail = f"stopped after {options.hook_timeout:g}s" if ran.timed_out else f"exit {ran.exit_code}"
        if not ran.ok:
            raise hooks.hook_error(ran)
