"""What `python -m swap_action sudo-setup` prints is what the test LB image installs, and a sudoers
line allows one command with fixed arguments: no shell, no editor, no wildcard."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest

from swap_action import cli, preflight, run
from swap_action.errors import PrivilegeError
from swap_action.host import Dump, scripted, wire
from swap_action.host.scripted import cut_helper, sudoers_lines

ROOT = Path(__file__).resolve().parents[2]


def _setup(*args: str) -> str:
    out = io.StringIO()
    assert cli.main(["sudo-setup", *args], out=out, err=io.StringIO()) == 0
    return out.getvalue()


def test_the_images_sudoers_and_helper_are_what_sudo_setup_prints() -> None:
    assert (ROOT / "images/lb/sudoers").read_text() == _setup("--user", "deploy")
    assert (ROOT / "images/lb/bluegreen-swap-cut").read_text() == _setup("--helper")


def test_the_sudoers_lines_allow_fixed_commands_only() -> None:
    for line in sudoers_lines("deploy"):
        user, _, command = line.partition(" ALL=(root) NOPASSWD: ")
        assert user == "deploy" and command.startswith("/")
        assert not re.search(r"[*?\[\]]|\bsh\b|bash|tee|vi|nano|\bed\b|-c\b", command), line


def test_the_readme_gives_the_same_sudoers_lines() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in sudoers_lines("deploy"):
        assert line in readme, line
    block = readme.split("/etc/sudoers.d/bluegreen-swap", 1)[1].split("```", 2)[1]
    assert not re.search(r"[*?]|\bsh\b|bash|\btee\b|\bvi\b|nano", block), block


def test_the_cut_helper_takes_no_arguments_and_reads_the_real_proc() -> None:
    helper = cut_helper()
    assert helper.startswith("#!/bin/sh\n") and helper.rstrip().endswith("cut_old_workers")
    assert "BG_PROC=/proc" in helper.split("cut_old_workers() {", 1)[1]


def test_nginx_t_refused_for_permissions_points_at_sudo_not_at_the_config() -> None:
    error = 'nginx: [emerg] open() "/run/nginx.pid" failed (13: Permission denied)'
    with pytest.raises(PrivilegeError) as caught:
        preflight.config_of(Dump(False, "", error))
    assert "sudo: true" in caught.value.fix and "Least privilege" in caught.value.fix


def test_the_helpers_sudoers_line_allows_no_arguments_at_all() -> None:
    # sudoers: a command listed without arguments allows any; '""' allows none.
    assert sudoers_lines("deploy")[-1].endswith('/usr/local/sbin/bluegreen-swap-cut ""')
    assert all(not line.endswith('""') for line in sudoers_lines("deploy")[:-1])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--user", "deploy\nALL ALL=(ALL) NOPASSWD: ALL"], "input 'user'"),
        (["--user", "deploy ALL"], "input 'user'"),
        (["--nginx", "/usr/sbin/nginx -c /tmp/evil.conf"], "input 'nginx'"),
        (["--nginx", "nginx"], "input 'nginx'"),
        (["--helper", "--nginx", "/usr/sbin/nginx;id"], "input 'nginx'"),
    ],
)
def test_sudo_setup_refuses_a_user_or_path_that_would_widen_a_line(args: list[str], says: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["sudo-setup", *args], out=out, err=err) == cli.EXIT_INPUT
    assert out.getvalue() == "" and says in err.getvalue()


def _fake_nginx(path: Path, mark: Path) -> None:
    path.write_text(f'#!/bin/sh\necho "$0 $*" >> {mark}\n')
    path.chmod(0o755)


def test_the_cut_helper_runs_its_own_nginx_never_one_from_the_callers_path(tmp_path: Path) -> None:
    # Where sudoers has no secure_path, the caller's PATH reaches the root helper: a deploy user's
    # own 'nginx' first in it would run as root (the helper runs nginx -V to find the pid file).
    (tmp_path / "evil").mkdir()
    mark = tmp_path / "ran"
    _fake_nginx(tmp_path / "evil/nginx", mark)
    _fake_nginx(tmp_path / "nginx", mark)
    helper = tmp_path / "helper"
    helper.write_text(_setup("--helper", "--nginx", str(tmp_path / "nginx")))
    env = {"PATH": f"{tmp_path / 'evil'}:/usr/bin:/bin", "BG_PROC": str(tmp_path), "BG_SUDO": "1"}
    done = subprocess.run(["sh", str(helper)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    ran = mark.read_text()
    assert f"{tmp_path / 'nginx'} -V" in ran and "evil" not in ran, ran


def test_the_cut_helper_refuses_arguments(tmp_path: Path) -> None:
    helper = tmp_path / "helper"
    helper.write_text(_setup("--helper"))
    done = subprocess.run(["sh", str(helper), "-x"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "takes no arguments" in done.stderr


def test_a_reload_timeout_with_an_unreadable_error_log_says_to_let_the_user_read_it() -> None:
    records = wire.parse(
        b"result=timeout\nnew_workers=0\nold_left=1\nmarker_ok=0\nerrlog_unreadable=/var/log/nginx/error.log\n"
    )
    error = run._reload_error(scripted._reload_result(records), 5.0)
    assert "cannot read it (/var/log/nginx/error.log)" in error.fix and "usermod -aG adm" in error.fix
    plain = run._reload_error(scripted._reload_result(wire.parse(b"result=timeout\n")), 5.0)
    assert "cannot read" not in plain.fix
