"""The preflight: the engine manages only a file the running Nginx loads in its http block, finds it
when config-path is not given, and stops before anything is written when it cannot tell."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fakes import LB_CONFIG, FakeHost

from swap_action.engine import Engine
from swap_action.errors import InputError
from swap_action.inputs import Slots, SwapOptions
from swap_action.outcome import Phase

SLOTS = Slots(blue=("blue:8080",), green=("green:8080",))


class Quiet:
    def step_started(self, step: object) -> None: ...
    def step_finished(self, step: object) -> None: ...
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...


def options(**changes: object) -> SwapOptions:
    base = SwapOptions(config_path=LB_CONFIG, upstream="app", slots=SLOTS, to="green", lock_timeout=1.0)
    return replace(base, **changes)  # type: ignore[arg-type]


def refused(fake: FakeHost, **changes: object) -> InputError:
    before = dict(fake.files)
    engine = Engine(fake, Quiet())
    with pytest.raises(InputError) as caught:
        engine.swap(options(**changes))
    assert fake.files == before, "nothing was written"
    assert fake.locks == {} and fake.reloads == 0
    report = engine.last_report
    assert report is not None and report.outcome.changed is False
    return caught.value


def test_without_config_path_the_file_that_defines_the_upstream_is_found() -> None:
    fake = FakeHost()
    report = Engine(fake, Quiet()).swap(options(config_path=None))
    assert report.outcome.active == "green" and fake.served_slot() == "green"
    discovery = report.steps[0]
    assert discovery.phase is Phase.PROBE and LB_CONFIG in discovery.detail
    assert fake.calls.index("dump_config") < fake.calls.index("begin"), "found before the lock is taken"


def test_a_wrong_config_path_names_the_right_file_and_writes_nothing() -> None:
    fake = FakeHost()
    error = refused(fake, config_path="/etc/nginx/conf.d/upstream.conf")
    assert "Nginx would not load a file created there" in error.cause
    assert f"'app' in {LB_CONFIG}" in error.cause


def test_a_file_nginx_does_not_include_is_refused() -> None:
    fake = FakeHost()
    fake.files["/etc/nginx/other/upstream.conf"] = fake.files[LB_CONFIG]
    error = refused(fake, config_path="/etc/nginx/other/upstream.conf")
    assert "does not include /etc/nginx/other/upstream.conf at all" in error.cause


def test_two_hand_written_files_defining_the_upstream_are_ambiguous() -> None:
    fake = FakeHost(managed="upstream app {\n    server blue:8080;\n}\n")
    fake.files["/etc/nginx/bluegreen/copy.conf"] = "upstream app {\n    server blue:8080;\n}\n"
    error = refused(fake, config_path=None)
    assert "defined in 2 files" in error.cause and "copy.conf" in error.cause


def test_the_file_with_the_state_line_wins_and_a_duplicate_is_named() -> None:
    fake = FakeHost()
    fake.files["/etc/nginx/bluegreen/copy.conf"] = "upstream app {\n    server blue:8080;\n}\n"
    error = refused(fake, config_path=None)
    assert "already defined in /etc/nginx/bluegreen/copy.conf" in error.cause


def test_no_file_defining_the_upstream_says_which_exist() -> None:
    fake = FakeHost(managed="upstream web {\n    server blue:8080;\n}\n")
    error = refused(fake, config_path=None)
    assert "no file Nginx loads defines 'upstream app'" in error.cause and "'web' in" in error.cause


def test_an_upstream_defined_elsewhere_is_a_duplicate() -> None:
    fake = FakeHost(managed="upstream app {\n    server blue:8080;\n    server green:8080 down;\n}\n")
    fake.main_extra = "upstream app { server blue:8080; }"
    error = refused(fake)
    assert "already defined in /etc/nginx/nginx.conf" in error.cause


def test_a_site_file_is_refused_with_the_adopt_command() -> None:
    site = "upstream app {\n    server blue:8080;\n}\nserver {\n    listen 80;\n    location / { proxy_pass http://app; }\n}\n"
    error = refused(FakeHost(managed=site))
    assert "next to server blocks" in error.cause and "python -m swap_action adopt" in error.fix


def test_a_file_that_is_not_the_upstreams_is_never_overwritten() -> None:
    error = refused(FakeHost(managed="map $http_x $y { default 1; }\n"), config_path=LB_CONFIG)
    assert "defines no 'upstream app'" in error.cause


def test_a_new_file_where_an_include_matches_is_created() -> None:
    fake = FakeHost(managed="")
    report = Engine(fake, Quiet()).swap(options())
    assert report.outcome.changed and fake.served_slot() == "green"


def test_a_file_nginx_serves_is_proven_by_its_own_marker_without_nginx_t() -> None:
    fake = FakeHost()
    engine = Engine(fake, Quiet())
    engine.swap(options())  # the first swap: nginx -T (the initial file's marker names no path)
    assert fake.calls.count("dump_config") == 1
    report = engine.swap(options(to="blue"))
    assert fake.calls.count("dump_config") == 1, "the marker answered this file's path and generation"
    assert "proof: its own marker" in report.steps[1].detail


def test_a_copy_of_the_served_file_elsewhere_is_not_proven_by_the_marker() -> None:
    fake = FakeHost()
    Engine(fake, Quiet()).swap(options())
    fake.files["/etc/nginx/other/upstream.conf"] = fake.files[LB_CONFIG]
    before, reloads = dict(fake.files), fake.reloads
    with pytest.raises(InputError) as caught:
        Engine(fake, Quiet()).swap(options(config_path="/etc/nginx/other/upstream.conf", to="blue"))
    assert "does not include /etc/nginx/other/upstream.conf" in caught.value.cause
    assert fake.files == before and fake.reloads == reloads
