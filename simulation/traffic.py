"""Traffic through the load balancer: steady load under two client models, long requests and
WebSockets, all recorded. Runs on one asyncio loop; the steady load may instead be spread over
several processes (``TrafficPlan.processes``; 0: as many as the rate needs), each running its
share on a loop of its own and streaming its records back, so that one interpreter's CPU does not
cap the rate.

The steady load is open-loop by default, as wrk2, k6's constant-arrival-rate and vegeta schedule
it: requests are due at the asked rate (evenly spaced, or Poisson arrivals) whatever the responses
do, each goes out on a free connection of its model (a new one is opened when all are busy, up to
``max_connections``; past that it waits its turn), and its latency counts from when it was due.
A stall at a reload then delays every request due during it, and shows. ``arrivals="closed"``
keeps the old model for comparison: each client sends its next request once its response is in,
so a stall only delays the one request each client had in flight (coordinated omission).

Client models (see shared notes, "What a graceful reload does to traffic"): Nginx closes idle
keep-alive connections of old workers at a reload, so a client that reuses such a connection at
that moment gets EOF. RFC 9112 section 9.3.1 lets a client retry an idempotent request once when
that happens, and browsers, urllib3 and aiohttp do. The harness therefore runs:

- ``keepalive``: reused connections, one retry of a GET whose reused connection was closed
  (what real clients do); its failures count toward pass/fail;
- ``fresh``: a new connection per request; its failures count toward pass/fail;
- strict: the first attempt of every keepalive request, before any retry; reported beside.

A fleet (``TrafficPlan.lb_urls``, several LBs in front of the same slots) is reached the way DNS
round robin spreads clients: each steady request, each long request and each WebSocket connection
goes to the next LB in turn (``RoundRobin``); a keep-alive connection stays with the LB it was
opened to (one pool per LB). Every record says which LB it went through (``lb``). The real client
libraries use the first LB.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import random
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

import aiohttp

from . import clients
from .records import RequestRecord, WebSocketRecord

SlotOf = Callable[[str], str | None]
_RETRYABLE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5)
WS_RECONNECT_DELAY = 0.1
WS_MAX_RECONNECTS = 20
LONG_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=5)
READY_TIMEOUT = 60.0  # a generator process imports aiohttp and opens its sessions within this
FLUSH_INTERVAL = 0.05  # a generator process sends its new records this often
ARRIVALS = ("constant", "poisson", "closed")
MAX_CONNECTIONS = 256  # per client model and generator process: past it, a due request waits its turn
# Open-loop requests one generator process holds on this machine kind against the demo app
# (`make bench` measures the ceiling): the rate is spread over more processes past it.
RATE_PER_PROCESS = 700.0
_FIELDS = tuple(f.name for f in dataclasses.fields(RequestRecord))


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
    ws_max_reconnects: int = WS_MAX_RECONNECTS  # per WebSocket: a server close or a cut, then a new one
    # Processes running the steady load (1: on the caller's loop; 0: as many as the rate needs,
    # ``processes_for``). With more, the clients (and their share of the rate) are dealt out
    # round-robin, each process runs its share on a loop of its own and streams its records back;
    # start_steady() then blocks until every process is ready (about a second).
    processes: int = 0
    arrivals: str = "constant"  # or "poisson" (open loop), or "closed" (the old closed loop)
    max_connections: int = MAX_CONNECTIONS
    seed: int | None = None  # Poisson arrivals: the same seed, the same schedule
    # Real client libraries (simulation/clients.py), each at client_rate req/s beside the steady load.
    client_kinds: tuple[str, ...] = ()
    client_rate: float = 50.0
    # A fleet: each LB's base URL, dealt out in turn (empty: ``base_url`` only).
    lb_urls: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """The LBs' base URLs in order (one: ``base_url``)."""
        return self.lb_urls or (self.base_url,)


class RoundRobin:
    """LB indexes in turn, as DNS round robin hands out addresses: the n-th pick is
    ``(start + n) mod count``."""

    def __init__(self, count: int, start: int = 0) -> None:
        self.count = max(1, count)
        self._next = start % self.count

    def __call__(self) -> int:
        index = self._next
        self._next = (index + 1) % self.count
        return index


def processes_for(rate: float) -> int:
    """Generator processes for ``rate``: one per RATE_PER_PROCESS, at most one per CPU."""
    return max(1, min(os.cpu_count() or 1, math.ceil(rate / RATE_PER_PROCESS)))


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
        self._generators: list[_Generator] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._client_processes: list[asyncio.subprocess.Process] = []
        self._client_readers: list[asyncio.Task[None]] = []
        self.skipped_clients: dict[str, str] = {}  # kind -> why it did not run
        self.steady_started_at: float | None = None
        self.processes = 1
        self._long_lbs = RoundRobin(len(plan.urls))
        self._ws_lbs = RoundRobin(len(plan.urls))

    # -- steady load ----------------------------------------------------------------------
    def start_steady(self) -> None:
        """Start the steady load; ``steady_started_at`` is when its first request is due."""
        if self.plan.arrivals not in ARRIVALS:
            raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)}, not {self.plan.arrivals!r}")
        clients = range(self.plan.keepalive_clients + self.plan.fresh_clients)
        processes = min(self.plan.processes or processes_for(self.plan.rate), len(clients))
        self.processes = max(1, processes)
        if processes <= 1:
            self.steady_started_at = time.time()
            self._start_clients(clients, self.steady_started_at)
            return
        self._generators = [_Generator.spawn(self.plan, list(clients[index::processes])) for index in range(processes)]
        deadline = time.monotonic() + READY_TIMEOUT
        for generator in self._generators:
            generator.wait_ready(deadline)
        # Every process starts its clients at the same instant, on the same schedule as one loop would.
        self.steady_started_at = time.time() + 0.05
        loop = asyncio.get_running_loop()
        for generator in self._generators:
            generator.control.send(("go", self.steady_started_at))
            loop.add_reader(generator.data.fileno(), self._receive, generator)

    def _start_clients(self, clients: Iterable[int], started_at: float) -> None:
        """Start the given steady clients (numbered over all processes) from unix time ``started_at``."""
        total = self.plan.keepalive_clients + self.plan.fresh_clients
        interval = total / self.plan.rate
        loop = asyncio.get_running_loop()
        first = loop.time() + max(0.0, started_at - time.time())
        if self.plan.arrivals != "closed":
            # Open loop: this process's share of each model's rate (its clients' share), its
            # schedule shifted so that the processes' arrivals interleave.
            mine = list(clients)
            for model, count, shift in (
                ("keepalive", sum(1 for c in mine if c < self.plan.keepalive_clients), 0.0),
                ("fresh", sum(1 for c in mine if c >= self.plan.keepalive_clients), 0.5),
            ):
                if count:
                    rate = self.plan.rate * count / total
                    at = first + (min(mine) + shift) / self.plan.rate
                    self._tasks.append(asyncio.create_task(self._arrivals(model, rate, at, min(mine))))
            return
        for index in clients:
            model = "keepalive" if index < self.plan.keepalive_clients else "fresh"
            offset = interval * index / total
            self._tasks.append(asyncio.create_task(self._steady(index, model, interval, first + offset)))

    async def _arrivals(self, model: str, rate: float, first_at: float, process: int) -> None:
        """Open loop: a request due every 1/rate s (or at Poisson arrivals), whatever the responses do.
        Each goes to the next LB in turn, on a connection of that LB's pool."""
        urls = [base + self.plan.path for base in self.plan.urls]
        pools = [
            _Pool(fresh=model == "fresh", bound=self.plan.max_connections, first=process * 100_000 + lb * 10_000)
            for lb in range(len(urls))
        ]
        next_lb = RoundRobin(len(urls), start=process)
        loop = asyncio.get_running_loop()
        to_wall = time.time() - loop.time()
        poisson = random.Random(self.plan.seed) if self.plan.arrivals == "poisson" else None
        next_at = first_at
        while not self._stop.is_set():
            delay = next_at - loop.time()
            # Behind the schedule (a busy loop), due requests go out at once: none is skipped, and
            # each still counts its latency from when it was due.
            await asyncio.sleep(max(0.0, delay))
            if self._stop.is_set():
                break
            lb = next_lb()
            task = asyncio.create_task(self._due(pools[lb], urls[lb], model, next_at + to_wall, lb))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            next_at += poisson.expovariate(rate) if poisson else 1.0 / rate
        for pool in pools:
            self._sessions.extend(pool.sessions)

    async def _due(self, pool: _Pool, url: str, model: str, intended: float, lb: int = 0) -> None:
        connection, waited = await pool.take()
        try:
            record = await self._request(connection.session, url, "steady", model, connection.index, lb=lb)
        finally:
            pool.give(connection)
        record.intended, record.waited = intended, waited
        self.requests.append(record)

    async def _steady(self, client: int, model: str, interval: float, first_at: float) -> None:
        session = _new_session(fresh=model == "fresh")
        self._sessions.append(session)
        lb = client % len(self.plan.urls)  # a closed-loop client keeps its LB, as it keeps its connection
        url = self.plan.urls[lb] + self.plan.path
        loop = asyncio.get_running_loop()
        next_at = first_at
        while not self._stop.is_set():
            delay = next_at - loop.time()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    break
            next_at = max(next_at + interval, loop.time() - interval)
            self.requests.append(await self._request(session, url, "steady", model, client, lb=lb))

    def _receive(self, generator: _Generator) -> None:
        """A generator process's message (the event loop calls this when its pipe is readable)."""
        try:
            message = generator.data.recv()
        except (EOFError, OSError):
            message = ("exited",)
        kind = message[0]
        if kind == "records":
            for row in message[1]:
                record = RequestRecord(*row)
                # Mapped here, as they arrive, with the environment's current addresses.
                record.slot = self.slot_of(record.upstream) if record.upstream else None
                self.requests.append(record)
        elif kind == "error":
            generator.error = str(message[1])
        if kind in ("done", "exited"):
            if kind == "exited" and generator.error is None:
                generator.error = "the load generator process exited before sending all its records"
            asyncio.get_running_loop().remove_reader(generator.data.fileno())
            generator.finished.set()

    async def _request(
        self,
        session: aiohttp.ClientSession,
        url: str,
        kind: str,
        model: str,
        client: int,
        *,
        lb: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> RequestRecord:
        start = time.time()
        strict_error: str | None = None
        attempts = 2 if model == "keepalive" and kind == "steady" else 1
        for attempt in range(attempts):
            try:
                async with session.get(url, headers=headers) as response:
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
                        lb=lb,
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
            return RequestRecord(
                kind, model, client, start, time.time(), 0, 0, None, "", error, strict_error, False, lb=lb
            )
        raise AssertionError("unreachable")

    # -- real client libraries --------------------------------------------------------------
    async def start_clients(self) -> None:
        """Start the real client libraries (one child process for the Python ones, one for Node's fetch)."""
        url = self.plan.base_url + self.plan.path
        python = tuple(kind for kind in self.plan.client_kinds if kind in clients.PYTHON_KINDS)
        node = tuple(kind for kind in self.plan.client_kinds if kind in clients.NODE_KINDS)
        for kind in node:
            why = clients.unavailable(kind)
            if why:
                self.skipped_clients[kind] = why
        groups = [("python", python)] + ([("node", node)] if node and not self.skipped_clients else [])
        for group, kinds in groups:
            if not kinds:
                continue
            process = await asyncio.create_subprocess_exec(
                *clients.command(group, url, self.plan.client_rate, kinds),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            self._client_processes.append(process)
            self._client_readers.append(asyncio.create_task(self._read_clients(process)))

    async def _read_clients(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            try:
                row = json.loads(line)
                upstream = str(row.get("upstream") or "")
                self.requests.append(
                    RequestRecord(
                        "client", str(row["kind"]), 0, float(row["start"]), float(row["end"]), int(row["status"]),
                        0, self.slot_of(upstream) if upstream else None, upstream, row.get("error"),
                    )
                )  # fmt: skip
            except (ValueError, KeyError, TypeError):
                continue  # a line that is not a record (a library's warning): not a request

    async def _stop_clients(self, grace: float) -> None:
        for process in self._client_processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self._client_processes:
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._client_readers:
            await asyncio.wait(self._client_readers, timeout=5.0)

    # -- long requests --------------------------------------------------------------------
    def start_long(self, count: int) -> None:
        for index in range(count):
            self._tasks.append(asyncio.create_task(self._long(1000 + index)))

    async def _long(self, client: int) -> None:
        session = _new_session(fresh=False, timeout=LONG_TIMEOUT)
        self._sessions.append(session)
        lb = self._long_lbs()
        self.requests.append(
            await self._request(session, self.plan.urls[lb] + self.plan.long_path, "long", "keepalive", client, lb=lb)
        )

    # -- the staging route ----------------------------------------------------------------
    def start_staging(self, rate: float, host: str) -> None:
        """A low-rate prober of the staging route: ``rate`` GETs a second with ``Host: host``, each
        on a new connection, the LBs in turn; recorded as kind "staging" (never in the steady counts)."""
        self._tasks.append(asyncio.create_task(self._staging(rate, host)))

    async def _staging(self, rate: float, host: str) -> None:
        session = _new_session(fresh=True)
        self._sessions.append(session)
        next_lb = RoundRobin(len(self.plan.urls))
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._stop.is_set():
            lb = next_lb()
            url = self.plan.urls[lb] + self.plan.path
            self.requests.append(
                await self._request(session, url, "staging", "fresh", 0, lb=lb, headers={"Host": host})
            )
            next_at = max(next_at + 1.0 / rate, loop.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - loop.time()))

    # -- WebSockets -----------------------------------------------------------------------
    def start_websockets(self, count: int) -> None:
        if not self.plan.ws_path:
            return
        for _ in range(count):
            self._tasks.append(asyncio.create_task(self._websocket(next(self._ws_ids))))

    async def _websocket(self, ws_id: int) -> None:
        session = _new_session(fresh=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        self._sessions.append(session)
        attempt = 1
        while not self._stop.is_set() and attempt <= self.plan.ws_max_reconnects:
            lb = self._ws_lbs()  # each connection, a reconnection too, goes to the next LB
            url = self.plan.urls[lb].replace("http://", "ws://") + str(self.plan.ws_path)
            if not await self._one_websocket(session, url, ws_id, attempt, lb):
                break
            # A real client reconnects after "going away" (or a cut): it lands on the new slot.
            attempt += 1
            await asyncio.sleep(WS_RECONNECT_DELAY)

    async def _one_websocket(
        self, session: aiohttp.ClientSession, url: str, ws_id: int, attempt: int, lb: int = 0
    ) -> bool:
        opened = time.time()
        try:
            ws = await session.ws_connect(url, autoping=False, autoclose=True, heartbeat=None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.websockets.append(
                WebSocketRecord(ws_id, attempt, opened, None, "", time.time(), None, "network", error=str(exc), lb=lb)
            )
            return False
        upstream = upstream_of(ws._response.headers)
        record = WebSocketRecord(ws_id, attempt, time.time(), self.slot_of(upstream), upstream, lb=lb)
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
        for generator in self._generators:
            with contextlib.suppress(OSError):
                generator.control.send(("stop", grace))
        await self._stop_clients(min(grace, 15.0))
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._in_flight:  # open-loop requests still out: they finish (and are recorded) or are cut
            _done, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for session in self._sessions:
            await session.close()
        for record in self.websockets:
            if record.closed_at is None:
                record.closed_at = time.time()
            _gaps(record)
        await self._stop_generators(grace)

    async def _stop_generators(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        for index, generator in enumerate(self._generators):
            try:
                await asyncio.wait_for(generator.finished.wait(), grace + 10.0)
            except TimeoutError:
                loop.remove_reader(generator.data.fileno())
                generator.error = generator.error or "the load generator process did not finish in time"
            await loop.run_in_executor(None, generator.process.join, 5.0)
            if generator.process.is_alive():
                generator.process.kill()
                generator.process.join()
            generator.control.close()
            generator.data.close()
            if generator.error:
                errors.append(f"load generator process {index + 1}: {generator.error}")
        self._generators = []
        if errors:
            raise RuntimeError("; ".join(errors))


@dataclass
class _Connection:
    index: int
    session: aiohttp.ClientSession


class _Pool:
    """The connections of one client model in one process, as a client library's pool: a free one
    is reused (the most recent first, as urllib3's LIFO pool does), a new one is opened when all
    are busy, up to ``bound``; past it a due request waits for the first one freed (``waited``)."""

    def __init__(self, *, fresh: bool, bound: int, first: int) -> None:
        self.fresh, self.bound, self.first = fresh, bound, first
        self.idle: list[_Connection] = []
        self.sessions: list[aiohttp.ClientSession] = []
        self.waiters: collections.deque[asyncio.Future[_Connection]] = collections.deque()

    async def take(self) -> tuple[_Connection, bool]:
        if self.idle:
            return self.idle.pop(), False
        if len(self.sessions) < self.bound:
            self.sessions.append(_new_session(fresh=self.fresh))
            return _Connection(self.first + len(self.sessions) - 1, self.sessions[-1]), False
        waiter: asyncio.Future[_Connection] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter, True

    def give(self, connection: _Connection) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self.idle.append(connection)


@dataclass
class _Generator:
    """The parent's handle on one load generator process."""

    process: SpawnProcess
    control: Connection  # parent -> child: ("go", unix time), then ("stop", grace)
    data: Connection  # child -> parent: ("ready",), ("records", rows)..., ("error", text)?, ("done",)
    finished: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    error: str | None = None

    @classmethod
    def spawn(cls, plan: TrafficPlan, clients: list[int]) -> _Generator:
        ctx = multiprocessing.get_context("spawn")
        control_recv, control_send = ctx.Pipe(duplex=False)
        data_recv, data_send = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_generator_main,
            args=(dataclasses.replace(plan, processes=1), clients, control_recv, data_send),
            name="traffic-generator",
            daemon=True,
        )
        process.start()
        control_recv.close()
        data_send.close()
        return cls(process, control_send, data_recv)

    def wait_ready(self, deadline: float) -> None:
        """Block until the process has said it is ready; raise if it failed or timed out."""
        if not self.data.poll(max(0.0, deadline - time.monotonic())):
            raise RuntimeError("a load generator process was not ready in time")
        try:
            message = self.data.recv()
        except EOFError:
            raise RuntimeError("a load generator process exited while starting") from None
        if message[0] != "ready":
            raise RuntimeError(f"a load generator process failed to start: {message[-1]}")


def _generator_main(plan: TrafficPlan, clients: list[int], control: Connection, data: Connection) -> None:
    """A load generator process: runs the given steady clients until told to stop."""
    try:
        asyncio.run(_generate(plan, clients, control, data))
    except BaseException:  # reported to the parent, which fails the run
        with contextlib.suppress(OSError):
            data.send(("error", traceback.format_exc()))
        raise
    finally:
        with contextlib.suppress(OSError):
            data.send(("done",))
        data.close()


async def _generate(plan: TrafficPlan, clients: list[int], control: Connection, data: Connection) -> None:
    traffic = Traffic(plan, lambda _upstream: None)  # slots are mapped by the parent
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def on_command() -> None:
        try:
            command = control.recv()
        except (EOFError, OSError):  # the parent is gone: stop
            command = ("stop", 0.0)
        if command[0] == "stop":
            loop.remove_reader(control.fileno())
        commands.put_nowait(command)

    loop.add_reader(control.fileno(), on_command)
    data.send(("ready",))
    sent = 0

    def flush() -> None:
        nonlocal sent
        rows = [tuple(getattr(record, name) for name in _FIELDS) for record in traffic.requests[sent:]]
        sent += len(rows)
        if rows:
            data.send(("records", rows))

    async def flusher() -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            flush()

    command = await commands.get()
    task: asyncio.Task[None] | None = None
    if command[0] == "go":
        traffic._start_clients(clients, float(command[1]))
        task = asyncio.create_task(flusher())
        command = await commands.get()
    await traffic.stop(float(command[1]) if command[0] == "stop" else 30.0)
    if task:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    flush()


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
