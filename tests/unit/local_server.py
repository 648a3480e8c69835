"""A tiny HTTP server on 127.0.0.1 for the load generator's unit tests: answers 200 with the
harness's X-Upstream-Addr header, and can stall (every request waits until ``stall_until``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Server:
    url: str
    stall_until: float = 0.0
    served: list[float] = field(default_factory=list)


@contextlib.asynccontextmanager
async def server() -> AsyncIterator[Server]:
    state = Server("")

    async def handle(_request: web.Request) -> web.Response:
        delay = state.stall_until - time.time()
        if delay > 0:  # a stalled LB: every request waits until the stall ends
            await asyncio.sleep(delay)
        state.served.append(time.time())
        return web.Response(text="ok", headers={"X-Upstream-Addr": "127.0.0.1:1"})

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()
