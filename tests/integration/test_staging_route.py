"""The staging route through a real Nginx LB: ``Host: staging.example`` proxies to ``app_staging``,
the second upstream of the managed file, which always points at the idle slot.

Before a swap blue -> green it answers from green (the target); after it, from blue (the old slot)
while the main host answers from green; and the drain completes (not cut, not timed out) although a
client keeps requesting the staging host all through it: new workers then talk to the old slot, and
only the old workers' own connections (their sockets in /proc/PID/fd) end a drain.
"""

from __future__ import annotations

import http.client
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from lb_fixtures import LbStack

from swap_action.engine import Engine
from swap_action.host import ScriptedHost
from swap_action.inputs import swap_options_from
from swap_action.transport.docker import DockerTransport
from swap_action.upstream import parse_state, render, weights_for_step

pytestmark = pytest.mark.docker

STAGING_HOST = "staging.example"
# The team's own site config: the staging host name to the staging upstream (keep-alive to it, as
# the main site does, so new workers hold connections to the old slot after the switch).
STAGING_SITE = """server {
    listen 80;
    server_name staging.example;
    location / {
        proxy_pass http://app_staging;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header Connection "";
        add_header X-Upstream-Addr $upstream_addr always;
    }
}
"""


def put(stack: LbStack, path: str, text: str) -> None:
    code, output = stack.exec("sh", "-c", 'printf "%s" "$1" > "$2"', "sh", text, path)
    assert code == 0, output


def ask(stack: LbStack, host: str | None = None) -> tuple[int, str]:
    """GET / through the LB's published port, as ``host`` (None: the main site)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
    try:
        connection.request("GET", "/", headers={"Host": host or "localhost", "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        connection.close()


def bodies(stack: LbStack, host: str | None = None, count: int = 10) -> set[str]:
    return {f"{status} {body}" for status, body in (ask(stack, host) for _ in range(count))}


def wait_for(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@dataclass
class StagingClient:
    """Requests the staging host back to back from a thread of its own until stopped."""

    stack: LbStack
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, body = ask(self.stack, STAGING_HOST)
            except OSError as exc:
                status, body = 0, repr(exc)
            self.answers.append((time.monotonic(), status, body))
            time.sleep(0.02)


def test_the_staging_host_reaches_the_idle_slot_and_the_drain_still_completes(
    lb_stack: Callable[..., LbStack],
) -> None:
    stack = lb_stack()
    env = stack.env
    managed = env.managed_file
    # What a swap renders with the staging upstream (the first one writes it; here it starts so),
    # and the team's site routing the staging host name to it.
    put(
        stack,
        managed,
        render(
            upstream="app", slots=env.slots, weights=weights_for_step("blue", 100), generation="g0-staging",
            previous=None, path=managed, staging_upstream="app_staging", staging_slot="green",
        ),
    )  # fmt: skip
    put(stack, posixpath.join(posixpath.dirname(managed), "zz-staging-site.conf"), STAGING_SITE)
    code, output = stack.exec("nginx", "-t")
    assert code == 0, f"nginx -t of a rendered file with the staging upstream: {output.decode()}"
    assert stack.exec("nginx", "-s", "reload")[0] == 0
    wait_for(lambda: bodies(stack, STAGING_HOST, 3) == {"200 green"}, "the staging host never answered from green")

    # Before the swap: the main host is blue, the staging host the target, green.
    assert bodies(stack) == {"200 blue"}
    assert bodies(stack, STAGING_HOST) == {"200 green"}

    client = StagingClient(stack)
    thread = threading.Thread(target=client.run, daemon=True)
    options = swap_options_from(
        {
            "config-path": managed, "upstream": "app", "blue": "blue:8080", "green": "green:8080", "to": "green",
            "verify-url": "http://127.0.0.1/", "verify-expect": "green", "drain-timeout": "30", "drain-policy": "wait",
        }
    )  # fmt: skip
    assert options.staging_upstream == "app_staging" and not options.staging_requested
    host = ScriptedHost(DockerTransport(stack.lb_name))
    thread.start()
    try:
        # A long request on blue through the main host: the old workers hold it, so the drain has
        # something to wait for while the staging traffic keeps flowing to blue from new workers.
        with stack.long_request(3):
            started = time.monotonic()
            report = Engine(host).swap(options)
            swapped = time.monotonic()
        # A staging answer after the swap: the new workers' keep-alive connections to blue exist.
        wait_for(lambda: any(at > swapped for at, _, _ in client.answers), "a staging answer after the swap")
        # New workers still talk to the old slot (staging, keep-alive): every connection counts
        # there, none of the old workers'. Read as root without CAP_SYS_PTRACE: through setpriv.
        connections = host.connections(["blue:8080"])
    finally:
        client.stop.set()
        thread.join(timeout=10)
        host.close()

    assert report.outcome.error is None, report.outcome.error
    assert report.outcome.changed and report.outcome.active == "green"
    assert report.drain is not None
    assert report.drain.outcome == "complete", report.drain.summary()
    assert report.drain.duration_ms >= 1000, "the drain waited for the old worker's long request"
    assert report.drain.duration_ms < 25_000, report.drain.summary()
    assert report.staging_slot == "blue"
    assert connections.from_old_workers == 0, connections
    assert connections.to_servers >= 1, "the staging route's keep-alive connections from new workers to blue"

    # After the swap: the main host is green, the staging host the old slot, blue.
    assert bodies(stack) == {"200 green"}
    assert bodies(stack, STAGING_HOST) == {"200 blue"}
    state = parse_state(stack.managed_bytes().decode())
    assert (state.live, state.staging_upstream, state.staging) == ("green", "app_staging", "blue")

    # The staging client never failed; it saw green before the switch and blue after the swap.
    assert client.answers, "the staging client made no request"
    assert {status for _, status, _ in client.answers} == {200}, [a for a in client.answers if a[1] != 200][:5]
    during = [body for at, _, body in client.answers if started <= at <= swapped]
    after = [body for at, _, body in client.answers if at > swapped]
    assert during and after, "the staging host was asked during the swap and after it"
    assert set(after) == {"blue"}
    assert client.answers[0][2] == "green"

    # status shows both routes.
    status = stack.cli("status", "--json")
    assert status.code == 0, status
    assert status.json()["live"] == "green"
    assert status.json()["staging"] == {"upstream": "app_staging", "slot": "blue"}
