"""The harness's fleet and staging parts, without Docker: clients dealt out over the LBs in turn
(two local servers on 127.0.0.1 stand in for two LBs), the fleet's assertions (every LB drained
and on the new slot, the skew under its bound, every LB on one slot at the end), the staging
route's assertion (the idle slot outside the switch windows), the per-LB report rows in
report.json, the terminal and the HTML, the staging route in the LB's config, and the flags."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from local_server import server

from simulation.assertions import evaluate
from simulation.bad_swaps import BAD_SWAPS, BOGUS_DIRECTIVE, break_config_command
from simulation.cli import build_parser, scenario_from
from simulation.fleet_checks import (
    drain_finished_every_lb,
    lbs_end_on_one_slot,
    live_after_run,
    skew_within_bound,
    traffic_on_new_slot_every_lb,
)
from simulation.html import render_html
from simulation.lb_setup import MARK, OWN_STAGING, StagingSite, plan_lb
from simulation.nginx_config import MAIN_CONF, Tree
from simulation.records import LbEndState, RequestRecord
from simulation.report import build, summary_lines
from simulation.scenario import RunResult, Scenario, SwapRun, check_scenario
from simulation.staging import STAGING_HOST, idle_at, staging_idle, switch_windows
from simulation.traffic import RoundRobin, Traffic, TrafficPlan
from swap_action.errors import InputError
from swap_action.outcome import (
    DrainOutcome,
    ErrorInfo,
    LbOutcome,
    Outcome,
    Phase,
    Reload,
    Result,
    Skew,
    Step,
    SwapReport,
)

T0 = 1_700_000_000.0
SWAP_AT = T0 + 2.0
CONFIRMED = SWAP_AT + 0.3
LBS = ("bgsim-x-lb", "bgsim-x-lb2")


# -- round robin -----------------------------------------------------------------------------------
def test_round_robin_deals_the_lbs_out_in_turn_from_its_start() -> None:
    pick = RoundRobin(3)
    assert [pick() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    shifted = RoundRobin(2, start=3)
    assert [shifted() for _ in range(4)] == [1, 0, 1, 0]
    assert [RoundRobin(0)() for _ in range(2)] == [0, 0], "no LB list: the one base URL"


def test_a_plan_without_lb_urls_uses_its_base_url() -> None:
    assert TrafficPlan("http://a").urls == ("http://a",)
    assert TrafficPlan("http://a", lb_urls=("http://a", "http://b")).urls == ("http://a", "http://b")


async def _spread(arrivals: str, *, staging: bool = False) -> tuple[Traffic, list[int]]:
    async with server() as one, server() as two:
        plan = TrafficPlan(
            one.url, rate=200.0, keepalive_clients=8, fresh_clients=2, ws_path=None, processes=1,
            long_path="/", lb_urls=(one.url, two.url),
        )  # fmt: skip
        plan.arrivals = arrivals
        traffic = Traffic(plan, lambda upstream: "blue" if upstream else None)
        traffic.start_steady()
        traffic.start_long(4)
        if staging:
            traffic.start_staging(20.0, STAGING_HOST)
        await asyncio.sleep(1.0)
        await traffic.stop()
        return traffic, [len(one.served), len(two.served)]


def test_open_loop_requests_go_to_each_lb_in_turn_and_say_which() -> None:
    traffic, served = asyncio.run(_spread("constant", staging=True))
    steady = [r for r in traffic.requests if r.kind == "steady"]
    by_lb = Counter(r.lb for r in steady)
    assert set(by_lb) == {0, 1} and abs(by_lb[0] - by_lb[1]) <= 2, by_lb
    for model in ("keepalive", "fresh"):
        counts = Counter(r.lb for r in steady if r.model == model)
        assert abs(counts[0] - counts[1]) <= 1, (model, counts)
    # What each server saw is what the records say went to it.
    assert served == [sum(1 for r in traffic.requests if r.lb == lb) for lb in (0, 1)]
    assert Counter(r.lb for r in traffic.requests if r.kind == "long") == {0: 2, 1: 2}
    staging = [r for r in traffic.requests if r.kind == "staging"]
    assert len(staging) >= 10 and {r.lb for r in staging} == {0, 1} and not any(r.failed for r in staging)
    assert all(not r.failed for r in steady)


def test_closed_loop_clients_keep_their_lb() -> None:
    traffic, _served = asyncio.run(_spread("closed"))
    lbs_of: dict[int, set[int]] = {}
    for r in traffic.requests:
        if r.kind == "steady":
            lbs_of.setdefault(r.client, set()).add(r.lb)
    assert all(len(lbs) == 1 for lbs in lbs_of.values())
    assert Counter(next(iter(lbs)) for lbs in lbs_of.values()) == {0: 5, 1: 5}


# -- a fleet run, by hand --------------------------------------------------------------------------
def _drain(ms: float = 900.0, outcome: str = "complete") -> DrainOutcome:
    return DrainOutcome(outcome, ms, 0, 0, (("http://blue:8080/admin/drain", 202),))


def _lb(index: int, **changes: object) -> LbOutcome:
    lb = LbOutcome(
        target=f"docker://{LBS[index]}", before="blue", after="green", changed=True,
        confirmed_at=CONFIRMED + index * 0.012, drain=_drain(900.0 + index * 100),
    )  # fmt: skip
    return replace(lb, **changes)  # type: ignore[arg-type]


def _swap_report(*, lbs: list[LbOutcome] | None = None, skew_ms: float | None = 12.0) -> SwapReport:
    lbs = lbs if lbs is not None else [_lb(0), _lb(1)]
    reloads = [
        Reload("g1", "green", 100, SWAP_AT + 0.1, reload_at_ms=int((SWAP_AT + 0.15) * 1000), confirmed_ms=150, lb=name)
        for name in (lb.target for lb in lbs)
    ]
    return SwapReport(
        outcome=Outcome(Result.SWAPPED, True, "green", "blue", "green"),
        started_at=SWAP_AT,
        duration_ms=1400.0,
        confirmed_at=CONFIRMED + 0.012,
        steps=[Step(Phase.DRAIN, SWAP_AT + 0.4, slot="blue", duration_ms=1000.0, lb=lb.target) for lb in lbs],
        reloads=reloads,
        drain=_drain(1000.0),
        lbs=lbs,
        skew=[Skew("green", 100, CONFIRMED, CONFIRMED + skew_ms / 1000, 2)] if skew_ms is not None else [],
    )


def _requests(switch: float = CONFIRMED) -> list[RequestRecord]:
    records = []
    for i in range(60):
        start = T0 + i / 10
        slot = "blue" if start < switch else "green"
        records.append(
            RequestRecord("steady", "keepalive", 1, start, start + 0.002, 200, 3, slot, f"{slot}:8080", lb=i % 2)
        )
    return records


def _result(report: SwapReport | None = None, *, error: ErrorInfo | None = None, **scenario: object) -> RunResult:
    report = report or _swap_report()
    final = "blue" if error else "green"
    return RunResult(
        scenario=Scenario(**{"lbs": 2, "websockets": 0, "long_requests": 0, "rate": 10, **scenario}),  # type: ignore[arg-type]
        requests=_requests(),
        websockets=[],
        swaps=[SwapRun("green", report, error, SWAP_AT, SWAP_AT + 1.5)],
        traffic_started_at=T0,
        traffic_ended_at=T0 + 6.0,
        startup_s=1.0,
        wall_s=9.0,
        lb_workers_after=[],
        diagnostics={},
        slot_addresses={"172.29.0.2:8080": "blue", "172.29.0.3:8080": "green"},
        lb_names=list(LBS),
        end_states=[LbEndState(i, name, final, {final: 5}) for i, name in enumerate(LBS)],
    )


def test_a_good_fleet_swap_passes_every_fleet_assertion() -> None:
    checks = {c.name: c for c in evaluate(_result())}
    for name in ("drain_finished_every_lb", "traffic_on_new_slot_every_lb", "skew_within_bound", "lbs_end_on_one_slot"):
        assert checks[name].passed, checks[name].summary
    assert (
        "widest 12 ms" in checks["skew_within_bound"].summary and "bound 250 ms" in checks["skew_within_bound"].summary
    )
    assert "lb1 100.0% of" in checks["traffic_on_new_slot_every_lb"].summary
    assert "every LB on green" in checks["lbs_end_on_one_slot"].summary


def test_one_lb_evaluates_exactly_the_assertions_of_before() -> None:
    names = [c.name for c in evaluate(_result(lbs=1))]
    assert names == [
        "swaps_completed", "load_held", "zero_failed_requests", "in_flight_completed_on_old",
        "no_new_requests_on_old", "websockets_drained", "drain_finished", "client_libraries", "traffic_on_new_slot",
    ]  # fmt: skip


def test_skew_over_the_bound_or_unmeasured_fails() -> None:
    over = skew_within_bound(_result(_swap_report(skew_ms=300.0)))
    assert not over.passed and "widest 300 ms" in over.summary and "over the bound" in over.summary
    tight = skew_within_bound(_result(_swap_report(skew_ms=30.0), max_skew=0.02))
    assert not tight.passed and tight.evidence["bound_ms"] == 20.0
    missing = skew_within_bound(_result(_swap_report(skew_ms=None)))
    assert not missing.passed and "no skew to measure" in missing.summary


def test_an_lb_whose_drain_was_cut_or_missing_fails_the_every_lb_drain() -> None:
    cut = drain_finished_every_lb(_result(_swap_report(lbs=[_lb(0), _lb(1, drain=_drain(15000.0, "cut"))])))
    assert not cut.passed and "swap 1 lb2 (bgsim-x-lb2)" in cut.summary
    missing = drain_finished_every_lb(_result(_swap_report(lbs=[_lb(0)])))
    assert not missing.passed and "lb2" in missing.summary and "no drain" in missing.summary


def test_one_lb_left_on_the_old_slot_fails_traffic_on_new_slot_every_lb() -> None:
    result = _result()
    for r in result.requests:
        if r.lb == 1 and r.start > SWAP_AT + 2.0:
            r.slot = "blue"
    check = traffic_on_new_slot_every_lb(result)
    assert not check.passed and "lb1 100.0% of 12" in check.summary and "lb2 23.1% of 13" in check.summary
    assert check.evidence["lbs"][1]["by_slot"] == {"green": 3, "blue": 10}


def test_a_failed_fleet_swap_must_leave_every_lb_on_the_old_slot() -> None:
    refused = ErrorInfo("ConfigTestError", "nginx -t refused", "lb2: unknown directive", "check the config")
    lbs = [
        _lb(0, after="blue", changed=False, restored=True, drain=None, error=refused),
        _lb(1, after="blue", changed=False, confirmed_at=None, drain=None, error=refused),
    ]
    report = _swap_report(lbs=lbs, skew_ms=None)
    report.outcome = Outcome(Result.RESTORED, False, "blue", "blue", "green", restored=True, error=refused)
    result = _result(report, error=refused)
    assert live_after_run(result.swaps) == "blue"
    check = lbs_end_on_one_slot(result)
    assert check.passed, check.summary
    assert "lb1 restored, lb2 unchanged (ConfigTestError)" in check.summary and "every LB on blue" in check.summary
    # One LB left on the new slot (its file, or its answers) fails it.
    result.end_states[1] = LbEndState(1, LBS[1], "blue", {"blue": 3, "green": 2})
    assert not lbs_end_on_one_slot(result).passed
    result.end_states[1] = LbEndState(1, LBS[1], None, {"blue": 5}, "the managed file has no state line")
    failed = lbs_end_on_one_slot(result)
    assert not failed.passed and "no state line" in failed.summary


# -- the report ------------------------------------------------------------------------------------
def test_the_report_has_per_lb_rows_and_the_skew() -> None:
    result = _result()
    report = build(result, evaluate(result))
    fleet = report.to_dict()["fleet"]
    assert json.loads(json.dumps(fleet)) == fleet
    assert fleet["lbs"] == 2 and fleet["max_skew_ms"] == 250.0 and fleet["worst_skew_ms"] == 12.0
    traffic = fleet["traffic"]
    assert [t["lb"] for t in traffic] == [1, 2] and [t["name"] for t in traffic] == list(LBS)
    assert sum(t["requests"] for t in traffic) == 60 and traffic[0]["requests"] == 30
    # Before each LB's own switch (its confirmation), after it.
    assert set(traffic[0]["by_slot_before_switch"]) == {"blue"} and set(traffic[0]["by_slot_after_switch"]) == {"green"}
    rows = fleet["swaps"]
    assert [(r["swap"], r["lb"], r["before"], r["after"]) for r in rows] == [
        (1, 1, "blue", "green"),
        (1, 2, "blue", "green"),
    ]
    assert rows[1]["confirm_ms"] == 312.0 and rows[1]["drain"]["duration_ms"] == 1000.0
    assert fleet["skew"] == [{"swap": 1, "slot": "green", "percent": 100, "window_ms": 12.0, "lbs": 2}]
    assert [s["file_live"] for s in fleet["end_state"]] == ["green", "green"]
    lines = "\n".join(summary_lines(report))
    assert "LBs                       2, clients dealt out in turn; widest skew 12 ms (bound 250 ms)" in lines
    assert "swap 1 lb2: blue -> green, confirmed live +312 ms, drain complete in 1000 ms" in lines


def test_one_lb_has_no_fleet_in_the_report() -> None:
    result = _result(lbs=1)
    report = build(result, evaluate(result))
    assert report.fleet is None and "fleet" not in report.to_dict()
    assert not any("clients dealt out in turn" in line for line in summary_lines(report))
    assert 'id="fleet"' not in render_html(report, [])


def test_the_html_shows_each_lb_restored_and_the_error() -> None:
    refused = ErrorInfo("ConfigTestError", "nginx -t refused", "unknown directive <bogus>", "check")
    lbs = [
        _lb(0, after="blue", changed=False, restored=True, drain=None),
        _lb(1, after="blue", changed=False, drain=None, error=refused),
    ]
    result = _result(_swap_report(lbs=lbs, skew_ms=None), error=refused)
    page = render_html(build(result, evaluate(result)), [])
    section = page[page.index('id="fleet"') :]
    section = section[: section.index("</section>")]
    assert "Load balancers (2)" in section and "bgsim-x-lb2" in section
    assert "<td>yes</td>" in section, "lb1 restored"
    assert "ConfigTestError: unknown directive &lt;bogus&gt;" in section
    assert "no step was proven live on two LBs" in section


# -- the staging route -----------------------------------------------------------------------------
def _staging(at: float, slot: str | None, lb: int = 0) -> RequestRecord:
    return RequestRecord("staging", "fresh", 0, T0 + at, T0 + at + 0.002, 200 if slot else 0, 2, slot, "", lb=lb)


def _two_swaps() -> list[SwapRun]:
    swaps = []
    for number, (target, at) in enumerate((("green", 2.0), ("blue", 5.0)), 1):
        start = T0 + at
        reloads = [
            Reload(
                f"g{number}",
                target,
                100,
                start + 0.1,
                reload_at_ms=int((start + 0.12) * 1000),
                confirmed_ms=100,
                lb=name,
            )
            for name in LBS
        ]
        report = SwapReport(
            outcome=Outcome(Result.SWAPPED, True, target), started_at=start, confirmed_at=start + 0.22, reloads=reloads
        )
        swaps.append(SwapRun(target, report, None, start, start + 1.5))
    return swaps


def test_switch_windows_come_from_each_reload_and_the_idle_slot_follows_the_swaps() -> None:
    swaps = _two_swaps()
    windows = switch_windows(swaps, margin=0.25)
    assert len(windows) == 4 and {w.lb for w in windows} == set(LBS)
    assert windows[0].start == pytest.approx(T0 + 2.1 - 0.25) and windows[0].end == pytest.approx(T0 + 2.22 + 0.25)
    assert [idle_at(swaps, T0 + t) for t in (1.0, 3.0, 6.0)] == ["green", "blue", "green"]


def test_canary_steps_make_the_target_live_from_half_the_traffic() -> None:
    start = T0 + 2.0
    reloads = [
        Reload(f"g{p}", "green", p, start + i, reload_at_ms=int((start + i) * 1000), confirmed_ms=100)
        for i, p in enumerate((10, 50, 100))
    ]
    swaps = [SwapRun("green", SwapReport(reloads=reloads, confirmed_at=start + 2.1), None, start, start + 3.0)]
    assert [idle_at(swaps, start + t) for t in (0.5, 1.5, 2.5)] == ["green", "blue", "blue"]


def test_staging_idle_judges_answers_outside_the_switch_windows_only() -> None:
    result = _result(staging_check=True)
    result.swaps = _two_swaps()
    result.requests += [
        _staging(t / 5, "green" if t / 5 < 2.2 else ("blue" if t / 5 < 5.2 else "green"), t % 2) for t in range(40)
    ]
    result.requests.append(_staging(2.15, "blue"))  # inside swap 1's window: either slot may answer
    result.requests.append(_staging(4.0, None))  # no answer: counted, not judged
    check = staging_idle(result)
    assert check.passed, check.summary
    assert check.evidence["inside_windows"] >= 1 and check.evidence["unanswered"] == 1
    assert "by LB {'lb1':" in check.summary and "'lb2':" in check.summary
    assert "staging_idle" in [c.name for c in evaluate(result)]
    # The live slot answering the staging host outside a window fails it, naming when and where.
    result.requests.append(_staging(4.0, "green", lb=1))
    wrong = staging_idle(result)
    assert not wrong.passed and wrong.evidence["wrong"] == 1
    assert "4.00 s into the traffic through lb2: green answered, blue was idle" in wrong.summary


def test_staging_idle_without_a_probe_fails_and_a_failed_swap_is_one_window() -> None:
    assert not staging_idle(_result(staging_check=True)).passed
    failed = SwapRun("green", None, ErrorInfo("ConfigTestError", "t", "c", "f"), T0 + 2.0, T0 + 3.0)
    windows = switch_windows([failed], margin=0.25)
    assert [(w.start, w.end) for w in windows] == [(T0 + 1.75, T0 + 3.25)]
    assert idle_at([failed], T0 + 4.0) == "green", "a failed swap leaves blue live"


# -- the LB's config -------------------------------------------------------------------------------
def test_the_staging_route_is_a_server_of_its_own_for_the_staging_host() -> None:
    files = {
        MAIN_CONF: "events {}\nhttp {\n    include /etc/nginx/bluegreen/*.conf;\n    include /etc/nginx/site/*.conf;\n}\n"
    }
    site = StagingSite(
        STAGING_HOST, "app_staging", lambda port: f"server {{ listen {port}; server_name {STAGING_HOST}; }}\n"
    )
    plan = plan_lb(
        Tree({p: t.encode() for p, t in files.items()}),
        upstream="app", managed="upstream app { server blue:8080; }\n",
        harness_site="server { listen 80 default_server; location / { proxy_pass http://app; } }\n",
        staging_site=site,
    )  # fmt: skip
    assert plan.files[OWN_STAGING].decode() == f"server {{ listen 80; server_name {STAGING_HOST}; }}\n"
    assert f"include {OWN_STAGING};  # {MARK}" in plan.files[MAIN_CONF].decode()
    assert any(
        "a server for Host staging.bluegreen.test on port 80 proxying to upstream 'app_staging'" in a
        for a in plan.added
    )
    assert plan.include_dir == "/etc/nginx/bluegreen", "a new *.conf there is loaded: where a bad swap drops one"
    without = plan_lb(
        Tree({p: t.encode() for p, t in files.items()}), upstream="app", managed="upstream app { server blue:8080; }\n"
    )
    assert OWN_STAGING not in without.files


# -- flags -----------------------------------------------------------------------------------------
def _args(*argv: str) -> Scenario:
    return scenario_from(build_parser().parse_args(["run", *argv]))


def test_the_fleet_flags_become_scenario_fields() -> None:
    default = _args()
    assert (default.lbs, default.max_skew, default.staging_check, default.swapper) == (1, 0.25, False, None)
    fleet = _args("--lbs", "2", "--max-skew", "100ms", "--bad-swap", "fleet-refused", "--staging-check")
    assert (fleet.lbs, fleet.max_skew, fleet.staging_check) == (2, 0.1, True)
    assert fleet.swapper is BAD_SWAPS["fleet-refused"]
    assert _args("--bad-swap", "never-moved").swapper is BAD_SWAPS["never-moved"]
    with pytest.raises(InputError, match="needs a fleet"):
        _args("--bad-swap", "fleet-refused")


def test_a_fleet_the_harness_cannot_run_is_refused_before_any_container() -> None:
    check_scenario(Scenario(lbs=3))
    for scenario, flag in (
        (Scenario(lbs=0), "--lbs"),
        (Scenario(lbs=2, max_skew=0), "--max-skew"),
        (Scenario(lbs=2, compose=(Path("c.yaml"),)), "--lbs"),
        (Scenario(staging_check=True, staging_rate=0), "--staging-rate"),
    ):
        with pytest.raises(InputError) as caught:
            check_scenario(scenario)
        assert caught.value.input_name == flag


def test_the_bad_fleet_swap_hook_writes_one_bogus_directive_on_the_second_lb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "zz bad.conf"  # a space: the quoting must hold
    monkeypatch.setattr("simulation.bad_swaps.shutil.which", lambda _name: "/usr/bin/docker")
    argv = shlex.split(break_config_command("bgsim-x-lb2", str(target)))
    assert argv[:5] == ["docker", "exec", "bgsim-x-lb2", "sh", "-c"]
    subprocess.run(["sh", "-c", argv[5]], check=True)  # what the LB's sh runs, here on a local file
    assert target.read_text() == BOGUS_DIRECTIVE + "\n"
    monkeypatch.setattr("simulation.bad_swaps.shutil.which", lambda _name: None)
    sdk = shlex.split(break_config_command("bgsim-x-lb2", str(target)))
    assert sdk[1] == "-c" and sdk[3:] == ["bgsim-x-lb2", argv[5]], "the same command through the Docker SDK"
