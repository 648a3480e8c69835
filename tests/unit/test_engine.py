"""The swap sequence against the fake LB: what is refused, what is rolled back, what is left alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import LB_CONFIG, FakeTransport

from swap_action import engine as engine_module
from swap_action.engine import Engine
from swap_action.errors import (
    ConfigTestError,
    HealthCheckError,
    InputError,
    LockError,
    ReloadError,
    RollbackError,
    StateError,
    VerificationError,
)
from swap_action.inputs import Slots, SwapOptions
from swap_action.nginx import LoadBalancer
from swap_action.timeline import Step
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

    def step_started(self, name: str) -> None:
        pass

    def step_finished(self, step: Step) -> None:
        self.lines.append(f"{'ok' if step.ok else 'ERR'} {step.name} {step.detail}")

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
def fake() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def engine(fake: FakeTransport) -> Engine:
    return Engine(LoadBalancer(fake), Quiet())


@pytest.fixture(autouse=True)
def fast_lock_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "LOCK_POLL_SECONDS", 0.01)


def live_state(fake: FakeTransport) -> tuple[str | None, dict[str, int]]:
    text = fake.live_text()
    assert text is not None
    state = parse_state(text)
    return state.live, state.weights


def test_swap_to_green(engine: Engine, fake: FakeTransport) -> None:
    report = engine.swap(options(verify_expect="green"))
    assert report.changed and report.active_slot == "green" and report.previous_slot == "blue"
    assert live_state(fake) == ("green", {"blue": 0, "green": 100})
    assert fake.served_slot() == "green"
    assert fake.reloads == 1
    text = fake.live_text()
    assert text is not None and "server blue:8080 down;" in text and "weight=0" not in text
    assert f"{LB_CONFIG}.lock" not in fake.dirs, "the lock is released"
    assert report.drain is not None and report.drain.outcome == "complete"
    assert "+# bluegreen-swap state:" in report.config_diff


def test_already_live_changes_nothing(engine: Engine, fake: FakeTransport) -> None:
    before = fake.live_text()
    report = engine.swap(options(to="blue"))
    assert report.changed is False
    assert report.active_slot == "blue" and report.target_slot == "blue"
    assert fake.writes == [], "nothing is written"
    assert fake.live_text() == before
    assert "reload_confirm.sh" not in fake.calls and "apply.sh" not in fake.calls


def test_unhealthy_target_is_refused_and_nothing_changes(engine: Engine, fake: FakeTransport) -> None:
    fake.apps["green:8080"].healthy = False
    before = fake.live_text()
    with pytest.raises(HealthCheckError) as caught:
        engine.swap(options())
    assert "green:8080/healthz answered 503" in caught.value.cause
    assert "no traffic was moved" in caught.value.fix
    assert fake.live_text() == before
    # Only a staged candidate was written (next to the live file), and it is gone again.
    assert all(".candidate-" in path for path in fake.writes)
    assert not [path for path in fake.files if ".candidate-" in path]
    assert "apply.sh" not in fake.calls and fake.reloads == 0
    assert fake.served_slot() == "blue"
    assert f"{LB_CONFIG}.lock" not in fake.dirs


def test_nginx_t_failure_leaves_the_file_unchanged(engine: Engine, fake: FakeTransport) -> None:
    before = fake.live_text()
    with pytest.raises(ConfigTestError) as caught:
        engine.swap(options(template=WEIGHT_ZERO_TEMPLATE))
    assert 'invalid parameter "weight=0"' in caught.value.cause
    assert "down" in caught.value.fix
    assert fake.live_text() == before
    assert "apply.sh" not in fake.calls and fake.reloads == 0
    assert not [path for path in fake.files if ".candidate-" in path], "the candidate is removed"


def test_whole_config_test_failure_puts_the_file_back(engine: Engine, fake: FakeTransport) -> None:
    fake.full_config_error = 'duplicate upstream "app" in /etc/nginx/conf.d/old.conf:1'
    before = fake.live_text()
    with pytest.raises(ConfigTestError) as caught:
        engine.swap(options())
    assert "duplicate upstream" in caught.value.cause
    assert "another file already defines this upstream" in caught.value.fix
    assert fake.live_text() == before
    assert fake.reloads == 0 and fake.served_slot() == "blue"


def test_verification_failure_rolls_back(engine: Engine, fake: FakeTransport) -> None:
    fake.apps["green:8080"].fail = True
    before = parse_state(fake.live_text() or "")
    with pytest.raises(VerificationError) as caught:
        engine.swap(options())
    assert "answered 500" in caught.value.cause
    assert "The previous config was restored: blue is live." in caught.value.fix
    report = engine.last_report
    assert report is not None and report.rolled_back and report.active_slot == "blue"
    assert [s.name for s in report.steps][-1] == "rollback"
    after = parse_state(fake.live_text() or "")
    assert (after.live, after.weights, after.slots, after.previous) == (
        before.live,
        before.weights,
        before.slots,
        before.previous,
    )
    assert fake.served_slot() == "blue"
    assert fake.reloads == 2, "the swap, then the rollback"


def test_verify_expect_text_not_served_rolls_back(engine: Engine, fake: FakeTransport) -> None:
    with pytest.raises(VerificationError) as caught:
        engine.swap(options(verify_expect="purple"))
    assert "expected 'purple'" in caught.value.cause
    assert fake.served_slot() == "blue"


def test_no_rollback_leaves_the_failed_swap_live(engine: Engine, fake: FakeTransport) -> None:
    fake.apps["green:8080"].fail = True
    with pytest.raises(VerificationError):
        engine.swap(options(rollback_on_failure=False))
    assert engine.last_report is not None and not engine.last_report.rolled_back
    assert live_state(fake)[0] == "green"


def test_silently_refused_reload_rolls_back(engine: Engine, fake: FakeTransport) -> None:
    fake.refuse_reloads = 1
    with pytest.raises(ReloadError) as caught:
        engine.swap(options(confirm_timeout=0.5))
    assert "not live after" in caught.value.cause
    assert live_state(fake)[0] == "blue"
    assert engine.last_report is not None and engine.last_report.rolled_back


def test_rollback_that_fails_too_needs_a_human(engine: Engine, fake: FakeTransport) -> None:
    fake.refuse_reloads = 2
    with pytest.raises(RollbackError) as caught:
        engine.swap(options(confirm_timeout=0.5))
    assert caught.value.cause.startswith("rollback failed too")
    assert f"restore {LB_CONFIG}.previous by hand" in caught.value.fix


def test_lock_held_raises_lock_error_after_the_timeout(engine: Engine, fake: FakeTransport) -> None:
    lock = fake.hold_lock("another-run-42")
    before = fake.live_text()
    with pytest.raises(LockError) as caught:
        engine.swap(options(lock_timeout=0.2))
    assert "another-run-42" in caught.value.cause
    assert lock in caught.value.fix
    assert lock in fake.dirs, "someone else's lock is left alone"
    assert fake.calls.count("lock.sh") >= 2, "it waited and retried"
    assert fake.live_text() == before and fake.writes == []


def test_auto_without_state_is_an_input_error(fake: FakeTransport) -> None:
    empty = FakeTransport(managed="")
    engine = Engine(LoadBalancer(empty), Quiet())
    with pytest.raises(InputError) as caught:
        engine.swap(options(to="auto", slots=Slots(blue=("blue:8080",), green=("green:8080",))))
    assert caught.value.input_name == "to"
    assert empty.writes == []


def test_auto_with_an_unreadable_file_is_an_input_error() -> None:
    # A file without state line and no slot comments: the live slot cannot be told.
    fake = FakeTransport(managed="upstream app {\n    server blue:8080;\n}\n")
    engine = Engine(LoadBalancer(fake), Quiet())
    with pytest.raises(InputError) as caught:
        engine.swap(options(to="auto", slots=Slots(blue=("blue:8080",), green=("green:8080",))))
    assert caught.value.input_name == "to"


def test_first_swap_without_managed_file(fake: FakeTransport) -> None:
    empty = FakeTransport(managed="")
    engine = Engine(LoadBalancer(empty), Quiet())
    report = engine.swap(options(slots=Slots(blue=("blue:8080",), green=("green:8080",))))
    assert report.changed and live_state(empty)[0] == "green"


def test_auto_goes_there_and_back(engine: Engine, fake: FakeTransport) -> None:
    assert engine.swap(options(to="auto")).active_slot == "green"
    assert engine.swap(options(to="auto")).active_slot == "blue"
    assert fake.served_slot() == "blue"


def test_rollback_goes_to_the_recorded_previous_slot(engine: Engine, fake: FakeTransport) -> None:
    with pytest.raises(StateError):
        engine.rollback(options())  # the initial file records no previous slot
    engine.swap(options())
    report = engine.rollback(options())
    assert report.changed and report.active_slot == "blue"
    assert fake.served_slot() == "blue"


def test_canary_steps_reload_once_per_step(engine: Engine, fake: FakeTransport) -> None:
    report = engine.swap(options(steps=(10, 50, 100)))
    assert [r["step"] for r in report.reloads] == ["10% to green", "50% to green", "100% to green"]
    assert live_state(fake) == ("green", {"blue": 0, "green": 100})


def test_plan_changes_nothing(engine: Engine, fake: FakeTransport) -> None:
    before = fake.live_text()
    report = engine.plan(options())
    assert report.dry_run and not report.changed
    assert "-    server blue:8080;  # slot=blue" in report.config_diff
    assert fake.live_text() == before
    assert fake.writes == [f for f in fake.writes if ".candidate-" in f], "only the throw-away candidate"
    assert fake.reloads == 0


def test_one_slot_given_keeps_the_other_from_the_file(engine: Engine, fake: FakeTransport) -> None:
    fake.apps["green2:8080"] = fake.apps["green:8080"]
    report = engine.swap(options(slots=Slots(blue=(), green=("green2:8080",))))
    assert report.changed
    state = parse_state(fake.live_text() or "")
    assert state.blue == ("blue:8080",) and state.green == ("green2:8080",)


def test_target_slot_without_servers_is_refused() -> None:
    fake = FakeTransport(managed="")
    engine = Engine(LoadBalancer(fake), Quiet())
    with pytest.raises(InputError) as caught:
        engine.swap(options(slots=Slots(blue=("blue:8080",), green=())))
    assert caught.value.input_name == "green"
    assert fake.writes == []


def test_a_run_that_died_inside_apply_is_settled_by_the_next_one(fake: FakeTransport) -> None:
    """apply.sh had put its candidate in place and died before deciding: the next run restores the
    bytes Nginx still serves (no reload followed), says so, then swaps as asked."""
    served = fake.live_text()
    fake.files[f"{LB_CONFIG}.before-swap"] = served.encode()
    fake.files[LB_CONFIG] = b"upstream app { server green:8080 weight=0; }\n"  # never reloaded
    observer = Quiet()
    report = Engine(LoadBalancer(fake), observer).swap(options())
    assert any("died while applying" in line for line in observer.lines)
    assert report.changed and report.active_slot == "green"
    assert f"{LB_CONFIG}.before-swap" not in fake.files
    assert fake.files[f"{LB_CONFIG}.previous"].decode() == served
