"""Swaps done wrong, on purpose: the harness must fail each one, naming the right assertion.

Each function has the shape of ``Scenario.swapper`` and claims success the way a careless
deploy script would; the records show what really happened.

| bad swap | what it does | assertion that must fail |
|---|---|---|
| ``naive_restart`` | writes the new upstream, ``nginx -s stop`` then starts nginx | ``zero_failed_requests`` |
| ``cut_websockets`` | the real engine, but no drain hook and a short deadline (drain policy cut) | ``websockets_drained`` |
| ``silently_refused_reload`` | a config Nginx refuses at reload; trusts ``nginx -s reload``'s exit 0 | ``traffic_on_new_slot`` |
| ``never_moved`` | writes the new upstream and never reloads | ``no_new_requests_on_old`` |
| ``fleet_refused`` | the real fleet engine; its pre-switch hook breaks LB 2's config after prepare, so LB 2's commit-time ``nginx -t`` refuses while LB 1 commits | ``swaps_completed`` (and every LB must end on the old slot: ``lbs_end_on_one_slot`` holds) |

``BAD_SWAPS`` names them for ``--bad-swap``.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from swap_action.errors import InputError
from swap_action.inputs import SwapOptions, other
from swap_action.outcome import Outcome, Result, SwapReport
from swap_action.transport.docker import DockerTransport
from swap_action.upstream import new_generation, render, weights_for_step

from .environment import MANAGED_FILE, Environment
from .fleet import fleet_swap
from .scenario import engine_swap

BOGUS_DIRECTIVE = "bogus_directive on;"  # nginx -t: unknown directive
BAD_FILE = "zz-bluegreen-bad.conf"
# Without the docker CLI, the hook runs the same command through the Docker SDK.
_SDK_EXEC = (
    "import docker, sys; r = docker.from_env().containers.get(sys.argv[1]).exec_run(['sh', '-c', sys.argv[2]]); "
    "sys.stdout.write(r.output.decode(errors='replace')); sys.exit(r.exit_code)"
)


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


def bad_config_path(env: Environment) -> str:
    """Where a file Nginx refuses goes on an LB: a directory whose *.conf files the http block loads."""
    directory = env.lb_plan.include_dir if env.lb_plan else None
    if directory is None:
        raise InputError(
            "--bad-swap",
            "the LB's http block loads no directory of *.conf files (a conf.d): nowhere to drop a bad config",
            "run fleet-refused with the project's LB image (or one whose http block includes a conf.d)",
        )
    return f"{directory}/{BAD_FILE}"


def break_config_command(container: str, path: str) -> str:
    """A shell command, run on the harness's host, that writes a directive Nginx refuses into ``path``
    on ``container`` (``docker exec``, else the Docker SDK)."""
    script = f"echo {shlex.quote(BOGUS_DIRECTIVE)} > {shlex.quote(path)}"
    if shutil.which("docker"):
        return shlex.join(["docker", "exec", container, "sh", "-c", script])
    return shlex.join([sys.executable, "-c", _SDK_EXEC, container, script])


def fleet_refused(env: Environment, options: SwapOptions) -> SwapReport:
    """The fleet engine, with a pre-switch hook (after prepare, before commit) that breaks the second
    LB's config: its commit-time ``nginx -t`` refuses while the first LB commits, so the engine must
    restore every LB it changed. The bad file is removed afterwards, whatever happened."""
    if env.lbs < 2:
        raise InputError("--bad-swap", "fleet-refused needs a fleet", "add --lbs 2")
    path = bad_config_path(env)
    hook = break_config_command(env.lb_names[1], path)
    try:
        return fleet_swap(env, replace(options, pre_switch=hook))
    finally:
        env.lb_exec_on(1, "rm", "-f", path)


BAD_SWAPS: dict[str, Callable[[Environment, SwapOptions], SwapReport]] = {
    "naive-restart": naive_restart,
    "cut-websockets": cut_websockets,
    "silently-refused-reload": silently_refused_reload,
    "never-moved": never_moved,
    "fleet-refused": fleet_refused,
}
FLEET_BAD_SWAPS = ("fleet-refused",)  # need --lbs 2 or more
