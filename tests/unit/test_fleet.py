"""A fleet of fake LBs swapped as one: prepare on all before any change, commit on all, and every
changed LB restored when one fails."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fakes import FakeHost
from test_engine import Quiet, options

from swap_action import run as run_module
from swap_action.errors import (
    ConfigTestError,
    HealthCheckError,
    LockError,
    ReloadError,
    StateError,
    SwapError,
    TransportError,
    VerificationError,
)
from swap_action.fleet import FleetEngine
from swap_action.outcome import Phase, Result
from swap_action.upstream import parse_state


@pytest.fixture(autouse=True)
def fast_lock_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "LOCK_POLL_SECONDS", 0.01)


def fleet(*hosts: FakeHost) -> FleetEngine:
    return FleetEngine([(f"docker://lb{i}", host) for i, host in enumerate(hosts, 1)], Quiet())


def snapshot(*hosts: FakeHost) -> list[dict[str, str]]:
    return [dict(host.files) for host in hosts]


def test_a_fleet_swap_moves_every_lb_and_reports_each_one_and_the_skew() -> None:
    one, two = FakeHost(), FakeHost()
    report = fleet(one, two).swap(options())
    assert (one.served_slot(), two.served_slot()) == ("green", "green")
    assert report.outcome.result is Result.SWAPPED and report.outcome.active == "green"
    assert [(lb.target, lb.before, lb.after, lb.changed) for lb in report.lbs] == [
        ("docker://lb1", "blue", "green", True),
        ("docker://lb2", "blue", "green", True),
    ]
    assert [(s.slot, s.percent, s.lbs) for s in report.skew] == [("green", 100, 2)]
    assert {reload.lb for reload in report.reloads} == {"docker://lb1", "docker://lb2"}
    assert {step.lb for step in report.steps if step.phase is Phase.RELOAD_CONFIRM} == {"docker://lb1", "docker://lb2"}


def test_prepare_checks_every_lb_before_any_applies() -> None:
    one, two = FakeHost(), FakeHost()
    fleet(one, two).swap(options())
    for host in (one, two):
        assert host.calls.index("check") < host.calls.index("install")
    # every check happened before the first install anywhere: the calls interleave by phase
    assert max(one.calls.index("check"), two.calls.index("check")) < min(
        one.calls.index("install"), two.calls.index("install")
    )


def test_a_config_one_lb_refuses_at_prepare_leaves_every_lb_byte_for_byte() -> None:
    one, two = FakeHost(), FakeHost()
    two.full_config_error = 'unknown directive "bogus" in /etc/nginx/conf.d/zz.conf:1'
    before = snapshot(one, two)
    engine = fleet(one, two)
    with pytest.raises(ConfigTestError, match="docker://lb2"):
        engine.swap(options())
    assert snapshot(one, two) == before
    assert (one.reloads, two.reloads) == (0, 0)
    report = engine.last_report
    assert report is not None and report.outcome.result is Result.FAILED and not report.outcome.changed
    assert "install" not in one.calls + two.calls


def test_an_unhealthy_target_seen_from_one_lb_changes_nothing_anywhere() -> None:
    one, two = FakeHost(), FakeHost()
    two.apps["green:8080"].healthy = False
    before = snapshot(one, two)
    with pytest.raises(HealthCheckError):
        fleet(one, two).swap(options())
    assert snapshot(one, two) == before


def test_a_reload_refused_on_one_lb_after_the_other_committed_restores_both() -> None:
    one, two = FakeHost(), FakeHost()
    two.emerg_on_reload = "bind() to 0.0.0.0:80 failed (98: Address already in use)"
    originals = (one.live_text(), two.live_text())
    engine = fleet(one, two)
    with pytest.raises(ReloadError, match="docker://lb2"):
        engine.swap(options())
    assert (one.served_slot(), two.served_slot()) == ("blue", "blue")
    assert (one.live_text(), two.live_text()) == originals
    report = engine.last_report
    assert report is not None
    assert report.outcome.result is Result.RESTORED and report.outcome.active == "blue"
    lb1, lb2 = report.lbs
    assert lb1.restored and lb1.after == "blue" and lb1.error is not None
    assert lb2.error is not None and "Address already in use" in lb2.error.cause
    # lb2 wrote its file before Nginx refused it: both files get their previous bytes back
    assert sorted(step.lb or "" for step in report.steps if step.phase is Phase.RESTORE) == [
        "docker://lb1",
        "docker://lb2",
    ]


def test_a_verify_failure_through_one_lb_restores_every_lb() -> None:
    one, two = FakeHost(), FakeHost()
    two.apps["green:8080"].fail = True
    with pytest.raises(VerificationError):
        fleet(one, two).swap(options())
    assert (one.served_slot(), two.served_slot()) == ("blue", "blue")


def test_an_lb_that_dies_at_commit_fails_the_run_with_the_others_restored() -> None:
    one, two = FakeHost(), FakeHost()

    def gone(*args: object, **kwargs: object) -> object:  # prepare went through; it dies before commit
        raise TransportError("docker://lb2 is gone (the container was killed)", "start it again")

    two.install = gone  # type: ignore[method-assign]
    engine = fleet(one, two)
    with pytest.raises(TransportError):
        engine.swap(options())
    assert one.served_slot() == "blue"
    report = engine.last_report
    assert report is not None and report.outcome.result is Result.FAILED
    assert report.lbs[0].restored and report.lbs[1].in_doubt and report.outcome.active is None


def test_lbs_that_disagree_stop_an_auto_swap_before_any_change_with_a_table() -> None:
    one, two = FakeHost(), FakeHost()
    fleet(two).swap(options())
    assert (parse_state(two.live_text() or "") or pytest.fail("no state")).live == "green"
    before = snapshot(one, two)
    with pytest.raises(StateError, match="docker://lb1: live blue; docker://lb2: live green"):
        fleet(one, two).swap(options(to="auto"))
    assert snapshot(one, two) == before


def test_a_named_slot_brings_lbs_that_disagree_onto_it() -> None:
    one, two = FakeHost(), FakeHost()
    fleet(two).swap(options())
    two_calls = len(two.calls)
    report = fleet(one, two).swap(options(to="green"))
    assert (one.served_slot(), two.served_slot()) == ("green", "green")
    assert "install" not in two.calls[two_calls:], "an LB already on the slot is left as it is"
    assert [lb.changed for lb in report.lbs] == [True, False]


def test_locks_are_taken_in_one_order_whatever_order_the_targets_are_given() -> None:
    order: list[str] = []
    hosts = {name: FakeHost() for name in ("docker://b", "docker://a", "docker://c")}
    for name, host in hosts.items():
        original = host.begin

        def begin(*args: object, _name: str = name, _original: object = original, **kwargs: object) -> object:
            order.append(_name)
            return _original(*args, **kwargs)  # type: ignore[operator]

        host.begin = begin  # type: ignore[method-assign]
    FleetEngine(list(hosts.items()), Quiet()).swap(options())
    assert order == ["docker://a", "docker://b", "docker://c"]


def test_a_lock_held_on_one_lb_fails_the_run_and_frees_the_locks_it_took() -> None:
    one, two = FakeHost(), FakeHost()
    two.hold_lock()
    with pytest.raises(LockError, match="docker://lb2"):
        fleet(one, two).swap(options(lock_timeout=0.05))
    assert one.locks == {}, "lb1's lock was released"
    assert one.reloads == 0


def test_canary_steps_move_all_lbs_step_by_step_with_a_skew_per_step() -> None:
    one, two = FakeHost(), FakeHost()
    report = fleet(one, two).swap(options(steps=(10, 50, 100)))
    assert [(s.percent, s.lbs) for s in report.skew] == [(10, 2), (50, 2), (100, 2)]
    installs = [(step.lb, step.percent) for step in report.steps if step.phase is Phase.APPLY]
    assert sorted(installs) == sorted((lb, p) for lb in ("docker://lb1", "docker://lb2") for p in (10, 50, 100))
    assert (one.served_slot(), two.served_slot()) == ("green", "green")


def test_a_plan_of_a_fleet_changes_nothing_and_shows_each_diff() -> None:
    one, two = FakeHost(), FakeHost()
    before = snapshot(one, two)
    report = fleet(one, two).plan(options())
    assert snapshot(one, two) == before
    assert report.outcome.result is Result.PLANNED and report.config_diff.count("+++") == 2


def test_a_pre_switch_hook_failure_changes_nothing_on_any_lb() -> None:
    one, two = FakeHost(), FakeHost()
    before = snapshot(one, two)
    engine = fleet(one, two)
    with pytest.raises(SwapError, match="pre-switch"):
        engine.swap(options(pre_switch="echo migrating; exit 3"))
    assert snapshot(one, two) == before and (one.reloads, two.reloads) == (0, 0)
    report = engine.last_report
    assert report is not None and [hook.exit_code for hook in report.hooks] == [3]
    assert "migrating" in report.hooks[0].output


def test_a_post_switch_hook_failure_restores_every_lb() -> None:
    one, two = FakeHost(), FakeHost()
    engine = fleet(one, two)
    with pytest.raises(SwapError, match="post-switch"):
        engine.swap(options(post_switch="exit 1"))
    assert (one.served_slot(), two.served_slot()) == ("blue", "blue")
    assert engine.last_report is not None and engine.last_report.outcome.result is Result.RESTORED


def test_hooks_see_the_swap_facts_and_run_in_order(tmp_path: Path) -> None:
    log = f"{tmp_path}/hooks.log"
    record = f'echo "$SWAP_HOOK $SWAP_LIVE_SLOT $SWAP_TARGET_SLOT $SWAP_LBS" >> {log}'
    fleet(FakeHost(), FakeHost()).swap(options(pre_switch=record, post_switch=record, post_drain=record))
    with open(log) as lines:
        assert lines.read().splitlines() == [
            f"{hook} blue green docker://lb1,docker://lb2" for hook in ("pre-switch", "post-switch", "post-drain")
        ]


def test_one_lb_through_the_fleet_engine_is_the_single_lb_sequence_with_its_lbs_row() -> None:
    host = FakeHost()
    report = FleetEngine([("docker://only", host)], Quiet()).swap(options())
    assert host.served_slot() == "green" and "check" not in host.calls, "one trip: gate, test, apply, reload"
    assert [(lb.target, lb.before, lb.after) for lb in report.lbs] == [("docker://only", "blue", "green")]
    assert report.skew == []


def test_the_lbs_run_their_phases_side_by_side() -> None:
    # Each fake blocks in check until the other has entered it too: only parallel runs finish.
    barrier = threading.Barrier(2, timeout=5)
    hosts = [FakeHost(), FakeHost()]
    for host in hosts:
        original = host.check

        def check(*args: object, _original: object = original, **kwargs: object) -> object:
            barrier.wait()
            return _original(*args, **kwargs)  # type: ignore[operator]

        host.check = check  # type: ignore[method-assign]
    fleet(*hosts).swap(options())
    assert [host.served_slot() for host in hosts] == ["green", "green"]


def test_an_lb_whose_container_is_gone_before_commit_is_not_in_doubt_and_the_run_is_restored() -> None:
    one, two = FakeHost(), FakeHost()

    def refused(*args: object, **kwargs: object) -> object:
        raise TransportError.unsent("docker exec into docker://lb2 failed: 409 is not running", "start it")

    two.install = refused  # type: ignore[method-assign]
    engine = fleet(one, two)
    with pytest.raises(TransportError, match="docker://lb2"):
        engine.swap(options())
    report = engine.last_report
    assert report is not None and report.outcome.result is Result.RESTORED and report.outcome.active == "blue"
    assert not report.lbs[1].in_doubt and report.lbs[0].restored


def test_commit_applies_on_every_lb_before_any_reloads() -> None:
    one, two = FakeHost(), FakeHost()
    order: list[str] = []
    for name, host in (("lb1", one), ("lb2", two)):
        install, reload = host.install, host.reload_and_confirm

        def traced_install(*args: object, _name: str = name, _f: object = install, **kwargs: object) -> object:
            order.append(f"{_name} install")
            return _f(*args, **kwargs)  # type: ignore[operator]

        def traced_reload(*args: object, _name: str = name, _f: object = reload, **kwargs: object) -> object:
            order.append(f"{_name} reload")
            return _f(*args, **kwargs)  # type: ignore[operator]

        host.install = traced_install  # type: ignore[method-assign]
        host.reload_and_confirm = traced_reload  # type: ignore[method-assign]
    fleet(one, two).swap(options())
    assert sorted(order[:2]) == ["lb1 install", "lb2 install"] and sorted(order[2:]) == ["lb1 reload", "lb2 reload"]
