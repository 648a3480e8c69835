"""The LB scripts (swap_action/lbscripts) run for real through ``ScriptedHost(LocalTransport())``.

No Docker and no Nginx: stub ``nginx`` and ``curl`` programs (tests/unit/lbstubs) come first on
PATH, and process/TCP discovery reads a fake /proc tree through BG_PROC. Where a signal must reach a
real process (the reload's SIGHUP to the master, the drain's SIGTERM to old workers), the pid in the
fake tree is a process these tests start: ``lbstubs/fake_master.py`` plays the master and changes
the fake tree when it is signalled.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stub_programs import STUBS, use_stub_programs
from test_fuzz_targets import examples

from swap_action.errors import PrivilegeError, StateError, TransportError
from swap_action.host import ReloadRequest, ScriptedHost
from swap_action.host.wire import Records
from swap_action.transport.local import LocalTransport

OWNER = "github-run-1-1700000000000000000"
OTHER = "github-run-2-1700000000000000001"
# Fake worker pids: above any Linux pid_max (4194304), so never a real process's.
OLD_WORKERS = (4200001, 4200002)
NEW_WORKER = 4200011
UPSTREAM = b"upstream app {\n    server 10.0.0.1:8080;\n}\n"


def title_bytes(title: str) -> bytes:
    """A process title as /proc/PID/cmdline shows a renamed process: NUL-padded, no newline."""
    return title.encode() + b"\0" * 8


@dataclass
class Lb:
    root: Path
    proc: Path
    tmp: Path
    log: Path
    managed: Path
    lock: Path
    host: ScriptedHost
    pid_file: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    master_pid: int = 1  # the parent of workers titled by ``title`` (the fake master once started)

    def call(self, function: str, *args: str, stdin: bytes | None = None) -> Records:
        return self.host.call(function, *args, timeout=20, stdin=stdin)

    def title(self, pid: int, title: str, parent: int | None = None) -> None:
        entry = self.proc / str(pid)
        entry.mkdir(exist_ok=True)
        (entry / "cmdline").write_bytes(title_bytes(title))
        (entry / "stat").write_text(f"{pid} (nginx) S {parent or self.master_pid} {pid} {pid} 0 -1\n")

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.started.append(process)
        return process

    def start_master(self, on_hup: str = "reload", new: tuple[int, ...] = (NEW_WORKER,)) -> subprocess.Popen[bytes]:
        master = self.start(
            sys.executable, str(STUBS / "fake_master.py"), "--proc", str(self.proc), "--on-hup", on_hup,
            "--error-log", str(self.root / "error.log"), "--pid-file", str(self.pid_file),
            "--old", *map(str, OLD_WORKERS), "--new", *map(str, new),
        )  # fmt: skip
        assert master.stdout is not None
        assert master.stdout.readline() == b"ready\n"
        self.master_pid = master.pid
        return master

    def hups(self, master: subprocess.Popen[bytes]) -> int:
        counter = self.proc / str(master.pid) / "hups"
        return int(counter.read_text()) if counter.exists() else 0

    def leftovers(self) -> list[str]:
        """Files a finished operation left in its temporary directory or next to the managed file."""
        beside = [p.name for p in self.managed.parent.iterdir() if p.name != self.managed.name]
        return sorted(beside + [p.name for p in self.tmp.iterdir()])


@pytest.fixture
def lb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lb]:
    tmp = use_stub_programs(tmp_path, monkeypatch)
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    monkeypatch.setenv("BG_PROC", str(proc))
    monkeypatch.setenv("STUB_NGINX_CONF", str(tmp_path / "nginx.conf"))
    monkeypatch.setenv("STUB_NGINX_ERROR_LOG", "/var/log/nginx/error.log")
    monkeypatch.setenv("STUB_NGINX_PID", str(tmp_path / "nginx.pid"))
    state = Lb(
        root=tmp_path, proc=proc, tmp=tmp, log=tmp_path / "calls.log",
        managed=conf_d / "upstream.conf", lock=conf_d.parent / "bluegreen.lock",
        host=ScriptedHost(LocalTransport()), pid_file=tmp_path / "nginx.pid",
    )  # fmt: skip
    yield state
    for process in state.started:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


# -- the lock ---------------------------------------------------------------------------------------


def test_begin_takes_a_free_lock_and_reads_the_state(lb: Lb) -> None:
    lb.managed.write_bytes(UPSTREAM)
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600)
    assert begun.lock.acquired
    assert begun.lock.stale_from == ""
    assert not begun.recovered
    assert begun.probe is not None and begun.probe.managed_file == UPSTREAM.decode()
    assert (lb.lock / "owner").read_text() == OWNER + "\n"
    assert int((lb.lock / "expires").read_text()) - time.time() == pytest.approx(600, abs=5)


def test_a_second_owner_sees_the_lock_held(lb: Lb) -> None:
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600).lock.acquired
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600)
    assert not begun.lock.acquired
    assert begun.probe is None
    assert begun.lock.holder == OWNER
    assert begun.lock.age_s is not None and 0 <= begun.lock.age_s <= 2
    assert begun.lock.left_s is not None and 597 <= begun.lock.left_s <= 600
    assert (lb.lock / "owner").read_text() == OWNER + "\n"


def test_release_by_another_owner_leaves_the_lock(lb: Lb) -> None:
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600).lock.acquired
    lb.host.release(str(lb.lock), OTHER)
    assert (lb.lock / "owner").read_text() == OWNER + "\n"
    assert not lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600).lock.acquired


def test_release_by_the_owner_frees_the_lock(lb: Lb) -> None:
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600).lock.acquired
    lb.host.release(str(lb.lock), OWNER)
    assert not lb.lock.exists()
    assert lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600).lock.acquired


def test_release_of_a_free_lock_is_harmless(lb: Lb) -> None:
    assert lb.call("lock_release", str(lb.lock), OWNER).get("released") == "1"
    assert not lb.lock.exists()


def test_a_holder_past_its_own_deadline_is_taken_over(lb: Lb) -> None:
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600).lock.acquired
    (lb.lock / "expires").write_text(f"{int(time.time()) - 5}\n")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 300)
    assert begun.lock.acquired
    assert begun.lock.stale_from == OWNER
    assert begun.probe is not None
    assert (lb.lock / "owner").read_text() == OTHER + "\n"
    assert int((lb.lock / "expires").read_text()) - time.time() == pytest.approx(300, abs=5)
    assert sorted(p.name for p in lb.root.iterdir() if p.name.startswith("bluegreen.lock")) == ["bluegreen.lock"]


def test_a_holder_within_its_lease_is_not_taken_over(lb: Lb) -> None:
    # A long canary or drain: its renewed lease is what counts, however old the lock is.
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 15).lock.acquired
    (lb.lock / "since").write_text(f"{int(time.time()) - 3600}\n")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600)
    assert not begun.lock.acquired
    assert begun.lock.age_s is not None and 3599 <= begun.lock.age_s <= 3602


def test_a_holder_that_wrote_no_deadline_yet_gets_a_minute(lb: Lb) -> None:
    lb.lock.mkdir()
    (lb.lock / "owner").write_text(OWNER + "\n")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600)
    assert not begun.lock.acquired
    assert begun.lock.left_s is not None and 57 <= begun.lock.left_s <= 60
    old = time.time() - 120
    os.utime(lb.lock, (old, old))
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600)
    assert begun.lock.acquired and begun.lock.stale_from == OWNER


def test_a_lock_dir_whose_parent_is_missing_is_a_state_error(lb: Lb) -> None:
    missing = lb.root / "no-such-dir" / "bluegreen.lock"
    with pytest.raises(StateError, match="cannot create the lock"):
        lb.host.begin(str(lb.managed), str(missing), OWNER, 600)
    assert not missing.parent.exists()


def test_begin_asked_again_by_its_holder_still_holds(lb: Lb) -> None:
    # A begin whose answer was lost: asked again, the lock is still this run's (no 15 s wait).
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 15).lock.acquired
    again = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 15)
    assert again.lock.acquired and again.lock.stale_from == ""
    assert not lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 15).lock.acquired


def test_renew_extends_the_owners_lease_only(lb: Lb) -> None:
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 5).lock.acquired
    kept = lb.host.renew(str(lb.lock), OWNER, 40)
    assert kept.held and kept.left_s == 40
    assert int((lb.lock / "expires").read_text()) - time.time() == pytest.approx(40, abs=2)
    lost = lb.host.renew(str(lb.lock), OTHER, 40)
    assert not lost.held and lost.holder == OWNER
    assert (lb.lock / "owner").read_text() == OWNER + "\n"


def test_renew_after_a_takeover_says_the_lock_is_lost(lb: Lb) -> None:
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 15).lock.acquired
    (lb.lock / "expires").write_text(f"{int(time.time()) - 1}\n")  # OWNER stopped renewing
    assert lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 15).lock.stale_from == OWNER
    lost = lb.host.renew(str(lb.lock), OWNER, 15)
    assert not lost.held and lost.holder == OTHER
    assert (lb.lock / "owner").read_text() == OTHER + "\n"


def test_lock_status_shows_holder_age_and_lease(lb: Lb) -> None:
    assert not lb.host.lock_status(str(lb.lock)).held
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 15).lock.acquired
    (lb.lock / "since").write_text(f"{int(time.time()) - 90}\n")
    status = lb.host.lock_status(str(lb.lock))
    assert status.held and status.holder == OWNER
    assert status.age_s is not None and 89 <= status.age_s <= 92
    assert status.left_s is not None and 13 <= status.left_s <= 15
    assert (lb.lock / "owner").exists()  # status changes nothing


def test_lock_break_removes_whoever_holds_it(lb: Lb) -> None:
    assert not lb.host.break_lock(str(lb.lock)).held
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 15).lock.acquired
    broken = lb.host.break_lock(str(lb.lock))
    assert broken.held and broken.holder == OWNER
    assert [p.name for p in lb.root.iterdir() if p.name.startswith("bluegreen.lock")] == []
    assert lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 15).lock.acquired


def _race_for_the_lock(lb: Lb, trials: int, env: dict[str, str]) -> list[int]:
    """Two shells at once against an expired lock, ``trials`` times: how many acquired each time."""
    program_text = ScriptedHost.call.__globals__["program"]("lock_release")  # lib.sh + lock.sh
    counts = []
    for trial in range(trials):
        lb.lock.mkdir()
        (lb.lock / "owner").write_text("dead-run\n")
        (lb.lock / "expires").write_text(f"{int(time.time()) - 10}\n")
        racers = [
            subprocess.Popen(
                ["/bin/sh", "-c", program_text, "race", "lock_acquire", str(lb.lock), f"run-{trial}-{i}", "15"],
                stdout=subprocess.PIPE,
                env=env,
            )
            for i in range(2)
        ]
        outputs = [r.communicate(timeout=20)[0].decode() for r in racers]
        counts.append(sum("lock=acquired" in out for out in outputs))
        winners = [f"run-{trial}-{i}" for i, out in enumerate(outputs) if "lock=acquired" in out]
        if len(winners) == 1:  # the lock on disk is the winner's
            assert (lb.lock / "owner").read_text() == winners[0] + "\n"
        shutil.rmtree(lb.lock)
    return counts


def test_two_runs_racing_for_a_stale_lock_never_both_take_it(lb: Lb) -> None:
    # Both read "expired"; before the mutex, the second moved the first's fresh lock away and both
    # printed "acquired" (41 of 300 trials in the security review).
    counts = _race_for_the_lock(lb, 300, dict(os.environ))
    assert set(counts) == {1}, f"acquired by {sorted(set(counts))} runs at once"
    assert [p.name for p in lb.root.iterdir() if p.name.startswith("bluegreen.lock")] == []


def test_without_flock_the_mkdir_mutex_keeps_the_takeover_single(lb: Lb, tmp_path: Path) -> None:
    # A host without flock(1): PATH holds only what the scripts use, flock left out.
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    for tool in ("mkdir", "mv", "rm", "rmdir", "date", "stat", "cat", "sleep", "head", "wc"):
        found = shutil.which(tool)
        assert found is not None
        (bare / tool).symlink_to(found)
    counts = _race_for_the_lock(lb, 60, dict(os.environ, PATH=str(bare)))
    assert set(counts) == {1}, f"acquired by {sorted(set(counts))} runs at once"
    assert not (lb.root / "bluegreen.lock.mutex").exists()


def test_an_owner_file_cannot_forge_fields(lb: Lb) -> None:
    lb.lock.mkdir()
    (lb.lock / "owner").write_bytes(b"intruder\nlock=acquired\nstale_from=x\nfile:5\n")
    (lb.lock / "expires").write_text(f"{int(time.time()) + 600}\n")
    records = lb.call("begin", str(lb.lock), OTHER, "600", str(lb.managed))
    assert records.all("lock") == ["held"]
    assert records.get("holder") == "intruder"
    assert not records.has("stale_from") and not records.blobs
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600)
    assert not begun.lock.acquired and begun.lock.holder == "intruder"


def test_a_huge_owner_file_still_answers_quickly(lb: Lb) -> None:
    lb.lock.mkdir()
    (lb.lock / "owner").write_bytes(b"x" * 100_000 + b"\nlock=acquired\n")
    (lb.lock / "expires").write_bytes(b"soon" * 25_000)  # not a number: the one-minute grace applies
    started = time.monotonic()
    records = lb.call("begin", str(lb.lock), OTHER, "600", str(lb.managed))
    assert records.all("lock") == ["held"]
    assert records.get("holder") == "x" * 200
    assert records.get("left_s") in {"58", "59", "60"}
    lb.host.release(str(lb.lock), OTHER)
    assert lb.lock.exists()
    assert time.monotonic() - started < 3


# -- crash recovery -----------------------------------------------------------------------------------


def test_begin_puts_back_the_bytes_a_dead_install_left(lb: Lb) -> None:
    before = b"upstream app {\n    server 10.0.0.1:8080;\n}"  # no trailing newline
    lb.managed.write_bytes(b"upstream app { server 10.0.0.2:8080; }\n")  # the candidate it had moved in
    lb.managed.with_name("upstream.conf.before-swap").write_bytes(before)
    candidates = [lb.managed.with_name(f".upstream.conf.candidate-{g}") for g in ("g41", "g42")]
    for candidate in candidates:
        candidate.write_bytes(b"half a candid")
    unrelated = lb.managed.with_name(".other.conf.candidate-g42")
    unrelated.write_bytes(b"another file's")

    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600)

    assert begun.lock.acquired and begun.recovered
    assert lb.managed.read_bytes() == before
    assert begun.probe is not None and begun.probe.managed_file == before.decode()
    assert not any(candidate.exists() for candidate in candidates)
    assert lb.leftovers() == [".other.conf.candidate-g42"]


def _with_state(generation: str, server: str) -> bytes:
    state = f'{{"blue":[],"generation":"{generation}","green":[],"live":"green","previous":"blue","weights":{{}}}}'
    return (
        f"# Managed by bluegreen-swap\n# bluegreen-swap state: {state}\nupstream app {{ server {server}; }}\n".encode()
    )


@pytest.mark.parametrize(("served", "settled"), [("g42", "kept"), ("g41", "restored"), (None, "restored")])
def test_a_died_install_is_settled_by_what_the_marker_serves(lb: Lb, served: str | None, settled: str) -> None:
    # The candidate (g42) was in place when the run died. Nginx restarted meanwhile (it serves g42):
    # the candidate stays and the old bytes become .previous; no restart (g41) or no answer: put back.
    before, candidate = _with_state("g41", "10.0.0.1:8080"), _with_state("g42", "10.0.0.2:8080")
    lb.managed.write_bytes(candidate)
    lb.managed.with_name("upstream.conf.before-swap").write_bytes(before)
    socket = _marker(lb, None if served is None else f"{served} {lb.managed}")

    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 15, dump=True, proof_socket=socket)

    assert begun.recovered == settled
    assert lb.managed.read_bytes() == (candidate if settled == "kept" else before)
    if settled == "kept":
        assert lb.managed.with_name("upstream.conf.previous").read_bytes() == before
    assert not lb.managed.with_name("upstream.conf.before-swap").exists()


def test_begin_with_nothing_to_recover(lb: Lb) -> None:
    lb.managed.write_bytes(UPSTREAM)
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600)
    assert begun.lock.acquired and not begun.recovered
    assert lb.managed.read_bytes() == UPSTREAM


def test_a_lock_held_elsewhere_recovers_nothing(lb: Lb) -> None:
    # Only the holder may touch the files: another run's install may be in progress.
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600).lock.acquired
    lb.managed.write_bytes(b"candidate")
    lb.managed.with_name("upstream.conf.before-swap").write_bytes(UPSTREAM)
    lb.managed.with_name(".upstream.conf.candidate-g7").write_bytes(b"in progress")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600)
    assert not begun.lock.acquired and not begun.recovered
    assert lb.managed.read_bytes() == b"candidate"
    assert lb.leftovers() == [".upstream.conf.candidate-g7", "upstream.conf.before-swap"]


# -- probe --------------------------------------------------------------------------------------------


def test_probe_reads_version_curl_master_and_the_error_log(lb: Lb) -> None:
    (lb.root / "nginx.conf").write_text(
        f"user nginx;\nerror_log  /var/log/nginx/custom.log warn;\npid {lb.root}/main.pid;\n"
        "events { worker_connections 1024; }\nhttp {\n    error_log /var/log/nginx/http.log;\n}\n"
    )
    master = lb.start_master()
    (lb.root / "main.pid").write_text(f"{master.pid}\n")  # the main config's pid wins over the build's
    lb.managed.write_bytes(UPSTREAM)
    probe = lb.host.probe(str(lb.managed))
    assert probe.nginx_version == "nginx version: nginx/1.25.3"
    assert probe.has_curl
    assert probe.master_pid == master.pid
    assert probe.error_log == "/var/log/nginx/custom.log"
    assert probe.managed_file == UPSTREAM.decode()
    records = lb.call("probe", str(lb.managed))
    assert records.get("conf") == str(lb.root / "nginx.conf")
    assert records.all("error_log") == ["/var/log/nginx/custom.log", "/var/log/nginx/error.log"]
    assert records.get("pid_file") == f"{lb.root}/main.pid"


def test_probe_falls_back_to_the_builds_error_log(lb: Lb) -> None:
    (lb.root / "nginx.conf").write_text("events {}\nhttp {\n    error_log /var/log/nginx/http.log;\n}\n")
    probe = lb.host.probe(str(lb.managed))
    assert probe.error_log == "/var/log/nginx/error.log"
    assert probe.master_pid is None


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"upstream app {\n    server 10.0.0.1:8080;\n}", id="no-trailing-newline"),
        pytest.param(b"lock=acquired\nfile:5\nfile=missing\nnginx_version=forged\nmaster_pid=1\n", id="field-lines"),
        pytest.param(b"file:5\nabc", id="short-blob-header"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\n\n", id="only-newlines"),
        pytest.param(b"server a;\r\n\tserver b; # caf\xc3\xa9\r\n", id="crlf-tabs-utf8"),
    ],
)
def test_probe_returns_the_managed_file_verbatim(lb: Lb, content: bytes) -> None:
    lb.managed.write_bytes(content)
    records = lb.call("probe", str(lb.managed))
    assert records.blob_bytes("file") == content
    assert records.all("file") == ["present"]
    assert records.all("nginx_version") == ["nginx version: nginx/1.25.3"]
    assert not records.has("master_pid") and not records.has("lock")
    assert lb.host.probe(str(lb.managed)).managed_file == content.decode()


@pytest.mark.fuzz
@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_probe_carries_any_bytes(lb: Lb, content: bytes) -> None:
    lb.managed.write_bytes(content)
    assert lb.call("probe", str(lb.managed)).blob_bytes("file") == content


def test_probe_of_a_missing_file(lb: Lb) -> None:
    records = lb.call("probe", str(lb.managed))
    assert records.get("file") == "missing" and not records.blobs
    assert lb.host.probe(str(lb.managed)).managed_file is None


def _only_tools(lb: Lb, monkeypatch: pytest.MonkeyPatch, *stubs: str) -> None:
    """PATH with the shell and the few tools probe needs, and only the given stubs."""
    only = lb.root / "only"
    only.mkdir()
    for tool in ("sh", "awk", "wc", "cat", "head"):
        found = shutil.which(tool, path=os.defpath + os.pathsep + "/usr/bin:/bin")
        assert found is not None
        (only / tool).symlink_to(found)
    for stub in stubs:
        (only / stub).symlink_to(lb.root / "bin" / stub)
    monkeypatch.setenv("PATH", str(only))


def test_probe_without_curl(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_tools(lb, monkeypatch, "nginx")
    lb.managed.write_bytes(UPSTREAM)
    probe = lb.host.probe(str(lb.managed))
    assert not probe.has_curl
    assert probe.managed_file == UPSTREAM.decode()


def test_probe_without_nginx_is_a_transport_error(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_tools(lb, monkeypatch, "curl")
    assert lb.call("probe", str(lb.managed)).get("nginx_version") == "missing"
    with pytest.raises(TransportError, match="nginx is not installed"):
        lb.host.probe(str(lb.managed))


# -- install (and plan) ---------------------------------------------------------------------------------

NEW = "upstream app {\n    server 10.0.0.2:8080;\n}\n"
OLD_ODD = b"upstream app {\n\tserver 10.0.0.1:8080; # \xff\xfe not utf-8\n}"  # no trailing newline


# Root can give the live file another owner; anyone else keeps their own.
FILE_OWNER = (1234, 2345) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def _live(lb: Lb, content: bytes = OLD_ODD) -> None:
    lb.managed.write_bytes(content)
    lb.managed.chmod(0o640)
    os.chown(lb.managed, *FILE_OWNER)


def _assert_mode_and_owner(path: Path) -> None:
    info = path.stat()
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o640, *FILE_OWNER)


def test_install_applies_when_nginx_t_passes(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _live(lb)
    tested = lb.root / "tested"
    monkeypatch.setenv("STUB_SNAPSHOT_FROM", str(lb.managed))
    monkeypatch.setenv("STUB_SNAPSHOT_TO", str(tested))

    installed = lb.host.install(str(lb.managed), NEW, "g2", [], 2.0)

    assert installed.applied and installed.test_ok
    assert installed.test_output == "" and installed.health == ()
    assert tested.read_text() == NEW  # the whole config was tested with the candidate in place
    assert lb.managed.read_text() == NEW
    previous = lb.managed.with_name("upstream.conf.previous")
    assert previous.read_bytes() == OLD_ODD
    _assert_mode_and_owner(lb.managed)
    _assert_mode_and_owner(previous)
    assert lb.leftovers() == ["upstream.conf.previous"]
    assert "nginx -t -q" in lb.log.read_text().splitlines()


def test_put_back_replaces_the_file_by_rename_keeping_its_mode_and_owner_without_nginx_t(lb: Lb) -> None:
    _live(lb, OLD_ODD)
    inode = lb.managed.stat().st_ino
    lb.host.put_back(str(lb.managed), NEW)
    assert lb.managed.read_text() == NEW and lb.managed.stat().st_ino != inode  # renamed into place
    _assert_mode_and_owner(lb.managed)
    assert lb.leftovers() == []
    assert "nginx -t" not in (lb.log.read_text() if lb.log.exists() else "")


def test_put_back_into_a_directory_it_cannot_write_says_so(lb: Lb) -> None:
    with pytest.raises(StateError, match="cannot put the previous bytes back"):
        lb.host.put_back(str(lb.root / "no-such-dir" / "upstream.conf"), "x")


def test_install_asked_again_for_its_generation_writes_nothing_twice(lb: Lb) -> None:
    # Its answer was lost (a connection broke): the same install again must not take the
    # candidate for "the bytes before" (.previous would lose the old config).
    _live(lb)
    candidate = _with_state("g7", "10.0.0.2:8080").decode()
    first = lb.host.install(str(lb.managed), candidate, "g7", [], 1.0)
    assert first.applied
    previous = lb.managed.with_name("upstream.conf.previous").read_bytes()
    assert previous == OLD_ODD
    again = lb.call("install", str(lb.managed), "g7", "-", "-", "1", "-", "-", "-", "-", stdin=candidate.encode())
    assert again.get("applied") == "1" and again.get("already") == "1"
    assert lb.managed.with_name("upstream.conf.previous").read_bytes() == previous
    assert lb.managed.read_text() == candidate


def test_install_keeps_the_live_file_when_nginx_t_fails(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _live(lb)
    monkeypatch.setenv("STUB_NGINX_T", "1")
    monkeypatch.setenv("STUB_NGINX_T_OUTPUT", 'nginx: [emerg] host not found in upstream "nope"\napplied=1')

    installed = lb.host.install(str(lb.managed), NEW, "g2", [], 2.0)

    assert not installed.applied and not installed.test_ok
    assert installed.test_output == 'nginx: [emerg] host not found in upstream "nope"\napplied=1'
    assert lb.managed.read_bytes() == OLD_ODD
    _assert_mode_and_owner(lb.managed)
    assert lb.leftovers() == []


@pytest.mark.parametrize("verdict", ["0", "1"], ids=["passes", "refused"])
def test_check_tests_the_candidate_in_place_and_always_puts_the_live_bytes_back(
    lb: Lb, monkeypatch: pytest.MonkeyPatch, verdict: str
) -> None:
    _live(lb)
    tested = lb.root / "tested"
    monkeypatch.setenv("STUB_SNAPSHOT_FROM", str(lb.managed))
    monkeypatch.setenv("STUB_SNAPSHOT_TO", str(tested))
    monkeypatch.setenv("STUB_NGINX_T", verdict)

    checked = lb.host.check(str(lb.managed), NEW, "g2", [], 2.0)

    assert not checked.applied and checked.test_ok == (verdict == "0") and checked.reload is None
    assert tested.read_text() == NEW  # the whole config was tested with the candidate in place
    assert lb.managed.read_bytes() == OLD_ODD  # and the live bytes are back, mode and owner too
    _assert_mode_and_owner(lb.managed)
    assert lb.leftovers() == []
    assert "reload" not in lb.log.read_text()


def test_check_of_a_missing_file_leaves_no_file(lb: Lb) -> None:
    checked = lb.host.check(str(lb.managed), NEW, "g1", [], 2.0)
    assert checked.test_ok and not checked.applied
    assert not lb.managed.exists() and lb.leftovers() == []


def test_install_of_a_new_file_that_fails_leaves_no_file(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_NGINX_T", "1")
    installed = lb.host.install(str(lb.managed), NEW, "g1", [], 2.0)
    assert not installed.applied
    assert not lb.managed.exists()
    assert lb.leftovers() == []


def test_install_applies_when_the_target_is_healthy(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _live(lb)
    monkeypatch.setenv("STUB_CURL_BODY", "healthy\n")
    urls = ["http://10.0.0.2:8080/health", "http://10.0.0.3:8080/health"]

    installed = lb.host.install(str(lb.managed), NEW, "g2", urls, 2.0)

    assert installed.applied
    # A healthy answer's body is not carried back (nobody reads it; it would cost forks).
    assert [(a.url, a.status, a.body) for a in installed.health] == [(url, 200, "") for url in urls]
    assert lb.managed.read_text() == NEW
    assert lb.leftovers() == ["upstream.conf.previous"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("Service Unavailable", id="plain"),
        pytest.param("answer=200 0.001\nanswer=200 0.001\n200\n", id="body-with-answer-lines"),
    ],
)
def test_install_is_not_applied_when_the_target_answers_503(lb: Lb, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    _live(lb)
    monkeypatch.setenv("STUB_CURL_STATUS", "503")
    monkeypatch.setenv("STUB_CURL_BODY", body)

    installed = lb.host.install(str(lb.managed), NEW, "g2", ["http://10.0.0.2:8080/health"], 2.0)

    assert not installed.applied
    assert installed.test_ok  # nginx -t passed: the gate alone refused it
    assert [(a.status, a.body) for a in installed.health] == [(503, body.rstrip("\n"))]
    assert lb.managed.read_bytes() == OLD_ODD
    _assert_mode_and_owner(lb.managed)
    assert lb.leftovers() == []


def test_plan_tests_the_candidate_on_its_own(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _live(lb)
    monkeypatch.setenv("STUB_NGINX_T", "1")
    monkeypatch.setenv("STUB_NGINX_T_OUTPUT", "nginx: [emerg] unexpected end of file")
    monkeypatch.setenv("STUB_CURL_STATUS", "204")

    planned = lb.host.plan(str(lb.managed), NEW, "g2", ["http://10.0.0.2:8080/"], 2.0)

    assert not planned.test_ok
    assert planned.test_output == "nginx: [emerg] unexpected end of file"
    assert [a.status for a in planned.health] == [204]
    assert lb.managed.read_bytes() == OLD_ODD
    assert lb.leftovers() == []
    tests = [line for line in lb.log.read_text().splitlines() if line.startswith("nginx -t")]
    assert len(tests) == 1 and tests[0].startswith("nginx -t -q -e stderr -c ")


# -- reload_confirm -------------------------------------------------------------------------------------

GENERATION = "g20240101-0001"


def _marker(lb: Lb, answer: str | None) -> str:
    """The marker 'socket': the stub curl answers its content, or nothing when there is no file."""
    socket = lb.root / "marker.sock"
    if answer is not None:
        socket.write_text(answer + "\n")
    return str(socket)


def test_reload_is_confirmed(lb: Lb) -> None:
    master = lb.start_master(on_hup="reload")
    (lb.root / "error.log").write_text("2023/12/31 23:59:59 [notice] 1#1: start worker processes\n")

    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, GENERATION), str(lb.root / "error.log"), 3.0)

    assert result.result == "confirmed", result
    assert result.old_workers == OLD_WORKERS
    assert lb.hups(master) == 1
    assert result.reload_at_ms is not None and abs(result.reload_at_ms / 1000 - time.time()) < 10
    assert result.new_workers_ms is not None and result.old_stopped_ms is not None
    assert result.marker_ms is not None and result.confirmed_ms is not None
    assert result.confirmed_ms >= max(result.old_stopped_ms, result.marker_ms)
    assert lb.leftovers() == []


def test_reload_times_out_without_new_workers(lb: Lb) -> None:
    master = lb.start_master(on_hup="ignore")
    # An [emerg] from before the signal is not this reload's.
    (lb.root / "error.log").write_text("2023/12/31 23:59:59 [emerg] 1#1: an older refusal\n")
    started = time.monotonic()

    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, GENERATION), str(lb.root / "error.log"), 0.2)

    assert time.monotonic() - started < 1.5
    assert result.result == "timeout", result
    assert lb.hups(master) == 1
    # The marker is not asked while no new worker exists (only old workers could answer it).
    assert (result.new_workers, result.old_left, result.marker_ok) == (0, 2, False)


def test_reload_times_out_when_the_marker_never_answers(lb: Lb) -> None:
    master = lb.start_master(on_hup="reload")
    started = time.monotonic()

    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, None), "-", 0.2)

    assert time.monotonic() - started < 1.5
    assert result.result == "timeout", result
    assert lb.hups(master) == 1
    assert (result.new_workers, result.old_left, result.marker_ok) == (1, 0, False)


def test_reload_times_out_when_the_marker_answers_another_generation(lb: Lb) -> None:
    lb.start_master(on_hup="reload")
    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, "g20231231-0009"), "-", 0.2)
    assert result.result == "timeout", result
    assert result.marker_ok is False


def test_reload_without_a_marker_address_needs_only_the_workers(lb: Lb) -> None:
    lb.start_master(on_hup="reload")
    result = lb.host.reload_and_confirm(GENERATION, "-", "-", 3.0)
    assert result.result == "confirmed", result


def test_reload_refused_with_emerg(lb: Lb) -> None:
    master = lb.start_master(on_hup="emerg")
    (lb.root / "error.log").write_text("2023/12/31 23:59:59 [emerg] 1#1: an older refusal\n")
    started = time.monotonic()

    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, GENERATION), str(lb.root / "error.log"), 3.0)

    assert time.monotonic() - started < 1.5
    assert result.result == "emerg", result
    assert lb.hups(master) == 1
    assert result.message == '2024/01/01 00:00:00 [emerg] 1#1: unknown directive "bogus" in /etc/nginx/x.conf:1'


def test_reload_signal_failed_when_the_master_is_gone(lb: Lb) -> None:
    gone = lb.start("true")
    gone.wait()
    lb.title(gone.pid, "nginx: master process /usr/sbin/nginx")
    lb.pid_file.write_text(f"{gone.pid}\n")

    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, GENERATION), "-", 1.0)

    assert result.result == "signal_failed", result
    assert result.message == f"cannot signal the nginx master (pid {gone.pid})"


@pytest.mark.parametrize(
    ("pid_text", "why"),
    [
        (None, "no pid file"),
        ("", "holds no pid"),
        ("12ab\n", "holds no pid"),
        ("99999999999\n", "holds no pid"),
        ("STALE", "is not a running nginx master (a stale pid file)"),
    ],
)
def test_reload_signals_nothing_the_pid_file_does_not_prove_is_the_master(
    lb: Lb, pid_text: str | None, why: str
) -> None:
    # Another Nginx runs on this host (a container's, seen from the host): never a target.
    other = lb.start("sleep", "30")
    lb.title(other.pid, "nginx: master process nginx -g daemon off;")
    stale = lb.start("sleep", "30")  # the pid in a stale pid file, now some other program
    lb.title(stale.pid, "sleep 30")
    if pid_text is not None:
        lb.pid_file.write_text(pid_text.replace("STALE", str(stale.pid)))

    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, GENERATION), "-", 1.0)

    assert result.result == "signal_failed", result
    assert why in result.message and "no Nginx master to reload" in result.message
    assert "nginx -s" not in (lb.log.read_text() if lb.log.exists() else "")
    time.sleep(0.1)
    assert other.poll() is None and stale.poll() is None, "nothing was signalled"


def test_a_master_in_another_pid_namespace_is_refused(lb: Lb) -> None:
    master = lb.start_master()
    (lb.proc / "self" / "ns").mkdir(parents=True)
    (lb.proc / "self" / "ns" / "pid").write_text("pid:[4026531836]")
    (lb.proc / str(master.pid) / "ns").mkdir()
    theirs = lb.proc / str(master.pid) / "ns" / "pid"
    theirs.write_text("pid:[4026532999]")  # another inode: another namespace
    probe = lb.host.probe(str(lb.managed))
    assert probe.master_pid is None and "another PID namespace" in probe.master_problem
    result = lb.host.reload_and_confirm(GENERATION, _marker(lb, GENERATION), "-", 1.0)
    assert result.result == "signal_failed" and lb.hups(master) == 0
    theirs.unlink()
    os.link(lb.proc / "self" / "ns" / "pid", theirs)  # the same inode: this namespace
    assert lb.host.probe(str(lb.managed)).master_pid == master.pid


# -- the drain: connections, stop_workers, marker ---------------------------------------------------------

TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
TCP6_HEADER = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue"
    " tr tm->when retrnsmt   uid  timeout inode\n"
)


def _tcp_line(number: int, local: str, remote: str, state: str) -> str:
    return f"{number:4}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000   101        0 {4000 + number} 1 0000000000000000 20 4 30 10 -1\n"


def test_connections_to_the_old_servers_and_the_draining_workers(lb: Lb) -> None:
    local = "0100007F:A1B2"
    (lb.proc / "net" / "tcp").write_text(
        TCP_HEADER
        + _tcp_line(0, "0100007F:1F90", "00000000:0000", "0A")  # a listener
        + _tcp_line(1, local, "0100007F:1F90", "01")  # 127.0.0.1:8080, established: counted
        + _tcp_line(2, "0100007F:A1B3", "0100007F:1F90", "06")  # TIME_WAIT: not counted
        + _tcp_line(3, "0100007F:A1B4", "0100007F:1F91", "01")  # another port
        + _tcp_line(4, "0100007F:A1B5", "0200000A:1F90", "01")  # another host (10.0.0.2)
    )
    (lb.proc / "net" / "tcp6").write_text(
        TCP6_HEADER
        + _tcp_line(0, "00000000000000000000000001000000:A1B6", "00000000000000000000000001000000:2382", "01")
    )
    lb.title(4200201, "nginx: master process /usr/sbin/nginx")
    lb.pid_file.write_text("4200201\n")
    lb.title(4200202, "nginx: worker process", parent=4200201)
    lb.title(4200203, "nginx: worker process is shutting down", parent=4200201)
    lb.title(4200204, "nginx: worker process is shutting down", parent=4200201)
    lb.title(4200205, "nginx: cache manager process", parent=4200201)
    # Another Nginx on the same host (a container's): its old workers are not this drain's.
    lb.title(4200211, "nginx: master process nginx -g daemon off;")
    lb.title(4200212, "nginx: worker process is shutting down", parent=4200211)

    connections = lb.host.connections(["localhost:8080"])

    assert connections.to_servers == 1
    assert sorted(connections.draining_workers) == [4200203, 4200204]
    assert lb.host.connections(["127.0.0.1:8080", "10.0.0.2:8080"]).to_servers == 2
    assert lb.host.connections(["127.0.0.1:9999"]).to_servers == 0


def test_connections_without_tcp_tables(lb: Lb) -> None:
    connections = lb.host.connections(["127.0.0.1:8080"])
    assert connections.to_servers == 0 and connections.draining_workers == ()
    assert connections.from_old_workers == 0, "no draining worker: none of theirs"


def _sockets(lb: Lb, pid: int, *inodes: int) -> None:
    """The worker's fds as /proc shows them: links to 'socket:[INODE]' (and a log file)."""
    fd = lb.proc / str(pid) / "fd"
    fd.mkdir(parents=True)
    (fd / "2").symlink_to("/var/log/nginx/error.log")
    for number, inode in enumerate(inodes, start=3):
        (fd / str(number)).symlink_to(f"socket:[{inode}]")


def _staging_drain(lb: Lb) -> None:
    """After a switch with a staging upstream: the old worker still holds one connection to the old
    slot (127.0.0.1:8080), one to the new slot and one over IPv6; the new worker one to the old
    slot (staging traffic)."""
    (lb.proc / "net" / "tcp").write_text(
        TCP_HEADER
        + _tcp_line(0, "0100007F:0050", "00000000:0000", "0A")  # the listener (every worker has it)
        + _tcp_line(1, "0100007F:A1B2", "0100007F:1F90", "01")  # old worker -> old slot
        + _tcp_line(2, "0100007F:A1B3", "0100007F:1F90", "01")  # new worker -> old slot (staging)
        + _tcp_line(3, "0100007F:A1B4", "0200007F:1F90", "01")  # old worker -> the new slot
        + _tcp_line(5, "0100007F:A1B5", "0100007F:1F90", "06")  # TIME_WAIT, its inode reused: not counted
    )
    (lb.proc / "net" / "tcp6").write_text(
        TCP6_HEADER
        + _tcp_line(4, "00000000000000000000000001000000:A1B6", "00000000000000000000000001000000:1F90", "01")
    )  # old worker -> [::1]:8080
    lb.title(4200201, "nginx: master process /usr/sbin/nginx")
    lb.pid_file.write_text("4200201\n")
    lb.title(4200202, "nginx: worker process", parent=4200201)
    lb.title(4200203, "nginx: worker process is shutting down", parent=4200201)
    _sockets(lb, 4200202, 4000, 4002)
    _sockets(lb, 4200203, 4000, 4001, 4003, 4004, 4005)


def test_connections_counts_the_old_workers_own_sockets(lb: Lb) -> None:
    _staging_drain(lb)
    records = lb.call("connections", "-", "127.0.0.1:8080")
    assert records.all("old_tcp") == ["0100007F:1F90", "0200007F:1F90", "00000000000000000000000001000000:1F90"]
    assert records.get("old_known") == "1"
    assert len(records.all("tcp")) == 4, "tcp= stays: every established connection"

    connections = lb.host.connections(["127.0.0.1:8080"])

    assert connections.to_servers == 2, "the new worker's staging connection counts there"
    assert connections.from_old_workers == 1, "only the old worker's own connection to the old slot"
    assert connections.draining_workers == (4200203,)
    assert lb.host.connections(["127.0.0.2:8080"]).from_old_workers == 1


def test_connections_once_the_old_workers_hold_nothing(lb: Lb) -> None:
    _staging_drain(lb)
    shutil.rmtree(lb.proc / "4200203" / "fd")
    _sockets(lb, 4200203, 4000)  # only the listener left

    connections = lb.host.connections(["127.0.0.1:8080"])

    assert (connections.to_servers, connections.from_old_workers) == (2, 0), "a drain may end now"


def test_unreadable_fds_of_an_old_worker_are_unknown_not_zero(lb: Lb) -> None:
    _staging_drain(lb)
    lb.title(4200204, "nginx: worker process is shutting down", parent=4200201)  # no fd directory to read

    records = lb.call("connections", "-", "127.0.0.1:8080")

    assert records.get("old_known") == "0"
    assert lb.host.connections(["127.0.0.1:8080"]).from_old_workers is None, "the drain falls back to to_servers"


@pytest.mark.skipif(os.geteuid() != 0, reason="the retry as the worker's user is root's")
def test_root_that_cannot_read_the_links_reads_them_as_the_workers_user(
    lb: Lb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container's root (no CAP_SYS_PTRACE) lists www-data's fds but cannot read the links: the
    LB reads them as the worker's uid and gid (setpriv), as the kernel allows."""
    _staging_drain(lb)
    old = lb.proc / "4200203"
    shutil.rmtree(old / "fd")
    (old / "fd").write_text("")  # 'ls' of it fails, as EACCES on the links does
    (old / "status").write_text("Name:\tnginx\nUid:\t33\t33\t33\t33\nGid:\t34\t34\t34\t34\n")
    stubs = tmp_path / "setpriv-bin"
    stubs.mkdir()
    (stubs / "setpriv").write_text(
        '#!/bin/sh\necho "setpriv $*" >> "$STUB_LOG"\necho "lrwx------ 1 33 34 64 Nov 27 23:27 3 -> socket:[4001]"\n'
    )
    (stubs / "setpriv").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")

    assert lb.host.connections(["127.0.0.1:8080"]).from_old_workers == 1
    assert f"setpriv --reuid=33 --regid=34 --clear-groups ls -ln {old}/fd/" in lb.log.read_text().splitlines()


def test_stop_workers_signals_only_the_masters_shutting_down_workers(lb: Lb) -> None:
    lb.title(4200210, "nginx: master process /usr/sbin/nginx")
    lb.pid_file.write_text("4200210\n")
    lb.master_pid = 4200210
    draining = lb.start("sleep", "30")
    accepting = lb.start("sleep", "30")
    other = lb.start("sleep", "30")
    foreign = lb.start("sleep", "30")  # an old worker of another Nginx on this host
    lb.title(draining.pid, "nginx: worker process is shutting down")
    lb.title(accepting.pid, "nginx: worker process")
    lb.title(other.pid, "sleep 30")
    lb.title(foreign.pid, "nginx: worker process is shutting down", parent=4200299)
    vanished = 4200301  # no /proc entry: it exited already
    pids = (draining.pid, accepting.pid, other.pid, foreign.pid, vanished)

    records = lb.call("stop_workers", "-", *(str(p) for p in pids))

    assert records.all("stopped") == [str(draining.pid)]
    assert records.all("skipped") == [str(p) for p in pids[1:]]
    assert draining.wait(timeout=5) == -signal.SIGTERM
    assert accepting.poll() is None and other.poll() is None and foreign.poll() is None
    lb.host.stop_workers([accepting.pid, other.pid, foreign.pid])
    assert accepting.poll() is None and other.poll() is None and foreign.poll() is None


def test_marker_generation(lb: Lb) -> None:
    assert lb.host.marker_generation(_marker(lb, GENERATION), 1.0) == GENERATION
    (lb.root / "marker.sock").unlink()
    assert lb.host.marker_generation(_marker(lb, None), 1.0) is None
    assert lb.host.marker_generation(_marker(lb, "g1\nresult=confirmed"), 1.0) == "g1"


def test_begin_starts_the_gate_and_install_collects_it(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _live(lb)
    monkeypatch.setenv("STUB_CURL_STATUS", "200")
    urls = ["http://10.0.0.2:8080/healthz", "http://10.0.0.3:8080/healthz"]
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600, urls, 2.0)
    assert begun.lock.acquired and begun.gate.startswith(f"{lb.lock}/gate.")
    # Only the target's URL counts (the other may be the live slot's).
    installed = lb.host.install(str(lb.managed), NEW, "g2", urls[:1], 2.0, gate=begun.gate)
    assert installed.applied and {a.url for a in installed.health} == set(urls)
    assert list(lb.lock.glob("gate.*")), "the checks' files live in the lock's directory"
    lb.host.release(str(lb.lock), OWNER)
    assert not lb.lock.exists(), "and go with it"


def test_a_503_from_the_gate_begin_started_stops_the_install(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _live(lb)
    monkeypatch.setenv("STUB_CURL_STATUS", "503")
    monkeypatch.setenv("STUB_CURL_BODY", "answer=200 0.001\nlock=acquired\n")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600, ["http://10.0.0.2:8080/healthz"], 2.0)
    installed = lb.host.install(str(lb.managed), NEW, "g2", ["http://10.0.0.2:8080/healthz"], 2.0, gate=begun.gate)
    assert not installed.applied and installed.test_ok
    assert [(a.status, a.body) for a in installed.health] == [(503, "answer=200 0.001\nlock=acquired")]
    assert lb.managed.read_bytes() == OLD_ODD and lb.leftovers() == []


def test_install_refuses_a_gate_id_that_is_not_one(lb: Lb) -> None:
    _live(lb)
    with pytest.raises(StateError):
        lb.host.install(str(lb.managed), NEW, "g2", ["http://10.0.0.2:8080/healthz"], 2.0, gate="../../etc")
    assert lb.managed.read_bytes() == OLD_ODD


def test_begin_starts_no_gate_when_the_lock_is_held(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_CURL_STATUS", "200")
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600).lock.acquired
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600, ["http://10.0.0.2:8080/healthz"], 2.0)
    assert not begun.lock.acquired and begun.gate == ""


def test_install_reloads_in_the_same_trip_once_applied(lb: Lb) -> None:
    _live(lb)
    master = lb.start_master(on_hup="reload")
    (lb.root / "error.log").write_text("")
    request = ReloadRequest(GENERATION, _marker(lb, GENERATION), str(lb.root / "error.log"), 3.0)

    installed = lb.host.install(str(lb.managed), NEW, GENERATION, [], 2.0, reload=request)

    assert installed.applied and installed.reload is not None
    assert installed.reload.result == "confirmed" and lb.hups(master) == 1
    assert lb.managed.read_text() == NEW


def test_install_that_is_not_applied_never_reloads(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    _live(lb)
    master = lb.start_master(on_hup="reload")
    monkeypatch.setenv("STUB_NGINX_T", "1")
    request = ReloadRequest(GENERATION, _marker(lb, GENERATION), "-", 3.0)

    installed = lb.host.install(str(lb.managed), NEW, GENERATION, [], 2.0, reload=request)

    assert not installed.applied and installed.reload is None
    assert lb.hups(master) == 0 and lb.managed.read_bytes() == OLD_ODD


def test_begin_asks_the_files_own_marker_and_install_takes_it_as_proof(lb: Lb) -> None:
    gen = "g1-abc"
    lb.managed.write_text(
        f'# managed\n# bluegreen-swap state: {{"generation":"{gen}"}}\nupstream app {{ server a:1; }}\n'
    )
    proof = _marker(lb, f"{gen} {lb.managed}")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600, dump=True, proof_socket=proof)
    assert begun.proof_pending and begun.dump is None
    installed = lb.host.install(str(lb.managed), NEW, "g2", [], 2.0, proof=(str(lb.lock), gen))
    assert installed.applied and not installed.proof_failed


def test_begin_asks_the_marker_and_the_gate_in_one_curl(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every curl costs milliseconds of CPU on a busy LB: the proof and the health gate share one.
    gen = "g1-abc"
    lb.managed.write_text(
        f'# managed\n# bluegreen-swap state: {{"generation":"{gen}"}}\nupstream app {{ server a:1; }}\n'
    )
    monkeypatch.setenv("STUB_CURL_STATUS", "200")
    urls = ["http://10.0.0.2:8080/healthz", "http://10.0.0.3:8080/healthz"]
    proof = _marker(lb, f"{gen} {lb.managed}")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600, urls, 2.0, dump=True, proof_socket=proof)
    assert begun.proof_pending and begun.gate
    installed = lb.host.install(str(lb.managed), NEW, "g2", urls[:1], 2.0, gate=begun.gate, proof=(str(lb.lock), gen))
    assert installed.applied and not installed.proof_failed
    assert [(a.url, a.status) for a in installed.health] == [(url, 200) for url in urls]
    curls = [line for line in lb.log.read_text().splitlines() if line.startswith("curl ")]
    assert len(curls) == 1 and curls[0].count("--next") == 2, curls


def test_begin_leaves_no_nginx_v_answer_behind(lb: Lb) -> None:
    # nginx -V runs before the lock is taken, into a file beside the managed one: gone once read,
    # and gone when the lock was not taken.
    _live(lb)
    assert lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600).lock.acquired
    assert not lb.host.begin(str(lb.managed), str(lb.lock), OTHER, 600).lock.acquired
    deadline = time.monotonic() + 5
    while [n for n in lb.leftovers() if "nginx-v" in n] and time.monotonic() < deadline:
        time.sleep(0.01)  # the reader removes its own in the background
    assert [n for n in lb.leftovers() if "nginx-v" in n] == []


def test_begin_removes_the_nginx_v_answers_runs_that_died_left(lb: Lb) -> None:
    _live(lb)
    stray = lb.managed.parent / f".{lb.managed.name}.nginx-v.99999"
    stray.write_text("V nginx version: nginx/0.0.1\n")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600)
    assert begun.lock.acquired and not stray.exists()
    assert begun.probe is not None and "0.0.1" not in begun.probe.nginx_version


@pytest.mark.parametrize("answer", ["g1-abc /etc/nginx/elsewhere.conf", "g0-old {managed}", None])
def test_install_writes_nothing_when_the_marker_proves_nothing(lb: Lb, answer: str | None) -> None:
    gen = "g1-abc"
    text = f'# managed\n# bluegreen-swap state: {{"generation":"{gen}"}}\nupstream app {{ server a:1; }}\n'
    lb.managed.write_text(text)
    proof = _marker(lb, answer.format(managed=lb.managed) if answer else None)
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600, dump=True, proof_socket=proof)
    installed = lb.host.install(str(lb.managed), NEW, "g2", [], 2.0, proof=(str(lb.lock), gen))
    assert begun.proof_pending and installed.proof_failed and not installed.applied
    assert lb.managed.read_text() == text and lb.leftovers() == []


def test_a_file_without_the_state_line_gets_nginx_t_at_once(lb: Lb) -> None:
    lb.managed.write_text("upstream app { server a:1; }\n")
    begun = lb.host.begin(str(lb.managed), str(lb.lock), OWNER, 600, dump=True, proof_socket=_marker(lb, None))
    assert not begun.proof_pending and begun.dump is not None


# -- which [emerg] refused this run's reload --------------------------------------------------------
RETRYING = (
    "2026/11/27 18:25:51 [notice] 9#9: signal 1 (SIGHUP) received from 1165, reconfiguring\n"
    "2026/11/27 18:25:51 [emerg] 9#9: bind() to 0.0.0.0:8089 failed (98: Address already in use)\n"
    "2026/11/27 18:25:51 [notice] 9#9: try again to bind() after 500ms\n"
)
GAVE_UP = "2026/11/27 18:25:53 [emerg] 9#9: still could not bind()\n"
BIND = "bind() to 0.0.0.0:8089 failed"


def _emerg_after(tmp_path: Path, log: str, sender: int) -> str:
    path = tmp_path / "error.log"
    path.write_text(log)
    script = '. ./lib.sh; . ./reload_confirm.sh; emerg_after "$1" 0 "$2"'
    done = subprocess.run(
        ["sh", "-c", script, "t", str(path), str(sender)],
        cwd=Path(__file__).parents[2] / "swap_action" / "lbscripts", capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("log", "sender", "refused"),
    [
        (RETRYING, 1165, ""),  # the master tries bind() again for ~2.5 s: the reload may still go live
        (RETRYING + GAVE_UP, 1165, BIND),  # it gave up: refused, named by the bind() line
        (RETRYING + GAVE_UP, 2000, ""),  # another reload's errors (ours waits until it is over)
        (RETRYING + GAVE_UP + RETRYING.replace("1165", "2000") + GAVE_UP, 2000, BIND),
        ('2026/11/27 18:25:53 [emerg] 1#1: unknown directive "x" in /etc/nginx/x.conf:1\n', 3000, "unknown directive"),
    ],
    ids=["bind-retrying", "bind-gave-up", "not-ours", "ours-after-another", "no-notice-level"],
)
def test_only_a_final_emerg_after_this_runs_signal_refuses_its_reload(
    tmp_path: Path, log: str, sender: int, refused: str
) -> None:
    # The fault suite found it: a reload whose bind() failed was taken as refused at once and
    # "restored"; then the port freed up, the master's retry succeeded, and blue went live again.
    found = _emerg_after(tmp_path, log, sender)
    assert (refused in found) if refused else found == "", found


# -- least privilege: the root commands through sudo -n, each with fixed arguments ------------------
def _sudo_rules(lb: Lb, leave_out: str = "") -> list[str]:
    nginx = str(lb.root / "bin" / "nginx")
    rules = [f"{nginx} -t -q", f"{nginx} -T", f"{nginx} -s reload", "/usr/local/sbin/bluegreen-swap-cut"]
    return [rule for rule in rules if rule != leave_out.replace("NGINX", nginx)]


def test_with_sudo_only_the_fixed_root_commands_go_through_sudo(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_SUDO_ALLOW", "\n".join(_sudo_rules(lb)))
    host = ScriptedHost(LocalTransport(), sudo=True)
    master = lb.start_master()
    _live(lb)
    begun = host.begin(str(lb.managed), str(lb.lock), OWNER, 15, dump=True)
    assert begun.lock.acquired and begun.dump is not None and begun.dump.ok
    installed = host.install(str(lb.managed), NEW, "g2", [], 1.0)
    assert installed.applied
    result = host.reload_and_confirm("g2", _marker(lb, "g2"), "-", 3.0)
    assert result.confirmed, result
    assert lb.hups(master) == 1, "nginx -s reload (as root) signalled the master"
    host.stop_workers(list(OLD_WORKERS))
    ran = [line for line in lb.log.read_text().splitlines() if line.startswith("sudo -n ") and " -l " not in line]
    nginx = str(lb.root / "bin" / "nginx")
    assert ran == [
        f"sudo -n {nginx} -T",
        f"sudo -n {nginx} -t -q",
        f"sudo -n {nginx} -s reload",
        "sudo -n /usr/local/sbin/bluegreen-swap-cut",
    ]


@pytest.mark.parametrize("rule", ["NGINX -t -q", "NGINX -T", "NGINX -s reload", "/usr/local/sbin/bluegreen-swap-cut"])
def test_a_missing_sudo_rule_stops_the_run_before_any_change_naming_the_line(
    lb: Lb, monkeypatch: pytest.MonkeyPatch, rule: str
) -> None:
    monkeypatch.setenv("STUB_SUDO_ALLOW", "\n".join(_sudo_rules(lb, leave_out=rule)))
    _live(lb)
    with pytest.raises(PrivilegeError) as caught:
        ScriptedHost(LocalTransport(), sudo=True).begin(str(lb.managed), str(lb.lock), OWNER, 15, dump=True)
    wanted = rule.replace("NGINX", str(lb.root / "bin" / "nginx"))
    assert f"NOPASSWD: {wanted}" in caught.value.fix and "/etc/sudoers.d/bluegreen-swap" in caught.value.fix
    assert not lb.lock.exists() and lb.managed.read_bytes() == OLD_ODD
