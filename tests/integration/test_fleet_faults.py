"""Faults on a fleet: two LB containers in front of the same blue and green (the harness's
``Environment(lbs=2)``), swapped as one by the CLI (``python -m swap_action swap --target A
--target B``, a subprocess), all or nothing.

- one LB's container killed between prepare and commit (the ``pre-switch`` hook, run on this host
  between the two, does ``docker kill``): the run fails naming that LB, and the other LB is back
  on its previous bytes, its marker answering the generation it had, requests through it on blue;
- two fleet runs started at the same instant with the targets in opposite orders: the locks are
  taken in one fixed order, so one run waits for the other and both finish (no deadlock), the
  second with nothing to do;
- a ``post-switch`` hook that fails: every LB gets its previous bytes back and the run fails.

``FleetStack`` (each LB's files, marker, reload count and requests through it, and the CLI against
the whole fleet) is shared with the act test of the fleet workflow (test_fleet_action.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from lb_fixtures import MANAGED, ROOT, Answer, CliRun, http_get, start_environment

from simulation.environment import UPSTREAM, Environment
from swap_action.upstream import marker_address, parse_state

pytestmark = pytest.mark.docker

VERIFY = ("--verify-url", "http://127.0.0.1/")
# Every file under /etc/nginx with its sha256, and every other entry (directories, links) by kind:
# a file or directory added (a leftover lock, a .previous) shows as well as changed bytes.
ETC_NGINX_LISTING = r"""
find /etc/nginx -type f -exec sha256sum {} + | awk '{ print $2 " " $1 }'
find /etc/nginx ! -type f | while read -r p; do
    if [ -L "$p" ]; then echo "$p link:$(readlink "$p")"; else echo "$p dir"; fi
done
"""


def start_fleet(prefix: str, lbs: int = 2) -> Environment:
    """A started ``Environment`` of ``lbs`` LBs named ``<prefix>-<random>``; the caller stops it."""
    return start_environment(prefix, lbs=lbs)


@dataclass(frozen=True)
class LbSnapshot:
    """What one LB holds and serves: compared before and after a run that must change nothing."""

    managed: bytes
    files: dict[str, str]  # path -> sha256 (or the entry's kind) of everything under /etc/nginx
    marker: str  # the generation Nginx serves (its marker's answer)
    reloads: int


@dataclass
class FleetStack:
    env: Environment

    @property
    def names(self) -> list[str]:
        return self.env.lb_names

    @property
    def targets(self) -> list[str]:
        return [f"docker://{name}" for name in self.names]

    # -- on LB ``index`` (0: the first) ----------------------------------------------------
    def exec(self, index: int, *argv: str) -> tuple[int, bytes]:
        result = self.env.lb_container(index).exec(list(argv))
        return -1 if result.exit_code is None else result.exit_code, bytes(result.output or b"")

    def exists(self, index: int, path: str) -> bool:
        return self.exec(index, "test", "-e", path)[0] == 0

    def managed_bytes(self, index: int) -> bytes:
        code, output = self.exec(index, "cat", MANAGED)
        assert code == 0, output
        return output

    def live(self, index: int) -> str | None:
        return parse_state(self.managed_bytes(index).decode()).live

    def generation(self, index: int) -> str:
        return parse_state(self.managed_bytes(index).decode()).generation

    def marker(self, index: int) -> str:
        """The generation Nginx serves on LB ``index``: its managed file's own marker, asked there."""
        url = f"http://{marker_address(UPSTREAM)}/generation"
        code, output = self.exec(index, "curl", "-sS", "--noproxy", "*", "--max-time", "2", url)
        assert code == 0, output
        return output.decode().strip()

    def reloads(self, index: int) -> int:
        """Reloads the master has started so far (``LbStack.reloads``: lines ending ``: reconfiguring``)."""
        log = self.exec(index, "cat", self.env.error_log)[1].decode(errors="replace")
        return sum(1 for line in log.splitlines() if line.rstrip().endswith(": reconfiguring"))

    def etc_nginx(self, index: int) -> dict[str, str]:
        code, output = self.exec(index, "sh", "-c", ETC_NGINX_LISTING)
        assert code == 0, output
        return dict(line.rsplit(" ", 1) for line in output.decode().splitlines() if line.strip())

    def snapshot(self, index: int) -> LbSnapshot:
        return LbSnapshot(self.managed_bytes(index), self.etc_nginx(index), self.marker(index), self.reloads(index))

    # -- through LB ``index``, from this host ------------------------------------------------
    def get(self, index: int, path: str = "/") -> Answer:
        return http_get(self.env.traffic_urls[index] + path)

    def bodies(self, index: int, count: int = 10) -> set[str]:
        """What answers through LB ``index`` (the demo app answers its slot's name), 200s only."""
        answers = [self.get(index) for _ in range(count)]
        assert all(a.status == 200 for a in answers), [(a.status, a.body) for a in answers]
        return {a.body for a in answers}

    # -- the CLI against the fleet -----------------------------------------------------------
    def argv(self, command: str, *args: str, targets: Sequence[str] | None = None) -> list[str]:
        chosen = self.targets if targets is None else list(targets)
        return [
            sys.executable, "-m", "swap_action", command,
            *(arg for target in chosen for arg in ("--target", target)),
            "--config-path", MANAGED,
            *args,
        ]  # fmt: skip

    def cli(self, command: str, *args: str, targets: Sequence[str] | None = None, timeout: float = 180) -> CliRun:
        started = time.monotonic()
        done = subprocess.run(
            self.argv(command, *args, targets=targets), cwd=ROOT, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def popen(self, command: str, *args: str, targets: Sequence[str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, *args, targets=targets), cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    # -- after a failure ---------------------------------------------------------------------
    def diagnostics(self) -> str:
        parts = [f"--- {label} ---\n{text[-8000:]}" for label, text in self.env.diagnostics().items()]
        parts += [f"--- {self.env.name}-{slot} logs ---\n{self.env.slot_logs(slot)}" for slot in ("blue", "green")]
        return "\n".join(parts)


def failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture
def fleet(request: pytest.FixtureRequest) -> Iterator[FleetStack]:
    """A fresh fleet of two LBs per test (one test kills an LB), blue live on both."""
    stack = FleetStack(start_fleet("bgfleet"))
    try:
        yield stack
    finally:
        if failed(request):
            print(f"\n===== diagnostics of {stack.env.name} (test failed) =====\n{stack.diagnostics()}")
        stack.env.stop()


def assert_blue_as_before(fleet: FleetStack, index: int, before: LbSnapshot) -> None:
    """LB ``index`` holds its previous bytes, Nginx serves their generation, blue answers through it."""
    assert fleet.managed_bytes(index) == before.managed, f"{fleet.names[index]}: the managed file changed"
    assert fleet.marker(index) == before.marker, f"{fleet.names[index]}: Nginx serves another generation"
    assert fleet.bodies(index) == {"blue"}
    assert fleet.live(index) == "blue"


# -- one LB lost between prepare and commit ------------------------------------------------------
def test_an_lb_killed_between_prepare_and_commit_fails_the_run_and_restores_the_other(fleet: FleetStack) -> None:
    first, killed = fleet.names
    before = fleet.snapshot(0)
    assert fleet.bodies(0) == fleet.bodies(1) == {"blue"}

    run = fleet.cli("swap", "--to", "green", *VERIFY, "--pre-switch", f"docker kill {killed}", "--json")
    print(run)

    assert run.code == 1, run
    error = next(line for line in run.err.splitlines() if line.startswith("error: "))
    # The error names the LB that went away (and only that one).
    named = re.findall(rf"docker://{re.escape(fleet.env.name)}-lb\d*", error)
    assert set(named) == {f"docker://{killed}"}, error
    report = run.json()
    lb1, lb2 = report["lbs"]
    assert (lb1["target"], lb2["target"]) == (f"docker://{first}", f"docker://{killed}")
    assert lb1["restored"] and not lb1["changed"] and lb1["after"] == "blue", lb1
    assert lb2["error"] is not None and not lb2["restored"], lb2
    assert report["outcome"]["result"] == "restored", report["outcome"]  # nothing reached LB 2: not in doubt
    print(f"outcome: {report['outcome']['result']}; {first}: {lb1}; {killed}: {lb2['error']}")
    # The LB left standing is where it was: its bytes, its generation served, blue answering.
    assert_blue_as_before(fleet, 0, before)
    # LB2 failed in the apply that comes before any reload: LB1 got its bytes back unreloaded
    assert fleet.reloads(0) == before.reloads
    assert not fleet.exists(0, f"{MANAGED}.lock"), "the lock was left on the LB"


# -- two fleet runs at once, the targets in opposite orders ------------------------------------------
DEADLOCK_BOUND_S = 60


def test_two_fleet_runs_with_the_targets_in_opposite_orders_both_finish(fleet: FleetStack) -> None:
    forward, backward = fleet.targets, fleet.targets[::-1]
    # Each run holds both locks for at least 2 s (the pre-switch hook): the other one must wait.
    args = ("--to", "green", *VERIFY, "--pre-switch", "sleep 2", "--lock-timeout", "45s", "--json")
    started = time.monotonic()
    runs = [fleet.popen("swap", *args, targets=targets) for targets in (forward, backward)]
    results = []
    for proc in runs:
        try:
            out, err = proc.communicate(timeout=DEADLOCK_BOUND_S + 60)
        except subprocess.TimeoutExpired:
            for other in runs:
                other.kill()
            pytest.fail(f"the fleet runs did not finish in {DEADLOCK_BOUND_S + 60} s: a deadlock")
        results.append(CliRun(proc.returncode, out, err, time.monotonic() - started))
    seconds = time.monotonic() - started
    for result in results:
        print(result)
    print(f"both runs finished in {seconds:.1f} s ({', '.join(f'{r.seconds:.1f} s' for r in results)})")

    assert [r.code for r in results] == [0, 0], results
    assert seconds < DEADLOCK_BOUND_S
    reports: list[dict[str, Any]] = [r.json() for r in results]
    changed = [report["outcome"]["changed"] for report in reports]
    assert sorted(changed) == [False, True], changed  # one swapped both LBs, the other found green live
    swapper, idle = (reports[0], reports[1]) if changed[0] else (reports[1], reports[0])
    assert [lb["changed"] for lb in swapper["lbs"]] == [True, True]
    assert [lb["changed"] for lb in idle["lbs"]] == [False, False]
    assert idle["outcome"]["result"] == "unchanged"
    waited = results[reports.index(idle)]
    assert "waiting for the lock" in waited.err, waited
    for index in range(2):
        assert fleet.live(index) == "green"
        assert fleet.bodies(index) == {"green"}
        assert not fleet.exists(index, f"{MANAGED}.lock"), "the lock was left on the LB"


# -- a post-switch hook that fails ------------------------------------------------------------------
def test_a_failing_post_switch_hook_restores_every_lb(fleet: FleetStack) -> None:
    before = [fleet.snapshot(index) for index in range(2)]

    run = fleet.cli("swap", "--to", "green", *VERIFY, "--post-switch", "echo smoke tests failed; exit 1", "--json")
    print(run)

    assert run.code == 1, run
    report = run.json()
    assert report["outcome"]["result"] == "restored", report["outcome"]
    assert not report["outcome"]["changed"] and report["outcome"]["active"] == "blue"
    assert [(lb["changed"], lb["restored"], lb["after"]) for lb in report["lbs"]] == [(False, True, "blue")] * 2
    assert [hook["name"] for hook in report.get("hooks", [])] == ["post-switch"], report.get("hooks")
    assert "smoke tests failed" in run.err
    for index in range(2):
        assert_blue_as_before(fleet, index, before[index])
        assert fleet.reloads(index) == before[index].reloads + 2  # the switch, then the restore
        # Nothing left on either LB but the .previous the apply keeps (and the restore refreshed).
        now = fleet.etc_nginx(index)
        added = set(now) - set(before[index].files)
        assert added <= {f"{MANAGED}.previous"}, added
        assert {p: h for p, h in now.items() if p in before[index].files} == before[index].files
