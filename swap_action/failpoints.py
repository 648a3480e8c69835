"""Named points where the fault suite stops this process dead, as a cancelled runner would.

``BG_FAILPOINT=<point>`` sends this process SIGKILL when the run reaches that point (a phase as
it begins: ``lock``, ``probe``, ``install``, ``reload-confirm``, ``verify``, ``pause``, ``drain``,
``release``); ``<point>+<ms>`` that many milliseconds later, from a timer, whatever the run is
doing then (e.g. ``install+40``: while the LB runs the install). Unset, ``reach`` is one dict
lookup. Only the fault suite (tests/integration/test_faults.py) sets it; like etcd's gofail, it
lets a test kill the engine at an exact phase instead of guessing from timing.
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "BG_FAILPOINT"


def reach(point: str) -> None:
    wanted = os.environ.get(VARIABLE)
    if not wanted:
        return
    name, _, delay = wanted.partition("+")
    if name != point:
        return
    if not delay:
        _die()
    timer = threading.Timer(int(delay) / 1000, _die)
    timer.daemon = True
    timer.start()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
