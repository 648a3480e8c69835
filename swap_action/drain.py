"""Draining the old slot after the switch: an observable end, a deadline and a policy.

The drain ends when no connection from the LB to the old slot's servers is left and the Nginx
workers of the old generation have exited. With a drain hook, the old servers are first asked to
refuse new work and close their WebSockets with 1001 themselves, so clients reconnect cleanly to
the new slot instead of being cut. At the deadline the policy decides: ``cut`` stops the old
workers (their connections end with a plain FIN, like ``worker_shutdown_timeout``), ``wait``
leaves them and reports it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .nginx import LoadBalancer

POLL_SECONDS = 0.25
HOOK_TIMEOUT_SECONDS = 5.0


@dataclass
class DrainResult:
    outcome: str  # "complete", "cut" or "timeout"
    duration_ms: float
    connections_left: int
    workers_left: int
    hook: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        hook = f"; drain hook answered {', '.join(str(h['status']) for h in self.hook)}" if self.hook else ""
        if self.outcome == "complete":
            return f"drained in {self.duration_ms:.0f} ms: no connection left to the old slot, old workers gone{hook}"
        return (
            f"drain deadline reached after {self.duration_ms:.0f} ms with {self.connections_left} connection(s) "
            f"and {self.workers_left} old worker(s) left: {'stopped them' if self.outcome == 'cut' else 'left them running'}{hook}"
        )


def drain(
    lb: LoadBalancer,
    old_servers: tuple[str, ...],
    old_workers: set[int],
    *,
    timeout: float,
    policy: str,
    hook: tuple[str, str] | None,
) -> DrainResult:
    start = time.monotonic()
    hook_results: list[dict[str, Any]] = []
    if hook:
        method, path = hook
        for answer in lb.http(method, [f"http://{server}{path}" for server in old_servers], HOOK_TIMEOUT_SECONDS):
            hook_results.append({"url": answer.url, "status": answer.status})
    deadline = start + timeout
    while True:
        state = lb.connections(old_servers)
        left = old_workers & set(state.draining_workers)
        if state.to_servers == 0 and not left:
            return DrainResult("complete", (time.monotonic() - start) * 1000, 0, 0, hook_results)
        if time.monotonic() >= deadline:
            if policy == "cut":
                lb.stop_workers(tuple(sorted(left)))
            return DrainResult(
                "cut" if policy == "cut" else "timeout",
                (time.monotonic() - start) * 1000,
                state.to_servers,
                len(left),
                hook_results,
            )
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
