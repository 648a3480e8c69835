"""Draining the old slot after the switch: an observable end, a deadline and a policy.

The drain ends when the Nginx workers of the old generation hold no connection to the old slot's
servers and have exited. Only theirs count: after the switch the staging upstream sends the new
workers' traffic to the old slot (the idle one), so "no connection at all to the old slot" would
never come while someone tests it. Where the old workers' sockets cannot be read (/proc/PID/fd of
another user: not root), every connection to the old servers counts, as before.

With a drain hook, the old servers are first asked to refuse new work and close their WebSockets
with 1001 themselves, so clients reconnect cleanly to the new slot instead of being cut. At the
deadline the policy decides: ``cut`` stops the old workers (their connections end with a plain
FIN, like ``worker_shutdown_timeout``), ``wait`` leaves them and reports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .host import LbHost
from .outcome import DrainOutcome

POLL_SECONDS = 0.25
HOOK_TIMEOUT_SECONDS = 5.0


def drain(
    host: LbHost,
    old_servers: Sequence[str],
    old_workers: set[int],
    *,
    timeout: float,
    policy: str,
    hook: tuple[str, str] | None,
    before_cut: Callable[[], None] = lambda: None,
    hook_delay_s: float = 0.0,
) -> DrainOutcome:
    start = time.monotonic()
    answers: tuple[tuple[str, int], ...] = ()
    if hook:
        # keepalive_min_timeout: old workers still answer recently used connections (through the
        # old config) that long after the switch; the old slot must take that work until then.
        time.sleep(max(0.0, hook_delay_s))
        method, path = hook
        urls = [f"http://{server}{path}" for server in old_servers]
        answers = tuple((a.url, a.status) for a in host.http(method, urls, HOOK_TIMEOUT_SECONDS))
    deadline = start + timeout
    while True:
        state = host.connections(old_servers)
        left = old_workers & set(state.draining_workers)
        connections = state.to_servers if state.from_old_workers is None else state.from_old_workers
        if connections == 0 and not left:
            return DrainOutcome("complete", (time.monotonic() - start) * 1000, 0, 0, answers)
        if time.monotonic() >= deadline:
            if policy == "cut":
                before_cut()  # raises when the cut is no longer this run's to make
                host.stop_workers(tuple(sorted(left)))
            return DrainOutcome(
                "cut" if policy == "cut" else "timeout",
                (time.monotonic() - start) * 1000,
                connections,
                len(left),
                answers,
            )
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
