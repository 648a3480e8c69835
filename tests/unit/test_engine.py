"""The swap sequence against the fake LB: what is refused, what is restored, what is left alone."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import pytest
from fakes import LB_CONFIG, FakeHost

from swap_action import run as run_module
from swap_action.engine import Engine
from swap_action.errors import (
    ConfigTestError,
    HealthCheckError,
    InputError,
    LockError,
    ReloadError,
    RestoreError,
    StateError,
    TransportError,
    VerificationError,
)
from swap_action.host import Connections, HttpAnswer, ReloadResult
from swap_action.inputs import Slots, SwapOptions
from swap_action.outcome import Outcome, Phase, Result, Step, SwapReport
from swap_action.upstream import parse_state

WEIGHT_ZERO_TEMPLATE = """upstream {{ upstream }} {
{%- for s in servers %}
    server {{ s.address }} weight={{ 0 if s.down else s.weight }};
{%- endfor %}
}
"""


class Quiet:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.started: list[Step] = []

    def step_started(self, step: Step) -> None:
        self.started.append(step)

    def step_finished(self, step: Step) -> None:
        self.lines.append(f"{'ok' if step.ok else 'ERR'} {step.label} {step.detail}")

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.lines.append(f"!! {message}")


def options(**changes: object) -> SwapOptions:
    base = SwapOptions(
        config_path=LB_CONFIG,
        upstream="app",
        slots=Slots(blue=(), green=()),
        to="green",
        verify_url="http://127.0.0.1/",
        lock_timeout=1.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> FakeHost:
    return FakeHost()


@pytest.fixture
def engine(fake: FakeHost) -> Engine:
    return Engine(fake, Quiet())


@pytest.fixture(autouse=True)
def fast_lock_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "LOCK_POLL_SECONDS", 0.01)


def live_state(fake: FakeHost) -> tuple[str | None, dict[str, int]]:
    text = fake.live_text()
    assert text is not None
    state = parse_state(text)
    return state.live, state.weights


def last(engine: Engine) -> SwapReport:
    assert engine.last_report is not None
    return engine.last_report


def phases(report: SwapReport) -> list[Phase]:
    return [step.phase for step in report.steps]


def test_swap_to_green(engine: Engine, fake: FakeHost) -> None:
    report = engine.swap(options(verify_expect="green"))
    assert report.outcome == Outcome(Result.SWAPPED, changed=True, active="green", previous="blue", target="green")
    assert live_state(fake) == ("green", {"blue": 0, "green": 100})
    assert fake.served_slot() == "green"
    assert fake.reloads == 1
    text = fake.live_text()
    assert text is not None and "# idle, no traffic: server blue:8080;" in text and "weight=0" not in text
    assert f"{LB_CONFIG}.lock" not in fake.locks, "the lock is released"
    assert report.drain is not None and report.drain.outcome == "complete"
    assert "+# bluegreen-swap state:" in report.config_diff
    assert fake.leftovers() == []
    assert phases(report) == [
        Phase.LOCK,
        Phase.PROBE,
        Phase.RENDER,
        Phase.GATE,
        Phase.TEST,
        Phase.APPLY,
        Phase.RELOAD_CONFIRM,
        Phase.VERIFY,
        Phase.DRAIN,
    ]
    assert all(step.ok for step in report.steps)
    assert report.confirmed_at is not None and report is engine.last_report


def test_steps_carry_phase_slot_and_percent_as_fields(engine: Engine) -> None:
    report = engine.swap(options(steps=(10, 100)))
    reloads = [step for step in report.steps if step.phase is Phase.RELOAD_CONFIRM]
    assert [(step.slot, step.percent) for step in reloads] == [("green", 10), ("green", 100)]
    drain = next(step for step in report.steps if step.phase is Phase.DRAIN)
    assert (drain.slot, drain.percent) == ("blue", None), "the drain names the slot drained"
    assert reloads[0].label == "reload-confirm (10% to green)"
    observer = engine.observer
    assert isinstance(observer, Quiet)
    assert observer.started == report.steps, "the observer is told each Step as it starts"


def test_already_live_changes_nothing(engine: Engine, fake: FakeHost) -> None:
    before = fake.live_text()
    report = engine.swap(options(to="blue"))
    assert report.outcome == Outcome(Result.UNCHANGED, changed=False, active="blue", previous="blue", target="blue")
    assert fake.writes == [], "nothing is written"
    assert fake.live_text() == before
    assert "reload_and_confirm" not in fake.calls and "install" not in fake.calls
    assert report.config_diff == "" and report.drain is None


def test_unhealthy_target_is_refused_and_nothing_changes(engine: Engine, fake: FakeHost) -> None:
    fake.apps["green:8080"].healthy = False
    before = fake.live_text()
    with pytest.raises(HealthCheckError) as caught:
        engine.swap(options())
    assert "green:8080/healthz answered 503" in caught.value.cause
    assert "no traffic was moved" in caught.value.fix
    assert fake.live_text() == before
    assert fake.leftovers() == [], "the candidate is gone and the old bytes are back"
    assert f"{LB_CONFIG}.previous" not in fake.files, "never applied"
    assert "reload_and_confirm" not in fake.calls and fake.reloads == 0
    assert fake.served_slot() == "blue"
    assert f"{LB_CONFIG}.lock" not in fake.locks
    outcome = last(engine).outcome
    assert (outcome.result, outcome.changed, outcome.active, outcome.previous) == (Result.FAILED, False, "blue", "blue")
    assert outcome.restored is False and outcome.error is not None
    assert outcome.error.type == "HealthCheckError"
    gate = next(step for step in last(engine).steps if step.phase is Phase.GATE)
    assert not gate.ok and gate.data["answers"][0]["status"] == 503


def test_nginx_t_failure_leaves_the_file_unchanged(engine: Engine, fake: FakeHost) -> None:
    before = fake.live_text()
    with pytest.raises(ConfigTestError) as caught:
        engine.swap(options(template=WEIGHT_ZERO_TEMPLATE))
    assert 'invalid parameter "weight=0"' in caught.value.cause
    assert "down" in caught.value.fix
    assert fake.live_text() == before
    assert f"{LB_CONFIG}.previous" not in fake.files and fake.reloads == 0
    assert fake.leftovers() == [], "the candidate is removed"
    assert last(engine).outcome.changed is False and last(engine).outcome.active == "blue"


def test_whole_config_test_failure_puts_the_file_back(engine: Engine, fake: FakeHost) -> None:
    fake.full_config_error = 'duplicate upstream "app" in /etc/nginx/conf.d/old.conf:1'
    before = fake.live_text()
    with pytest.raises(ConfigTestError) as caught:
        engine.swap(options())
    assert "duplicate upstream" in caught.value.cause
    assert "another file already defines this upstream" in caught.value.fix
    assert "The live file was put back unchanged." in caught.value.fix
    assert fake.live_text() == before
    assert fake.reloads == 0 and fake.served_slot() == "blue"
    assert fake.leftovers() == []


def test_verification_failure_restores(engine: Engine, fake: FakeHost) -> None:
    fake.apps["green:8080"].fail = True
    before = parse_state(fake.live_text() or "")
    with pytest.raises(VerificationError) as caught:
        engine.swap(options())
    assert "answered 500" in caught.value.cause
    report = last(engine)
    assert report.outcome.result is Result.RESTORED
    assert report.outcome.restored and not report.outcome.changed
    assert (report.outcome.active, report.outcome.previous, report.outcome.target) == ("blue", "blue", "green")
    assert report.outcome.state_sentence() == "The previous config was restored: blue is live again."
    assert phases(report)[-1] is Phase.RESTORE and report.steps[-1].ok
    after = parse_state(fake.live_text() or "")
    assert (after.live, after.weights, after.slots, after.previous) == (
        before.live,
        before.weights,
        before.slots,
        before.previous,
    )
    assert fake.served_slot() == "blue"
    assert fake.reloads == 2, "the swap, then the restore"
    assert "+    server green:8080;  # slot=green" in report.config_diff, "the diff of what was tried"


def test_verify_expect_text_not_served_restores(engine: Engine, fake: FakeHost) -> None:
    with pytest.raises(VerificationError) as caught:
        engine.swap(options(verify_expect="purple"))
    assert "expected 'purple'" in caught.value.cause
    assert fake.served_slot() == "blue"
    assert last(engine).outcome.result is Result.RESTORED


def test_no_restore_leaves_the_failed_swap_live(engine: Engine, fake: FakeHost) -> None:
    fake.apps["green:8080"].fail = True
    with pytest.raises(VerificationError):
        engine.swap(options(rollback_on_failure=False))
    outcome = last(engine).outcome
    assert (outcome.result, outcome.changed, outcome.active, outcome.restored) == (Result.FAILED, True, "green", False)
    assert outcome.state_sentence() == "Not restored: the new config stays live (green is live)."
    assert live_state(fake)[0] == "green" and fake.served_slot() == "green"
    assert Phase.RESTORE not in phases(last(engine))


def test_silently_refused_reload_restores(engine: Engine, fake: FakeHost) -> None:
    fake.refuse_reloads = 1
    with pytest.raises(ReloadError) as caught:
        engine.swap(options(confirm_timeout=0.5))
    assert "not live after" in caught.value.cause
    assert live_state(fake)[0] == "blue"
    assert last(engine).outcome.restored and last(engine).outcome.result is Result.RESTORED


def test_a_reload_nginx_refuses_loudly_never_counts_as_changed(engine: Engine, fake: FakeHost) -> None:
    """An [emerg] at the reload means Nginx kept serving the old config: nothing changed for
    traffic, whether or not the file is restored."""
    fake.emerg_on_reload = "bind() to 0.0.0.0:80 failed (98: Address already in use)"
    with pytest.raises(ReloadError) as caught:
        engine.swap(options(rollback_on_failure=False))
    assert "Nginx refused the new config after the reload signal" in caught.value.cause
    assert "Address already in use" in caught.value.cause
    assert fake.served_slot() == "blue"
    outcome = last(engine).outcome
    assert (outcome.changed, outcome.active, outcome.result) == (False, "blue", Result.FAILED)


def test_a_refused_first_reload_puts_the_bytes_nginx_runs_back_without_testing_them() -> None:
    """Nginx refused the reload (here: a log it can no longer open), so it still runs the original
    bytes; an nginx -t of them fails on the same log. They go back untested: the file says what
    Nginx serves, and the run says it was restored."""
    broken = 'open() "/var/log/site/error.log" failed (30: Read-only file system)'

    class LogBreaksAtTheReload(FakeHost):
        def reload_and_confirm(self, generation: str, socket: str, error_log: str, timeout_s: float) -> ReloadResult:
            self.emerg_on_reload = self.full_config_error = broken  # from now on, nginx -t fails too
            return super().reload_and_confirm(generation, socket, error_log, timeout_s)

    fake = LogBreaksAtTheReload()
    engine = Engine(fake, Quiet())
    before = fake.files[LB_CONFIG]
    with pytest.raises(ReloadError) as caught:
        engine.swap(options())
    assert "Read-only file system" in caught.value.cause
    assert fake.files[LB_CONFIG] == before and fake.served_slot() == "blue"
    assert fake.calls.count("put_back") == 1 and fake.calls.count("reload_and_confirm") == 1
    outcome = last(engine).outcome
    assert outcome.restored and (outcome.changed, outcome.active, outcome.result) == (False, "blue", Result.RESTORED)


def test_a_restore_that_fails_too_needs_a_human(engine: Engine, fake: FakeHost) -> None:
    fake.refuse_reloads = 2
    with pytest.raises(RestoreError) as caught:
        engine.swap(options(confirm_timeout=0.5))
    assert caught.value.cause.startswith("restoring the previous config failed too")
    assert f"restore {LB_CONFIG}.previous by hand" in caught.value.fix
    outcome = last(engine).outcome
    assert outcome.result is Result.FAILED and not outcome.restored
    assert outcome.error is not None and outcome.error.type == "RestoreError", "the outcome names what needs a human"
    assert not last(engine).steps[-1].ok and last(engine).steps[-1].phase is Phase.RESTORE
    # Neither config was proven live: the outcome does not claim either slot.
    assert outcome.restore_failed and outcome.active is None
    assert "what Nginx serves is unknown" in outcome.state_sentence()


def test_a_failing_drain_never_undoes_a_verified_swap() -> None:
    class DrainFails(FakeHost):
        def connections(self, servers: Sequence[str]) -> Connections:
            raise TransportError("the LB went away", "check the network")

    broken = DrainFails()
    engine = Engine(broken, Quiet())
    with pytest.raises(TransportError):
        engine.swap(options())
    outcome = last(engine).outcome
    assert (outcome.result, outcome.changed, outcome.active, outcome.restored) == (Result.FAILED, True, "green", False)
    assert broken.served_slot() == "green" and broken.reloads == 1
    assert Phase.RESTORE not in phases(last(engine))


class Interrupted(FakeHost):
    """The job is cancelled (SIGTERM: ``SystemExit`` from the action's handler) or Ctrl-C while verifying."""

    def __init__(self, interrupt: BaseException) -> None:
        super().__init__()
        self.interrupt = interrupt

    def http(self, method: str, urls: Sequence[str], max_s: float) -> list[HttpAnswer]:
        raise self.interrupt


def test_a_cancelled_run_is_never_reported_as_a_success() -> None:
    fake = Interrupted(SystemExit(143))
    engine = Engine(fake, Quiet())
    with pytest.raises(SystemExit):
        engine.swap(options())
    outcome = last(engine).outcome
    assert outcome.error is not None and outcome.result is Result.FAILED
    assert "interrupted" in outcome.error.cause
    assert f"{LB_CONFIG}.lock" not in fake.locks, "the lock is released"


def test_ctrl_c_during_a_step_stays_a_keyboard_interrupt() -> None:
    engine = Engine(Interrupted(KeyboardInterrupt()), Quiet())
    with pytest.raises(KeyboardInterrupt):
        engine.swap(options())


def test_lock_held_raises_lock_error_after_the_timeout(engine: Engine, fake: FakeHost) -> None:
    lock = fake.hold_lock("another-run-42")
    before = fake.live_text()
    with pytest.raises(LockError) as caught:
        engine.swap(options(lock_timeout=0.2))
    assert "another-run-42" in caught.value.cause
    assert lock in caught.value.fix
    assert fake.locks[lock].owner == "another-run-42", "someone else's lock is left alone"
    assert fake.calls.count("begin") >= 2, "it waited and retried"
    assert fake.live_text() == before and fake.writes == []
    outcome = last(engine).outcome
    assert outcome.changed is False and outcome.active is None, "the state was never read"


def test_a_lock_past_its_holders_deadline_is_taken_over(engine: Engine, fake: FakeHost) -> None:
    lock = fake.hold_lock("dead-run-7", expired=True)
    report = engine.swap(options())
    assert report.outcome.changed
    assert "taken over from dead-run-7" in report.steps[0].detail
    assert lock not in fake.locks


def test_auto_without_state_is_an_input_error() -> None:
    empty = FakeHost(managed="")
    engine = Engine(empty, Quiet())
    with pytest.raises(InputError) as caught:
        engine.swap(options(to="auto", slots=Slots(blue=("blue:8080",), green=("green:8080",))))
    assert caught.value.input_name == "to"
    assert empty.writes == []


def test_a_hand_written_upstream_is_adopted_and_auto_works_on_the_first_swap() -> None:
    # No state line: the live slot is inferred from 'down'; green's server is added as a line of ours.
    fake = FakeHost(managed="upstream app {\n    server blue:8080 max_fails=3;\n    keepalive 16;\n}\n")
    engine = Engine(fake, Quiet())
    report = engine.swap(options(to="auto", slots=Slots(blue=("blue:8080",), green=("green:8080",))))
    assert (report.outcome.previous, report.outcome.active, report.outcome.changed) == ("blue", "green", True)
    text = fake.live_text()
    assert "    server blue:8080 max_fails=3 down;\n" in text and "    keepalive 16;\n" in text
    assert "server green:8080;  # added by bluegreen-swap: slot=green" in text
    assert parse_state(text).adopted and fake.served_slot() == "green"


def test_first_swap_without_managed_file() -> None:
    empty = FakeHost(managed="")
    engine = Engine(empty, Quiet())
    report = engine.swap(options(slots=Slots(blue=("blue:8080",), green=("green:8080",))))
    assert report.outcome.changed and live_state(empty)[0] == "green"
    assert report.outcome.previous is None and report.outcome.active == "green"
    assert f"{LB_CONFIG}.previous" not in empty.files, "there was nothing before"


def test_auto_goes_there_and_back(engine: Engine, fake: FakeHost) -> None:
    assert engine.swap(options(to="auto")).outcome.active == "green"
    assert engine.swap(options(to="auto")).outcome.active == "blue"
    assert fake.served_slot() == "blue"


def test_rollback_goes_to_the_recorded_previous_slot(engine: Engine, fake: FakeHost) -> None:
    with pytest.raises(StateError):
        engine.rollback(options())  # the initial file records no previous slot
    engine.swap(options())
    report = engine.rollback(options())
    assert report.outcome.changed and report.outcome.active == "blue" and report.outcome.previous == "green"
    assert report.outcome.result is Result.SWAPPED and not report.outcome.restored
    assert fake.served_slot() == "blue"


def test_canary_steps_reload_once_per_step(engine: Engine, fake: FakeHost) -> None:
    report = engine.swap(options(steps=(10, 50, 100)))
    assert [(r.slot, r.percent) for r in report.reloads] == [("green", 10), ("green", 50), ("green", 100)]
    assert len({r.generation for r in report.reloads}) == 3
    assert all(r.confirmed_ms == 110 and r.old_workers for r in report.reloads)
    assert live_state(fake) == ("green", {"blue": 0, "green": 100})
    assert report.confirmed_at == pytest.approx((1_700_000_000_000 + 110) / 1000)


def test_a_canary_step_checks_the_new_slots_own_health_without_a_verify_url() -> None:
    """Healthy at the gate, failing once it takes 10%: through the LB most requests would still
    reach blue, so the step asks green's health URLs itself, and the run restores."""

    class GreenFailsOnceLive(FakeHost):
        def reload_and_confirm(self, generation: str, socket: str, error_log: str, timeout_s: float) -> ReloadResult:
            result = super().reload_and_confirm(generation, socket, error_log, timeout_s)
            self.apps["green:8080"].healthy = False
            return result

    fake = GreenFailsOnceLive()
    engine = Engine(fake, Quiet())
    with pytest.raises(VerificationError) as caught:
        engine.swap(options(steps=(10, 100), verify_url=""))
    assert "green stopped being healthy during the canary at 10%" in caught.value.cause
    assert "http://green:8080/healthz answered 503" in caught.value.cause
    assert "check its deployment" in caught.value.fix
    assert fake.served_slot() == "blue" and last(engine).outcome.restored


def test_a_canary_failing_at_its_first_step_leaves_the_old_slot_active(engine: Engine, fake: FakeHost) -> None:
    """Not restored at 10%: traffic changed (green gets its share) but blue still has most of it."""
    with pytest.raises(VerificationError):
        engine.swap(options(steps=(10, 100), verify_expect="204", rollback_on_failure=False))
    outcome = last(engine).outcome
    assert (outcome.changed, outcome.active, outcome.previous, outcome.restored) == (True, "blue", "blue", False)
    assert live_state(fake) == ("blue", {"blue": 90, "green": 10})


def test_plan_changes_nothing(engine: Engine, fake: FakeHost) -> None:
    before = fake.live_text()
    report = engine.plan(options())
    assert report.dry_run and not report.outcome.changed
    assert report.outcome.result is Result.PLANNED and report.outcome.active == "blue"
    assert "-    server blue:8080;  # slot=blue" in report.config_diff
    assert "+    # idle, no traffic: server blue:8080;  # slot=blue" in report.config_diff
    assert fake.live_text() == before
    assert all(".candidate-" in path for path in fake.writes), "only the throw-away candidate"
    assert fake.leftovers() == []
    assert fake.reloads == 0 and "install" not in fake.calls


def test_one_slot_given_keeps_the_other_from_the_file(engine: Engine, fake: FakeHost) -> None:
    fake.apps["green2:8080"] = fake.apps["green:8080"]
    report = engine.swap(options(slots=Slots(blue=(), green=("green2:8080",))))
    assert report.outcome.changed
    state = parse_state(fake.live_text() or "")
    assert state.blue == ("blue:8080",) and state.green == ("green2:8080",)


def test_target_slot_without_servers_is_refused() -> None:
    fake = FakeHost(managed="")
    engine = Engine(fake, Quiet())
    with pytest.raises(InputError) as caught:
        engine.swap(options(slots=Slots(blue=("blue:8080",), green=())))
    assert caught.value.input_name == "green"
    assert fake.writes == []


def test_a_run_that_died_inside_install_is_settled_by_the_next_one(fake: FakeHost) -> None:
    """install had put its candidate in place and died before deciding: the next run restores the
    bytes Nginx still serves (no reload followed), says so, then swaps as asked."""
    served = fake.live_text()
    assert served is not None
    fake.files[f"{LB_CONFIG}.before-swap"] = served
    fake.files[LB_CONFIG] = "upstream app { server green:8080 weight=0; }\n"  # never reloaded
    observer = Quiet()
    report = Engine(fake, observer).swap(options())
    assert any("died while applying" in line for line in observer.lines)
    assert report.outcome.changed and report.outcome.active == "green" and report.outcome.previous == "blue"
    assert fake.leftovers() == []
    assert fake.files[f"{LB_CONFIG}.previous"] == served


GIVEN = Slots(blue=("blue:8080",), green=("green:8080",))


def test_the_gate_rides_on_the_lock_round_trip_when_the_target_is_known(engine: Engine, fake: FakeHost) -> None:
    engine.swap(options(slots=GIVEN))
    assert fake.gate_urls_at_begin == ["http://green:8080/healthz"]
    assert fake.install_gates == ["1"], "install collected the checks begin started"
    gate = next(step for step in last(engine).steps if step.phase is Phase.GATE)
    assert gate.ok and gate.slot == "green" and gate.data["answers"][0]["status"] == 200


def test_an_unhealthy_target_checked_from_the_lock_changes_nothing(engine: Engine, fake: FakeHost) -> None:
    fake.apps["green:8080"].healthy = False
    before = fake.live_text()
    with pytest.raises(HealthCheckError):
        engine.swap(options(slots=GIVEN))
    assert fake.install_gates == ["1"] and fake.reloads == 0
    assert fake.live_text() == before and fake.leftovers() == []
    assert fake.served_slot() == "blue" and last(engine).outcome.changed is False


def test_auto_checks_both_slots_with_the_lock_and_counts_only_the_target(engine: Engine, fake: FakeHost) -> None:
    fake.apps["blue:8080"].healthy = False  # the live slot's health does not gate a swap away from it
    engine.swap(options(to="auto", slots=GIVEN))
    assert sorted(fake.gate_urls_at_begin) == ["http://blue:8080/healthz", "http://green:8080/healthz"]
    assert fake.served_slot() == "green"


def test_without_servers_in_the_inputs_the_gate_runs_in_install(engine: Engine, fake: FakeHost) -> None:
    engine.swap(options(slots=Slots(blue=(), green=())))
    assert fake.gate_urls_at_begin == [] and fake.install_gates == [""]
    gate = next(step for step in last(engine).steps if step.phase is Phase.GATE)
    assert gate.ok and gate.detail == "http://green:8080/healthz 200"


def test_a_health_path_the_app_lacks_names_the_input(engine: Engine, fake: FakeHost) -> None:
    with pytest.raises(HealthCheckError) as caught:
        engine.swap(options(health_path="/nope"))
    assert "answered 404" in caught.value.cause and "set health-path" in caught.value.fix


def test_a_drain_hook_without_a_2xx_answer_is_a_warning_naming_what_it_got(fake: FakeHost) -> None:
    observer = Quiet()
    report = Engine(fake, observer).swap(options(drain_hook=("POST", "/drain-not-there")))
    assert report.outcome.result is Result.SWAPPED, "the switch is done and stays"
    assert report.drain is not None and report.drain.hook_failures == (("http://blue:8080/drain-not-there", 404),)
    warning = next(line for line in observer.lines if "drain hook" in line)
    assert "got HTTP 404" in warning and "answers it 2xx" in warning


def test_a_drain_hook_that_answers_2xx_raises_no_warning(fake: FakeHost) -> None:
    observer = Quiet()
    report = Engine(fake, observer).swap(options(drain_hook=("POST", "/admin/drain")))
    assert report.drain is not None and report.drain.hook == (("http://blue:8080/admin/drain", 202),)
    assert not [line for line in observer.lines if line.startswith("!!")]


def test_with_keepalive_min_timeout_the_drain_hook_waits_until_old_workers_stop_answering(fake: FakeHost) -> None:
    """Nginx >= 1.27.4 with keepalive_min_timeout: old workers answer recently used connections
    (through the old config) that long after the switch; the old slot must still take that work."""
    fake.nginx_version = "nginx version: nginx/1.30.6"
    fake.main_extra = "keepalive_min_timeout 300ms;"
    started = time.monotonic()
    report = Engine(fake, Quiet()).swap(options(drain_hook=("POST", "/admin/drain")))
    assert report.drain is not None and report.drain.keepalive_min_ms == 300
    hook_at = next(at for at, urls in fake.http_calls if urls == ("http://blue:8080/admin/drain",))
    assert hook_at - started >= 0.3, "not before the old workers' last answers"
    assert "called 300 ms after the switch: keepalive_min_timeout" in report.drain.summary()


def test_before_nginx_1_27_4_the_drain_hook_is_called_at_once(fake: FakeHost) -> None:
    fake.main_extra = "keepalive_timeout 30s;"
    report = Engine(fake, Quiet()).swap(options(drain_hook=("POST", "/admin/drain")))
    assert report.drain is not None and report.drain.keepalive_min_ms == 0
    after_switch = fake.calls[fake.calls.index("reload_and_confirm") :]
    assert "dump_config" not in after_switch, "nginx 1.22 has no such directive: no nginx -T for it"


def test_a_config_error_in_another_file_names_that_file_not_the_template(fake: FakeHost, engine: Engine) -> None:
    fake.full_config_error = 'unknown directive "bluegreen_no_such_directive" in /etc/nginx/site/zz-broken.conf:1'
    with pytest.raises(ConfigTestError) as raised:
        engine.swap(options())
    assert "the error is in /etc/nginx/site/zz-broken.conf, a file this swap does not write" in raised.value.fix
    assert "template" not in raised.value.fix
