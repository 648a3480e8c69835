"""Before any traffic or swap: each endpoint the scenario will use is tried once through the LB.

An endpoint that cannot do its part would only show up after the swap as a puzzling assertion
("0 spanned the switch", "expected 1001"); here it stops the run at once, naming the flag to set:
the steady path must answer (2xx/3xx, through the upstream: ``X-Upstream-Addr``), the long path
must answer and still be running ``long_min_s`` after it was sent (``LONG_AT_ONCE_S``: it has to
span the switch), the WebSocket path must upgrade. The checks run side by side (about
``long_min_s`` in all).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from .environment import StartupError
from .traffic import upstream_of

TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)
# A long request that is over this soon "answered at once": it cannot span a swap. (The run's
# in_flight_completed_on_old assertion still checks that each one spanned the switch.)
LONG_AT_ONCE_S = 0.5
LONG_FIX = "--long-path /your/slow/path (an endpoint that streams or waits a few seconds) or --long-path none"
WS_FIX = "--ws-path /your/websocket/path or --ws-path none"


@dataclass(frozen=True)
class Probe:
    """One endpoint tried once: what it is for, what it answered, and the flag to set if it failed."""

    role: str  # "steady", "long" or "websocket"
    path: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.role} {self.path}: {self.detail}" + (f"\n    fix: {self.fix}" if self.fix else "")


class PreflightError(StartupError):
    """An endpoint the scenario needs does not work; raised before any traffic or swap."""

    def __init__(self, probes: list[Probe]) -> None:
        self.probes = probes
        super().__init__(failure_message(probes))


def failure_message(probes: list[Probe]) -> str:
    failed = [probe for probe in probes if not probe.ok]
    lines = [f"{len(failed)} endpoint(s) the scenario uses do not work through the LB (tried once, before any swap):"]
    lines += [f"  - {probe.line()}" for probe in failed]
    return "\n".join(lines)


def steady_probe(path: str, status: int, upstream: str, slot: str | None, ms: float, upstream_name: str) -> Probe:
    if status >= 400:
        return Probe(
            "steady",
            path,
            False,
            f"GET answered {status}; the steady load needs a 2xx or 3xx answer",
            "--path /a/path/your/app/answers (the steady load's path)",
        )
    if not upstream:
        return Probe(
            "steady",
            path,
            False,
            f"GET answered {status} without X-Upstream-Addr: the location serving it does not proxy to "
            f"upstream '{upstream_name}', so the harness cannot tell which slot answered",
            f"--path /a/path/proxied/to/{upstream_name}, or make that location proxy_pass http://{upstream_name}",
        )
    return Probe("steady", path, True, f"{status} from {slot or upstream} in {ms:.0f} ms")


def no_answer_probe(role: str, path: str, error: str) -> Probe:
    fix = {"long": LONG_FIX, "websocket": WS_FIX}.get(role, "read the LB's error log; is the app serving plain HTTP?")
    return Probe(role, path, False, f"no answer through the LB ({error})", fix)


def long_probe(path: str, status: int, elapsed: float | None, min_s: float, default: bool) -> Probe:
    """``elapsed``: seconds until the whole answer arrived (None: still running at ``min_s``)."""
    whose = " (the default: the demo app's slow endpoint)" if default else ""
    if status >= 400:
        return Probe("long", path, False, f"GET answered {status}{whose}", LONG_FIX)
    if elapsed is not None:
        return Probe(
            "long",
            path,
            False,
            f"GET answered {status} at once, complete in {elapsed:.2f} s{whose}: long requests start before the "
            "swap and must still be running when the switch is confirmed (a few seconds)",
            LONG_FIX,
        )
    return Probe("long", path, True, f"{status}, still running after {min_s:.1f} s")


def ws_probe(path: str, status: int | None, error: str = "") -> Probe:
    """``status``: the handshake's answer when it was refused (None: upgraded, or no answer)."""
    if status is None and not error:
        return Probe("websocket", path, True, "upgraded (101)")
    if status is not None:
        detail = f"not upgraded: answered {status} instead of 101 Switching Protocols"
        if status not in (404, 405):
            detail += (
                " (if the app serves WebSockets there, the LB's location must pass 'Upgrade' and 'Connection' to it)"
            )
    else:
        detail = f"not upgraded: {error}"
    return Probe("websocket", path, False, detail, WS_FIX)


async def _steady(
    session: aiohttp.ClientSession, base: str, path: str, slot_of: Callable[[str], str | None], upstream: str
) -> Probe:
    start = time.perf_counter()
    try:
        async with session.get(base + path) as response:
            await response.read()
            addr = upstream_of(response.headers)
            ms = (time.perf_counter() - start) * 1000
            return steady_probe(path, response.status, addr, slot_of(addr), ms, upstream)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return no_answer_probe("steady", path, f"{type(exc).__name__}: {exc}")


async def _long(session: aiohttp.ClientSession, base: str, path: str, min_s: float, default: bool) -> Probe:
    start = time.perf_counter()
    try:
        async with session.get(base + path, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)) as response:
            if response.status >= 400:
                return long_probe(path, response.status, None, min_s, default)
            try:
                await asyncio.wait_for(response.read(), max(0.0, min_s - (time.perf_counter() - start)))
            except TimeoutError:
                return long_probe(path, response.status, None, min_s, default)
            return long_probe(path, response.status, time.perf_counter() - start, min_s, default)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return no_answer_probe("long", path, f"{type(exc).__name__}: {exc}")


async def _websocket(session: aiohttp.ClientSession, base: str, path: str) -> Probe:
    try:
        ws = await session.ws_connect(base.replace("http://", "ws://") + path, autoping=True, heartbeat=None)
    except aiohttp.WSServerHandshakeError as exc:
        return ws_probe(path, exc.status)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return ws_probe(path, None, f"{type(exc).__name__}: {exc}")
    await ws.close()
    return ws_probe(path, None)


async def preflight(
    base_url: str,
    *,
    path: str,
    long_path: str | None,
    long_min_s: float,
    long_is_default: bool,
    ws_path: str | None,
    slot_of: Callable[[str], str | None],
    upstream: str,
) -> list[Probe]:
    """Try each endpoint once, side by side; raise ``PreflightError`` when one does not work."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT, auto_decompress=False) as session:
        checks = [_steady(session, base_url, path, slot_of, upstream)]
        if long_path is not None:
            checks.append(_long(session, base_url, long_path, long_min_s, long_is_default))
        if ws_path is not None:
            checks.append(_websocket(session, base_url, ws_path))
        probes = list(await asyncio.gather(*checks))
    if not all(probe.ok for probe in probes):
        raise PreflightError(probes)
    return probes
