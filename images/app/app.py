"""Demo app for blue-green swap tests: one aiohttp process, run once per slot (blue / green).

Endpoints: GET / , GET /healthz , GET /slow?seconds=N (chunked stream), GET /ws (echo + ticks),
POST /admin/drain[?grace=S] , POST /admin/undrain , GET /admin/state.
Every response carries X-App-Version and X-App-Host. No per-request logging (throughput).
Written against aiohttp 3.8 (Debian bookworm's python3-aiohttp); also runs on newer 3.x.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("app")

MAX_SLOW_SECONDS = 120
TICK_INTERVAL = 0.2


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        log.warning("ignoring invalid %s=%r, using %s", name, raw, default)
        return default


class State:
    """Process-wide state (one app per process, so a plain object is enough)."""

    def __init__(self) -> None:
        self.version: str = os.environ.get("APP_VERSION", "unknown")
        self.host: str = socket.gethostname()
        self.port: int = int(os.environ.get("APP_PORT", "8080"))
        self.default_grace: float = env_float("DRAIN_GRACE_SECONDS", 2.0)
        self.healthy: bool = env_flag("APP_HEALTHY", True)
        self.fail: bool = env_flag("APP_FAIL", False)
        self.draining: bool = False
        self.websockets: set[web.WebSocketResponse] = set()
        self.in_flight: int = 0
        self.drain_task: asyncio.Task[None] | None = None
        # (code, message) once websockets must go (drain grace over / shutdown); None otherwise.
        self.ws_close: tuple[int, bytes] | None = None
        self.index_body: bytes = f"{self.version}\n".encode()
        self.version_headers: dict[str, str] = {
            "X-App-Version": self.version,
            "X-App-Host": self.host,
        }


STATE = State()


# --------------------------------------------------------------------------- plumbing


async def add_version_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for every response, incl. errors, streams and WS 101."""
    response.headers.update(STATE.version_headers)


@web.middleware
async def drain_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse new work while draining; count in-flight plain HTTP requests."""
    path = request.path
    if path.startswith("/admin/"):
        return await handler(request)
    if STATE.draining:
        resp = web.Response(status=503, body=b"draining\n", content_type="text/plain")
        resp.force_close()  # sends "Connection: close" and closes the keep-alive connection
        return resp
    if path == "/ws":  # websockets are tracked in STATE.websockets, not in_flight
        return await handler(request)
    STATE.in_flight += 1
    try:
        return await handler(request)
    finally:
        STATE.in_flight -= 1


# --------------------------------------------------------------------------- handlers


async def index(request: web.Request) -> web.Response:
    if STATE.fail:
        return web.Response(status=500, body=b"failing (APP_FAIL)\n", content_type="text/plain")
    return web.Response(body=STATE.index_body, content_type="text/plain")


async def healthz(request: web.Request) -> web.Response:
    if not STATE.healthy:
        return web.Response(status=503, body=b"unhealthy\n", content_type="text/plain")
    return web.Response(body=b"ok", content_type="text/plain")


async def slow(request: web.Request) -> web.StreamResponse:
    raw = request.query.get("seconds", "5")
    try:
        n = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text="seconds must be an integer\n") from None
    n = max(0, min(n, MAX_SLOW_SECONDS))
    version = STATE.version
    resp = web.StreamResponse(headers={"X-Expected-Chunks": str(n), "Content-Type": "text/plain; charset=utf-8"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for i in range(1, n + 1):
            # write() hands the chunk to the transport at once (no buffering to wait for).
            await resp.write(f"chunk {i}/{n} {version}\n".encode())
            await asyncio.sleep(max(0.0, start + i - loop.time()))  # one chunk per second
        await resp.write(f"done {version}\n".encode())
        await resp.write_eof()
    except ConnectionResetError:
        pass  # client went away; nothing to finish
    return resp


async def _ticker(ws: web.WebSocketResponse) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    try:
        while not ws.closed:
            n += 1
            await asyncio.sleep(max(0.0, start + n * TICK_INTERVAL - loop.time()))
            if ws.closed:
                return
            await ws.send_str(json.dumps({"tick": n, "version": STATE.version}))
    except (ConnectionResetError, RuntimeError):
        return  # socket closing underneath us


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    STATE.websockets.add(ws)
    ticker = asyncio.create_task(_ticker(ws))
    try:
        if STATE.ws_close is None:  # else: raced with a drain that already closed the others
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        # The handler closes with the drain/shutdown code itself: on aiohttp 3.8 a close() from
        # another task only wakes this loop, and returning would let write_eof() close with 1000
        # before that other close() resumes.
        if STATE.ws_close is not None and not ws.closed:
            code, message = STATE.ws_close
            await ws.close(code=code, message=message)
    except ConnectionResetError:
        pass
    finally:
        ticker.cancel()
        STATE.websockets.discard(ws)
    return ws


async def _close_websockets(code: int, message: bytes) -> int:
    STATE.ws_close = (code, message)
    sockets = list(STATE.websockets)
    results = await asyncio.gather(*(ws.close(code=code, message=message) for ws in sockets), return_exceptions=True)
    return sum(1 for r in results if not isinstance(r, BaseException))


async def _drain_after(grace: float) -> None:
    await asyncio.sleep(grace)
    count = len(STATE.websockets)
    closed = await _close_websockets(WSCloseCode.GOING_AWAY, b"draining")
    log.info("drain: grace %.3gs over, closed %d/%d websockets (1001)", grace, closed, count)


async def admin_drain(request: web.Request) -> web.Response:
    raw = request.query.get("grace")
    grace = STATE.default_grace
    if raw is not None:
        try:
            grace = float(raw)
        except ValueError:
            raise web.HTTPBadRequest(text="grace must be a number\n") from None
        if not 0 <= grace <= 3600:
            raise web.HTTPBadRequest(text="grace must be between 0 and 3600\n")
    if STATE.drain_task is not None and not STATE.drain_task.done():
        STATE.drain_task.cancel()  # a repeated drain restarts the grace period
    STATE.draining = True
    STATE.ws_close = None
    STATE.drain_task = asyncio.create_task(_drain_after(grace))
    open_ws = len(STATE.websockets)
    log.info(
        "drain: started, grace %.3gs, %d open websockets, %d in-flight requests",
        grace,
        open_ws,
        STATE.in_flight,
    )
    return web.json_response({"draining": True, "grace": grace, "websockets": open_ws}, status=202)


async def admin_undrain(request: web.Request) -> web.Response:
    if STATE.drain_task is not None and not STATE.drain_task.done():
        STATE.drain_task.cancel()
    STATE.drain_task = None
    STATE.draining = False
    STATE.ws_close = None
    log.info("drain: undrained, serving again")
    return web.json_response({"draining": False})


async def admin_fail(request: web.Request) -> web.Response:
    """Turn failing on or off at run time (``?on=1`` / ``?on=0``): / answers 500 and /healthz 503,
    as APP_FAIL and APP_HEALTHY=false do from the start (the fault suite's flapping health)."""
    on = request.query.get("on", "1") not in ("0", "false", "no")
    STATE.fail = on
    STATE.healthy = not on
    log.info("fail: %s", "on" if on else "off")
    return web.json_response({"fail": on})


async def admin_state(request: web.Request) -> web.Response:
    body: dict[str, Any] = {
        "version": STATE.version,
        "draining": STATE.draining,
        "open_websockets": len(STATE.websockets),
        "in_flight": STATE.in_flight,
    }
    return web.json_response(body)


# --------------------------------------------------------------------------- app


async def on_shutdown(app: web.Application) -> None:
    """SIGTERM: web.run_app stops accepting, then we close websockets; streams get to finish."""
    STATE.draining = True
    if STATE.drain_task is not None and not STATE.drain_task.done():
        STATE.drain_task.cancel()
    count = await _close_websockets(WSCloseCode.GOING_AWAY, b"server shutdown")
    log.info("shutdown: closed %d websockets, %d in-flight requests", count, STATE.in_flight)


def make_app() -> web.Application:
    app = web.Application(middlewares=[drain_gate])
    app.on_response_prepare.append(add_version_headers)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/admin/drain", admin_drain)
    app.router.add_post("/admin/undrain", admin_undrain)
    app.router.add_get("/admin/state", admin_state)
    app.router.add_post("/admin/fail", admin_fail)
    return app


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s [" + STATE.version + "] %(message)s",
    )
    log.info(
        "starting version=%s host=%s port=%d drain_grace=%ss healthy=%s fail=%s",
        STATE.version,
        STATE.host,
        STATE.port,
        STATE.default_grace,
        STATE.healthy,
        STATE.fail,
    )
    web.run_app(make_app(), host="0.0.0.0", port=STATE.port, access_log=None, print=None)
    log.info("stopped")


if __name__ == "__main__":
    main()
