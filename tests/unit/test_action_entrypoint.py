"""swap_action.action against the fake LB: inputs refused before the LB is touched, outputs on both paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import FakeHost

from swap_action import action


def test_a_swap_writes_outputs_summary_and_report(run_action: Any) -> None:
    fake = FakeHost()
    run = run_action(fake, to="green", verify_url="http://127.0.0.1/", verify_expect="green")
    assert run.code == 0, run.log
    assert fake.served_slot() == "green"
    outputs = run.outputs
    assert {k: outputs[k] for k in ("active-slot", "previous-slot", "changed")} == {
        "active-slot": "green",
        "previous-slot": "blue",
        "changed": "true",
    }
    assert int(outputs["duration-ms"]) >= 0
    assert "+    server green:8080;  # slot=green" in outputs["config-diff"]
    assert outputs["report"] == "bluegreen-swap-report-swap.json"
    assert run.report()["outcome"]["result"] == "swapped" and run.report()["target"] == "docker://lb"
    assert "bluegreen-swap: swapped; live: green;" in run.log
    assert "::group::lock" in run.log and "::endgroup::" in run.log
    assert "green is live (was blue)" in run.summary and "```diff" in run.summary


def test_bad_input_names_the_input_and_never_touches_the_lb(run_action: Any) -> None:
    run = run_action(None, steps="50,10", ssh_key="-----BEGIN KEY-----\nc2VjcmV0LWtleS1saW5l\n")
    assert run.code == 1
    assert "::add-mask::c2VjcmV0LWtleS1saW5l" in run.log
    assert run.log.index("::add-mask::") < run.log.index("::error")
    error = next(line for line in run.log.splitlines() if line.startswith("::error"))
    assert error.startswith("::error title=bluegreen-swap%3A invalid input::input 'steps'")
    assert "%0AFix: " in error and "Nothing was changed" in error
    assert run.outputs["changed"] == "false"
    assert "**Cause:** input 'steps'" in run.summary


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"target": "ftp://lb"}, "target"),
        ({"target": "docker://bad name"}, "target"),
        ({"to": "purple"}, "to"),
        ({"blue": "blue:8080;evil"}, "blue"),
        ({"verify_expect": "green"}, "verify-expect"),
        ({"verify_url": "file:///etc/passwd"}, "verify-url"),
        ({"template": "../outside.j2"}, "template"),
        ({"template": "missing.j2"}, "template"),
        ({"drain_policy": "later"}, "drain-policy"),
        ({"dry_run": "maybe"}, "dry-run"),
        ({"lock_timeout": "soon"}, "lock-timeout"),
    ],
)
def test_each_bad_input_is_refused_by_name(run_action: Any, inputs: dict[str, str], named: str) -> None:
    run = run_action(None, **inputs)
    assert run.code == 1
    assert f"::error title=bluegreen-swap%3A invalid input::input '{named}'" in run.log


def test_a_template_that_does_not_render_is_refused_before_the_lb(run_action: Any, tmp_path: Path) -> None:
    (tmp_path / "upstream.j2").write_text("upstream {{ upstream }} { {{ no_such_variable }} }\n")
    run = run_action(None, template="upstream.j2")
    assert run.code == 1
    assert "input 'template': the template uses an undefined variable" in run.log


def test_a_template_from_the_workspace_is_used(run_action: Any, tmp_path: Path) -> None:
    (tmp_path / "upstream.j2").write_text(
        "upstream {{ upstream }} {\n    least_conn;\n{%- for s in servers %}\n"
        "    server {{ s.address }}{% if s.down %} down{% endif %};  # slot={{ s.slot }}\n{%- endfor %}\n}\n"
    )
    fake = FakeHost()
    run = run_action(fake, to="green", template="upstream.j2")
    assert run.code == 0, run.log
    assert "least_conn;" in (fake.live_text() or "")


def test_empty_health_path_skips_the_health_gate_while_unset_inputs_take_defaults() -> None:
    raw = action.read_inputs({"BG_HEALTH_PATH": "", "BG_STEPS": ""})
    assert raw["health-path"] == "" and raw["steps"] == "100"
    assert action.read_inputs({})["health-path"] == "/healthz"
    request = action.parse_request({**raw, "target": "local"}, Path("."))
    assert request.options.health_path is None


def test_a_failed_verification_restores_and_says_so(run_action: Any) -> None:
    fake = FakeHost()
    fake.apps["green:8080"].fail = True
    run = run_action(fake, to="green", verify_url="http://127.0.0.1/")
    assert run.code == 1
    assert fake.served_slot() == "blue"
    outputs = run.outputs
    assert (outputs["active-slot"], outputs["previous-slot"], outputs["changed"]) == ("blue", "blue", "false")
    assert "The previous config was restored: blue is live again." in run.log.replace("%0A", "\n")
    outcome = run.report()["outcome"]
    assert outcome["result"] == "restored" and outcome["restored"] is True
    assert "| restored | yes: the previous config is live again |" in run.summary
    error = next(line for line in run.log.splitlines() if line.startswith("::error"))
    assert error.startswith("::error title=bluegreen-swap%3A verification through the load balancer failed::")
    assert run.log.rstrip().splitlines()[-1] == error, "the annotation comes last"


def test_dry_run_changes_nothing_and_outputs_the_planned_diff(run_action: Any) -> None:
    fake = FakeHost()
    before = fake.live_text()
    run = run_action(fake, to="green", dry_run="true")
    assert run.code == 0, run.log
    assert fake.live_text() == before and fake.reloads == 0
    assert run.outputs["changed"] == "false" and run.outputs["active-slot"] == "blue"
    assert "+    server green:8080;" in run.outputs["config-diff"]
    assert "(dry run)" in run.summary
    assert run.report()["outcome"]["result"] == "planned" and run.report()["dry_run"] is True
