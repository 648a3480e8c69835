"""One simulated run: bring the world up, put traffic through it, swap, record everything.

Timeline of the default scenario (seconds from the start of traffic)::

    -1    each endpoint is tried once through the LB (``preflight``): one that cannot do its part
          stops the run here, naming the flag to set
    0     WebSockets open on blue, steady load starts
    1     long requests start on blue (they span the swap)
    2     swap blue -> green with swap_action's own engine (the demo app's drain hook closes its
          WebSockets with 1001; with no hook they stay until the drain deadline)
    ...   the drain ends when no connection to blue is left and old Nginx workers are gone
          (at the deadline the drain policy cuts what is left, or waits)

The swap's options go through the action's own validators (``swap_options_from``), so a bad value
is refused with the action's message before any container starts.
    +1.5  traffic stops; every record is evaluated

A fleet (``lbs`` of 2 or more, simulation/fleet.py): that many LBs in front of the same slots, the
clients spread over them like DNS round robin, the whole fleet swapped in one engine run; once
traffic has stopped each LB is read (its managed file, a few requests through it). The staging
route (``staging_check``, simulation/staging.py) is probed at a low rate through the LBs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swap_action import keepalive
from swap_action.errors import InputError, SwapError
from swap_action.inputs import SwapOptions, other, swap_options_from
from swap_action.nginxconf import ConfigSyntaxError, split_dump
from swap_action.outcome import ErrorInfo, SwapReport
from swap_action.timeline import Observer, PlainObserver

from .compose import ComposeEnvironment
from .environment import LB_IMAGE, UPSTREAM, AppSpec, Environment
from .fleet import end_states, fleet_swap
from .preflight import LONG_AT_ONCE_S, Probe, preflight
from .records import LbEndState, RequestRecord, WebSocketRecord
from .staging import STAGING_HOST, STAGING_RATE
from .traffic import WS_MAX_RECONNECTS, Traffic, TrafficPlan

Progress = Callable[[str], None]
DEMO_DRAIN_HOOK = "POST /admin/drain?grace=1"  # the demo app's: refuse new work, close WebSockets with 1001
MAX_SKEW_S = 0.25


@dataclass
class Scenario:
    blue: AppSpec = field(default_factory=AppSpec)
    green: AppSpec = field(default_factory=AppSpec)
    nginx_template: str | None = None
    lb_image: str = LB_IMAGE  # any image with Nginx (and sh, coreutils, awk, getent, curl)
    nginx_conf: Path | None = None  # a team's nginx.conf, or a directory laid over /etc/nginx
    upstream: str = UPSTREAM  # the upstream the site proxies to (what the swap manages)
    path: str = "/"  # the steady load's path
    rate: float = 400.0
    # The rate's share on keep-alive connections vs a new connection per request (16:4 = 80%).
    keepalive_clients: int = 16
    fresh_clients: int = 4
    # "constant" or "poisson": open loop (requests due at the rate whatever the responses do,
    # latency from when each was due); "closed": each client waits for its response (the old model).
    arrivals: str = "constant"
    processes: int = 0  # load generator processes (0: as many as the rate needs)
    allow_saturation: bool = False  # less than 95% of the rate held: a warning, not a failure
    # Real client libraries beside the steady load (simulation/clients.py), each at client_rate
    # req/s; the kinds in require_zero (run even when not listed) must see no failed request.
    client_kinds: tuple[str, ...] = ()
    client_rate: float = 50.0
    require_zero: tuple[str, ...] = ()
    long_requests: int = 5
    long_path: str | None = None  # None: the demo app's /slow, long enough to span every step
    websockets: int = 5
    ws_path: str | None = "/ws"
    ws_echo: bool = True
    steps: tuple[int, ...] = (100,)
    step_pause: float = 0.0
    swaps: int = 1
    drain_timeout: float = 15.0
    drain_policy: str = "cut"  # the engine's: at the drain deadline, cut what is left or wait
    # '[METHOD] /path' called on the old slot's servers when the drain starts (None: no hook). The
    # demo app's hook closes its WebSockets with 1001; without a hook they stay until the deadline.
    drain_hook: str | None = DEMO_DRAIN_HOOK
    warmup: float = 2.0
    long_lead: float = 1.0  # long requests start this long before the (first) swap
    cooldown: float = 1.5
    between_swaps: float = 1.0
    # What the swap does: the engine by default; a "bad swap" replaces it (sensitivity tests).
    # It returns the run's report; a swap that failed is a report whose outcome has an error.
    swapper: Callable[[Environment, SwapOptions], SwapReport] | None = None
    # True: ``long_requests`` more start ``long_lead`` before every swap, not only the first (a
    # soak). ``in_flight_completed_on_old`` judges the first swap's only: it then fails by design.
    long_every_swap: bool = False
    # Called in a worker thread while traffic runs: once before the first swap with None (steady
    # load and WebSockets on, no long request yet), then after each completed swap with its run
    # (its drain over, before the idle slot is redeployed). A soak samples the LB there.
    checkpoint: Callable[[Environment, SwapRun | None], None] | None = None
    # A team's whole stack (simulation/compose.py): their compose file(s) run as the world, the
    # slots are two of its services (their service names are the upstream's servers), and the LB
    # is the harness's (lb_image, in front of them on the stack's network) or their own Nginx
    # service (lb_service). blue/green give only the port and health path then; app_env goes to both.
    compose: tuple[Path, ...] = ()
    blue_service: str = "blue"
    green_service: str = "green"
    lb_service: str | None = None
    compose_timeout: float = 120.0  # from `up` to every service healthy
    app_env: dict[str, str] = field(default_factory=dict)
    # A fleet (simulation/fleet.py): this many LBs in front of the same two slots, the clients spread
    # over them like DNS round robin, every LB swapped in one engine run (FleetEngine); max_skew (s)
    # bounds the window between the first and the last LB proving a step live (skew_within_bound).
    lbs: int = 1
    max_skew: float = MAX_SKEW_S
    # The staging route (simulation/staging.py): the managed file's '<upstream>_staging' (the idle
    # slot) behind Host STAGING_HOST, probed at staging_rate req/s through the LBs (staging_idle).
    staging_check: bool = False
    staging_rate: float = STAGING_RATE

    @property
    def hook_closes_websockets(self) -> bool:
        """True when the old slot is expected to close its WebSockets itself (1001) during the
        drain: a drain hook is set. False: they stay open until the drain deadline."""
        return self.drain_hook is not None


@dataclass
class SwapRun:
    target: str
    report: SwapReport | None
    error: ErrorInfo | None  # the engine's, or the one raised before it had a report
    started_at: float
    ended_at: float


@dataclass
class LbInfo:
    """The LB the run used, and what the harness added to its configuration."""

    image: str
    nginx_version: str
    nginx_conf: str | None
    managed_file: str
    added: list[str]
    preflight: list[Probe] = field(default_factory=list)
    keepalive_min_s: float = 0.0  # keepalive_min_timeout in the LB's config (Nginx >= 1.27.4)
    compose: dict[str, Any] | None = None  # a compose run: project, files, services, the override file

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "nginx_version": self.nginx_version,
            "nginx_conf": self.nginx_conf,
            "managed_file": self.managed_file,
            "added_by_harness": list(self.added),
            "keepalive_min_s": self.keepalive_min_s,
            **({"compose": dict(self.compose)} if self.compose is not None else {}),
            "preflight": [
                {"role": p.role, "path": p.path, "ok": p.ok, "detail": p.detail, "fix": p.fix} for p in self.preflight
            ],
        }


@dataclass
class RunResult:
    scenario: Scenario
    requests: list[RequestRecord]
    websockets: list[WebSocketRecord]
    swaps: list[SwapRun]
    traffic_started_at: float
    traffic_ended_at: float
    startup_s: float
    wall_s: float
    lb_workers_after: list[str]
    diagnostics: dict[str, str]
    slot_addresses: dict[str, str]
    notes: list[str] = field(default_factory=list)
    lb: LbInfo | None = None
    generator_processes: int = 1
    skipped_clients: dict[str, str] = field(default_factory=dict)  # client kind -> why it did not run
    lb_names: list[str] = field(default_factory=list)  # every LB's container, in order (a fleet: several)
    end_states: list[LbEndState] = field(default_factory=list)  # a fleet: each LB once the run is over


def long_path_of(scenario: Scenario) -> str:
    """The long request's path: the given one, or the demo app's /slow outlasting every canary step."""
    if scenario.long_path:
        return scenario.long_path
    seconds = 5 + math.ceil((len(scenario.steps) - 1) * (scenario.step_pause + 0.5))
    return f"/slow?seconds={seconds}"


def engine_swap(env: Environment, options: SwapOptions, observer: Observer | None = None) -> SwapReport:
    """The engine's swap over every LB of ``env`` (one, or a fleet); a failure is returned as the
    run's report (its outcome has the error)."""
    return fleet_swap(env, options, observer)


def swap_options(scenario: Scenario, env: Environment, target: str) -> SwapOptions:
    """The scenario's swap as the action's inputs, through the action's validators: a bad value
    raises the ``InputError`` the action would."""
    verify = "http://127.0.0.1/" if env.http_port == 80 else f"http://127.0.0.1:{env.http_port}/"
    return swap_options_from(
        {
            "config-path": env.managed_file,
            "upstream": env.upstream,
            "blue": ",".join(env.slots.blue),
            "green": ",".join(env.slots.green),
            "to": target,
            "steps": ",".join(str(step) for step in scenario.steps),
            "step-pause": f"{scenario.step_pause}s",
            "health-path": env.spec(target).health_path,
            "verify-url": verify,
            "drain-timeout": f"{scenario.drain_timeout}s",
            "drain-hook": scenario.drain_hook or "",
            "drain-policy": scenario.drain_policy,
            **({"staging-upstream": env.staging_upstream} if env.staging_upstream else {}),
        }
    )


def check_scenario(scenario: Scenario) -> None:
    """A fleet or a staging check the harness cannot run is refused before any container starts."""
    if scenario.lbs < 1:
        raise InputError("--lbs", f"{scenario.lbs} load balancers", "use 1 (the default) or more")
    if scenario.max_skew <= 0:
        raise InputError("--max-skew", "must be more than 0", "e.g. --max-skew 250ms")
    if scenario.compose and (scenario.lbs > 1 or scenario.staging_check):
        flag = "--lbs" if scenario.lbs > 1 else "--staging-check"
        raise InputError(flag, "a compose stack runs with one LB and no staging route", f"drop {flag} or --compose")
    if scenario.staging_check and scenario.staging_rate <= 0:
        raise InputError("--staging-rate", "must be more than 0", "e.g. --staging-rate 5")


def environment_for(scenario: Scenario) -> Environment:
    """The harness's own world, or the team's compose stack (``scenario.compose``)."""
    if not scenario.compose:
        return Environment(
            scenario.blue,
            scenario.green,
            lb_image=scenario.lb_image,
            nginx_template=scenario.nginx_template,
            nginx_conf=scenario.nginx_conf,
            upstream=scenario.upstream,
            lbs=scenario.lbs,
            staging_host=STAGING_HOST if scenario.staging_check else None,
        )
    return ComposeEnvironment(
        scenario.compose,
        scenario.blue,
        scenario.green,
        blue_service=scenario.blue_service,
        green_service=scenario.green_service,
        lb_service=scenario.lb_service,
        app_env=scenario.app_env,
        compose_timeout=scenario.compose_timeout,
        lb_image=scenario.lb_image,
        nginx_template=scenario.nginx_template,
        nginx_conf=scenario.nginx_conf,
        upstream=scenario.upstream,
    )


def run(scenario: Scenario, progress: Progress = print) -> RunResult:
    wall = time.perf_counter()
    check_scenario(scenario)
    env = environment_for(scenario)
    swap_options(scenario, env, "green")  # refused here, before any container starts
    if scenario.compose:
        files = " ".join(f"-f {f}" for f in scenario.compose)
        lb_text = (
            f"their LB service {scenario.lb_service}"
            if scenario.lb_service
            else f"the harness's LB ({scenario.lb_image})"
        )
        progress(f"starting the compose stack ({files}) and {lb_text} (testcontainers' Compose support)...")
    elif scenario.lbs > 1:
        progress(f"starting {scenario.lbs} LBs ({scenario.lb_image}), blue and green (testcontainers)...")
    else:
        progress(f"starting LB ({scenario.lb_image}), blue and green (testcontainers)...")
    env.start()
    try:
        lb = lb_info(scenario, env)
        progress(
            f"environment up in {env.startup_s:.1f}s; LB on {env.base_url} ({lb.nginx_version}); the harness's "
            f"clients reach it at {env.traffic_url}"
        )
        for service in (lb.compose or {}).get("services", []):
            role = f" [{service['role']}]" if service["role"] else ""
            health = service["health"] or "no healthcheck"
            progress(f"  service {service['service']}{role}: {service['container']} ({service['image']}), {health}")
        where = "the stack and the LB's config" if lb.compose else "the LB's config"
        progress(f"managed upstream file: {lb.managed_file}; the harness added to {where}:")
        for line in lb.added or ["nothing"]:
            progress(f"  + {line}")
        if env.lbs > 1:
            progress(f"a fleet of {env.lbs} LBs, clients dealt out in turn: " + ", ".join(env.traffic_urls))
        lb.preflight = asyncio.run(_preflight(scenario, env))
        progress(
            "endpoints tried once through the LB: " + "; ".join(f"{p.role} {p.path} {p.detail}" for p in lb.preflight)
        )
        result = asyncio.run(_drive(scenario, env, progress))
        result.lb = lb
        result.startup_s = env.startup_s
        result.diagnostics = env.diagnostics()
        result.lb_names = env.lb_names
        result.lb_workers_after = [
            line for index in range(env.lbs) for line in env.nginx_processes(index) if "nginx: worker" in line
        ]
        if env.lbs > 1:
            result.end_states = end_states(env, scenario.path)
            progress(
                "after the run: "
                + "; ".join(f"lb{s.index + 1} file {s.file_live}, answers {s.answered}" for s in result.end_states)
            )
    finally:
        env.stop()
    result.wall_s = time.perf_counter() - wall
    return result


def lb_info(scenario: Scenario, env: Environment) -> LbInfo:
    _code, version = env.lb_exec("nginx", "-v")
    plan = env.lb_plan
    keepalive_min = 0.0
    if keepalive.supported(version):
        # stdout only: nginx -T's own verdict goes to stderr, and interleaved into the dump it
        # would make a file unreadable.
        code, dump = env.lb_exec("sh", "-c", "exec nginx -T 2>/dev/null")
        with contextlib.suppress(ConfigSyntaxError):
            keepalive_min = keepalive.min_timeout(split_dump(dump)) if code == 0 else 0.0
    stack = env.to_dict() if isinstance(env, ComposeEnvironment) else None
    stack_added = list(env.stack_added) if isinstance(env, ComposeEnvironment) else []
    return LbInfo(
        image=env.lb_image,
        nginx_version=version.strip().removeprefix("nginx version: "),
        nginx_conf=str(scenario.nginx_conf) if scenario.nginx_conf else None,
        managed_file=env.managed_file,
        added=stack_added + (list(plan.added) if plan else []),
        keepalive_min_s=keepalive_min,
        compose=stack,
    )


async def _preflight(scenario: Scenario, env: Environment) -> list[Probe]:
    """Each endpoint once through the LB; raises ``PreflightError`` (before any traffic or swap)."""
    return await preflight(
        env.traffic_url,
        path=scenario.path,
        long_path=long_path_of(scenario) if scenario.long_requests > 0 else None,
        long_min_s=min(LONG_AT_ONCE_S, scenario.long_lead),
        long_is_default=not scenario.long_path,
        ws_path=scenario.ws_path if scenario.websockets > 0 else None,
        slot_of=env.slot_of,
        upstream=env.upstream,
    )


async def _drive(scenario: Scenario, env: Environment, progress: Progress) -> RunResult:
    plan = TrafficPlan(
        base_url=env.traffic_url,
        path=scenario.path,
        rate=scenario.rate,
        keepalive_clients=scenario.keepalive_clients,
        fresh_clients=scenario.fresh_clients,
        arrivals=scenario.arrivals,
        processes=scenario.processes,
        client_kinds=tuple(dict.fromkeys(scenario.client_kinds + scenario.require_zero)),
        client_rate=scenario.client_rate,
        long_path=long_path_of(scenario),
        ws_path=scenario.ws_path,
        ws_echo=scenario.ws_echo,
        # Each swap closes a WebSocket once (1001 from the drain hook, or a cut): one more reconnect per swap.
        ws_max_reconnects=WS_MAX_RECONNECTS + scenario.swaps,
        lb_urls=tuple(env.traffic_urls) if env.lbs > 1 else (),
    )
    traffic = Traffic(plan, env.slot_of)
    loop = asyncio.get_running_loop()
    started = time.time()
    traffic.start_websockets(scenario.websockets)
    traffic.start_steady()
    await traffic.start_clients()
    if scenario.staging_check:
        traffic.start_staging(scenario.staging_rate, STAGING_HOST)
        progress(f"staging route probed: Host {STAGING_HOST}, {scenario.staging_rate:g} req/s through the LBs")
    share = round(100 * scenario.keepalive_clients / max(1, scenario.keepalive_clients + scenario.fresh_clients))
    loop_kind = (
        f"closed loop: {scenario.keepalive_clients} keep-alive + {scenario.fresh_clients} fresh-connection clients"
        if scenario.arrivals == "closed"
        else f"open loop, {scenario.arrivals} arrivals: {share}% on keep-alive connections, the rest on new ones"
    )
    progress(
        f"traffic: {scenario.rate:.0f} req/s ({loop_kind}; {traffic.processes} generator "
        f"process{'es' if traffic.processes > 1 else ''}), {scenario.websockets} WebSockets"
    )
    await asyncio.sleep(max(0.0, scenario.warmup - scenario.long_lead))
    if scenario.checkpoint:
        await loop.run_in_executor(None, scenario.checkpoint, env, None)
    traffic.start_long(scenario.long_requests)
    progress(f"{scenario.long_requests} long requests ({long_path_of(scenario)}) started")
    await asyncio.sleep(scenario.long_lead)

    swapper = scenario.swapper or (lambda e, o: engine_swap(e, o, _ProgressObserver(progress)))
    swaps: list[SwapRun] = []
    live = "blue"
    for index in range(scenario.swaps):
        if index and scenario.long_every_swap and scenario.long_requests:
            traffic.start_long(scenario.long_requests)
            await asyncio.sleep(scenario.long_lead)
        target = other(live)
        options = swap_options(scenario, env, target)
        progress(f"swap {index + 1}/{scenario.swaps}: {live} -> {target}")
        begun = time.time()
        try:
            report = await loop.run_in_executor(None, swapper, env, options)
        except SwapError as exc:  # failed before the engine had a report
            swaps.append(SwapRun(target, None, ErrorInfo.of(exc), begun, time.time()))
            progress(f"swap failed: {exc}")
            break
        error = report.outcome.error
        if error is not None:
            swaps.append(SwapRun(target, report, error, begun, time.time()))
            progress(f"swap failed: {error.cause}")
            break
        swaps.append(SwapRun(target, report, None, begun, time.time()))
        live = target
        if scenario.checkpoint:
            await loop.run_in_executor(None, scenario.checkpoint, env, swaps[-1])
        if index + 1 < scenario.swaps:
            if options.drain_hook:
                # The drained slot refuses work until it is deployed again: redeploy it, as a real
                # release does with the idle slot before the next swap.
                progress(f"redeploying {other(target)} (restart) before the next swap")
                await loop.run_in_executor(None, env.redeploy, other(target))
            await asyncio.sleep(scenario.between_swaps)
    await asyncio.sleep(scenario.cooldown)
    ended = time.time()
    progress("stopping traffic...")
    await traffic.stop()
    return RunResult(
        scenario=scenario,
        requests=traffic.requests,
        websockets=traffic.websockets,
        swaps=swaps,
        traffic_started_at=started,
        traffic_ended_at=ended,
        startup_s=0.0,
        wall_s=0.0,
        lb_workers_after=[],
        diagnostics={},
        slot_addresses=dict(env.addresses),
        generator_processes=traffic.processes,
        skipped_clients=dict(traffic.skipped_clients),
    )


class _ProgressObserver(PlainObserver):
    def __init__(self, progress: Progress) -> None:
        super().__init__(lambda line: progress("  " + line))
