"""Real HTTP client libraries as clients of the LB, each as an application would use it: one
keep-alive session, default settings, a request every 1/rate s. Nginx's old workers close idle
keep-alive connections at a reload; what each library does with a request sent on such a
connection at that instant (retry it, or raise) is what this measures.

Run as a child process (``python -m simulation.clients URL RATE KIND...``): one thread per kind,
one JSON line per request on stdout, until stdin closes. Node's built-in ``fetch`` (undici) runs
as its own process (``fetch_client.mjs``) with the same output, when ``node`` is on the machine.

| kind | library and settings | retries a request on a reused connection the server closed |
|---|---|---|
| ``requests`` | a ``requests.Session``, default adapter | no (``max_retries=0``) |
| ``urllib3`` | ``urllib3.PoolManager()``, default ``Retry(3)`` | yes |
| ``urllib3-noretry`` | ``urllib3.PoolManager(retries=False)`` | no |
| ``httpx`` | ``httpx.Client()``, default transport | no (``retries=0``) |
| ``aiohttp`` | ``aiohttp.ClientSession()``, defaults | yes, once, for an idempotent request |
| ``aiohttp-noretry`` | the same with its reused-connection retry off | no |
| ``fetch`` | Node's built-in ``fetch`` (undici), keep-alive | no |
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PYTHON_KINDS = ("requests", "urllib3", "urllib3-noretry", "httpx", "aiohttp", "aiohttp-noretry")
NODE_KINDS = ("fetch",)
KINDS = PYTHON_KINDS + NODE_KINDS
FETCH_SCRIPT = Path(__file__).with_name("fetch_client.mjs")
TIMEOUT_S = 10.0
Emit = Callable[[dict[str, Any]], None]


def parse_kinds(text: str) -> tuple[str, ...]:
    """``requests,fetch`` or ``all`` (or ``none``/empty): the kinds named, refused with the list when unknown."""
    text = text.strip().lower()
    if text in ("", "none"):
        return ()
    if text == "all":
        return KINDS
    kinds = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown client kind(s) {', '.join(unknown)}: choose from {', '.join(KINDS)} or all")
    return kinds


def unavailable(kind: str) -> str | None:
    """Why ``kind`` cannot run on this machine (None: it can)."""
    if kind in NODE_KINDS and shutil.which("node") is None:
        return "skipped: node is not installed on this machine (apt-get install nodejs)"
    return None


def command(kind_group: str, url: str, rate: float, kinds: tuple[str, ...]) -> list[str]:
    """The child process running ``kinds`` (all Python, or Node's fetch)."""
    if kind_group == "node":
        return ["node", str(FETCH_SCRIPT), url, str(rate)]
    return [sys.executable, "-m", "simulation.clients", url, str(rate), *kinds]


# -- the child process -------------------------------------------------------------------------
def _paced(rate: float, stop: threading.Event, send: Callable[[], None]) -> None:
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        send()
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()  # behind (a slow answer): no burst to catch up


def _record(kind: str, start: float, status: int, upstream: str, error: BaseException | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "start": start,
        "end": time.time(),
        "status": status,
        "upstream": upstream,
        "error": None if error is None else f"{type(error).__name__}: {str(error)[:200]}",
    }


def _run_requests(url: str, rate: float, stop: threading.Event, emit: Emit) -> None:
    import requests

    session = requests.Session()

    def send() -> None:
        start = time.time()
        try:
            response = session.get(url, timeout=TIMEOUT_S)
            emit(_record("requests", start, response.status_code, response.headers.get("X-Upstream-Addr", ""), None))
        except requests.RequestException as exc:
            emit(_record("requests", start, 0, "", exc))

    _paced(rate, stop, send)


def _run_urllib3(kind: str, url: str, rate: float, stop: threading.Event, emit: Emit) -> None:
    import urllib3

    pool = urllib3.PoolManager(timeout=TIMEOUT_S) if kind == "urllib3" else urllib3.PoolManager(retries=False)

    def send() -> None:
        start = time.time()
        try:
            response = pool.request("GET", url, timeout=TIMEOUT_S)
            emit(_record(kind, start, response.status, response.headers.get("X-Upstream-Addr", ""), None))
        except urllib3.exceptions.HTTPError as exc:
            emit(_record(kind, start, 0, "", exc))

    _paced(rate, stop, send)


def _run_httpx(url: str, rate: float, stop: threading.Event, emit: Emit) -> None:
    import httpx

    client = httpx.Client(timeout=TIMEOUT_S)

    def send() -> None:
        start = time.time()
        try:
            response = client.get(url)
            emit(_record("httpx", start, response.status_code, response.headers.get("X-Upstream-Addr", ""), None))
        except httpx.HTTPError as exc:
            emit(_record("httpx", start, 0, "", exc))

    _paced(rate, stop, send)


def _run_aiohttp(kind: str, url: str, rate: float, stop: threading.Event, emit: Emit) -> None:
    import aiohttp

    async def main() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
            if kind == "aiohttp-noretry" and hasattr(session, "_retry_connection"):
                session._retry_connection = False
            interval, loop = 1.0 / rate, asyncio.get_running_loop()
            next_at = loop.time()
            while not stop.is_set():
                start = time.time()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        emit(_record(kind, start, response.status, response.headers.get("X-Upstream-Addr", ""), None))
                except (TimeoutError, aiohttp.ClientError) as exc:
                    emit(_record(kind, start, 0, "", exc))
                next_at += interval
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    next_at = loop.time()

    asyncio.run(main())


RUNNERS: dict[str, Callable[[str, float, threading.Event, Emit], None]] = {
    "requests": _run_requests,
    "urllib3": lambda url, rate, stop, emit: _run_urllib3("urllib3", url, rate, stop, emit),
    "urllib3-noretry": lambda url, rate, stop, emit: _run_urllib3("urllib3-noretry", url, rate, stop, emit),
    "httpx": _run_httpx,
    "aiohttp": lambda url, rate, stop, emit: _run_aiohttp("aiohttp", url, rate, stop, emit),
    "aiohttp-noretry": lambda url, rate, stop, emit: _run_aiohttp("aiohttp-noretry", url, rate, stop, emit),
}


def main(argv: list[str]) -> int:
    url, rate, kinds = argv[0], float(argv[1]), argv[2:]
    lock, stop = threading.Lock(), threading.Event()

    def emit(record: dict[str, Any]) -> None:
        line = json.dumps(record)
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    threads = [threading.Thread(target=RUNNERS[kind], args=(url, rate, stop, emit), daemon=True) for kind in kinds]
    for thread in threads:
        thread.start()
    sys.stdin.read()  # until the parent closes it
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT_S + 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
