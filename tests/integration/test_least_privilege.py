"""Least privilege: a swap over SSH as 'deploy' (no root login at all) with sudo for exactly the
commands a swap needs (the LB image's /etc/sudoers.d/bluegreen-swap, README "Least privilege")."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from lb_fixtures import MANAGED, ROOT, CliRun, LbStack, start_ssh_environment

from swap_action.host.scripted import CUT_HELPER, sudoers_lines
from swap_action.upstream import parse_state

pytestmark = pytest.mark.docker
SUDOERS = "/etc/sudoers.d/bluegreen-swap"


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LbStack, list[str]]]:
    env, flags = start_ssh_environment("bgdeploy", tmp_path_factory.mktemp("deploy"), user="deploy")
    yield LbStack(env), flags
    env.stop()


def as_deploy(stack: LbStack, flags: list[str], command: str, *args: str) -> CliRun:
    argv = stack.argv(command, *args, *flags)
    argv[argv.index("--target") + 1] = stack.env.ssh_url
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def live(stack: LbStack) -> str | None:
    return parse_state(stack.managed_bytes().decode()).live


def test_root_cannot_log_in_and_deploy_is_not_root(deploy: tuple[LbStack, list[str]]) -> None:
    stack, _ = deploy
    assert stack.env.ssh_url.startswith("ssh://deploy@")
    assert "PermitRootLogin=no" in stack.exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")[1].decode()
    assert stack.exec("su", "deploy", "-c", "id -u")[1].decode().strip() != "0"


def test_a_swap_as_deploy_with_sudo_canary_drain_cut_and_rollback(deploy: tuple[LbStack, list[str]]) -> None:
    stack, flags = deploy
    assert live(stack) == "blue"

    # A long request on blue: the drain reaches its deadline and cuts (the root helper stops the
    # old workers, which run as www-data, not deploy).
    with stack.long_request(6, lead=0.3):
        swap = as_deploy(
            stack, flags, "swap", "--sudo", "--to", "green", "--steps", "10,50,100", "--step-pause", "300ms",
            "--verify-url", "http://127.0.0.1/", "--verify-expect", "green", "--drain-timeout", "1s",
            "--drain-policy", "cut", "--json",
        )  # fmt: skip
    assert swap.code == 0, swap
    report = swap.json()
    assert report["outcome"]["active"] == "green" and len(report["reloads"]) == 3
    assert report["drain"]["outcome"] == "cut", report["drain"]
    assert live(stack) == "green" and stack.bodies(10) == {"green"}
    time.sleep(0.5)
    processes = stack.env.nginx_processes()
    assert not any("shutting down" in p for p in processes), processes
    assert stack.exec("stat", "-c", "%U", MANAGED)[1].decode().strip() == "deploy"
    back = as_deploy(stack, flags, "rollback", "--sudo", "--verify-url", "http://127.0.0.1/", "--verify-expect", "blue")
    assert back.code == 0, back
    assert live(stack) == "blue" and stack.bodies(10) == {"blue"}
    print(f"canary as deploy with sudo: {report['duration_ms']:.0f} ms; rollback {back.seconds:.2f} s")


def test_without_sudo_deploy_is_stopped_before_any_change(deploy: tuple[LbStack, list[str]]) -> None:
    stack, flags = deploy
    before = stack.managed_bytes()
    denied = as_deploy(stack, flags, "swap", "--to", "green")
    assert denied.code == 1, denied
    assert stack.managed_bytes() == before and not stack.exists(f"{MANAGED}.lock")


@pytest.mark.parametrize("line", sudoers_lines("deploy"), ids=lambda line: line.split("NOPASSWD: ")[1])
def test_a_missing_sudoers_line_stops_the_run_before_any_change_naming_it(
    deploy: tuple[LbStack, list[str]], line: str
) -> None:
    stack, flags = deploy
    before = stack.managed_bytes()
    stack.exec("cp", SUDOERS, "/tmp/sudoers.bak")
    code, out = stack.exec("sh", "-c", f"grep -vxF '{line}' /tmp/sudoers.bak > {SUDOERS}")
    assert code == 0 and line not in stack.exec("cat", SUDOERS)[1].decode(), out
    try:
        refused = as_deploy(stack, flags, "swap", "--sudo", "--to", "green")
    finally:
        stack.exec("cp", "/tmp/sudoers.bak", SUDOERS)
    assert refused.code == 1, refused
    assert line in refused.err, refused.err
    assert "nothing was changed" in refused.err
    assert stack.managed_bytes() == before and not stack.exists(f"{MANAGED}.lock")


def test_the_cut_helper_takes_no_arguments_through_sudo(deploy: tuple[LbStack, list[str]]) -> None:
    stack, _ = deploy
    code, out = stack.exec("su", "deploy", "-c", f"sudo -n {CUT_HELPER} --anything")
    assert code != 0 and b"password is required" in out, out  # sudoers' '""': no argument allowed
    code, out = stack.exec("su", "deploy", "-c", f"sudo -n {CUT_HELPER}")
    assert code == 0, out


@pytest.fixture(scope="module")
def engine_on_the_lb(deploy: tuple[LbStack, list[str]]) -> LbStack:
    """The engine itself on the LB host, as a self-hosted runner there runs it (``target: local``):
    Debian's python3 and jinja2, this checkout's package, run as 'deploy'."""
    stack, _ = deploy
    code, out = stack.exec(
        "sh", "-c",
        "apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends python3-minimal python3-jinja2 >/dev/null && python3 -c 'import jinja2'",
    )  # fmt: skip
    assert code == 0, out.decode(errors="replace")[-2000:]
    subprocess.run(["docker", "cp", str(ROOT / "swap_action"), f"{stack.lb_name}:/opt/"], check=True)
    assert stack.exec("chmod", "-R", "a+rX", "/opt/swap_action")[0] == 0
    return stack


def as_deploy_locally(stack: LbStack, *args: str) -> tuple[int, str]:
    command = " ".join(["cd /opt && python3 -m swap_action", *args, "--target local --config-path", MANAGED])
    code, out = stack.exec("su", "deploy", "-c", command)
    return code, out.decode(errors="replace")


def test_a_swap_on_the_lb_itself_as_deploy_with_sudo_there_and_back(engine_on_the_lb: LbStack) -> None:
    stack = engine_on_the_lb
    assert live(stack) == "blue"
    before = stack.managed_bytes()
    code, out = as_deploy_locally(stack, "swap", "--to", "green")
    assert code == 1 and "sudo: true" in out, out  # not root, no sudo: nginx -t cannot run
    assert stack.managed_bytes() == before and not stack.exists(f"{MANAGED}.lock")
    for slot in ("green", "blue"):
        code, out = as_deploy_locally(
            stack, "swap", "--sudo", "--to", "auto", "--verify-url", "http://127.0.0.1/", "--verify-expect", slot
        )
        assert code == 0, out
        assert live(stack) == slot and stack.bodies(10) == {slot}
    assert stack.exec("stat", "-c", "%U", MANAGED)[1].decode().strip() == "deploy"
