"""The GitHub Action's entrypoint: ``python -m swap_action.action``.

``action.yml`` maps every input to a ``BG_*`` variable in ``runs.env`` (the hyphenated
``INPUT_*`` names Docker container actions get are not reliable). This module masks the secrets,
validates every input before anything on the load balancer is touched, runs the swap (or the plan
on dry-run) and writes the outputs, the step summary and a JSON report.

Exit status: 0 the swap succeeded (or changed nothing), 1 it failed (``SwapError``: bad input,
unreachable LB, refused config, failed verification...), 2 an unexpected internal error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .errors import InputError, SwapError
from .fleet import FleetEngine
from .github import Commands, GitHubObserver, summary_markdown
from .host import ScriptedHost
from .inputs import INPUTS, SwapOptions, parse_targets, swap_options_from
from .outcome import ErrorInfo, LbOutcome, Outcome, Result, SwapReport
from .redact import redact_credentials, redact_document, url_passwords
from .transport import open_transport
from .upstream import new_generation, render, weights_for_step

OUTPUTS = ("active-slot", "previous-slot", "changed", "duration-ms", "config-diff", "lbs", "staging-slot", "report")
MAX_TEMPLATE_BYTES = 64 * 1024
_DOCKER_TARGET = re.compile(r"^docker://[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Request:
    """The validated inputs: where the LB is and what to do there."""

    targets: tuple[str, ...]  # one LB, or a fleet swapped all or nothing
    ssh_key: str | None
    known_hosts: str | None
    options: SwapOptions


def read_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    """Each input's raw text; an unset or empty variable gives the table's default (``Input.empty_is_a_value``)."""
    raw = {}
    for spec in INPUTS:
        value = environ.get(spec.env)
        raw[spec.name] = value if value is not None and (value or spec.empty_is_a_value) else spec.default
    return raw


def parse_request(raw: Mapping[str, str], workspace: Path) -> Request:
    """Validate every input; raise ``InputError`` naming the first bad one. Touches nothing remote."""
    targets = parse_targets("target", raw["target"])
    for target in targets:
        if target.startswith("docker://") and not _DOCKER_TARGET.match(target):
            raise InputError(
                "target", f"'{target}' is not a container name", "write docker://<name as 'docker ps' shows it>"
            )
    options = swap_options_from(raw, template=read_template(raw["template"], workspace))
    if options.template is not None:
        # A template that does not render is refused here, not halfway through the swap.
        slot = "blue" if options.to == "auto" else options.to
        render(
            upstream=options.upstream,
            slots=options.slots,
            weights=weights_for_step(slot, 100),
            generation=new_generation(),
            previous=None,
            template=options.template,
        )
    return Request(targets, raw["ssh-key"] or None, raw["known-hosts"] or None, options)


def read_template(path_text: str, workspace: Path) -> str | None:
    """The template's text, from a path inside the workspace (the repository checkout)."""
    if not path_text.strip():
        return None
    root = workspace.resolve()
    path = (root / path_text.strip()).resolve()
    if not path.is_relative_to(root):
        raise InputError(
            "template", f"'{path_text}' is outside the workspace", "give a path relative to the repository root"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            "template",
            f"cannot read {path_text}: {exc.strerror}",
            "check the path (relative to the repository root) and that the repository is checked out (actions/checkout)",
        ) from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise InputError(
            "template", f"{path_text} is larger than {MAX_TEMPLATE_BYTES} bytes", "render only the upstream block"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("template", f"{path_text} is not UTF-8 text", "save the template as UTF-8") from None


def report_location(environ: Mapping[str, str]) -> tuple[Path, str]:
    """Where the JSON report goes: the file, and how later steps name it (relative to the workspace)."""
    workspace = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    step = _SAFE_NAME.sub("-", environ.get("GITHUB_ACTION", "")).strip("-.")
    name = f"bluegreen-swap-report{'-' + step if step else ''}.json"
    return workspace / name, name


def outputs_for(report: SwapReport, report_name: str) -> dict[str, str]:
    outcome = report.outcome
    return {
        "active-slot": outcome.active or "",
        "previous-slot": outcome.previous or "",
        "changed": "true" if outcome.changed else "false",
        "duration-ms": str(round(report.duration_ms)),
        "config-diff": report.config_diff,
        "lbs": json.dumps([_lb_output(lb) for lb in report.lbs]),
        "staging-slot": report.staging_slot or "",
        "report": report_name,
    }


def _lb_output(lb: LbOutcome) -> dict[str, object]:
    return {
        "target": lb.target,
        "before": lb.before,
        "after": lb.after,
        "changed": lb.changed,
        "restored": lb.restored,
        "error": lb.error.text() if lb.error else None,
    }


def failure_report(exc: SwapError, seconds: float) -> SwapReport:
    """A failure before the engine ran (inputs, transport): nothing was changed."""
    report = SwapReport(duration_ms=seconds * 1000)
    report.outcome = Outcome(result=Result.FAILED, error=ErrorInfo.of(exc))
    return report


def run(environ: Mapping[str, str], commands: Commands) -> int:
    raw = read_inputs(environ)
    for spec in INPUTS:
        if spec.secret:
            commands.mask(raw[spec.name])
    for password in url_passwords(raw["verify-url"]):  # basic auth for the health endpoint
        commands.mask(password)
    report_file, report_name = report_location(environ)
    workspace = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    observer = GitHubObserver(commands)
    engine: FleetEngine | None = None
    target = ", ".join(line.strip() for line in raw["target"].replace(",", "\n").splitlines() if line.strip())
    target = target or "(none)"
    start = time.perf_counter()
    try:
        request = parse_request(raw, workspace)
        with contextlib.ExitStack() as stack:
            members = [
                (
                    name,
                    ScriptedHost(
                        stack.enter_context(
                            open_transport(name, ssh_key=request.ssh_key, known_hosts=request.known_hosts)
                        ),
                        sudo=request.options.sudo,
                    ),
                )
                for name in request.targets
            ]
            engine = FleetEngine(members, observer)
            options = request.options
            report = engine.plan(options) if options.dry_run else engine.swap(options)
        code = 0
    except SwapError as exc:
        # The engine's report carries the outcome it computed; before the engine ran, nothing changed.
        partial = engine.last_report if engine is not None else None
        report = partial or failure_report(exc, time.perf_counter() - start)
        code = 1
    finish(commands, report, target, report_file, report_name)
    return code


def finish(commands: Commands, report: SwapReport, target: str, report_file: Path, report_name: str) -> None:
    """Outputs, summary and report, in that order; then the error annotation, last in the log."""
    outcome = report.outcome
    document = redact_document({"target": target, **report.to_dict()})
    written = ""
    try:
        report_file.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        written = report_name
    except OSError as exc:
        commands.warning(f"cannot write the report {report_file}: {exc.strerror}", title="report not written")
    commands.set_outputs(outputs_for(report, written))
    commands.append_summary(summary_markdown(report, target=target, report_path=written))
    if outcome.error is not None:
        error = outcome.error
        message = f"{error.cause}\n{outcome.state_sentence()}" + (f"\nFix: {error.fix}" if error.fix else "")
        commands.error(message, title=f"bluegreen-swap: {error.title}")
    else:
        commands.write(f"bluegreen-swap: {outcome.result.value}; live: {outcome.active}; {report.duration_ms:.0f} ms")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # As PID 1 in the action container, SIGTERM (a cancelled job) would otherwise be ignored;
    # raising lets the engine's finally blocks release the lock.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    commands = Commands()
    try:
        return run(os.environ, commands)
    except Exception as exc:
        sys.stderr.write(redact_credentials(traceback.format_exc()))
        commands.error(f"unexpected {type(exc).__name__}: {exc}", title="bluegreen-swap: internal error")
        return 2


if __name__ == "__main__":
    sys.exit(main())
