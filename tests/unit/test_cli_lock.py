"""``python -m swap_action lock status`` / ``lock break`` end to end: the real CLI, ``--target local``,
the real lbscripts (lock.sh) on a temporary managed directory, stub programs first on PATH (as in
test_lbscripts.py); and the owner a GitHub run writes, which is what these commands show.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeHost
from stub_programs import use_stub_programs

from swap_action import cli
from swap_action.host import Begun, ScriptedHost, wire
from swap_action.host.scripted import program
from swap_action.transport.local import LocalTransport

ROOT = Path(__file__).resolve().parents[2]
RUN_URL = "https://github.com/acme/shop/actions/runs/4242/attempts/2"
OWNER = f"{RUN_URL} (1700000000000000000)"  # as run._owner writes it in a GitHub run
ROWS = ("holder:", "since:", "lease left:", "run:")
NOT_A_RUN = "- (not a GitHub Actions run)"


@dataclass
class Lb:
    managed: Path
    lock: Path
    log: Path
    host: ScriptedHost

    def take(self, owner: str, lease_s: int = 15, *, age_s: int = 0) -> None:
        """Take the lock as another run would (lock.sh's ``lock_acquire``), started ``age_s`` ago."""
        assert acquire(self.lock, owner, lease_s) == "acquired"
        if age_s:
            (self.lock / "since").write_text(f"{int(time.time()) - age_s}\n")

    def since(self) -> int:
        return int((self.lock / "since").read_text())

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.managed.parent.iterdir() if p.name.startswith(self.lock.name))


@pytest.fixture
def lb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lb:
    use_stub_programs(tmp_path, monkeypatch)
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    managed = conf_d / "upstream.conf"
    managed.write_text("upstream app {\n    server 10.0.0.1:8080;\n}\n")
    return Lb(managed, conf_d / "upstream.conf.lock", tmp_path / "calls.log", ScriptedHost(LocalTransport()))


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def rows(self) -> dict[str, str]:
        """The text output's ``name: value`` rows (after the first line, which names the lock)."""
        rows = {}
        for line in self.out.splitlines()[1:]:
            name, _, value = line.strip().partition(": ")
            rows[name] = value.strip()
        return rows


def acquire(lock: Path, owner: str, lease_s: int = 15) -> str:
    """lock.sh's ``lock_acquire``, as ``begin`` runs it on the LB (lib.sh + lock.sh): its answer."""
    text = program("lock_release")  # lib.sh and lock.sh, nothing else
    result = LocalTransport().run(
        ["sh", "-c", text, "bluegreen-swap", "lock_acquire", str(lock), owner, str(lease_s)], timeout=20
    )
    return wire.parse(result.raw_stdout).get("lock")


def lock_cli(lb: Lb, action: str, *extra: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["lock", action, "--target", "local", "--config-path", str(lb.managed), *extra], out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_only_the_rows(run: Run, lb: Lb, first: str) -> None:
    """The header line and the four rows, nothing else; every character printable."""
    lines = run.out.splitlines()
    assert lines[0] == f"{lb.lock}: {first}", run.out
    assert len(lines) == 1 + len(ROWS), run.out
    assert [line.strip().split(": ")[0] + ":" for line in lines[1:]] == list(ROWS), run.out
    assert all(ch.isprintable() for line in lines for ch in line), run.out


# -- lock status ------------------------------------------------------------------------------------


def test_lock_status_shows_holder_since_run_url_and_lease_left(lb: Lb) -> None:
    lb.take(OWNER, 15, age_s=95)
    result = lock_cli(lb, "status")
    assert result.code == 0 and result.err == "", result.err
    assert_only_the_rows(result, lb, "held")
    rows = result.rows()
    assert rows["holder"] == OWNER
    since = re.fullmatch(r"(\S+) \(1m(\d\d)s ago, the LB's clock\)", rows["since"])
    assert since is not None, rows["since"]
    assert since.group(1) == iso(lb.since()) and since.group(1).endswith("Z")
    assert 35 <= int(since.group(2)) <= 38
    left = re.fullmatch(r"(\d+)s \(its holder renews it every few seconds while it runs\)", rows["lease left"])
    assert left is not None and 12 <= int(left.group(1)) <= 15, rows["lease left"]
    assert rows["run"] == RUN_URL
    assert (lb.lock / "owner").read_text() == OWNER + "\n", "status changes nothing"
    assert not lb.log.exists(), "status needs no nginx when the file is given"


def test_lock_status_json_carries_the_same_fields(lb: Lb) -> None:
    lb.take(OWNER, 15, age_s=95)
    result = lock_cli(lb, "status", "--json")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    assert set(data) == {"lock", "held", "holder", "since", "age_s", "lease_left_s", "run_url", "broken"}
    assert data["lock"] == str(lb.lock) and data["held"] is True and data["broken"] is False
    assert data["holder"] == OWNER and data["run_url"] == RUN_URL
    assert data["since"] == iso(lb.since())
    assert datetime.fromisoformat(data["since"]).tzinfo is not None
    assert 95 <= data["age_s"] <= 98 and 12 <= data["lease_left_s"] <= 15


def test_an_ended_lease_says_the_holder_died(lb: Lb) -> None:
    lb.take(OWNER, 15, age_s=600)
    (lb.lock / "expires").write_text(f"{int(time.time()) - 120}\n")
    rows = lock_cli(lb, "status").rows()
    assert rows["lease left"].startswith("none, it ended 2m0"), rows
    assert "the next swap takes the lock over" in rows["lease left"]
    assert rows["since"].startswith(f"{iso(lb.since())} (10m0")


def test_a_holder_that_is_not_a_github_run_has_no_run_url(lb: Lb) -> None:
    lb.take("build-7 pid 4242 (1700000000000000000)")
    result = lock_cli(lb, "status")
    assert result.rows()["holder"] == "build-7 pid 4242 (1700000000000000000)"
    assert result.rows()["run"] == NOT_A_RUN
    assert json.loads(lock_cli(lb, "status", "--json").out)["run_url"] is None


def test_a_free_lock_reads_free(lb: Lb) -> None:
    result = lock_cli(lb, "status")
    assert (result.code, result.out, result.err) == (0, f"{lb.lock}: free\n", "")
    data = json.loads(lock_cli(lb, "status", "--json").out)
    assert data["held"] is False and data["holder"] is None and data["since"] is None and data["run_url"] is None


# -- lock break -------------------------------------------------------------------------------------


def test_lock_break_removes_the_lock_and_then_status_says_free(lb: Lb) -> None:
    lb.take(OWNER, 15, age_s=95)
    since = lb.since()
    result = lock_cli(lb, "break")
    assert result.code == 0 and result.err == "", result.err
    assert_only_the_rows(result, lb, "broke the lock; it was held")
    rows = result.rows()
    assert rows["holder"] == OWNER and rows["run"] == RUN_URL
    assert rows["since"].startswith(iso(since) + " (1m3")
    assert rows["lease left"].endswith("when broken (a holder still running loses the lock at its next renewal)")
    assert lb.leftovers() == [], "no lock and no moved-away copy left"
    assert lock_cli(lb, "status").out == f"{lb.lock}: free\n"
    # The lock is free for the next run.
    assert acquire(lb.lock, "next-run") == "acquired"


def test_lock_break_json_says_what_was_broken(lb: Lb) -> None:
    lb.take(OWNER, 15, age_s=95)
    data = json.loads(lock_cli(lb, "break", "--json").out)
    assert data["held"] is True and data["broken"] is True
    assert data["holder"] == OWNER and data["run_url"] == RUN_URL and data["since"] is not None
    assert not lb.lock.exists()


def test_breaking_a_free_lock_is_a_clear_message(lb: Lb) -> None:
    result = lock_cli(lb, "break")
    assert (result.code, result.out, result.err) == (0, f"{lb.lock}: free: nothing to break\n", "")
    assert json.loads(lock_cli(lb, "break", "--json").out)["broken"] is False
    assert lb.leftovers() == []


def test_python_m_swap_action_lock_status_and_break_as_a_process(lb: Lb) -> None:
    lb.take(OWNER, 15, age_s=5)
    argv = [sys.executable, "-m", "swap_action", "lock"]
    where = ["--target", "local", "--config-path", str(lb.managed)]
    for action, first in (("status", "held"), ("break", "broke the lock; it was held"), ("break", "free")):
        done = subprocess.run([*argv, action, *where], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert done.stdout.startswith(f"{lb.lock}: {first}"), done.stdout
        assert "Traceback" not in done.stdout + done.stderr
    assert lb.leftovers() == []


# -- the owner text is untrusted ------------------------------------------------------------------

CRAFTED = {
    "newline-forged-rows": f"evil\n  run:         {RUN_URL}\n  lease left:  9999s\nlock=free",
    "wire-fields": "evil\nlock=free\nholder=forged\nsince=1\nbroken=0",
    "ansi-escapes": "evil\x1b[2K\x1b[1A  run:  https://github.com/x/y/actions/runs/1\x1b[0m",
    "osc-hyperlink-and-bell": "evil\x1b]8;;https://attacker.example\x07click\x1b]8;;\x07",
    "carriage-return": f"evil\r  run:         {RUN_URL}",
    "tabs-and-unicode-controls": "evil\t\u202e\u2028run:\u0085x",
    "separator-inline": "evil: run: since: lease left: holder:",
    "json-breakout": 'evil", "run_url": "https://github.com/x/y/actions/runs/1',
}


@pytest.mark.parametrize("owner", CRAFTED.values(), ids=CRAFTED.keys())
def test_a_crafted_owner_text_cannot_forge_fields(lb: Lb, owner: str) -> None:
    lb.take(owner, 15, age_s=30)
    since = iso(lb.since())
    data = json.loads(lock_cli(lb, "status", "--json").out)
    assert data["held"] is True and data["run_url"] is None and data["since"] == since
    assert data["holder"].startswith("evil") and data["holder"].isprintable()
    for action, first in (("status", "held"), ("break", "broke the lock; it was held")):
        result = lock_cli(lb, action)
        assert result.code == 0 and result.err == "", result.err
        assert_only_the_rows(result, lb, first)
        rows = result.rows()
        assert rows["holder"].startswith("evil") and rows["holder"] == data["holder"]
        assert "\x1b" not in result.out and "\r" not in result.out and "\x07" not in result.out
        assert rows["run"] == NOT_A_RUN, "a run URL is read only from the start of the owner text"
        assert rows["since"].startswith(f"{since} (3"), rows["since"]
        assert re.fullmatch(r"1?\ds (when broken )?\(.*\)", rows["lease left"]), rows["lease left"]
    assert lb.leftovers() == []


@pytest.mark.parametrize("since", ["999999999999", "12345678901234567890", "1e9", "-5", ""])
def test_a_garbage_or_far_future_start_time_never_breaks_the_output(lb: Lb, since: str) -> None:
    lb.take(OWNER)
    (lb.lock / "since").write_text(since + "\n")
    result = lock_cli(lb, "status")
    assert result.code == 0 and result.err == "", result.err
    assert_only_the_rows(result, lb, "held")
    shown = result.rows()["since"]
    if since == "999999999999":  # digits lock.sh passes on, but past year 9999
        assert shown == "unknown (age unknown, the LB's clock)"
    else:  # not digits, or too long for shell arithmetic: lock.sh reads the directory's own time
        assert shown.startswith(iso(int(lb.lock.stat().st_mtime)) + " ("), shown


# -- the owner a GitHub run writes -----------------------------------------------------------------


class OwnerRecordingHost(FakeHost):
    def __init__(self) -> None:
        super().__init__()
        self.owners: list[str] = []

    def begin(self, config_path: str, lock_dir: str, owner: str, lease_s: int, *args: Any, **kwargs: Any) -> Begun:
        self.owners.append(owner)
        return super().begin(config_path, lock_dir, owner, lease_s, *args, **kwargs)


def test_a_github_run_writes_its_run_url_into_the_lock_owner(
    run_action: Any, lb: Lb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "3")
    fake = OwnerRecordingHost()
    run = run_action(fake, to="green", verify_url="http://127.0.0.1/", verify_expect="green")
    assert run.code == 0, run.log
    url = "https://github.example.com/acme/shop/actions/runs/4242/attempts/3"
    assert len(fake.owners) == 1 and re.fullmatch(re.escape(url) + r" \(\d+\)", fake.owners[0]), fake.owners
    # That owner, held on a real lock, is what 'lock status' shows as the run.
    lb.take(fake.owners[0])
    rows = lock_cli(lb, "status").rows()
    assert rows["holder"] == fake.owners[0] and rows["run"] == url


def test_a_run_outside_github_names_its_host_and_pid(run_action: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT"):
        monkeypatch.delenv(name, raising=False)
    fake = OwnerRecordingHost()
    run = run_action(fake, to="green", verify_url="http://127.0.0.1/", verify_expect="green")
    assert run.code == 0, run.log
    assert len(fake.owners) == 1 and f" pid {os.getpid()} (" in fake.owners[0], fake.owners
    assert cli._run_url(fake.owners[0]) is None
