"""The command line against the fake LB: flags -> SwapOptions -> Engine, exit codes and output."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import LB_CONFIG, FakeHost, NoTransport

from swap_action import cli
from swap_action.transport import Transport
from swap_action.upstream import marker_address, parse_state

BASE = ["--target", "docker://fake-lb", "--config-path", LB_CONFIG]


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def opened() -> list[dict[str, Any]]:
    """The transports the CLI opened: target and keyword arguments."""
    return []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, opened: list[dict[str, Any]]) -> FakeHost:
    host = FakeHost()

    def open_transport(target: str, **kwargs: Any) -> NoTransport:
        opened.append({"target": target, **kwargs})
        return NoTransport()

    def scripted_host(transport: Transport, **_: object) -> FakeHost:
        assert isinstance(transport, NoTransport), "the host runs over the transport the CLI opened"
        return host

    monkeypatch.setattr(cli, "open_transport", open_transport)
    monkeypatch.setattr(cli, "ScriptedHost", scripted_host)
    return host


def run(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def test_swap_prints_the_timeline_to_stderr_and_a_summary(fake: FakeHost) -> None:
    result = run("swap", *BASE, "--to", "green", "--verify-url", "http://127.0.0.1/", "--verify-expect", "green")
    assert result.code == 0, result.err
    assert result.out.strip().startswith("swapped blue -> green in ")
    assert "[ok ] reload-confirm (100% to green)" in result.err
    assert "[ok ] verify (100% to green)" in result.err
    assert fake.served_slot() == "green"


def test_json_report_on_stdout(fake: FakeHost) -> None:
    result = run("swap", *BASE, "--json")
    assert result.code == 0
    outcome = json.loads(result.out)["outcome"]
    assert (outcome["result"], outcome["changed"], outcome["active"], outcome["previous"]) == (
        "swapped",
        True,
        "green",
        "blue",
    )
    assert outcome["error"] is None
    assert "swapped blue -> green" in result.err


def test_input_error_exits_2_names_the_input_and_opens_nothing(fake: FakeHost, opened: list[object]) -> None:
    result = run("swap", *BASE, "--blue", "x;y:80")
    assert result.code == 2
    assert result.err.startswith("error: input 'blue': 'x;y:80' is not a server address\nfix: ")
    assert opened == []


@pytest.mark.parametrize(
    ("flags", "name"),
    [
        (["--to", "purple"], "to"),
        (["--steps", "50,10"], "steps"),
        (["--step-pause", "soon"], "step-pause"),
        (["--health-path", "healthz"], "health-path"),
        (["--verify-url=-o/etc/passwd"], "verify-url"),
        (["--verify-expect", "green"], "verify-expect"),
        (["--drain-timeout", "1 week"], "drain-timeout"),
        (["--drain-hook", "PATCH /x"], "drain-hook"),
        (["--drain-policy", "never"], "drain-policy"),
        (["--lock-timeout", "x"], "lock-timeout"),
        (["--upstream", "a b"], "upstream"),
        (["--config-path", "relative.conf"], "config-path"),
        (["--template", "/nonexistent/template.j2"], "template"),
        (["--green", "green:8080\n}"], "green"),
    ],
)
def test_each_bad_flag_is_named(fake: FakeHost, opened: list[object], flags: list[str], name: str) -> None:
    result = run("swap", *BASE, *flags)
    assert result.code == 2, result.err
    assert f"error: input '{name}'" in result.err
    assert "\nfix: " in result.err
    assert opened == []


def test_unknown_flag_exits_2() -> None:
    result_code = None
    with pytest.raises(SystemExit) as caught:
        cli.main(["swap", "--colour", "blue"], out=io.StringIO(), err=io.StringIO())
    result_code = caught.value.code
    assert result_code == 2


def test_unknown_target_scheme_is_an_input_error() -> None:
    result = run("status", "--target", "ftp://lb")
    assert result.code == 2 and "error: input 'target'" in result.err


def test_swap_error_exits_1_with_cause_and_fix(fake: FakeHost) -> None:
    fake.apps["green:8080"].healthy = False
    before = fake.live_text()
    result = run("swap", *BASE)
    assert result.code == 1
    assert "error: green is not healthy: http://green:8080/healthz answered 503" in result.err
    assert "fix: fix or redeploy green before swapping; no traffic was moved" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("swap FAILED after ")
    assert fake.live_text() == before


def test_failed_swap_still_prints_the_json_report(fake: FakeHost) -> None:
    fake.apps["green:8080"].fail = True
    result = run("swap", *BASE, "--verify-url", "http://127.0.0.1/", "--json")
    assert result.code == 1
    report = json.loads(result.out)
    outcome = report["outcome"]
    assert (outcome["result"], outcome["restored"], outcome["changed"], outcome["active"]) == (
        "restored",
        True,
        False,
        "blue",
    )
    assert outcome["error"]["type"] == "VerificationError"
    assert report["steps"][-1]["phase"] == "restore"
    assert "The previous config was restored: blue is live again." in result.err


def test_config_test_error_shows_nginx_output_and_the_hint(fake: FakeHost, tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text(
        "upstream {{ upstream }} {\n{% for s in servers %}    server {{ s.address }} weight={{ 0 if s.down else 1 }};\n{% endfor %}}\n"
    )
    result = run("swap", *BASE, "--template", str(template))
    assert result.code == 1
    assert 'invalid parameter "weight=0"' in result.err
    assert "written 'down'" in result.err
    assert "  | nginx: [emerg]" in result.err


def test_plan_prints_the_diff_and_changes_nothing(fake: FakeHost) -> None:
    before = fake.live_text()
    result = run("plan", *BASE, "--to", "green")
    assert result.code == 0
    assert result.out.startswith(f"--- {LB_CONFIG} (live)\n+++ {LB_CONFIG} (new)\n")
    assert "+    server green:8080;  # slot=green" in result.out
    assert "plan: blue -> green passes nginx -t; nothing was changed" in result.out
    assert fake.live_text() == before and fake.reloads == 0


def test_rollback_and_auto(fake: FakeHost) -> None:
    assert run("rollback", *BASE).code == 1  # nothing recorded to go back to
    assert run("swap", *BASE).code == 0
    result = run("rollback", *BASE)
    assert result.code == 0 and result.out.startswith("rolled back green -> blue")
    assert parse_state(fake.live_text() or "").live == "blue"


def test_already_live(fake: FakeHost) -> None:
    result = run("swap", *BASE, "--to", "blue")
    assert result.code == 0
    assert result.out.startswith("blue is already live with these servers: nothing changed")
    assert fake.writes == [] and "install" not in fake.calls


def test_status(fake: FakeHost) -> None:
    run("swap", *BASE)
    result = run("status", *BASE)
    assert result.code == 0
    rows = dict(line.split(":", 1) for line in result.out.splitlines())
    assert rows["live slot"].strip() == "green (previous: blue)"
    assert rows["weights"].strip() == "blue 0%, green 100%"
    assert rows["blue"].strip() == "blue:8080 (down)"
    assert rows["nginx"].strip() == "nginx version: nginx/1.22.1"
    assert rows["marker"].strip().endswith(": Nginx serves this file")


def test_status_json_says_when_nginx_serves_another_config(fake: FakeHost) -> None:
    fake.files[LB_CONFIG] = (fake.live_text() or "").replace("g0-initial", "g9-edited")
    status = json.loads(run("status", *BASE, "--json").out)
    assert status["generation"] == "g9-edited"
    assert status["marker"] == {"address": marker_address("app"), "answer": "g0-initial", "matches_file": False}


def test_ssh_key_files_are_read_and_passed(fake: FakeHost, opened: list[object], tmp_path: Path) -> None:
    key, known = tmp_path / "id", tmp_path / "known"
    key.write_text("KEY")
    known.write_text("lb ssh-ed25519 AAAA")
    result = run("status", "--target", "ssh://root@lb", "--ssh-key-file", str(key), "--known-hosts-file", str(known))
    assert result.code == 0
    assert opened == [{"target": "ssh://root@lb", "ssh_key": "KEY", "known_hosts": "lb ssh-ed25519 AAAA"}]


def test_without_config_path_the_preflight_finds_the_file() -> None:
    args = cli.build_parser().parse_args(["swap"])
    assert args.config_path == ""
    options = cli.swap_options(args)
    assert options.config_path is None
    assert options.to == "auto" and options.steps == (100,) and options.health_path == "/healthz"
    assert options.rollback_on_failure is True and options.drain_policy == "cut"
    assert options.lock_timeout == 120 and options.drain_timeout == 30


def test_flags_map_to_options(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("upstream {{ upstream }} {}")
    args = cli.build_parser().parse_args(
        [
            "plan",
            "--blue=b1:80,b2:80",
            "--green",
            "g1:80",
            "--to",
            "green",
            "--steps",
            "10,100",
            "--step-pause",
            "2s",
            "--health-path",
            "",
            "--verify-url",
            "http://127.0.0.1/",
            "--verify-expect",
            "200",
            "--drain-timeout",
            "5s",
            "--drain-hook",
            "/admin/drain",
            "--drain-policy",
            "wait",
            "--no-rollback",
            "--lock-timeout",
            "1m",
            "--template",
            str(template),
            "--upstream",
            "web",
        ]
    )
    options = cli.swap_options(args)
    assert options.slots.blue == ("b1:80", "b2:80") and options.slots.green == ("g1:80",)
    assert (options.to, options.steps, options.step_pause, options.health_path) == ("green", (10, 100), 2.0, None)
    assert (options.verify_url, options.verify_expect) == ("http://127.0.0.1/", "200")
    assert (options.drain_timeout, options.drain_hook, options.drain_policy) == (5.0, ("POST", "/admin/drain"), "wait")
    assert (options.rollback_on_failure, options.lock_timeout, options.upstream) == (False, 60.0, "web")
    assert options.template == "upstream {{ upstream }} {}" and options.dry_run is True
