"""The load balancer host as the engine sees it: one typed interface, each operation one round trip.

``LbHost`` is what the engine calls; every operation returns a dataclass. ``ScriptedHost``
implements it over any ``Transport`` by running the shell functions in ``lbscripts/`` (their one
output format is parsed in ``wire``). The unit tests' fake implements the same interface.

Operations (and the engine phases that use them)::

    dump_config         probe (discovery)     nginx -T, to find the managed file before the lock
    begin               lock + probe          take the lock, settle a run that died, read the state
                                              (and nginx -T: which files Nginx loads, where)
    release             lock                  give the lock back
    renew               (all along)           extend the lock's lease while the run goes on
    lock_status         lock status           who holds the lock, since when (changes nothing)
    break_lock          lock break            remove a lock left by a run that was cancelled
    probe               probe (status)        read the state without the lock
    plan                gate + test           dry run: the candidate tested on its own, the target's health
    install             gate + test + apply   candidate in place, whole config tested, target healthy,
                        (+ reload-confirm)    or the old bytes put back; then, asked, reload at once
    reload_and_confirm  reload-confirm        signal the master, prove the new generation is served
    http                verify, drain hook    requests from the LB host
    connections         drain                 connections to the old slot, old workers left
    stop_workers        drain (cut)           stop old workers that are still shutting down
    marker_generation   status                what the served config's marker answers
"""

from __future__ import annotations

from .api import (
    Begun,
    Connections,
    Dump,
    HttpAnswer,
    Installed,
    LbHost,
    LockState,
    LockStatus,
    Planned,
    Probe,
    ReloadRequest,
    ReloadResult,
)
from .scripted import ScriptedHost

__all__ = [
    "Begun",
    "Connections",
    "Dump",
    "HttpAnswer",
    "Installed",
    "LbHost",
    "LockState",
    "LockStatus",
    "Planned",
    "Probe",
    "ReloadRequest",
    "ReloadResult",
    "ScriptedHost",
]
