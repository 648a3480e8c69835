"""Each endpoint the scenario uses is tried once before traffic; one that cannot do its part stops
the run with the flag to set. The messages, and the checks against a real local HTTP server."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSMsgType, web

from simulation.preflight import (
    LONG_FIX,
    WS_FIX,
    PreflightError,
    Probe,
    failure_message,
    long_probe,
    preflight,
    steady_probe,
    ws_probe,
)


def test_a_404_on_the_default_long_path_names_both_long_path_flags() -> None:
    probe = long_probe("/slow?seconds=5", 404, None, 0.5, default=True)
    assert not probe.ok
    assert probe.detail == "GET answered 404 (the default: the demo app's slow endpoint)"
    assert "--long-path /your/slow/path" in probe.fix and "--long-path none" in probe.fix


def test_a_slow_path_that_answers_at_once_is_refused() -> None:
    probe = long_probe("/get", 200, 0.012, 0.5, default=False)
    assert not probe.ok and probe.fix == LONG_FIX
    assert probe.detail.startswith("GET answered 200 at once, complete in 0.01 s: long requests start before the swap")
    assert long_probe("/slow", 200, None, 0.5, default=False) == Probe(
        "long", "/slow", True, "200, still running after 0.5 s"
    )


def test_a_websocket_path_that_does_not_upgrade_names_ws_path() -> None:
    missing = ws_probe("/ws", 404)
    assert missing.detail == "not upgraded: answered 404 instead of 101 Switching Protocols" and missing.fix == WS_FIX
    plain = ws_probe("/", 200)
    assert "must pass 'Upgrade' and 'Connection'" in plain.detail
    assert ws_probe("/ws", None).ok


def test_a_steady_path_must_answer_through_the_upstream() -> None:
    assert "--path" in steady_probe("/x", 404, "", None, 1.0, "app").fix
    unproxied = steady_probe("/", 200, "", None, 1.0, "app")
    assert not unproxied.ok and "does not proxy to upstream 'app'" in unproxied.detail
    assert steady_probe("/", 200, "10.0.0.2:8080", "blue", 3.4, "app").detail == "200 from blue in 3 ms"


def test_the_failure_lists_every_failed_endpoint_with_its_fix() -> None:
    message = failure_message([steady_probe("/", 200, "a:1", "blue", 1, "app"), long_probe("/s", 404, None, 0.5, True)])
    assert message.splitlines() == [
        "1 endpoint(s) the scenario uses do not work through the LB (tried once, before any swap):",
        "  - long /s: GET answered 404 (the default: the demo app's slow endpoint)",
        f"    fix: {LONG_FIX}",
    ]


async def _serve() -> tuple[web.AppRunner, str]:
    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"X-Upstream-Addr": "10.0.0.2:8080"})

    async def fast(_request: web.Request) -> web.Response:
        return web.Response(text="done")

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await asyncio.sleep(1)
        return response

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type == WSMsgType.CLOSE:
                break
        return socket

    app = web.Application()
    app.router.add_get("/", ok)
    app.router.add_get("/fast", fast)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _run(long_path: str | None, ws_path: str | None) -> list[Probe]:
    async def main() -> list[Probe]:
        runner, base = await _serve()
        try:
            return await preflight(
                base,
                path="/",
                long_path=long_path,
                long_min_s=0.3,
                long_is_default=False,
                ws_path=ws_path,
                slot_of=lambda addr: "blue" if addr == "10.0.0.2:8080" else None,
                upstream="app",
            )
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_endpoints_that_work_pass_and_the_slow_one_is_not_waited_for() -> None:
    probes = _run("/slow", "/ws")
    assert [(p.role, p.ok) for p in probes] == [("steady", True), ("long", True), ("websocket", True)]
    assert probes[0].detail.startswith("200 from blue")


def test_endpoints_that_do_not_work_stop_the_run_with_their_flags() -> None:
    with pytest.raises(PreflightError) as raised:
        _run("/fast", "/nows")
    failed = {p.role: p for p in raised.value.probes if not p.ok}
    assert set(failed) == {"long", "websocket"}
    assert "--long-path none" in str(raised.value) and "--ws-path none" in str(raised.value)
