"""A fleet: several LB containers in front of the same two slots (``Scenario.lbs``), swapped as one
by the engine's ``FleetEngine`` (prepare on every LB, then commit on every LB at once), and what
each LB serves once the run is over: the live slot its managed file names and the slots that
answer requests sent through it.

Each LB is a member ``docker://<container>`` in the order of ``Environment.lb_names``; the
engine's per-LB outcomes (``SwapReport.lbs``) come back in that order, so position ``i`` is LB
``i`` of the records (``RequestRecord.lb``).
"""

from __future__ import annotations

import contextlib
from collections import Counter

import requests

from swap_action.errors import StateError, SwapError
from swap_action.fleet import FleetEngine
from swap_action.host import ScriptedHost
from swap_action.inputs import SwapOptions
from swap_action.outcome import SwapReport
from swap_action.timeline import Observer
from swap_action.transport.docker import DockerTransport
from swap_action.upstream import parse_state

from .environment import Environment
from .records import LbEndState
from .traffic import upstream_of

END_PROBES = 5  # requests sent through each LB once the run is over
END_PROBE_TIMEOUT = 5.0


def lb_target(container: str) -> str:
    """The engine's name for an LB of the harness's fleet (``LbOutcome.target``, ``Step.lb``)."""
    return f"docker://{container}"


def fleet_swap(env: Environment, options: SwapOptions, observer: Observer | None = None) -> SwapReport:
    """The engine's fleet swap over every LB of ``env``; a failure is returned as the run's report
    (its outcome has the error, ``lbs`` each LB's part)."""
    with contextlib.ExitStack() as stack:
        members = [(lb_target(name), ScriptedHost(stack.enter_context(DockerTransport(name)))) for name in env.lb_names]
        engine = FleetEngine(members, observer)
        try:
            return engine.swap(options)
        except SwapError:
            if engine.last_report is None:
                raise
            return engine.last_report


def end_states(env: Environment, path: str = "/", probes: int = END_PROBES) -> list[LbEndState]:
    """Each LB once the run is over: its managed file's live slot, and ``probes`` requests through it
    (each on a new connection) by the slot that answered."""
    states = []
    urls = env.traffic_urls
    for index, name in enumerate(env.lb_names):
        live, error = None, ""
        try:
            code, text = env.lb_exec_on(index, "cat", env.managed_file)
            if code != 0:
                error = f"cat {env.managed_file}: exit {code}: {text.strip()[:200]}"
            else:
                live = parse_state(text).live
        except StateError as exc:
            error = exc.cause
        except Exception as exc:  # the container is gone: said, not raised
            error = f"{type(exc).__name__}: {exc}"
        states.append(LbEndState(index, name, live, answered_through(urls[index] + path, env, probes), error))
    return states


def answered_through(url: str, env: Environment, probes: int) -> dict[str, int]:
    """Which slot answered each of ``probes`` GETs of ``url`` ("error": no answer or no slot)."""
    answered: Counter[str] = Counter()
    with requests.Session() as session:
        session.trust_env = False  # to the LB itself, never through a proxy
        for _ in range(probes):
            try:
                response = session.get(url, timeout=END_PROBE_TIMEOUT, headers={"Connection": "close"})
                answered[env.slot_of(upstream_of(response.headers)) or "error"] += 1
            except requests.RequestException:
                answered["error"] += 1
    return dict(answered)
