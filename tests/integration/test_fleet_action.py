"""The action on a fleet of two LBs, as GitHub runs it: nektos/act runs
.github/workflows/example-fleet-release.yml (``uses: ./``, ``target:`` two ``docker://`` lines) in
a copy of the repository, as test_action_act.py does for one LB (its helpers: the copy, act's
command line, the lock that keeps one act run per machine, reading the outputs back).

Each test gets its own fleet (``Environment(lbs=2)``, blue live on both):

- blue -> green on both LBs (the managed files, what answers through each, the ``lbs`` output),
  then ``to: auto`` brings both back to blue;
- one LB's ``nginx -t`` fails (a file with an unknown directive in a directory its http block
  includes): the run fails in prepare, before any change, and both LBs are byte for byte as they
  were (every file under /etc/nginx), serving the same generation, without a reload.
"""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lb_fixtures import MANAGED
from test_action_act import (
    ACT_LOCK,
    RUNNER_IMAGE,
    ActRun,
    act_binary,
    copy_repository,
    remove_act_leftovers,
    require_images,
)
from test_fleet_faults import FleetStack, start_fleet

pytestmark = pytest.mark.docker

FLEET_WORKFLOW = ".github/workflows/example-fleet-release.yml"
# An http-level include of the harness's LB (images/lb/nginx.conf: include /etc/nginx/site/*.conf).
BROKEN_FILE = "/etc/nginx/site/zz-broken.conf"
_LBS = re.compile(r"swap-lbs (?P<json>.*)$", re.M)


def lbs_output(run: ActRun) -> list[dict[str, Any]]:
    """The ``lbs`` output as a later step of the job saw it (steps.swap.outputs.lbs)."""
    match = _LBS.search(run.log)
    assert match, f"no swap-lbs line in act's log:\n{run.log[-3000:]}"
    data: list[dict[str, Any]] = json.loads(match.group("json"))
    return data


def error_annotation(run: ActRun) -> str:
    return next(line for line in run.log.splitlines() if "::error title=" in line)


@dataclass
class FleetRelease:
    fleet: FleetStack
    repo: Path
    act: str

    def run(self, *, to: str, verify_expect: str, config_path: str = "") -> ActRun:
        lb1, lb2 = self.fleet.names
        inputs = {
            "lb1-container": lb1, "lb2-container": lb2, "to": to, "verify-expect": verify_expect,
            "config-path": config_path,
        }  # fmt: skip
        argv = [
            self.act, "workflow_dispatch",
            "-W", FLEET_WORKFLOW,
            "-P", f"ubuntu-latest={RUNNER_IMAGE}",
            "--pull=false",
            "--rm",
            "--container-daemon-socket", "unix:///var/run/docker.sock",
            *(arg for name, value in inputs.items() for arg in ("--input", f"{name}={value}")),
        ]  # fmt: skip
        with open(ACT_LOCK, "w") as lock:  # one act run at a time per machine (test_action_act.py)
            fcntl.flock(lock, fcntl.LOCK_EX)
            start = time.monotonic()
            done = subprocess.run(argv, cwd=self.repo, capture_output=True, text=True, timeout=900, check=False)
            seconds = time.monotonic() - start
        print(f"act run (to={to}, verify-expect={verify_expect}): exit {done.returncode} in {seconds:.1f} s")
        return ActRun(done.returncode, done.stdout + done.stderr, seconds)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The repository copy (the fleet workflow under a unique name, so act's containers and
    volumes are this module's own) and act."""
    require_images(RUNNER_IMAGE, "bluegreen/action:dev")
    act = act_binary()
    workflow_name = f"bgactfleet-{uuid.uuid4().hex[:8]}"
    repo = copy_repository(tmp_path_factory.mktemp("bgact-fleet-repo"), workflow_name)
    path = repo / FLEET_WORKFLOW
    text, count = re.subn(r"^name: .*$", f"name: {workflow_name}-fleet", path.read_text(), count=1, flags=re.M)
    assert count == 1, f"{FLEET_WORKFLOW} has no top-level name"
    path.write_text(text)
    git = ["git", "-c", "user.name=bgact", "-c", "user.email=bgact@example.invalid"]
    subprocess.run([*git, "commit", "-qam", "the fleet workflow's own name"], cwd=repo, check=True, capture_output=True)
    try:
        yield repo, act
    finally:
        remove_act_leftovers(f"{workflow_name}-fleet")


@pytest.fixture
def release(workflow: tuple[Path, str], request: pytest.FixtureRequest) -> Iterator[FleetRelease]:
    """A fresh fleet of two LBs per test, blue live on both."""
    repo, act = workflow
    fleet = FleetStack(start_fleet("bgactfleet"))
    try:
        yield FleetRelease(fleet, repo, act)
    finally:
        if any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call")):
            print(f"\n===== diagnostics of {fleet.env.name} (test failed) =====\n{fleet.diagnostics()}")
        fleet.env.stop()


def assert_fleet_on(fleet: FleetStack, slot: str) -> None:
    """Both managed files say ``slot`` is live at 100%, and only ``slot`` answers through each LB."""
    for index in range(2):
        text = fleet.managed_bytes(index).decode()
        assert f'"live":"{slot}"' in text, f"{fleet.names[index]}:\n{text}"
        assert fleet.live(index) == slot
        # The marker answers "<generation>[ <path>]": Nginx serves this very file.
        served = fleet.marker(index).split()[0]
        assert served == fleet.generation(index), f"{fleet.names[index]} serves another generation"
        assert fleet.bodies(index) == {slot}, fleet.names[index]


def test_fleet_workflow_swaps_both_lbs_to_green_and_auto_brings_both_back(release: FleetRelease) -> None:
    fleet = release.fleet
    assert_fleet_on(fleet, "blue")

    run = release.run(to="green", verify_expect="green")
    assert run.code == 0, run.log[-4000:]
    outputs = run.outputs()
    assert (outputs["active-slot"], outputs["previous-slot"], outputs["changed"]) == ("green", "blue", "true")
    print(f"fleet swap duration-ms={outputs['duration-ms']}")
    lbs = lbs_output(run)
    assert len(lbs) == 2, lbs
    assert [lb["target"] for lb in lbs] == fleet.targets
    assert [(lb["before"], lb["after"], lb["changed"], lb["restored"], lb["error"]) for lb in lbs] == [
        ("blue", "green", True, False, None)
    ] * 2
    assert_fleet_on(fleet, "green")
    # Each LB was verified through itself, and the step summary has the fleet's rows.
    assert run.log.count("5 x http://127.0.0.1/: 200, 200, 200, 200, 200") >= 2
    assert "### Load balancers" in run.log
    report = run.report()
    assert report["outcome"]["result"] == "swapped"  # type: ignore[index]
    skew = report["skew"]
    assert isinstance(skew, list) and [(s["percent"], s["lbs"]) for s in skew] == [(100, 2)], skew
    print(f"skew window {skew[-1]['window_ms']} ms")

    back = release.run(to="auto", verify_expect="blue")
    assert back.code == 0, back.log[-4000:]
    outputs = back.outputs()
    assert (outputs["active-slot"], outputs["previous-slot"], outputs["changed"]) == ("blue", "green", "true")
    print(f"fleet swap back duration-ms={outputs['duration-ms']}")
    assert [(lb["before"], lb["after"], lb["changed"]) for lb in lbs_output(back)] == [("green", "blue", True)] * 2
    assert_fleet_on(fleet, "blue")


# Where the run stops when the second LB's config fails nginx -t, by what the managed files hold:
# - the harness's initial file (its marker answers the generation only, not the file's path): the
#   lock's proof that Nginx serves that file falls back to nginx -T, which fails: the run stops
#   reading the live state;
# - a file the engine wrote (its marker answers generation and path: proven without nginx -T):
#   prepare's nginx -t of the whole config with the candidate in place refuses it.
REFUSALS = {
    "harness-file": ("blue", "cannot read the live state", "nginx -T fails on the LB"),
    "engine-file": ("green", "nginx -t refused the new config", "nginx -t refused the new upstream config"),
}


@pytest.mark.parametrize("files", list(REFUSALS))
def test_fleet_workflow_with_one_lb_refusing_nginx_t_leaves_both_lbs_as_they_were(
    release: FleetRelease, files: str
) -> None:
    fleet = release.fleet
    first, broken = fleet.names
    live, title, cause = REFUSALS[files]
    if files == "engine-file":  # both LBs on green, their files written by the engine (the CLI, quickly)
        swap = fleet.cli("swap", "--to", "green", "--verify-url", "http://127.0.0.1/")
        assert swap.code == 0, swap
    assert_fleet_on(fleet, live)
    # The second LB's config no longer passes nginx -t (its running Nginx keeps serving what it loaded).
    code, output = fleet.exec(1, "sh", "-c", f"echo 'bluegreen_no_such_directive on;' > {BROKEN_FILE}")
    assert code == 0, output
    code, output = fleet.exec(1, "nginx", "-t")
    assert code != 0 and b"bluegreen_no_such_directive" in output, output
    before = [fleet.snapshot(index) for index in range(2)]
    assert BROKEN_FILE in before[1].files

    # config-path given: no discovery (its nginx -T would fail before the engine's own steps).
    run = release.run(to="auto", verify_expect="", config_path=MANAGED)

    assert run.code == 1, run.log[-4000:]
    error = error_annotation(run)
    print(error)
    assert f"title=bluegreen-swap%3A {title}::" in error, error
    # The error names the LB whose config is broken (only that one), with Nginx's own words.
    named = re.findall(rf"docker://{re.escape(fleet.env.name)}-lb\d*", error)
    assert set(named) == {f"docker://{broken}"}, error
    assert cause in error and 'unknown directive "bluegreen_no_such_directive"' in error, error
    assert "Nothing was changed for traffic" in error, error
    outputs = run.outputs()
    assert (outputs["active-slot"], outputs["changed"]) == (live, "false"), outputs
    lbs = lbs_output(run)
    assert [lb["target"] for lb in lbs] == fleet.targets
    assert [(lb["before"], lb["after"], lb["changed"], lb["restored"]) for lb in lbs] == [
        (live, live, False, False)
    ] * 2, lbs
    assert lbs[1]["error"] and "bluegreen_no_such_directive" in lbs[1]["error"], lbs
    assert run.report()["outcome"]["result"] == "failed"  # type: ignore[index]
    # Neither LB changed: every file under /etc/nginx, the generation served, no reload.
    for index in range(2):
        after = fleet.snapshot(index)
        assert after.files == before[index].files, fleet.names[index]
        assert after == before[index], fleet.names[index]
        assert fleet.bodies(index) == {live}
    print(f"{first} and {broken}: {len(before[0].files)} and {len(before[1].files)} entries under /etc/nginx unchanged")
