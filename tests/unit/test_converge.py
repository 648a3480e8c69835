"""A run that stopped between writing the file and reloading: the next run converges, never trusts
the file alone."""

from __future__ import annotations

import contextlib

from fakes import LB_CONFIG, FakeHost
from test_engine import Quiet, options

from swap_action.engine import Engine
from swap_action.outcome import Result
from swap_action.upstream import parse_state


def test_a_file_nginx_does_not_serve_is_reloaded_when_it_already_names_the_target() -> None:
    fake = FakeHost()
    before = fake.served
    Engine(fake, Quiet()).swap(options(to="green"))
    written = fake.files[LB_CONFIG]
    fake.served = before  # as if the run had died after writing green, before its reload
    quiet = Quiet()
    fake.calls.clear()

    report = Engine(fake, quiet).swap(options(to="green"))

    assert "reload_and_confirm" in fake.calls and "install" not in fake.calls
    assert fake.served == written, "Nginx now serves the file"
    assert report.outcome.result is Result.SWAPPED and report.outcome.changed and report.outcome.active == "green"
    assert report.outcome.previous is None, "what Nginx served before is not what the file said"
    assert any("Nginx serves generation" in line for line in quiet.lines)


def test_a_file_nginx_serves_is_left_alone() -> None:
    fake = FakeHost()
    Engine(fake, Quiet()).swap(options(to="green"))
    fake.calls.clear()
    report = Engine(fake, Quiet()).swap(options(to="green"))
    assert "reload_and_confirm" not in fake.calls
    assert report.outcome.result is Result.UNCHANGED
    state = parse_state(fake.files[LB_CONFIG])
    assert state is not None and state.live == "green"


def test_a_connection_lost_during_install_leaves_the_outcome_in_doubt_not_unchanged() -> None:
    from swap_action.errors import TransportError

    class Broken(FakeHost):
        def install(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            super().install(*args, **kwargs)  # type: ignore[arg-type]
            raise TransportError("SSH command 'sh' failed: connection reset", "check the connection")

    fake = Broken()
    engine = Engine(fake, Quiet())
    with contextlib.suppress(TransportError):
        engine.swap(options(to="green"))
    assert engine.last_report is not None
    outcome = engine.last_report.outcome
    assert outcome.in_doubt and outcome.active is None and outcome.result is Result.FAILED
    assert "may be live" in outcome.state_sentence()
