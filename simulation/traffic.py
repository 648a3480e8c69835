"""Traffic through the load balancer: steady load under two client models, long requests and
WebSockets, all recorded. Runs on one asyncio loop.

Client models (see shared notes, "What a graceful reload does to traffic"): Nginx closes idle
keep-alive connections of old workers at a reload, so a client that reuses such a connection at
that moment gets EOF. RFC 9112 section 9.3.1 lets a client retry an idempotent request once when
that happens, and browsers, urllib3 and aiohttp do. The harness therefore runs:

- ``keepalive``: reused connections, one retry of a GET whose reused connection was closed
  (what real clients do); its failures count toward pass/fail;
- ``fresh``: a new connection per request; its failures count toward pass/fail;
- strict: the first attempt of every keepalive request, before any retry; reported beside.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from .records import RequestRecord, WebSocketRecord

SlotOf = Callable[[str], str | None]
_RETRYABLE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5)
WS_RECONNECT_DELAY = 0.1
WS_MAX_RECONNECTS = 20
LONG_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=5)


@dataclass
class TrafficPlan:
    base_url: str  # http://127.0.0.1:PORT
    rate: float = 400.0  # steady requests per second, all clients together
    keepalive_clients: int = 16
    fresh_clients: int = 4
    path: str = "/"
    long_path: str = "/slow?seconds=5"
    ws_path: str | None = "/ws"
    ws_echo: bool = True
    ws_ping_interval: float = 0.5


def upstream_of(headers: Mapping[str, str]) -> str:
    """The server that answered, from the ``X-Upstream-Addr`` header the harness's LB adds."""
    # "a, b" when Nginx tried several servers: the last one answered.
    return headers.get("X-Upstream-Addr", "").split(",")[-1].strip()


def _new_session(*, fresh: bool, timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=1, force_close=fresh, enable_cleanup_closed=True)
    session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
    # aiohttp retries a reused connection once by itself; the harness does it explicitly instead,
    # so that the first attempt's error is seen and counted for the strict figure.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


class Traffic:
    """Starts, records and stops all client activity."""

    def __init__(self, plan: TrafficPlan, slot_of: SlotOf) -> None:
        self.plan = plan
        self.slot_of = slot_of
        self.requests: list[RequestRecord] = []
        self.websockets: list[WebSocketRecord] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ws_ids = itertools.count(1)
        self._sessions: list[aiohttp.ClientSession] = []

    # -- steady load ----------------------------------------------------------------------
    def start_steady(self) -> None:
        clients = self.plan.keepalive_clients + self.plan.fresh_clients
        interval = clients / self.plan.rate
        for index in range(clients):
            model = "keepalive" if index < self.plan.keepalive_clients else "fresh"
            offset = interval * index / clients
            self._tasks.append(asyncio.create_task(self._steady(index, model, interval, offset)))

    async def _steady(self, client: int, model: str, interval: float, offset: float) -> None:
        session = _new_session(fresh=model == "fresh")
        self._sessions.append(session)
        url = self.plan.base_url + self.plan.path
        loop = asyncio.get_running_loop()
        next_at = loop.time() + offset
        while not self._stop.is_set():
            delay = next_at - loop.time()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    break
            next_at = max(next_at + interval, loop.time() - interval)
            self.requests.append(await self._request(session, url, "steady", model, client))

    async def _request(
        self, session: aiohttp.ClientSession, url: str, kind: str, model: str, client: int
    ) -> RequestRecord:
        start = time.time()
        strict_error: str | None = None
        attempts = 2 if model == "keepalive" and kind == "steady" else 1
        for attempt in range(attempts):
            try:
                async with session.get(url) as response:
                    body = await response.read()
                    upstream = upstream_of(response.headers)
                    complete = _complete(kind, response.headers, body)
                    return RequestRecord(
                        kind,
                        model,
                        client,
                        start,
                        time.time(),
                        response.status,
                        len(body),
                        self.slot_of(upstream),
                        upstream,
                        None,
                        strict_error,
                        complete,
                    )
            except aiohttp.ClientConnectorError as exc:
                error = f"connect: {exc}"
            except _RETRYABLE as exc:
                error = f"{type(exc).__name__}: {exc}"
                if model == "keepalive" and strict_error is None:
                    strict_error = error
                if attempt + 1 < attempts:
                    continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if model == "keepalive" and strict_error is None:
                    strict_error = error
            return RequestRecord(kind, model, client, start, time.time(), 0, 0, None, "", error, strict_error, False)
        raise AssertionError("unreachable")

    # -- long requests --------------------------------------------------------------------
    def start_long(self, count: int) -> None:
        for index in range(count):
            self._tasks.append(asyncio.create_task(self._long(1000 + index)))

    async def _long(self, client: int) -> None:
        session = _new_session(fresh=False, timeout=LONG_TIMEOUT)
        self._sessions.append(session)
        self.requests.append(
            await self._request(session, self.plan.base_url + self.plan.long_path, "long", "keepalive", client)
        )

    # -- WebSockets -----------------------------------------------------------------------
    def start_websockets(self, count: int) -> None:
        if not self.plan.ws_path:
            return
        for _ in range(count):
            self._tasks.append(asyncio.create_task(self._websocket(next(self._ws_ids))))

    async def _websocket(self, ws_id: int) -> None:
        session = _new_session(fresh=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        self._sessions.append(session)
        url = self.plan.base_url.replace("http://", "ws://") + str(self.plan.ws_path)
        generation = 1
        while not self._stop.is_set() and generation <= WS_MAX_RECONNECTS:
            if not await self._one_websocket(session, url, ws_id, generation):
                break
            # A real client reconnects after "going away" (or a cut): it lands on the new slot.
            generation += 1
            await asyncio.sleep(WS_RECONNECT_DELAY)

    async def _one_websocket(self, session: aiohttp.ClientSession, url: str, ws_id: int, generation: int) -> bool:
        opened = time.time()
        try:
            ws = await session.ws_connect(url, autoping=False, autoclose=True, heartbeat=None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.websockets.append(
                WebSocketRecord(ws_id, generation, opened, None, "", time.time(), None, "network", error=str(exc))
            )
            return False
        upstream = upstream_of(ws._response.headers)
        record = WebSocketRecord(ws_id, generation, time.time(), self.slot_of(upstream), upstream)
        record.events.append(record.opened_at)
        self.websockets.append(record)
        sender = asyncio.create_task(self._ws_sender(ws, record))
        try:
            async for message in ws:
                now = time.time()
                record.events.append(now)
                record.messages += 1
                if message.type == aiohttp.WSMsgType.PING:
                    await ws.pong(message.data)
                elif message.type == aiohttp.WSMsgType.PONG:
                    record.pongs += 1
                elif message.type == aiohttp.WSMsgType.TEXT:
                    if message.data.startswith("echo-"):
                        record.echoes_ok += 1
                    elif _is_tick(message.data):
                        record.ticks += 1
            # The iterator ends on a close frame (ws.close_code set) or a dead connection.
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            record.error = str(exc)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        record.closed_at = time.time()
        if self._stop.is_set() and record.closed_by == "client":
            record.close_code = 1000
            return False
        code = ws.close_code
        if code in (None, 1006):
            record.close_code, record.closed_by = 1006, "network"
        else:
            record.close_code, record.closed_by = code, "server"
        _gaps(record)
        return True  # closed by the server or the network, not by us: reconnect

    async def _ws_sender(self, ws: aiohttp.ClientWebSocketResponse, record: WebSocketRecord) -> None:
        tick = 0
        while not ws.closed:
            await asyncio.sleep(self.plan.ws_ping_interval)
            if ws.closed:
                return
            tick += 1
            try:
                await ws.ping(str(tick).encode())
                if self.plan.ws_echo and tick % 2 == 0:
                    await ws.send_str(f"echo-{tick}")
                    record.echoes_sent += 1
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                return
            if self._stop.is_set():
                record.closed_by = "client"
                await ws.close(code=1000)
                return

    # -- stopping -------------------------------------------------------------------------
    async def stop(self, grace: float = 30.0) -> None:
        self._stop.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for session in self._sessions:
            await session.close()
        for record in self.websockets:
            if record.closed_at is None:
                record.closed_at = time.time()
            _gaps(record)


def _complete(kind: str, headers: Mapping[str, str], body: bytes) -> bool:
    if kind != "long":
        return True
    expected = headers.get("X-Expected-Chunks")
    if not expected:
        return True  # a third-party app: aiohttp already refuses a truncated body
    lines = body.decode(errors="replace").splitlines()
    return (
        len([line for line in lines if line.startswith("chunk ")]) == int(expected)
        and bool(lines)
        and lines[-1].startswith("done")
    )


def _is_tick(text: str) -> bool:
    try:
        return "tick" in json.loads(text)
    except ValueError:
        return False


def _gaps(record: WebSocketRecord) -> None:
    events = sorted(record.events)
    if record.closed_at:
        events = [t for t in events if t <= record.closed_at]
    record.max_gap_s = max((b - a for a, b in itertools.pairwise(events)), default=0.0)
