"""The LB's programs as stubs (tests/unit/lbstubs: nginx, curl, sudo) first on PATH, for the LB
scripts run through the local transport in a temporary directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

STUBS = Path(__file__).parent / "lbstubs"


def use_stub_programs(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stubs of nginx, curl and sudo first on PATH, a TMPDIR of its own, every STUB_* setting of
    the caller cleared and the stubs' calls logged to ``root/calls.log``. Returns the TMPDIR."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("nginx", "curl", "sudo"):
        shutil.copy(STUBS / name, bin_dir / name)
        (bin_dir / name).chmod(0o755)
    tmp = root / "tmp"
    tmp.mkdir()
    for name in [name for name in os.environ if name.startswith("STUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("STUB_LOG", str(root / "calls.log"))
    return tmp
