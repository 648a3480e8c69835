"""What `python -m swap_action sudo-setup` prints is what the test LB image installs, and a sudoers
line allows one command with fixed arguments: no shell, no editor, no wildcard."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from swap_action import cli, preflight
from swap_action.errors import PrivilegeError
from swap_action.host import Dump
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
