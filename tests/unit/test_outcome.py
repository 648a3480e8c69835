"""One outcome per run, computed on every path, and every face shows the same one.

The faces: the engine's ``SwapReport.outcome``, the CLI's ``--json`` and its summary line, the
action's outputs, its JSON report and its step summary. (A failed swap without restore once said
``changed=false`` in the CLI's JSON while green was live.)
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from action_runs import github_environ
from fakes import LB_CONFIG, FakeHost, NoTransport
from test_github import read_outputs

from swap_action import action, cli
from swap_action.engine import Engine
from swap_action.errors import SwapError, VerificationError
from swap_action.github import Commands
from swap_action.inputs import BY_NAME, swap_options_from
from swap_action.outcome import DrainOutcome, ErrorInfo, Outcome, Phase, Reload, Result, Step, SwapReport
from swap_action.timeline import PlainObserver

# -- the types ----------------------------------------------------------------------------------


def test_a_step_label_is_built_from_its_fields() -> None:
    assert Step(Phase.LOCK, 0.0).label == "lock"
    assert Step(Phase.DRAIN, 0.0, slot="blue").label == "drain (blue)"
    assert Step(Phase.RELOAD_CONFIRM, 0.0, slot="green", percent=10).label == "reload-confirm (10% to green)"
    data = Step(Phase.VERIFY, 1.5, "green", 100, duration_ms=2.0, ok=False, detail="x").to_dict()
    assert data["phase"] == "verify" and data["slot"] == "green" and data["percent"] == 100
    assert data["label"] == "verify (100% to green)" and data["ok"] is False


def test_phases_run_in_the_documented_order() -> None:
    assert [phase.value for phase in Phase] == [
        "lock",
        "probe",
        "gate",
        "render",
        "test",
        "apply",
        "reload-confirm",
        "verify",
        "pause",
        "drain",
        "restore",
        "hook",
    ]


def test_state_sentence_says_what_the_lb_is_left_with() -> None:
    restored = Outcome(Result.RESTORED, changed=False, active="blue", previous="blue", restored=True)
    assert restored.state_sentence() == "The previous config was restored: blue is live again."
    kept = Outcome(Result.FAILED, changed=True, active="green", previous="blue")
    assert kept.state_sentence() == "Not restored: the new config stays live (green is live)."
    untouched = Outcome(Result.FAILED, changed=False, active="blue", previous="blue")
    assert untouched.state_sentence() == "Nothing was changed for traffic on the load balancer."
    assert Outcome(Result.FAILED, changed=True).state_sentence().endswith("(unknown is live).")


def test_outcome_to_dict_and_ok() -> None:
    error = ErrorInfo.of(VerificationError("it answered 500", "check it", detail="body"))
    assert error == ErrorInfo("VerificationError", VerificationError.title, "it answered 500", "check it", "body")
    outcome = Outcome(Result.RESTORED, False, "blue", "blue", "green", restored=True, error=error)
    assert not outcome.ok and Outcome().ok
    assert outcome.to_dict() == {
        "result": "restored",
        "changed": False,
        "active": "blue",
        "previous": "blue",
        "target": "green",
        "restored": True,
        "restore_failed": False,
        "in_doubt": False,
        "error": {
            "type": "VerificationError",
            "title": "verification through the load balancer failed",
            "cause": "it answered 500",
            "fix": "check it",
            "detail": "body",
        },
    }


def test_drain_summary_for_each_outcome() -> None:
    hook = (("http://blue:8080/admin/drain", 202),)
    assert DrainOutcome("complete", 80.4, 0, 0, hook).summary() == (
        "drained in 80 ms: the old workers hold no connection to the old slot and are gone; drain hook answered 202"
    )
    assert DrainOutcome("cut", 30000, 2, 1).summary() == (
        "drain deadline reached after 30000 ms with 2 connection(s) and 1 old worker(s) left: stopped them"
    )
    assert DrainOutcome("timeout", 5000, 1, 0).summary().endswith(": left them running")
    assert DrainOutcome("complete", 1.26, 0, 0, hook).to_dict()["hook"] == [
        {"url": "http://blue:8080/admin/drain", "status": 202}
    ]


def test_a_report_is_plain_json() -> None:
    report = SwapReport(
        outcome=Outcome(Result.SWAPPED, True, "green", "blue", "green"),
        duration_ms=12.345,
        steps=[Step(Phase.LOCK, 1.0, duration_ms=3.0)],
        reloads=[Reload("g1", "green", 100, 1.0, old_workers=(101, 102))],
        drain=DrainOutcome("complete", 1.0, 0, 0),
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["outcome"]["result"] == "swapped" and data["duration_ms"] == 12.3
    assert data["reloads"][0]["old_workers"] == [101, 102] and data["reloads"][0]["slot"] == "green"
    assert data["steps"][0]["phase"] == "lock" and data["drain"]["outcome"] == "complete"
    assert SwapReport().to_dict()["outcome"]["result"] == "unchanged"


# -- every path, every face ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ending:
    """One way a run can end: how to get there, and the outcome every face must show."""

    name: str
    inputs: dict[str, str]
    result: Result
    changed: bool
    active: str
    restored: bool = False
    error: str | None = None
    setup: Callable[[FakeHost], None] = field(default=lambda fake: None)


def _unhealthy(fake: FakeHost) -> None:
    fake.apps["green:8080"].healthy = False


def _failing(fake: FakeHost) -> None:
    fake.apps["green:8080"].fail = True


VERIFY = {"verify-url": "http://127.0.0.1/"}
PATHS = [
    Ending("swapped", {"to": "green", **VERIFY}, Result.SWAPPED, True, "green"),
    Ending("unchanged", {"to": "blue"}, Result.UNCHANGED, False, "blue"),
    Ending("planned", {"to": "green", "dry-run": "true"}, Result.PLANNED, False, "blue"),
    Ending("refused", {"to": "green"}, Result.FAILED, False, "blue", error="HealthCheckError", setup=_unhealthy),
    Ending(
        "restored",
        {"to": "green", **VERIFY},
        Result.RESTORED,
        False,
        "blue",
        restored=True,
        error="VerificationError",
        setup=_failing,
    ),
    Ending(
        "not restored",
        {"to": "green", **VERIFY, "rollback-on-failure": "false"},
        Result.FAILED,
        True,
        "green",
        error="VerificationError",
        setup=_failing,
    ),
]
IDS = [path.name for path in PATHS]


def prepared(path: Ending) -> FakeHost:
    fake = FakeHost()
    path.setup(fake)
    return fake


def check(outcome: dict[str, Any], path: Ending) -> None:
    """An outcome as JSON (the CLI's, the action's report) against what the path must end in."""
    assert (outcome["result"], outcome["changed"], outcome["active"], outcome["restored"]) == (
        path.result.value,
        path.changed,
        path.active,
        path.restored,
    )
    assert outcome["previous"] == "blue"
    assert (outcome["error"] or {}).get("type") == path.error


def run_engine(fake: FakeHost, path: Ending) -> SwapReport:
    """The run's report, also when it raised (then the error must be the path's)."""
    engine = Engine(fake, PlainObserver(lambda line: None))
    options = swap_options_from({**path.inputs, "config-path": LB_CONFIG})
    try:
        return engine.plan(options) if options.dry_run else engine.swap(options)
    except SwapError as exc:
        assert type(exc).__name__ == path.error
        assert engine.last_report is not None
        return engine.last_report


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_the_engine_computes_the_outcome_on_every_path(path: Ending) -> None:
    fake = prepared(path)
    outcome = run_engine(fake, path).outcome
    assert outcome == Outcome(
        path.result,
        changed=path.changed,
        active=path.active,
        previous="blue",
        target="green" if path.name != "unchanged" else "blue",
        restored=path.restored,
        error=outcome.error,
    )
    assert (outcome.error.type if outcome.error else None) == path.error
    assert fake.served_slot() == path.active, "the outcome says what the fake LB really serves"
    check(outcome.to_dict(), path)


def cli_flags(inputs: dict[str, str]) -> list[str]:
    command = "plan" if inputs.get("dry-run") == "true" else "swap"
    flags = [command, "--target", "docker://fake-lb", "--config-path", LB_CONFIG]
    for name, value in inputs.items():
        if name == "rollback-on-failure":
            flags += [] if value == "true" else ["--no-rollback"]
        elif name != "dry-run":
            flags += [f"--{name}", value]
    return flags


def run_cli(monkeypatch: pytest.MonkeyPatch, fake: FakeHost, argv: list[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "open_transport", lambda target, **_: NoTransport())
    monkeypatch.setattr(cli, "ScriptedHost", lambda transport, **_: fake)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@dataclass
class ActionRun:
    code: int
    log: str
    outputs: dict[str, str]
    summary: str
    report: dict[str, Any]


def run_action(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeHost, inputs: dict[str, str]) -> ActionRun:
    monkeypatch.setattr(action, "open_transport", lambda target, **_: NoTransport())
    monkeypatch.setattr(action, "ScriptedHost", lambda transport, **_: fake)
    environ = {
        **github_environ(tmp_path),
        BY_NAME["target"].env: "docker://lb",
        BY_NAME["config-path"].env: LB_CONFIG,
        **{BY_NAME[name].env: value for name, value in inputs.items()},
    }
    stream = io.StringIO()
    code = action.run(environ, Commands(environ, stream))
    outputs = read_outputs((tmp_path / "output").read_text())
    report = json.loads((tmp_path / outputs["report"]).read_text())
    return ActionRun(code, stream.getvalue(), outputs, (tmp_path / "summary").read_text(), report)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_the_cli_json_shows_the_outcome(monkeypatch: pytest.MonkeyPatch, path: Ending) -> None:
    fake = prepared(path)
    code, out, err = run_cli(monkeypatch, fake, [*cli_flags(path.inputs), "--json"])
    assert code == (1 if path.error else 0), err
    check(json.loads(out)["outcome"], path)
    assert fake.served_slot() == path.active


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_the_cli_summary_line_agrees(monkeypatch: pytest.MonkeyPatch, path: Ending) -> None:
    code, out, err = run_cli(monkeypatch, prepared(path), cli_flags(path.inputs))
    last_line = (err if code else out).strip().splitlines()[-1]
    if path.error:
        assert "FAILED" in last_line
        sentence = {
            "refused": "Nothing was changed for traffic on the load balancer.",
            "restored": "The previous config was restored: blue is live again.",
            "not restored": "Not restored: the new config stays live (green is live).",
        }[path.name]
        assert last_line.endswith(sentence)
    elif path.changed:
        assert last_line.startswith(f"swapped blue -> {path.active} in ")
    elif path.result is Result.PLANNED:
        assert last_line.startswith("plan: blue -> green passes nginx -t; nothing was changed")
    else:
        assert last_line.startswith(f"{path.active} is already live with these servers: nothing changed")


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_the_action_outputs_report_and_summary_agree(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: Ending
) -> None:
    fake = prepared(path)
    run = run_action(monkeypatch, tmp_path, fake, path.inputs)
    assert run.code == (1 if path.error else 0), run.log
    assert run.outputs["changed"] == ("true" if path.changed else "false")
    assert (run.outputs["active-slot"], run.outputs["previous-slot"]) == (path.active, "blue")
    check(run.report["outcome"], path)
    assert f"| changed | {'yes' if path.changed else 'no'} |" in run.summary
    assert f"| live now | {path.active} |" in run.summary
    assert "| live before | blue |" in run.summary
    if path.error:
        assert f"| restored | {'yes' if path.restored else 'no'}" in run.summary
        sentence = Outcome(path.result, path.changed, path.active, restored=path.restored).state_sentence()
        assert sentence in run.log.replace("%0A", "\n") and sentence in run.summary
    else:
        assert f"bluegreen-swap: {path.result.value}; live: {path.active};" in run.log
    assert fake.served_slot() == path.active


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_every_face_shows_the_same_changed_and_active(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: Ending
) -> None:
    from_engine = run_engine(prepared(path), path).outcome
    _, out, _ = run_cli(monkeypatch, prepared(path), [*cli_flags(path.inputs), "--json"])
    from_cli = json.loads(out)["outcome"]
    from_action = run_action(monkeypatch, tmp_path, prepared(path), path.inputs)
    faces = {
        "engine": (from_engine.changed, from_engine.active),
        "cli --json": (from_cli["changed"], from_cli["active"]),
        "action report": (from_action.report["outcome"]["changed"], from_action.report["outcome"]["active"]),
        "action outputs": (from_action.outputs["changed"] == "true", from_action.outputs["active-slot"]),
        "step summary": (
            f"| changed | {'yes' if from_engine.changed else 'no'} |" in from_action.summary,
            f"| live now | {from_engine.active} |" in from_action.summary,
        ),
    }
    summary_agrees = faces.pop("step summary")
    assert summary_agrees == (True, True), from_action.summary
    assert set(faces.values()) == {(path.changed, path.active)}, faces
