"""swap_action.github: workflow commands, outputs, masking and the step summary."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from swap_action.errors import VerificationError
from swap_action.github import Commands, GitHubObserver, escape_data, escape_property, output_block, summary_markdown
from swap_action.outcome import (
    DrainOutcome,
    ErrorInfo,
    HookRun,
    LbOutcome,
    Outcome,
    Phase,
    Result,
    Skew,
    Step,
    SwapReport,
)
from swap_action.redact import redact_credentials


def read_outputs(text: str) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT the way the runner does (name=value and name<<DELIMITER blocks)."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            while lines[index] != delimiter:
                value.append(lines[index])
                index += 1
            index += 1
            outputs[name] = "\n".join(value)
        else:
            name, value_text = line.split("=", 1)
            outputs[name] = value_text
    return outputs


def github(tmp_path: Path, *, enabled: bool = True) -> tuple[Commands, io.StringIO]:
    (tmp_path / "output").touch()
    (tmp_path / "summary").touch()
    environ = {"GITHUB_OUTPUT": str(tmp_path / "output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    if enabled:
        environ["GITHUB_ACTIONS"] = "true"
    stream = io.StringIO()
    return Commands(environ, stream), stream


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a: b, c%\n") == "a%3A b%2C c%25%0A"
    # '%' first: an already escaped-looking text stays what it was.
    assert escape_data("%0A") == "%250A"


def test_multi_line_outputs_round_trip_even_when_a_value_contains_a_delimiter(tmp_path: Path) -> None:
    commands, _ = github(tmp_path)
    tricky = "line 1\nghadelimiter_x\nEOF\nname=value\n<<EOF"
    values = {"config-diff": "--- a\n+++ b\n-old\n+new", "changed": "true", "tricky": tricky, "empty": ""}
    commands.set_outputs(values)
    assert read_outputs((tmp_path / "output").read_text()) == values


def test_output_block_never_uses_a_delimiter_found_in_the_value() -> None:
    value = "a\nghadelimiter_fixed\nb"
    block = output_block("x", value, delimiter="ghadelimiter_fixed")
    delimiter = block.split("\n", 1)[0].split("<<", 1)[1]
    assert delimiter != "ghadelimiter_fixed" and delimiter not in value
    assert block == f"x<<{delimiter}\n{value}\n{delimiter}\n"
    # Random per output: two blocks do not share a delimiter.
    assert output_block("a", "1").split("\n")[0] != output_block("a", "1").split("\n")[0]


def test_every_line_of_a_multi_line_secret_is_masked(tmp_path: Path) -> None:
    commands, stream = github(tmp_path)
    commands.mask("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk%tdjEAAAA\n==\n\n")
    masks = sorted(line for line in stream.getvalue().splitlines() if line.startswith("::add-mask::"))
    assert masks == [
        "::add-mask::-----BEGIN OPENSSH PRIVATE KEY-----",
        "::add-mask::b3BlbnNzaC1rZXk%25tdjEAAAA",
    ]  # '==' is too short to mask without hiding ordinary text


def test_errors_and_warnings_are_annotations_with_escaped_title_and_message(tmp_path: Path) -> None:
    commands, stream = github(tmp_path)
    commands.error("cause: 100% broken\nFix: do this", title="bluegreen-swap: verify, failed")
    commands.warning("drain: 2 connections left")
    assert stream.getvalue().splitlines() == [
        "::error title=bluegreen-swap%3A verify%2C failed::cause: 100%25 broken%0AFix: do this",
        "::warning::drain: 2 connections left",
    ]


def test_outside_github_everything_is_plain_text(tmp_path: Path) -> None:
    commands, stream = github(tmp_path, enabled=False)
    commands.mask("secret-value")
    commands.group("lock")
    commands.error("it broke", title="swap failed")
    commands.set_outputs({"changed": "true", "config-diff": "-a\n+b"})
    assert commands.append_summary("# hi") is False
    assert "::" not in stream.getvalue()
    assert "secret-value" not in stream.getvalue()
    assert "error: swap failed: it broke" in stream.getvalue()
    assert "changed=true" in stream.getvalue()
    assert (tmp_path / "output").read_text() == "" and (tmp_path / "summary").read_text() == ""


def test_observer_opens_and_closes_one_group_per_step(tmp_path: Path) -> None:
    commands, stream = github(tmp_path)
    observer = GitHubObserver(commands)
    step = Step(Phase.RENDER, 0.0, slot="green", percent=100, duration_ms=3.2)
    observer.step_started(step)
    observer.step_finished(step)
    observer.warning("drain deadline reached")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "::group::render (100%25 to green)"
    assert "render (100% to green)" in lines[1] and "3 ms" in lines[1]
    assert lines[2:] == ["::endgroup::", "::warning::drain deadline reached"]
    assert observer.steps == [step]


def _report(outcome: Outcome | None = None, **changes: object) -> SwapReport:
    report = SwapReport(
        outcome=outcome or Outcome(Result.SWAPPED, changed=True, active="green", previous="blue", target="green"),
        duration_ms=812.4,
        config_diff="--- a (live)\n+++ a (new)\n-    server green:8080 down;\n+    server green:8080;\n",
        steps=[
            Step(Phase.LOCK, 0.0, duration_ms=40.0),
            Step(Phase.RELOAD_CONFIRM, 0.0, "green", 100, duration_ms=210.0, detail="marker +120 ms | ok"),
        ],
        drain=DrainOutcome("complete", 80.0, 0, 0),
    )
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def test_summary_shows_the_change_the_diff_the_timeline_and_the_drain() -> None:
    text = summary_markdown(_report(), target="docker://lb", report_path="bluegreen-swap-report.json")
    assert text.startswith("## ✅ Blue-green swap: green is live (was blue)")
    assert "| live now | green |" in text and "| live before | blue |" in text and "| changed | yes |" in text
    assert "```diff\n--- a (live)\n+++ a (new)\n-    server green:8080 down;\n+    server green:8080;\n```" in text
    assert "| 2 | reload-confirm (100% to green) | ok | 210 ms | marker +120 ms \\| ok |" in text
    assert "### Drain of the old slot\n\ndrained in 80 ms" in text
    assert "`bluegreen-swap-report.json`" in text
    assert "What went wrong" not in text and "| restored |" not in text


def test_summary_of_a_failure_gives_cause_fix_and_whether_it_was_restored() -> None:
    error = ErrorInfo.of(VerificationError("http://127.0.0.1/ answered 500", "check the green deployment"))
    failed = [Step(Phase.VERIFY, 0.0, "green", 100, duration_ms=100.0, ok=False, detail="answered 500")]
    outcome = Outcome(Result.RESTORED, False, "blue", "blue", "green", restored=True, error=error)
    text = summary_markdown(_report(outcome, drain=None, steps=failed), target="docker://lb")
    assert text.startswith("## ❌ Blue-green swap failed: verification through the load balancer failed")
    assert "| restored | yes: the previous config is live again |" in text
    assert "| live now | blue |" in text and "| changed | no |" in text
    assert "**Cause:** http://127.0.0.1/ answered 500" in text
    assert "The previous config was restored: blue is live again." in text
    assert "**Fix:** check the green deployment" in text
    assert "| 1 | verify (100% to green) | **failed** | 100 ms | answered 500 |" in text


def test_summary_of_a_failure_that_was_not_restored_says_what_is_live() -> None:
    error = ErrorInfo.of(VerificationError("http://127.0.0.1/ answered 500", "check the green deployment"))
    outcome = Outcome(Result.FAILED, True, "green", "blue", "green", restored=False, error=error)
    text = summary_markdown(_report(outcome), target="docker://lb")
    assert "| restored | no |" in text and "| changed | yes |" in text and "| live now | green |" in text
    assert "Not restored: the new config stays live (green is live)." in text


def test_summary_of_a_no_op_and_of_a_plan() -> None:
    unchanged = Outcome(Result.UNCHANGED, False, "blue", "blue", "blue")
    text = summary_markdown(_report(unchanged, config_diff="", drain=None), target="docker://lb")
    assert text.startswith("## ✅ Blue-green swap: blue was already live, nothing changed")
    assert "| changed | no |" in text and "Config change" not in text
    planned = Outcome(Result.PLANNED, False, "blue", "blue", "green")
    text = summary_markdown(_report(planned, dry_run=True, drain=None), target="docker://lb")
    assert text.startswith("## 🔍 Blue-green swap (dry run): would make green live")
    assert "### Config change (not applied: dry run)" in text


@pytest.mark.parametrize("diff", ["+```\n-x", "+````python"])
def test_a_diff_containing_backticks_gets_a_longer_fence(diff: str) -> None:
    text = summary_markdown(_report(config_diff=diff), target="docker://lb")
    fence = "`" * (diff.count("`") + 1)
    assert f"{fence}diff\n{diff}\n{fence}\n" in text


# -- a fleet, hooks and the staging route in the step summary ---------------------------------


def _fleet_report() -> SwapReport:
    error = ErrorInfo.of(VerificationError("http://127.0.0.1/ answered 500 | <b>bad</b>", "check green"))
    lbs = [
        LbOutcome("ssh://deploy@lb1", "blue", "green", changed=True, confirmed_at=1_700_000_000.25),
        LbOutcome("docker://lb2", "blue", "blue", restored=True, error=error),
        LbOutcome("ssh://deploy:pw@lb3", None, None, restore_failed=True),
    ]
    skew = [Skew("green", 10, 1_700_000_000.0, 1_700_000_000.0421, 3), Skew("green", 100, 1.0, 1.5, 2)]
    return _report(lbs=lbs, skew=skew, staging_slot="blue")


def test_a_fleet_gets_a_row_per_load_balancer_and_the_skew_per_step() -> None:
    text = summary_markdown(_fleet_report(), target="ssh://deploy@lb1,docker://lb2", report_path="r.json")
    assert (
        "### Load balancers\n\n"
        "| load balancer | before | after | changed | restored | confirmed | error |\n"
        "|---|---|---|---|---|---|---|\n"
        "| `ssh://deploy@lb1` | blue | green | yes | no | 22:13:20.250 UTC |  |\n"
        "| `docker://lb2` | blue | blue | no | yes | - | verification through the load balancer failed: "
        "http://127.0.0.1/ answered 500 \\| \\<b\\>bad\\</b\\> |\n"
        "| `ssh://deploy:***@lb3` | unknown | unknown | no | **failed** | - |  |\n"
    ) in text
    assert (
        "### Skew between load balancers\n\n"
        "| step | load balancers | window (first to last confirmed) |\n"
        "|---|---|---|\n"
        "| 10% to green | 3 | 42 ms |\n"
        "| 100% to green | 2 | 500 ms |\n"
    ) in text
    assert "| staging slot | blue |" in text
    assert text.index("| staging slot |") < text.index("| report |")
    assert "pw" not in text


def test_a_long_lb_error_is_cut_short_in_its_row() -> None:
    error = ErrorInfo.of(VerificationError("x" * 500, "fix"))
    report = _report(lbs=[LbOutcome("docker://a", error=error), LbOutcome("docker://b")])
    row = next(line for line in summary_markdown(report, target="a").splitlines() if "`docker://a`" in line)
    assert "x" * 100 in row and "x" * 200 not in row and "…" in row


def test_one_load_balancer_keeps_the_summary_as_it_was() -> None:
    plain = summary_markdown(_report(), target="docker://lb", report_path="r.json")
    one = _report(lbs=[LbOutcome("docker://lb", "blue", "green", changed=True, confirmed_at=1.0)])
    assert summary_markdown(one, target="docker://lb", report_path="r.json") == plain
    assert "### Load balancers" not in plain and "### Skew" not in plain and "### Hooks" not in plain
    assert "staging slot" not in plain


def test_hooks_get_a_table_and_their_output_collapsed() -> None:
    hooks = [
        HookRun("pre-switch", "./migrate.sh", 0, 1234.4, "ALTER TABLE users ADD COLUMN email text;\nok\n"),
        HookRun("post-switch", "./smoke.sh", 2, 80.0, "GET / -> 500\n"),
        HookRun("post-drain", "sleep 600", None, 300_000.0, "", timed_out=True),
    ]
    text = summary_markdown(_report(hooks=hooks), target="docker://lb")
    assert (
        "### Hooks\n\n"
        "| hook | result | duration |\n"
        "|---|---|---|\n"
        "| pre-switch | ok (exit 0) | 1234 ms |\n"
        "| post-switch | **failed**: exit 2 | 80 ms |\n"
        "| post-drain | **failed**: stopped at hook-timeout | 300000 ms |\n"
    ) in text
    assert (
        "<details><summary>pre-switch output</summary>\n\n```\nALTER TABLE users ADD COLUMN email text;\nok\n```\n\n</details>\n"
    ) in text
    assert "<details><summary>post-switch output</summary>\n\n```\nGET / -> 500\n```\n\n</details>\n" in text
    assert "post-drain printed nothing." in text
    assert text.index("### Hooks") < text.index("### Drain of the old slot")


def _fenced_blocks(markdown: str) -> list[str]:
    """The content of each fenced code block, read as CommonMark does (any line ending; a closing
    fence is a run of at least as many backticks, up to 3 spaces in, nothing but blanks after)."""
    blocks: list[str] = []
    fence: str | None = None
    content: list[str] = []
    for line in re.split(r"\r\n|\r|\n", markdown):
        if fence is None:
            opening = re.match(r" {0,3}(`{3,})", line)
            if opening:
                fence, content = opening.group(1), []
            continue
        closing = re.fullmatch(r" {0,3}(`{3,})[ \t]*", line)
        if closing and len(closing.group(1)) >= len(fence):
            blocks.append("\n".join(content))
            fence = None
        else:
            content.append(line)
    assert fence is None, "a fence was left open"
    return blocks


@pytest.mark.parametrize(
    "output",
    [
        "```\n## Owned\n::error::pwned\n```",
        "````\n```` \n   ```\n</details>\n<script>alert(1)</script>\n::error title=x::y",
        "``` \r```\r\n::warning::z\r`````",
        "connecting to postgres://app:hunter2@db/app\n",
    ],
)
def test_hook_output_cannot_escape_its_fence(output: str) -> None:
    hook = HookRun("post-switch", "./smoke.sh", 1, 5.0, output)
    text = summary_markdown(_report(hooks=[hook]), target="docker://lb")
    blocks = _fenced_blocks(text)
    expected = "\n".join(re.split(r"\r\n|\r|\n", redact_credentials(output).rstrip("\r\n")))
    assert blocks[-1] == expected  # the whole output, and nothing but it, inside the fence
    after = text.split(expected, 1)[1]
    assert "::error" not in after and "::warning" not in after and "## Owned" not in after
    assert "hunter2" not in text
    assert text.count("<details>") == 1 and text.count("</details>") == 1 + output.count("</details>")
