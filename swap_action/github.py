"""Everything that speaks GitHub's workflow commands, and nothing else does.

Under GitHub Actions (``GITHUB_ACTIONS=true``) this writes outputs to ``$GITHUB_OUTPUT`` (heredoc
form with a random delimiter, so multi-line values are safe), markdown to ``$GITHUB_STEP_SUMMARY``,
``::group::`` per engine step, ``::error``/``::warning`` annotations and ``::add-mask::`` for
secrets. Anywhere else the same calls print plain text to stdout.

Text from users and from the LB (input echoes, error causes, HTTP bodies, lock holders) is never
markup: a plain log line that would read as a workflow command is wrapped in ``::stop-commands::``,
and in the step summary such text is escaped (``md_text``) or a code span (``md_code``), on one
line; text of many lines (the config diff, a hook's output) is in a code fence longer than any
run of backticks in it. A password in a URL is ``***`` in everything written here
(``redact.redact_credentials``).
"""

from __future__ import annotations

import html
import os
import re
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TextIO

from .hooks import OUTPUT_CAP
from .outcome import HookRun, LbOutcome, Result, Skew, Step, SwapReport
from .redact import redact_credentials
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
        """Plain log text: passwords redacted; under GitHub, never read as a workflow command."""
        text = redact_credentials(line)
        if self.enabled and _looks_like_a_command(text):
            token = uuid.uuid4().hex
            text = f"::stop-commands::{token}\n{text}\n::{token}::"
        self._emit(text)

    def _emit(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def command(self, name: str, message: str = "", **properties: str) -> None:
        if name != "add-mask":  # the secret itself, which the runner hides from then on
            message = redact_credentials(message)
            properties = {key: redact_credentials(value) for key, value in properties.items()}
        props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items() if value)
        self._emit(f"::{name}{' ' + props if props else ''}::{escape_data(message)}")

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


def _looks_like_a_command(text: str) -> bool:
    """Would the runner act on a line of ``text`` (``::name::`` or the old ``##[name]``, after blanks)?"""
    return any(line.lstrip().startswith(("::", "##[")) for line in re.split(r"\r\n|\r|\n", text))


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
# What GitHub's renderer (cmark-gfm) could read as markup inside a line: escapes, code spans,
# emphasis, strikethrough, links and images, HTML and autolinks, entities, math, table cells.
# Block syntax (headings, lists, quotes) needs the start of a line, which one-line text never gets.
_MARKUP = re.compile(r"([\\`*_~\[\]<>&$|])")


def _one_line(text: object) -> str:
    """Whitespace runs (newlines too) as one space, passwords redacted."""
    return redact_credentials(" ".join(str(text).split()))


def md_text(text: object) -> str:
    """Untrusted text as inline markdown that shows exactly that text: one line, every markup
    character backslash-escaped (also safe in a table cell). Bare http(s) URLs may still be
    autolinked by GitHub; their visible text is their target."""
    return _MARKUP.sub(r"\\\1", _one_line(text))


def md_code(text: object) -> str:
    """Untrusted text as a code span for a table cell. In a GFM table a ``|`` ends the cell even
    inside a code span and ``\\|`` cannot be shown exactly there, so such text is escaped instead."""
    flat = _one_line(text)
    if not flat or "|" in flat or "\\" in flat:
        return md_text(flat)
    ticks = "`" * (_longest_backtick_run(flat) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _fence(text: str) -> str:
    return "`" * max(3, _longest_backtick_run(text) + 1)


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    """A table of cells already rendered (``md_text``/``md_code`` for anything untrusted)."""
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary_markdown(report: SwapReport, *, target: str, report_path: str = "") -> str:
    """The step summary: what changed, the diff, the timeline, the drain and, on failure, cause and fix."""
    outcome = report.outcome
    error = outcome.error
    active, previous, slot = (md_text(name or "unknown") for name in (outcome.active, outcome.previous, outcome.target))
    if error is not None:
        heading = f"## ❌ Blue-green swap failed: {md_text(error.title)}"
    elif outcome.result is Result.PLANNED:
        heading = f"## 🔍 Blue-green swap (dry run): would make {slot} live"
    elif outcome.changed:
        heading = f"## ✅ Blue-green swap: {active} is live (was {previous})"
    else:
        heading = f"## ✅ Blue-green swap: {active} was already live, nothing changed"
    facts = [
        ("load balancer", md_code(target)),
        ("live now", active),
        ("live before", previous),
        ("target slot", slot),
        ("changed", "yes" if outcome.changed else "no"),
        ("duration", f"{report.duration_ms:.0f} ms"),
    ]
    if error is not None:
        facts.append(("restored", "yes: the previous config is live again" if outcome.restored else "no"))
    if report.staging_slot:
        facts.append(("staging slot", md_text(report.staging_slot)))
    if report_path:
        facts.append(("report", md_code(report_path)))
    lines = [heading, "", *_table(("", ""), facts), ""]
    if error is not None:
        # The state sentence is the engine's own text about validated slot names.
        lines += ["### What went wrong", "", f"**Cause:** {md_text(error.cause)}", "", outcome.state_sentence(), ""]
        if error.fix:
            lines += [f"**Fix:** {md_text(error.fix)}", ""]
    if report.config_diff:
        diff = redact_credentials(report.config_diff)  # inside a fence longer than any backtick run in it
        fence = _fence(diff)
        title = "Config change (not applied: dry run)" if report.dry_run else "Config change"
        lines += [f"### {title}", "", f"{fence}diff", diff.rstrip("\n"), fence, ""]
    if report.steps:
        rows = [
            (
                str(index),
                md_text(step.label),
                "ok" if step.ok else "**failed**",
                f"{step.duration_ms:.0f} ms",
                md_text(step.detail),
            )
            for index, step in enumerate(report.steps, 1)
        ]
        lines += ["### Timeline", "", *_table(("#", "step", "result", "duration", "detail"), rows), ""]
    if len(report.lbs) >= 2:
        lines += ["### Load balancers", "", *_lb_table(report.lbs), ""]
    if report.skew:
        lines += ["### Skew between load balancers", "", *_skew_table(report.skew), ""]
    if report.hooks:
        lines += ["### Hooks", "", *_hook_table(report.hooks), ""]
        for hook in report.hooks:
            lines += _hook_output(hook)
    if report.drain is not None:
        lines += ["### Drain of the old slot", "", md_text(report.drain.summary()), ""]
    return "\n".join(lines)


SHORT_ERROR = 160  # characters of an LB's error in its table row; the full text is in the report


def _lb_table(lbs: Iterable[LbOutcome]) -> list[str]:
    rows = []
    for lb in lbs:
        if lb.restore_failed:
            restored = "**failed**"
        elif lb.in_doubt:
            restored = "in doubt"
        else:
            restored = "yes" if lb.restored else "no"
        error = ""
        if lb.error is not None:
            text = f"{lb.error.title}: {' '.join(lb.error.cause.split())}"
            error = md_text(text if len(text) <= SHORT_ERROR else text[: SHORT_ERROR - 1] + "…")
        rows.append(
            (
                md_code(lb.target),
                md_text(lb.before or "unknown"),
                md_text(lb.after or "unknown"),
                "yes" if lb.changed else "no",
                restored,
                _clock(lb.confirmed_at),
                error,
            )
        )
    return _table(("load balancer", "before", "after", "changed", "restored", "confirmed", "error"), rows)


def _clock(at: float | None) -> str:
    """A time of day (UTC, ms) from an LB's clock, or a dash."""
    if at is None:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d} UTC"


def _skew_table(skew: Iterable[Skew]) -> list[str]:
    rows = [
        (md_text(f"{window.percent}% to {window.slot}"), str(window.lbs), f"{window.window_ms:.0f} ms")
        for window in skew
    ]
    return _table(("step", "load balancers", "window (first to last confirmed)"), rows)


def _hook_result(hook: HookRun) -> str:
    if hook.ok:
        return "ok (exit 0)"
    if hook.timed_out:
        return "**failed**: stopped at hook-timeout"
    if hook.exit_code is None:
        return "**failed**: could not start"
    return f"**failed**: exit {hook.exit_code}"


def _hook_table(hooks: Iterable[HookRun]) -> list[str]:
    rows = [(md_text(hook.name), _hook_result(hook), f"{hook.duration_ms:.0f} ms") for hook in hooks]
    return _table(("hook", "result", "duration"), rows)


def _hook_output(hook: HookRun) -> list[str]:
    """The hook's output, collapsed: untrusted text, so in a fence longer than any backtick run in it."""
    output = "\n".join(re.split(r"\r\n|\r|\n", redact_credentials(hook.output).rstrip("\r\n")))
    if not output.strip():
        return [f"{md_text(hook.name)} printed nothing.", ""]
    cut = " (the last 64 KiB)" if len(hook.output.encode()) >= OUTPUT_CAP else ""
    fence = _fence(output)
    summary = f"{html.escape(hook.name)} output{cut}"
    return [f"<details><summary>{summary}</summary>", "", fence, output, fence, "", "</details>", ""]
