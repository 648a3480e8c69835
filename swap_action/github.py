"""Everything that speaks GitHub's workflow commands, and nothing else does.

Under GitHub Actions (``GITHUB_ACTIONS=true``) this writes outputs to ``$GITHUB_OUTPUT`` (heredoc
form with a random delimiter, so multi-line values are safe), markdown to ``$GITHUB_STEP_SUMMARY``,
``::group::`` per engine step, ``::error``/``::warning`` annotations and ``::add-mask::`` for
secrets. Anywhere else the same calls print plain text to stdout.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterable, Mapping
from typing import TextIO

from .outcome import Result, Step, SwapReport
from .timeline import PlainObserver

MIN_MASK_LENGTH = 4  # shorter lines of a secret ("-----", "==") would mask common text, not secrets


def escape_data(text: str) -> str:
    """The message part of a workflow command: ``%``, CR and LF are encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (``title=...``): also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def output_block(name: str, value: str, delimiter: str | None = None) -> str:
    """One output in the ``name<<DELIMITER`` form of ``$GITHUB_OUTPUT``."""
    while delimiter is None or delimiter in value:
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
    if delimiter in name:
        raise ValueError(f"output name {name!r} contains the delimiter")
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


class Commands:
    """Workflow commands, or their plain-text fallback outside GitHub Actions."""

    def __init__(self, environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.stream = stream or sys.stdout
        self.enabled = self.environ.get("GITHUB_ACTIONS") == "true"

    def write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def command(self, name: str, message: str = "", **properties: str) -> None:
        props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items() if value)
        self.write(f"::{name}{' ' + props if props else ''}::{escape_data(message)}")

    def mask(self, secret: str) -> None:
        """Mask every line of a (possibly multi-line) secret in the rest of the log."""
        if not self.enabled:
            return
        for line in {part.strip() for part in secret.splitlines()}:
            if len(line) >= MIN_MASK_LENGTH:
                self.command("add-mask", line)

    def error(self, message: str, *, title: str = "") -> None:
        if self.enabled:
            self.command("error", message, title=title)
        else:
            self.write(f"error: {title + ': ' if title else ''}{message}")

    def warning(self, message: str, *, title: str = "") -> None:
        if self.enabled:
            self.command("warning", message, title=title)
        else:
            self.write(f"warning: {message}")

    def group(self, title: str) -> None:
        if self.enabled:
            self.command("group", title)

    def endgroup(self) -> None:
        if self.enabled:
            self.command("endgroup")

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        path = self.environ.get("GITHUB_OUTPUT") if self.enabled else None
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.writelines(output_block(name, value) for name, value in outputs.items())
            return
        for name, value in outputs.items():
            self.write(f"{name}={value}" if "\n" not in value else output_block(name, value.rstrip("\n"), "EOF"))

    def append_summary(self, markdown: str) -> bool:
        """Add to the step summary; False when there is none (not under GitHub)."""
        path = self.environ.get("GITHUB_STEP_SUMMARY") if self.enabled else None
        if not path:
            return False
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n")
        return True


class GitHubObserver:
    """The engine's ``Observer``: one log group per step; keeps the steps for the summary."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.steps: list[Step] = []
        self._plain = PlainObserver(commands.write)
        self._open = False

    def step_started(self, step: Step) -> None:
        self.commands.group(step.label)
        self._open = self.commands.enabled

    def step_finished(self, step: Step) -> None:
        self.steps.append(step)
        self._plain.step_finished(step)
        if self._open:
            self.commands.endgroup()
            self._open = False

    def info(self, message: str) -> None:
        self._plain.info(message)

    def warning(self, message: str) -> None:
        self.commands.warning(message)


# -- the step summary -------------------------------------------------------------------------
def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _fence(text: str) -> str:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def summary_markdown(report: SwapReport, *, target: str, report_path: str = "") -> str:
    """The step summary: what changed, the diff, the timeline, the drain and, on failure, cause and fix."""
    outcome = report.outcome
    error = outcome.error
    if error is not None:
        heading = f"## ❌ Blue-green swap failed: {error.title}"
    elif outcome.result is Result.PLANNED:
        heading = f"## 🔍 Blue-green swap (dry run): would make {outcome.target} live"
    elif outcome.changed:
        heading = f"## ✅ Blue-green swap: {outcome.active} is live (was {outcome.previous or 'unknown'})"
    else:
        heading = f"## ✅ Blue-green swap: {outcome.active} was already live, nothing changed"
    facts = [
        ("load balancer", f"`{target}`"),
        ("live now", outcome.active or "unknown"),
        ("live before", outcome.previous or "unknown"),
        ("target slot", outcome.target or "unknown"),
        ("changed", "yes" if outcome.changed else "no"),
        ("duration", f"{report.duration_ms:.0f} ms"),
    ]
    if error is not None:
        facts.append(("restored", "yes: the previous config is live again" if outcome.restored else "no"))
    if report_path:
        facts.append(("report", f"`{report_path}`"))
    lines = [heading, "", *_table(("", ""), facts), ""]
    if error is not None:
        lines += ["### What went wrong", "", f"**Cause:** {error.cause}", "", outcome.state_sentence(), ""]
        if error.fix:
            lines += [f"**Fix:** {error.fix}", ""]
    if report.config_diff:
        fence = _fence(report.config_diff)
        title = "Config change (not applied: dry run)" if report.dry_run else "Config change"
        lines += [f"### {title}", "", f"{fence}diff", report.config_diff.rstrip("\n"), fence, ""]
    if report.steps:
        rows = [
            (index, step.label, "ok" if step.ok else "**failed**", f"{step.duration_ms:.0f} ms", step.detail)
            for index, step in enumerate(report.steps, 1)
        ]
        lines += ["### Timeline", "", *_table(("#", "step", "result", "duration", "detail"), rows), ""]
    if report.drain is not None:
        lines += ["### Drain of the old slot", "", report.drain.summary(), ""]
    return "\n".join(lines)
