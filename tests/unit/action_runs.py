"""The action run in-process against the fake LB (``run_action``, a fixture of every unit test via
conftest.py): its exit code, log, outputs, step summary and report."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import LB_CONFIG, FakeHost, NoTransport
from test_github import read_outputs

from swap_action import action
from swap_action.github import Commands
from swap_action.inputs import BY_NAME
from swap_action.transport import Transport


def github_environ(workspace: Path) -> dict[str, str]:
    """What a workflow step's environment gives the action (``GITHUB_*``), its output and step
    summary files made empty in ``workspace``; the inputs (``BG_*``) are the caller's."""
    for name in ("output", "summary"):
        (workspace / name).write_text("")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(workspace / "output"),
        "GITHUB_STEP_SUMMARY": str(workspace / "summary"),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION": "swap",
    }


class Run:
    def __init__(self, tmp_path: Path, fake: FakeHost | None) -> None:
        self.tmp_path = tmp_path
        self.fake = fake
        self.stream = io.StringIO()
        self.code = -1

    @property
    def log(self) -> str:
        return self.stream.getvalue()

    @property
    def outputs(self) -> dict[str, str]:
        return read_outputs((self.tmp_path / "output").read_text())

    @property
    def summary(self) -> str:
        return (self.tmp_path / "summary").read_text()

    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.tmp_path / self.outputs["report"]).read_text())
        return data


@pytest.fixture
def run_action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def go(fake: FakeHost | None = None, **inputs: str) -> Run:
        result = Run(tmp_path, fake)
        opened: list[str] = []

        def open_transport(target: str, **_: object) -> NoTransport:
            opened.append(target)
            if fake is None:
                raise AssertionError("the LB must not be touched")
            return NoTransport()

        def scripted_host(transport: Transport, **_: object) -> FakeHost:
            assert fake is not None and isinstance(transport, NoTransport)
            return fake

        monkeypatch.setattr(action, "open_transport", open_transport)
        monkeypatch.setattr(action, "ScriptedHost", scripted_host)
        environ = {
            **github_environ(tmp_path),
            "BG_TARGET": "docker://lb",
            "BG_CONFIG_PATH": LB_CONFIG,
            "BG_BLUE": "blue:8080",
            "BG_GREEN": "green:8080",
        }
        environ.update({BY_NAME[name.replace("_", "-")].env: value for name, value in inputs.items()})
        result.code = action.run(environ, Commands(environ, result.stream))
        return result

    return go
