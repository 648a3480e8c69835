"""``python -m swap_action`` against real containers: the LB image, blue and green.

Each test gets a fresh stack (``lb_stack``: the harness's ``Environment``); traffic is checked
from the host through the LB's published port, the managed file and the error log inside the LB
container. ``--json`` prints the report: ``outcome`` says what happened, each step its ``phase``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lb_fixtures import MANAGED, CliRun, LbStack

from swap_action.upstream import parse_state

pytestmark = pytest.mark.docker

Start = Callable[..., LbStack]
VERIFY = ("--verify-url", "http://127.0.0.1/")


def live_in_file(stack: LbStack) -> str | None:
    return parse_state(stack.managed_bytes().decode()).live


def phases(report: dict[str, Any]) -> list[str]:
    return [step["phase"] for step in report["steps"]]


def test_swap_status_plan_rollback(lb_stack: Start) -> None:
    stack = lb_stack()
    assert stack.bodies() == {"blue"}

    swap = stack.cli("swap", "--to", "green", *VERIFY, "--verify-expect", "green")
    assert swap.code == 0, swap
    assert swap.out.startswith("swapped blue -> green in "), swap
    assert stack.bodies(20) == {"green"}
    assert stack.get().upstream_addr.endswith(":8080")
    print(f"swap: {swap.seconds:.2f}s wall\n{swap.err}")

    status = stack.cli("status")
    assert status.code == 0, status
    assert "live slot:   green (previous: blue)" in status.out
    assert "weights:     blue 0%, green 100%" in status.out
    assert "nginx version: nginx/1.22.1" in status.out
    assert ": Nginx serves this file" in status.out

    before, reloads = stack.managed_bytes(), stack.reloads()
    plan = stack.cli("plan", "--to", "blue")
    assert plan.code == 0, plan
    assert f"--- {MANAGED} (live)" in plan.out
    assert "-    # idle, no traffic: server blue:8080;  # slot=blue" in plan.out
    assert "+    server blue:8080;  # slot=blue" in plan.out
    assert "passes nginx -t; nothing was changed" in plan.out
    assert stack.managed_bytes() == before, "plan changes nothing"
    assert stack.reloads() == reloads, "plan does not reload"
    assert stack.bodies() == {"green"}

    rollback = stack.cli("rollback")
    assert rollback.code == 0, rollback
    assert rollback.out.startswith("rolled back green -> blue"), rollback
    assert stack.bodies(20) == {"blue"}
    assert "live slot:   blue (previous: green)" in stack.cli("status").out
    assert not stack.exists(f"{MANAGED}.lock")


def test_bad_input_exits_2_before_touching_the_lb(lb_stack: Start) -> None:
    stack = lb_stack()
    before, reloads = stack.managed_bytes(), stack.reloads()
    result = stack.cli("swap", "--blue", "x;y:80")
    assert result.code == 2, result
    assert "error: input 'blue': 'x;y:80' is not a server address" in result.err
    assert "fix: " in result.err
    assert stack.managed_bytes() == before and stack.reloads() == reloads
    assert not stack.exists(f"{MANAGED}.lock"), "no lock was even taken"


WEIGHT_ZERO = """upstream {{ upstream }} {
{%- for s in servers %}
    server {{ s.address }} weight={{ 0 if s.down else s.weight }};
{%- endfor %}
}
"""
UNKNOWN_DIRECTIVE = """upstream {{ upstream }} {
    bogus_balancer on;
{%- for s in servers %}
    server {{ s.address }}{% if s.down %} down{% endif %};
{%- endfor %}
}
"""


@pytest.mark.parametrize(
    ("template", "nginx_says", "hint"),
    [
        (WEIGHT_ZERO, 'invalid parameter "weight=0"', "a server that must get no traffic is written 'down'"),
        (UNKNOWN_DIRECTIVE, 'unknown directive "bogus_balancer"', "renders a directive this Nginx does not know"),
    ],
    ids=["weight=0", "unknown-directive"],
)
def test_nginx_t_failure_leaves_the_live_file_unchanged(
    lb_stack: Start, tmp_path: Path, template: str, nginx_says: str, hint: str
) -> None:
    stack = lb_stack()
    path = tmp_path / "upstream.conf.j2"
    path.write_text(template)
    before, reloads = stack.managed_bytes(), stack.reloads()
    result = stack.cli("swap", "--to", "green", "--template", str(path), "--json")
    assert result.code == 1, result
    assert "error: nginx -t refused the new upstream config: " in result.err and nginx_says in result.err, result
    assert f"fix: {hint}" in result.err or hint in result.err, result
    assert result.json()["outcome"]["error"]["type"] == "ConfigTestError"
    assert stack.managed_bytes() == before, "byte for byte"
    assert stack.reloads() == reloads
    assert stack.bodies() == {"blue"}
    leftovers = stack.exec("sh", "-c", f"ls -a {Path(MANAGED).parent} | grep -c candidate || true")[1].strip()
    assert leftovers == b"0", "no candidate file is left behind"


def test_unhealthy_green_is_refused(lb_stack: Start) -> None:
    stack = lb_stack(green_env={"APP_HEALTHY": "false"}, green_healthy=False)
    before = stack.managed_bytes()
    result = stack.cli("swap", "--to", "green", *VERIFY, "--json")
    assert result.code == 1, result
    report = result.json()
    outcome = report["outcome"]
    assert outcome["error"]["type"] == "HealthCheckError"
    assert "http://green:8080/healthz answered 503" in outcome["error"]["cause"]
    assert "error: green is not healthy" in result.err
    assert outcome["changed"] is False and report["reloads"] == []
    assert stack.managed_bytes() == before
    assert stack.bodies() == {"blue"}


@pytest.mark.parametrize(
    ("green_env", "extra", "cause"),
    [
        ({"APP_FAIL": "true"}, (), "http://127.0.0.1/ answered 500"),
        ({}, ("--verify-expect", "purple"), "expected 'purple'"),
    ],
    ids=["green-answers-500", "green-answers-the-wrong-thing"],
)
def test_failed_verification_restores_blue(
    lb_stack: Start, green_env: dict[str, str], extra: tuple[str, ...], cause: str
) -> None:
    stack = lb_stack(green_env=green_env)
    result = stack.cli("swap", "--to", "green", *VERIFY, *extra, "--json")
    assert result.code == 1, result
    report = result.json()
    outcome = report["outcome"]
    assert outcome["error"]["type"] == "VerificationError" and cause in outcome["error"]["cause"]
    assert (outcome["result"], outcome["restored"], outcome["active"]) == ("restored", True, "blue")
    assert outcome["changed"] is False
    assert phases(report)[-2:] == ["verify", "restore"], phases(report)
    verify, restore = report["steps"][-2:]
    assert (verify["slot"], verify["percent"], verify["ok"]) == ("green", 100, False)
    assert restore["ok"] is True
    assert "The previous config was restored: blue is live again." in result.err
    assert live_in_file(stack) == "blue"
    assert stack.bodies(20) == {"blue"}
    print(f"failed swap + restore: {report['duration_ms']} ms")


def test_two_concurrent_swaps_do_not_interleave(lb_stack: Start) -> None:
    stack = lb_stack()
    reloads = stack.reloads()
    # Two canary steps with a pause: the first swap holds the lock for over a second, so the
    # second one (started at the same time) certainly finds it held.
    args = ("--to", "green", "--steps", "50,100", "--step-pause", "1s", "--json")
    procs = [stack.popen("swap", *args) for _ in range(2)]
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        runs.append(CliRun(proc.returncode, out, err, 0.0))
    assert [r.code for r in runs] == [0, 0], runs
    reports = [r.json() for r in runs]
    assert sorted(r["outcome"]["changed"] for r in reports) == [False, True]
    winner, loser = (reports[0], reports[1]) if reports[0]["outcome"]["changed"] else (reports[1], reports[0])
    loser_err = runs[reports.index(loser)].err
    assert "waiting for the lock: held by " in loser_err, loser_err
    assert "green is already live with these servers: nothing to change" in loser_err
    # The loser got the lock only after the winner's last step had ended.
    winner_end = max(s["started_at"] + s["duration_ms"] / 1000 for s in winner["steps"])
    lock = loser["steps"][0]
    assert lock["phase"] == "lock"
    assert lock["started_at"] + lock["duration_ms"] / 1000 >= winner_end
    assert loser["reloads"] == [] and len(winner["reloads"]) == 2
    assert stack.reloads() - reloads == 2, "only the winner's two steps reloaded Nginx"
    assert not stack.exists(f"{MANAGED}.lock")
    assert stack.bodies() == {"green"}
    print(f"lock wait of the second swap: {lock['duration_ms']:.0f} ms")


def test_auto_swaps_there_and_back(lb_stack: Start) -> None:
    stack = lb_stack()
    seen = []
    for expected in ("green", "blue"):
        result = stack.cli("swap", *VERIFY, "--verify-expect", expected, "--json")
        assert result.code == 0, result
        report = result.json()
        outcome = report["outcome"]
        assert outcome["changed"] and outcome["active"] == expected and outcome["result"] == "swapped"
        assert live_in_file(stack) == expected
        assert stack.bodies(10) == {expected}
        seen.append(report["duration_ms"])
    print(f"auto swaps: {seen} ms")


def test_a_run_that_died_inside_apply_is_settled_by_the_next_swap(lb_stack: Start) -> None:
    """The state a run killed inside apply.sh leaves: its candidate in place, never reloaded, the
    served bytes in <file>.before-swap. The next swap puts them back first, then swaps as asked."""
    stack = lb_stack()
    served = stack.managed_bytes()
    code, _ = stack.exec(
        "sh", "-c", 'cp "$1" "$1.before-swap" && printf "upstream app { server green:8080; }\\n" > "$1"', "x", MANAGED
    )  # fmt: skip
    assert code == 0
    swap = stack.cli("swap", "--to", "green", *VERIFY, "--verify-expect", "green")
    assert swap.code == 0, swap
    assert "died while applying" in swap.err
    assert not stack.exists(f"{MANAGED}.before-swap")
    assert stack.exec("cat", f"{MANAGED}.previous")[1] == served
    assert stack.bodies(10) == {"green"}


def test_a_lock_is_taken_over_only_after_its_holders_own_deadline(lb_stack: Start) -> None:
    stack = lb_stack()
    lock = f"{MANAGED}.lock"
    # A live holder with 10 minutes left: the run waits, then gives up naming it, and changes nothing.
    stack.exec(
        "sh",
        "-c",
        'mkdir "$1" && echo other-run > "$1/owner" && echo $(( $(date +%s) + 600 )) > "$1/expires"',
        "x",
        lock,
    )
    held = stack.cli("swap", "--to", "green", "--lock-timeout", "1s")
    assert held.code == 1, held
    assert "another swap holds the lock" in held.err and "held by other-run" in held.err, held.err
    assert stack.bodies() == {"blue"}
    # The same holder, past its deadline (it died): taken over, and the swap goes ahead.
    stack.exec("sh", "-c", 'echo $(( $(date +%s) - 1 )) > "$1/expires"', "x", lock)
    taken = stack.cli("swap", "--to", "green", *VERIFY)
    assert taken.code == 0, taken
    assert stack.bodies(10) == {"green"} and not stack.exists(lock)
