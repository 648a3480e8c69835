"""The lock's lease: renewed while the run lives, lost to a takeover or a silence, never raced."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from fakes import LB_CONFIG, FakeHost, Lock
from test_engine import Quiet, options

from swap_action import lease as lease_module
from swap_action import run as run_module
from swap_action.engine import Engine
from swap_action.errors import LockError, TransportError
from swap_action.host import LockStatus
from swap_action.lease import Lease
from swap_action.outcome import Result

LOCK = f"{LB_CONFIG}.lock"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "LOCK_POLL_SECONDS", 0.01)
    monkeypatch.setattr(lease_module, "RENEW_EVERY_SECONDS", 0.02)


def test_a_renewed_lease_stays_valid_however_long_the_run() -> None:
    fake, clock = FakeHost(), Clock()
    fake.locks[LOCK] = Lock("me")
    lease = Lease(fake, LOCK, "me", lease_s=15, clock=clock)
    for _ in range(100):  # 100 renewals 10 s apart: 1000 s, far past one lease
        clock.now += 10
        lease.renew()
        lease.check()
    assert lease.renewals == 100 and lease.lost is None


def test_a_takeover_is_seen_at_the_next_renewal_and_stops_changes() -> None:
    fake = FakeHost()
    fake.locks[LOCK] = Lock("me")
    lease = Lease(fake, LOCK, "me")
    fake.locks[LOCK] = Lock("https://github.com/o/r/actions/runs/7 (1)")
    lease.renew()
    with pytest.raises(LockError) as caught:
        lease.check()
    assert "actions/runs/7" in caught.value.cause
    assert "status" in caught.value.fix


def test_renewals_that_do_not_get_through_lose_the_lease_before_it_ends_on_the_lb() -> None:
    class Unreachable(FakeHost):
        def renew(self, lock_dir: str, owner: str, lease_s: int) -> LockStatus:
            raise TransportError("connection reset", "check the network")

    clock = Clock()
    lease = Lease(Unreachable(), LOCK, "me", lease_s=15, clock=clock)
    clock.now += 11
    lease.renew()
    lease.check()  # 11 s of silence: still inside the lease minus its margin
    clock.now += 2
    lease.renew()
    assert lease.failures == 2
    with pytest.raises(LockError, match="could not be renewed for 13s"):
        lease.check()


def test_the_lease_thread_renews_while_the_run_waits_and_stops_at_release() -> None:
    fake = FakeHost()
    engine = Engine(fake, Quiet())
    report = engine.swap(options(steps=(50, 100), step_pause=0.3))
    assert report.outcome.result is Result.SWAPPED
    assert fake.renewals >= 5, "renewed through the canary pause"
    after = fake.renewals
    time.sleep(0.1)
    assert fake.renewals == after, "no renewal after release"
    assert LOCK not in fake.locks


def test_a_run_whose_lock_was_taken_over_changes_nothing_more_and_does_not_restore() -> None:
    class Thief(FakeHost):
        def renew(self, lock_dir: str, owner: str, lease_s: int) -> LockStatus:
            if (
                "reload_and_confirm" in self.calls
            ):  # mid-canary, after the first step's reload, the lock goes to another run
                self.locks[lock_dir] = Lock("thief-run")
            return super().renew(lock_dir, owner, lease_s)

    fake = Thief()
    engine = Engine(fake, Quiet())
    with pytest.raises(LockError, match="thief-run"):
        engine.swap(options(steps=(50, 100), step_pause=0.3))
    first_reload = fake.calls.index("reload_and_confirm")
    assert "install" not in fake.calls[first_reload:], "the second step was never installed"
    assert "restore" not in " ".join(fake.calls)
    outcome = engine.last_report.outcome if engine.last_report else None
    assert outcome is not None and outcome.result is Result.FAILED and outcome.changed
    assert fake.locks[LOCK].owner == "thief-run", "the new holder's lock is left alone"
    assert any("not restoring" in line for line in engine.observer.lines)  # type: ignore[attr-defined]


def test_break_lock_removes_a_cancelled_runs_lock_and_names_it() -> None:
    fake = FakeHost()
    fake.hold_lock("https://github.com/o/r/actions/runs/5 (1)")
    quiet = Quiet()
    report = Engine(fake, quiet).swap(replace(options(), break_lock=True))
    assert report.outcome.result is Result.SWAPPED
    assert fake.calls[:2] == ["break_lock", "begin"]
    assert any("broke the lock held by https://github.com/o/r/actions/runs/5" in line for line in quiet.lines)
