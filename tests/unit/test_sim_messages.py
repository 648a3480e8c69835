"""The harness's messages name what to change: a missing program on the LB and its package, a
config it cannot read, the flags for long requests and WebSockets, and the CLI's new flags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from simulation.assertions import evaluate
from simulation.cli import build_parser, scenario_from
from simulation.lb_image import ImageError, missing_tools, missing_tools_message, user_config
from simulation.nginx_config import MAIN_CONF
from simulation.records import RequestRecord, WebSocketRecord
from simulation.scenario import RunResult, Scenario, SwapRun
from swap_action.outcome import DrainOutcome, Outcome, Phase, Result, Step, SwapReport

T0 = 1_700_000_000.0
SWAP_AT, CONFIRMED, DRAIN_AT = T0 + 2.0, T0 + 2.3, T0 + 2.4


def test_an_lb_without_curl_is_told_what_to_install() -> None:
    assert missing_tools("noise\nmissing: curl getent\n") == ["curl", "getent"]
    assert missing_tools("missing:\n") == []
    message = missing_tools_message("team/nginx:1.27", ["curl"])
    assert message.startswith("the LB image team/nginx:1.27 lacks curl:")
    assert "Install curl in the image (Debian/Ubuntu: apt-get install curl; Alpine: apk add curl)" in message


def test_nginx_conf_is_a_file_or_a_directory_holding_nginx_conf(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("http {}\n")
    assert user_config(conf) == {MAIN_CONF: b"http {}\n"}
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "site.conf").write_text("server {}\n")
    assert set(user_config(tmp_path)) == {MAIN_CONF, "/etc/nginx/conf.d/site.conf"}
    with pytest.raises(ImageError, match=r"must hold nginx\.conf"):
        user_config(tmp_path / "conf.d")
    with pytest.raises(ImageError, match="no such file or directory"):
        user_config(tmp_path / "missing")


def test_cli_flags_for_the_teams_lb_and_no_long_requests(tmp_path: Path) -> None:
    flags = ["--nginx-image", "nginx:1.27", "--nginx-conf", str(tmp_path), "--long-path", "none"]
    args = build_parser().parse_args(["run", *flags, "--path", "/get", "--upstream", "backend", "--ws-path", "none"])
    scenario = scenario_from(args)
    assert (scenario.lb_image, scenario.nginx_conf, scenario.upstream, scenario.path) == (
        "nginx:1.27",
        tmp_path,
        "backend",
        "/get",
    )
    assert (scenario.long_requests, scenario.long_path, scenario.websockets) == (0, None, 0)
    defaults = scenario_from(build_parser().parse_args(["run"]))
    assert defaults.long_requests == 5 and defaults.lb_image == "bluegreen/lb:dev" and defaults.nginx_conf is None


def _result(scenario: Scenario, ws: WebSocketRecord, hook: tuple[tuple[str, int], ...] = ()) -> RunResult:
    report = SwapReport(
        outcome=Outcome(Result.SWAPPED, True, "green", "blue", "green"),
        started_at=SWAP_AT,
        confirmed_at=CONFIRMED,
        steps=[Step(Phase.DRAIN, DRAIN_AT, slot="blue", duration_ms=3000.0)],
        drain=DrainOutcome("cut", 3000.0, 1, 1, hook),
    )
    long = RequestRecord("long", "keepalive", 1000, T0 + 1.0, T0 + 1.05, 200, 10, "blue", "b:1")
    steady = [
        RequestRecord("steady", "keepalive", 1, T0 + t / 10, T0 + t / 10 + 0.01, 200, 2, s, f"{s}:1")
        for t in range(50)
        for s in ["blue" if t < 23 else "green"]
    ]
    return RunResult(
        scenario=scenario,
        requests=[*steady, long],
        websockets=[ws],
        swaps=[SwapRun("green", report, None, SWAP_AT, SWAP_AT + 3.5)],
        traffic_started_at=T0,
        traffic_ended_at=T0 + 5.0,
        startup_s=1.0,
        wall_s=9.0,
        lb_workers_after=[],
        diagnostics={},
        slot_addresses={},
    )


def test_websockets_cut_because_the_app_has_no_drain_hook_name_both_flags() -> None:
    scenario = Scenario(websockets=1, long_requests=1, drain_hook="POST /admin/drain", drain_timeout=3.0)
    cut = WebSocketRecord(1, 1, T0 + 0.1, "blue", "b:1", DRAIN_AT + 3.0, 1006, "network", max_gap_s=0.1)
    check = next(
        c
        for c in evaluate(_result(scenario, cut, (("http://blue:8080/admin/drain", 404),)))
        if c.name == "websockets_drained"
    )
    assert not check.passed
    assert (
        "the drain hook 'POST /admin/drain' (it answered 404) did not make the app close them with 1001"
        in check.summary
    )
    assert "--drain-hook none --drain-policy cut" in check.summary and check.evidence["fix"] in check.summary


def test_websockets_left_open_without_a_hook_under_policy_wait_name_the_fix() -> None:
    scenario = Scenario(websockets=1, long_requests=1, drain_hook=None, drain_policy="wait", drain_timeout=3.0)
    late = WebSocketRecord(1, 1, T0 + 0.1, "blue", "b:1", DRAIN_AT + 6.0, 1000, "client", max_gap_s=0.1)
    check = next(c for c in evaluate(_result(scenario, late)) if c.name == "websockets_drained")
    assert not check.passed
    assert "the app has no drain hook" in check.summary and "--drain-policy wait leaves them" in check.summary
    assert "--drain-hook '[METHOD] /path'" in check.summary and "--drain-policy cut" in check.summary


def test_long_requests_over_before_the_switch_name_the_long_path_flag() -> None:
    scenario = replace(Scenario(websockets=1, long_requests=1), drain_hook=None)
    ws = WebSocketRecord(1, 1, T0 + 0.1, "blue", "b:1", DRAIN_AT + 3.0, 1006, "network", max_gap_s=0.1)
    check = next(c for c in evaluate(_result(scenario, ws)) if c.name == "in_flight_completed_on_old")
    assert not check.passed
    assert "0 spanned the switch; 1 ended before the switch was confirmed (the longest lasted 0.05 s)" in check.summary
    assert "--long-path none" in check.summary
