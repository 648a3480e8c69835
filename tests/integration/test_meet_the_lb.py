"""The preflight on a real Nginx: the engine finds the file Nginx loads, refuses one it does not, and
adopts a hand-written upstream, keeping every setting that is not its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from lb_fixtures import MANAGED, ROOT, CliRun, LbStack

pytestmark = pytest.mark.docker

Start = Callable[..., LbStack]
HAND_WRITTEN = """# written by hand
upstream app {
    least_conn;
    server blue:8080 max_fails=3 fail_timeout=10s;
    server green:8080 down max_fails=3 fail_timeout=10s;
    keepalive 16;
}
"""


def cli(stack: LbStack, command: str, *args: str) -> CliRun:
    """The CLI as a user runs it: no --config-path unless given."""
    argv = [sys.executable, "-m", "swap_action", command, "--target", f"docker://{stack.lb_name}", *args]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def checksum(stack: LbStack) -> bytes:
    code, out = stack.exec("sh", "-c", "find /etc/nginx -type f | sort | xargs md5sum")
    assert code == 0
    return out


def write(stack: LbStack, path: str, text: str) -> None:
    """Write a file on the LB and reload; returns once the master logged the reload."""
    before = stack.reloads()
    code, out = stack.exec("sh", "-c", 'printf "%s" "$2" > "$1" && nginx -s reload', "w", path, text)
    assert code == 0, out
    deadline = time.monotonic() + 10
    while stack.reloads() == before:
        assert time.monotonic() < deadline, "nginx never logged the reload"
        time.sleep(0.02)


def test_without_config_path_the_file_nginx_loads_is_found(lb_stack: Start) -> None:
    stack = lb_stack()
    status = cli(stack, "status")
    assert status.code == 0 and f"config:      {MANAGED}" in status.out, status
    swap = cli(stack, "swap", "--to", "green", "--json")
    assert swap.code == 0, swap
    report = json.loads(swap.out)
    assert report["steps"][0]["phase"] == "probe" and MANAGED in report["steps"][0]["detail"]
    assert report["outcome"]["active"] == "green" and stack.bodies(10) == {"green"}


def test_a_wrong_config_path_fails_fast_names_the_right_file_and_changes_nothing(lb_stack: Start) -> None:
    stack = lb_stack()
    before = checksum(stack)
    result = cli(stack, "swap", "--to", "green", "--config-path", "/etc/nginx/conf.d/upstream.conf", "--json")
    assert result.code == 2 and result.seconds < 5, result
    outcome = json.loads(result.out)["outcome"]
    assert outcome["changed"] is False and outcome["error"]["type"] == "InputError"
    assert f"'app' in {MANAGED}" in outcome["error"]["cause"] and MANAGED in outcome["error"]["fix"]
    assert checksum(stack) == before, "not a byte of /etc/nginx changed"
    assert not stack.exists("/etc/nginx/conf.d/upstream.conf.lock") and stack.bodies(10) == {"blue"}


def test_a_hand_written_upstream_is_adopted_keeping_its_settings(lb_stack: Start) -> None:
    stack = lb_stack()
    write(stack, MANAGED, HAND_WRITTEN)
    status = cli(stack, "status")
    assert "live slot:   blue (inferred from down/weights" in status.out, status
    plan = cli(stack, "plan", "--to", "auto", "--blue", "blue:8080", "--green", "green:8080")
    assert plan.code == 0, plan
    assert "-    server blue:8080 max_fails=3 fail_timeout=10s;" in plan.out
    assert "+    server blue:8080 max_fails=3 fail_timeout=10s down;" in plan.out
    assert "keepalive" not in "".join(
        line for line in plan.out.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    )
    for expected in ("green", "blue"):
        swap = cli(stack, "swap", "--to", "auto", "--blue", "blue:8080", "--green", "green:8080", "--json")
        assert swap.code == 0, swap
        assert json.loads(swap.out)["outcome"]["active"] == expected
        text = stack.managed_bytes().decode()
        for setting in ("least_conn;", "keepalive 16;", "# written by hand"):
            assert setting in text
        assert text.count("max_fails=3 fail_timeout=10s") == 2
        assert stack.bodies(10) == {expected}


def test_an_upstream_inside_a_site_file_is_refused_with_the_adopt_command(lb_stack: Start) -> None:
    stack = lb_stack()
    site = "/etc/nginx/site/default.conf"
    code, current = stack.exec("cat", site)
    assert code == 0
    stack.exec("rm", "-f", MANAGED)
    write(stack, site, HAND_WRITTEN + current.decode())
    before = checksum(stack)
    result = cli(stack, "swap", "--to", "green", "--config-path", site)
    assert result.code == 2 and "next to server blocks" in result.err and "swap_action adopt" in result.err, result
    assert checksum(stack) == before


def test_adopt_moves_the_upstream_out_and_the_swap_then_manages_it(lb_stack: Start) -> None:
    stack = lb_stack()
    site = "/etc/nginx/site/default.conf"
    code, current = stack.exec("cat", site)
    assert code == 0
    stack.exec("rm", "-f", MANAGED)
    write(stack, site, HAND_WRITTEN + current.decode())
    adopted = cli(stack, "adopt", "--config-path", site)
    assert adopted.code == 0 and "/etc/nginx/site/app.upstream" in adopted.out, adopted
    code, moved = stack.exec("cat", "/etc/nginx/site/app.upstream")
    assert code == 0 and moved.decode().startswith("upstream app {") and b"keepalive 16;" in moved
    code, site_now = stack.exec("cat", site)
    assert b"include /etc/nginx/site/app.upstream;" in site_now and b"upstream app" not in site_now
    assert stack.exec("cat", f"{site}.previous")[1] == (HAND_WRITTEN + current.decode()).encode()
    swap = cli(stack, "swap", "--to", "auto", "--blue", "blue:8080", "--green", "green:8080")
    assert swap.code == 0, swap
    assert stack.bodies(10) == {"green"}
