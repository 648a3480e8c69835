"""The lock's lease: held only while the run that took it is alive.

A run takes the lock on the LB for ``LEASE_SECONDS`` and renews it every ``RENEW_EVERY_SECONDS``
from a thread of its own (its own round trips, beside the run's: a drain or a canary pause goes
on meanwhile). A run that dies stops renewing, and the next run takes the lock over once the lease
has ended: a cancelled workflow blocks the next release for seconds, not for its whole worst case.

The run asks ``check()`` before anything it changes on the LB. The lease counts as lost when the
LB says another run holds the lock (or nobody: it was broken), or when no renewal got through for
longer than the lease minus a margin: the run cannot prove the lock is still its own, so it stops
changing things rather than race whoever may hold it now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import LockError, SwapError
from .host import LbHost

LEASE_SECONDS = 15  # how long a lock outlives its last renewal (a dead run's lock is free after this)
RENEW_EVERY_SECONDS = 3.0  # four renewals a lease: two may fail (a network hiccup) with room to spare
SAFETY_SECONDS = 3.0  # stop trusting the lease this long before it would end on the LB


def lock_dir_for(config_path: str) -> str:
    """The lock beside the managed file: one lock per file, whichever runner swaps it."""
    return f"{config_path}.lock"


class Lease:
    def __init__(
        self,
        host: LbHost,
        lock_dir: str,
        owner: str,
        *,
        lease_s: int | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.lock_dir = lock_dir
        self.owner = owner
        self.lease_s = LEASE_SECONDS if lease_s is None else lease_s
        self.every_s = RENEW_EVERY_SECONDS if every_s is None else every_s
        self.clock = clock
        self.renewed_at = clock()  # when the last renewal that got through was sent
        self.renewals = 0
        self.failures = 0  # renewals that did not get through (the LB unreachable for a moment)
        self.taken_by: str | None = None  # set when the LB says the lock is no longer ours
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """The lock was just taken (or renewed): keep it from now on."""
        self.renewed_at = self.clock()
        self._thread = threading.Thread(target=self._keep, name="bluegreen-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lease_s)
            self._thread = None

    def renew(self) -> None:
        """One renewal, now."""
        sent = self.clock()
        try:
            status = self.host.renew(self.lock_dir, self.owner, self.lease_s)
        except SwapError:
            self.failures += 1
            return
        if status.held:
            self.renewed_at = max(self.renewed_at, sent)
            self.renewals += 1
        else:
            self.taken_by = status.holder or "nobody (the lock was broken)"
            self._stop.set()

    @property
    def lost(self) -> str | None:
        """Why the lock can no longer be trusted to be this run's, or None."""
        if self.taken_by is not None:
            return f"the lock is now held by {self.taken_by}"
        silent = self.clock() - self.renewed_at
        if silent > self.lease_s - SAFETY_SECONDS:
            return f"the lease could not be renewed for {silent:.0f}s (it lasts {self.lease_s}s)"
        return None

    def check(self) -> None:
        """Raise ``LockError`` when the lock may no longer be this run's: change nothing more."""
        why = self.lost
        if why is not None:
            raise LockError(
                f"this run lost its lock on the load balancer: {why}",
                "another run (or 'lock break') may be changing the LB now: check 'python -m swap_action "
                "status' and swap again once it is done",
            )

    def _keep(self) -> None:
        while not self._stop.wait(self.every_s):
            self.renew()
