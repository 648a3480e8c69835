"""Swaps done wrong, on purpose: the harness must fail each one, naming the right assertion.

Each function has the shape of ``Scenario.swapper`` and claims success the way a careless
deploy script would; the records show what really happened.

| bad swap | what it does | assertion that must fail |
|---|---|---|
| ``naive_restart`` | writes the new upstream, ``nginx -s stop`` then starts nginx | ``zero_failed_requests`` |
| ``cut_websockets`` | the real engine, but no drain hook and a short deadline (drain policy cut) | ``websockets_drained`` |
| ``silently_refused_reload`` | a config Nginx refuses at reload; trusts ``nginx -s reload``'s exit 0 | ``traffic_on_new_slot`` |
| ``never_moved`` | writes the new upstream and never reloads | ``no_new_requests_on_old`` |
"""

from __future__ import annotations

import time
from dataclasses import replace

from swap_action.inputs import SwapOptions, other
from swap_action.outcome import Outcome, Result, SwapReport
from swap_action.transport.docker import DockerTransport
from swap_action.upstream import new_generation, render, weights_for_step

from .environment import MANAGED_FILE, Environment
from .scenario import engine_swap


def _write_new_upstream(env: Environment, options: SwapOptions, extra: str = "") -> DockerTransport:
    transport = DockerTransport(env.lb_container_name)
    text = render(
        upstream=options.upstream,
        slots=options.slots,
        weights=weights_for_step(options.to, 100),
        generation=new_generation(),
        previous=other(options.to),
    )
    transport.write_file(options.config_path or MANAGED_FILE, (text + extra).encode())
    return transport


def _claimed(options: SwapOptions, started: float) -> SwapReport:
    outcome = Outcome(Result.SWAPPED, changed=True, active=options.to, previous=other(options.to), target=options.to)
    report = SwapReport(outcome=outcome)
    report.started_at, report.confirmed_at = started, time.time()
    report.duration_ms = (report.confirmed_at - started) * 1000
    return report


def naive_restart(env: Environment, options: SwapOptions) -> SwapReport:
    started = time.time()
    with _write_new_upstream(env, options) as transport:
        transport.run(["sh", "-c", "nginx -s stop; while pgrep -x nginx >/dev/null; do sleep 0.01; done; nginx"])
    return _claimed(options, started)


def cut_websockets(env: Environment, options: SwapOptions) -> SwapReport:
    return engine_swap(env, replace(options, drain_hook=None, drain_timeout=1.5, drain_policy="cut"))


def silently_refused_reload(env: Environment, options: SwapOptions) -> SwapReport:
    started = time.time()
    # nginx -t would refuse this, and so does the master at reload; `nginx -s reload` exits 0.
    with _write_new_upstream(env, options, "error_log /nonexistent/dir/error.log;\n") as transport:
        transport.run(["nginx", "-s", "reload"])
    return _claimed(options, started)


def never_moved(env: Environment, options: SwapOptions) -> SwapReport:
    started = time.time()
    with _write_new_upstream(env, options):
        pass
    return _claimed(options, started)
