"""Benchmark of the swap (run by `make bench`): prints a table, then one JSON line.

Everything is measured side by side in one run, against real containers, under the same load:

- swap_confirm_ms: from the engine's swap() call (transport already connected, as in the action
  once it has reached the LB) to the moment the switch is confirmed live; also "cold", from
  opening the transport;
- nginx_floor_ms: raw `nginx -s reload` (new upstream written by hand) -> the last response from the
  old slot to a request sent after the signal: the physical floor of any swap;
- failed / strict failed requests through N engine swaps at the target rate;
- the same traffic through naive restarts (stop, then start): failed requests and the longest gap
  with no successful response;
- p99 latency in steady state and during swaps; sim_wall_s: the default simulation end to end;
- a fleet's skew: for N LBs (2 and 4; no load), --fleet-swaps swaps blue <-> green through
  ``FleetEngine``; the median and max of the last step's window between the first and the last LB
  proving it live (``report.skew[-1].window_ms``), and the median engine duration
  (fleet_skew_ms_N, fleet_skew_max_ms_N, fleet_swap_ms_N). ``--only fleet`` measures only these.

The steady load runs in --processes load generator processes (generator_processes), so that one
interpreter's CPU does not cap the rate on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

import action_image_figures  # scripts/: the same directory

from simulation.assertions import client_matrix as client_matrix_of
from simulation.assertions import evaluate
from simulation.clients import KINDS
from simulation.environment import MANAGED_FILE, UPSTREAM, AppSpec, Environment
from simulation.records import RequestRecord
from simulation.scenario import Scenario, run
from simulation.traffic import ARRIVALS, Traffic, TrafficPlan, processes_for
from swap_action.engine import Engine
from swap_action.fleet import FleetEngine
from swap_action.host import ScriptedHost
from swap_action.inputs import Slots, other, swap_options_from
from swap_action.outcome import Step
from swap_action.transport.docker import DockerTransport
from swap_action.upstream import new_generation, render, weights_for_step


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


class Quiet:
    def step_started(self, step: Step) -> None: ...
    def step_finished(self, step: Step) -> None: ...
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None:
        print(f"  warning: {message}", file=sys.stderr)


CEILING_RATE = 30_000.0  # asked of the generator to find its ceiling: more than it can send
CEILING_SECONDS = 3.0
STATIC_PATH = "/__lb/health"  # the harness site's `return 200` location: Nginx alone, no app behind


async def ceiling(env: Environment, path: str, processes: int) -> float:
    """Requests per second answered when asked far more than can be sent, wrk-style (closed
    loop, keep-alive clients sending back to back): against a static location, the load
    generator's own ceiling on this machine."""
    plan = TrafficPlan(
        base_url=env.traffic_url,
        path=path,
        rate=CEILING_RATE,
        keepalive_clients=32 * processes,
        fresh_clients=0,
        ws_path=None,
        processes=processes,
        arrivals="closed",
    )
    traffic = Traffic(plan, env.slot_of)
    traffic.start_steady()
    assert traffic.steady_started_at is not None
    began = traffic.steady_started_at
    await asyncio.sleep(CEILING_SECONDS)
    ended = time.time()
    await traffic.stop(grace=5.0)
    answered = [r for r in traffic.requests if began + 0.5 <= r.end <= ended and not r.failed]
    return len(answered) / (ended - began - 0.5)


async def measure(args: argparse.Namespace) -> dict[str, object]:
    env = Environment(AppSpec(), AppSpec()).start()
    loop = asyncio.get_running_loop()
    try:
        ceilings = {
            "static": await ceiling(env, STATIC_PATH, args.processes or processes_for(CEILING_RATE)),
            "app": await ceiling(env, "/", args.processes or processes_for(CEILING_RATE)),
        }
        plan = TrafficPlan(
            base_url=env.traffic_url,
            rate=args.rate,
            keepalive_clients=args.clients,
            fresh_clients=args.fresh_clients,
            ws_path=None,
            processes=args.processes,
            arrivals=args.arrivals,
        )
        traffic = Traffic(plan, env.slot_of)
        traffic.start_steady()  # with several processes, returns once they are all ready
        assert traffic.steady_started_at is not None
        traffic_start = traffic.steady_started_at
        await asyncio.sleep(2.0)
        steady_window = (time.time() - 1.5, time.time())
        live = "blue"
        swaps: list[dict[str, float]] = []
        floors: list[float] = []
        cold: list[float] = []
        naive_windows: list[tuple[float, float]] = []
        raw_windows: list[tuple[float, float]] = []
        step_ms: dict[str, list[float]] = {}

        # The swaps run in their own process, as the action does: sharing the load generator's
        # interpreter would make every round trip wait for its GIL.
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        worker = ctx.Process(
            target=swap_worker, args=(child, env.lb_container_name, env.slots, AppSpec().health_path), daemon=True
        )
        worker.start()

        def engine_swap(target: str) -> dict[str, float]:
            parent.send(target)
            answer: dict[str, Any] = parent.recv()
            if "error" in answer:
                raise RuntimeError(answer["error"])
            for name, value in answer.pop("steps").items():
                step_ms.setdefault(name, []).append(value)
            return answer

        transport = DockerTransport(env.lb_container_name)

        def write_upstream(target: str) -> None:
            """The next upstream written by hand, as a script without the engine would."""
            text = render(
                upstream=UPSTREAM,
                slots=env.slots,
                weights=weights_for_step(target, 100),
                generation=new_generation(),
                previous=other(target),
            )
            transport.write_file(MANAGED_FILE, text.encode())

        def raw_reload(target: str) -> float:
            write_upstream(target)
            out = transport.run(["sh", "-c", "date +%s%N; nginx -s reload"]).stdout.split()
            return int(out[0]) / 1e9

        def naive_restart(target: str) -> tuple[float, float]:
            write_upstream(target)
            start = time.time()
            transport.run(["sh", "-c", "nginx -s stop; while pgrep -x nginx >/dev/null; do sleep 0.01; done; nginx"])
            return start, time.time()

        for index in range(args.swaps):
            target = other(live)
            swaps.append(await loop.run_in_executor(None, engine_swap, target))
            live = target
            print(
                f"  engine swap {index + 1:>2}/{args.swaps} -> {target}: confirmed {1000 * (swaps[-1]['confirmed'] - swaps[-1]['start']):.0f} ms",
                file=sys.stderr,
            )
            await asyncio.sleep(args.pause)
        engine_end = time.time()
        parent.send(None)
        worker.join(timeout=10)

        def round_trips() -> list[float]:
            """A round trip to the LB ('true'), under the same load: what each LB operation pays first."""
            times = []
            for _ in range(20):
                began = time.perf_counter()
                transport.run(["true"])
                times.append(1000 * (time.perf_counter() - began))
            return times

        trips = await loop.run_in_executor(None, round_trips)
        for index in range(args.floors):
            target = other(live)
            t_reload = await loop.run_in_executor(None, raw_reload, target)
            # As long as an engine swap's window, from the signal: Nginx's own reload, no engine.
            raw_windows.append((t_reload, t_reload + RAW_WINDOW_S))
            await asyncio.sleep(args.pause)
            old = other(target)
            late = [r.end for r in traffic.requests if r.kind == "steady" and r.start >= t_reload and r.slot == old]
            floors.append(1000 * ((max(late) if late else t_reload) - t_reload))
            live = target
            print(
                f"  raw reload {index + 1:>2}/{args.floors}: last {old} response +{floors[-1]:.0f} ms", file=sys.stderr
            )
        floor_end = time.time()
        for index in range(args.naive):
            target = other(live)
            naive_windows.append(await loop.run_in_executor(None, naive_restart, target))
            live = target
            print(f"  naive restart {index + 1}/{args.naive}", file=sys.stderr)
            await asyncio.sleep(args.pause)
        await traffic.stop()
        transport.close()
        for swap in swaps:
            cold.append(1000 * (swap["confirmed"] - swap["cold_start"]))
    finally:
        env.stop()

    requests = [r for r in traffic.requests if r.kind == "steady"]
    engine_requests = [r for r in requests if traffic_start <= r.start < engine_end]
    naive_requests = [r for r in requests if r.start >= floor_end]
    in_swap = [r for r in engine_requests if any(s["start"] <= (r.intended or r.start) <= s["end"] for s in swaps)]
    steady = [r for r in requests if steady_window[0] <= r.start <= steady_window[1]]
    span = engine_end - traffic_start
    return {
        "confirm": [1000 * (s["confirmed"] - s["start"]) for s in swaps],
        "cold": cold,
        "round_trip_ms": statistics.median(trips),
        "floors": floors,
        "failed": sum(r.failed for r in engine_requests),
        "strict": sum(r.failed or r.strict_error is not None for r in engine_requests),
        "engine_requests": len(engine_requests),
        "naive_failed": sum(r.failed for r in naive_requests),
        "naive_gap_ms": max((gap_ms(naive_requests, a, b) for a, b in naive_windows), default=0.0),
        "rate": len(engine_requests) / span,
        "p99_steady": p99([r.latency_s * 1000 for r in steady if not r.failed]),
        "p99_raw_reload": p99(
            [
                r.latency_s * 1000
                for r in requests
                if not r.failed and any(a <= (r.intended or r.start) <= b for a, b in raw_windows)
            ]
        ),
        "p99_swap": p99([r.latency_s * 1000 for r in in_swap if not r.failed]),
        "p99_swap_from_send": p99([(r.end - r.start) * 1000 for r in in_swap if not r.failed]),
        "ceilings": ceilings,
        "processes": traffic.processes,
        "step_ms": {name: statistics.median(values) for name, values in step_ms.items()},
    }


HARNESS_SITE = Path(__file__).resolve().parent.parent / "simulation" / "templates" / "site.conf.j2"
CLIENT_LBS = {  # Nginx version -> (image, the server block's extra directive)
    "1.30": ("bluegreen/lb-sid:dev", "keepalive_min_timeout 1s;"),
    "1.22": ("bluegreen/lb:dev", ""),
}


def client_matrix(swaps: int, rate: float) -> dict[str, dict[str, int]]:
    """Failed requests per real client library through ``swaps`` swaps at ``rate`` req/s, on Nginx
    1.30 with the recommended keepalive_min_timeout and on 1.22 (which has no such directive)."""
    listen = "    listen {{ listen }} default_server;\n"
    figures: dict[str, dict[str, int]] = {}
    for version, (image, directive) in CLIENT_LBS.items():
        site = HARNESS_SITE.read_text().replace(listen, listen + (f"    {directive}\n" if directive else ""))
        scenario = Scenario(
            lb_image=image, nginx_template=site, rate=rate, swaps=swaps, long_requests=0, websockets=0,
            client_kinds=KINDS, between_swaps=1.0,
        )  # fmt: skip
        result = run(scenario, progress=lambda _line: None)
        rows = {kind: row for kind, row in client_matrix_of(result).items() if not row["skipped"]}
        figures[version] = {kind: row["failed"] for kind, row in rows.items()}
        what = {kind: row["what_failed"] for kind, row in rows.items() if row["failed"]}
        print(f"  client kinds on {version}: {figures[version]} {what or ''}", file=sys.stderr)
    return figures


def swap_worker(conn: Any, lb_container: str, slots: Slots, health_path: str) -> None:
    """Runs engine swaps on request, in its own process; answers their timings."""
    while True:
        target = conn.recv()
        if target is None:
            return
        try:
            t_cold = time.time()
            with DockerTransport(lb_container) as transport:
                host = ScriptedHost(transport)
                transport.run(["true"])  # the session is open: "the action has reached the LB"
                options = swap_options_from(
                    {
                        "config-path": MANAGED_FILE,
                        "upstream": UPSTREAM,
                        "blue": ",".join(slots.blue),
                        "green": ",".join(slots.green),
                        "to": target,
                        "health-path": health_path,
                        "drain-timeout": "10s",
                    }
                )
                t0 = time.time()
                report = Engine(host, Quiet()).swap(options)
            assert report.confirmed_at
            steps: dict[str, float] = {}
            shared: set[str] = set()
            for step in report.steps:  # by phase: a phase met twice in one swap counts its total
                trip = str(step.data.get("round_trip", ""))
                if trip and trip in shared:
                    continue  # phases done in one round trip count it once, under its name
                shared.add(trip)
                name = trip or step.phase.value
                steps[name] = steps.get(name, 0.0) + step.duration_ms
            reload = report.reloads[-1]
            if reload.old_stopped_ms is not None:
                steps["  signal -> old workers stopped accepting"] = float(reload.old_stopped_ms)
            if reload.confirmed_ms is not None:
                steps["  signal -> confirmed"] = float(reload.confirmed_ms)
            conn.send(
                {
                    "start": t0,
                    "cold_start": t_cold,
                    "confirmed": report.confirmed_at,
                    "end": time.time(),
                    "steps": steps,
                }
            )
        except Exception as exc:  # reported to the parent, which stops the bench
            conn.send({"error": f"{type(exc).__name__}: {exc}"})


FLEET_SIZES = (2, 4)
RAW_WINDOW_S = 0.4  # about an engine swap's window (start -> drained) at this load


def fleet_figures(swaps: int, sizes: tuple[int, ...] = FLEET_SIZES) -> dict[str, float]:
    """For each fleet size N: ``swaps`` swaps alternating blue/green through ``FleetEngine`` over
    N LBs in front of the same two slots (no load; transports open for the whole series, as the
    action once it has reached the LBs). Per N: the median and max skew of the final step (the
    window between the first and the last LB proving it live, by the LBs' clocks: one host's
    here) and the median engine duration (lock to drain done)."""
    figures: dict[str, float] = {}
    for lbs in sizes:
        env = Environment(AppSpec(), AppSpec(), lbs=lbs).start()
        skews: list[float] = []
        durations: list[float] = []
        try:
            with contextlib.ExitStack() as stack:
                members = [
                    (f"docker://{name}", ScriptedHost(stack.enter_context(DockerTransport(name))))
                    for name in env.lb_names
                ]
                engine = FleetEngine(members, Quiet())
                live = "blue"
                for index in range(swaps):
                    target = other(live)
                    options = swap_options_from(
                        {
                            "config-path": env.managed_file,
                            "upstream": UPSTREAM,
                            "blue": ",".join(env.slots.blue),
                            "green": ",".join(env.slots.green),
                            "to": target,
                            "health-path": AppSpec().health_path,
                            "drain-timeout": "10s",
                        }
                    )
                    report = engine.swap(options)
                    if not report.outcome.changed or not report.skew or report.skew[-1].lbs != lbs:
                        raise RuntimeError(
                            f"fleet swap {index + 1} over {lbs} LBs -> {target}: changed={report.outcome.changed}, "
                            f"skew={[window.to_dict() for window in report.skew]}"
                        )
                    skews.append(report.skew[-1].window_ms)
                    durations.append(report.duration_ms)
                    live = target
                    print(
                        f"  fleet of {lbs}: swap {index + 1:>2}/{swaps} -> {target}: skew {skews[-1]:.0f} ms, "
                        f"engine {durations[-1]:.0f} ms",
                        file=sys.stderr,
                    )
        finally:
            env.stop()
        figures[f"fleet_skew_ms_{lbs}"] = round(statistics.median(skews), 1)
        figures[f"fleet_skew_max_ms_{lbs}"] = round(max(skews), 1)
        figures[f"fleet_swap_ms_{lbs}"] = round(statistics.median(durations), 1)
    return figures


def fleet_rows(figures: dict[str, float], swaps: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for lbs in FLEET_SIZES:
        if f"fleet_skew_ms_{lbs}" not in figures:
            continue
        rows += [
            (
                f"fleet of {lbs} LBs: skew (first -> last LB confirmed), median / max of {swaps}",
                f"{figures[f'fleet_skew_ms_{lbs}']} / {figures[f'fleet_skew_max_ms_{lbs}']} ms",
                "",
            ),
            (f"fleet of {lbs} LBs: engine duration, median", f"{figures[f'fleet_swap_ms_{lbs}']} ms", ""),
        ]
    return rows


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>22}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>22}  {target}")


def gap_ms(requests: list[RequestRecord], start: float, end: float) -> float:
    """Longest time around [start, end] during which no request succeeded."""
    ok = sorted(r.end for r in requests if not r.failed and start - 1 <= r.end <= end + 2)
    return 1000 * max((b - a for a, b in itertools.pairwise(ok)), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--fresh-clients", type=int, default=8)
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--floors", type=int, default=10)
    parser.add_argument("--naive", type=int, default=3)
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument(
        "--processes", type=int, default=0, help="load generator processes (default 0: as many as the rate needs)"
    )
    parser.add_argument(
        "--client-swaps", type=int, default=20, help="swaps for the client matrix per Nginx version (0: skip it)"
    )
    parser.add_argument(
        "--arrivals", choices=ARRIVALS, default="constant", help="open loop (constant, poisson) or closed"
    )
    parser.add_argument(
        "--fleet-swaps", type=int, default=10, help="swaps per fleet size (2 and 4 LBs) for the skew (0: skip it)"
    )
    parser.add_argument("--only", choices=("fleet",), help="measure only this part (fleet: the fleet's skew)")
    args = parser.parse_args()

    if args.only == "fleet":
        print(f"bench: fleet skew only, {args.fleet_swaps} swaps per fleet of {FLEET_SIZES} LBs", file=sys.stderr)
        fleet = fleet_figures(args.fleet_swaps) if args.fleet_swaps else {}
        if fleet:
            print_table(fleet_rows(fleet, args.fleet_swaps))
        print(json.dumps({**fleet, "fleet_swaps": args.fleet_swaps}))
        return 0

    print(
        f"bench: {args.swaps} engine swaps, {args.floors} raw reloads, {args.naive} naive restarts at {args.rate:.0f} req/s"
        f" ({args.arrivals} arrivals, {args.processes or processes_for(args.rate)} load generator processes)",
        file=sys.stderr,
    )
    figures = asyncio.run(measure(args))
    print("bench: default simulation end to end", file=sys.stderr)
    wall = time.perf_counter()
    result = run(Scenario(), progress=lambda _line: None)
    sim_wall = time.perf_counter() - wall
    clients = client_matrix(args.client_swaps, args.rate) if args.client_swaps else {}
    print("bench: the action's image (size, cold start from a registry)", file=sys.stderr)
    try:
        action = action_image_figures.figures()
    except action_image_figures.FiguresError as exc:
        print(f"  warning: no action image figures: {exc}", file=sys.stderr)
        action = {}
    if args.fleet_swaps:
        print(f"bench: fleet skew, {args.fleet_swaps} swaps per fleet of {FLEET_SIZES} LBs", file=sys.stderr)
    fleet = fleet_figures(args.fleet_swaps) if args.fleet_swaps else {}

    confirm = statistics.median(figures["confirm"])  # type: ignore[arg-type]
    floor = statistics.median(figures["floors"])  # type: ignore[arg-type]
    out = {
        "swap_confirm_ms_median": round(confirm, 1),
        "swap_confirm_cold_ms_median": round(statistics.median(figures["cold"]), 1),  # type: ignore[arg-type]
        "nginx_floor_ms_median": round(floor, 1),
        "lb_round_trip_ms_median": round(float(figures["round_trip_ms"]), 1),  # type: ignore[arg-type]
        "ratio": round(confirm / floor, 2) if floor else None,
        "swaps": args.swaps,
        "failed_requests": figures["failed"],
        "strict_failed_requests": figures["strict"],
        "requests_through_swaps": figures["engine_requests"],
        "naive_failed_requests": figures["naive_failed"],
        "naive_gap_ms": round(float(figures["naive_gap_ms"]), 1),  # type: ignore[arg-type]
        "rate_rps": round(float(figures["rate"]), 1),  # type: ignore[arg-type]
        "generator_processes": figures["processes"],
        "arrivals": args.arrivals,
        "p99_steady_ms": round(float(figures["p99_steady"]), 2),  # type: ignore[arg-type]
        "p99_swap_ms": round(float(figures["p99_swap"]), 2),  # type: ignore[arg-type]
        "p99_swap_from_send_ms": round(float(figures["p99_swap_from_send"]), 2),  # type: ignore[arg-type]
        "p99_raw_reload_ms": round(float(figures["p99_raw_reload"]), 2),  # type: ignore[arg-type]
        "generator_ceiling_rps": round(figures["ceilings"]["static"]),  # type: ignore[index]
        "demo_app_ceiling_rps": round(figures["ceilings"]["app"]),  # type: ignore[index]
        "sim_wall_s": round(sim_wall, 1),
        "sim_passed": all(check.passed for check in evaluate(result)),
        "client_failed_requests": clients,
        "action_image_mb": action.get("action_image_mb"),
        "action_cold_start_ms": action.get("action_cold_start_ms"),
        **fleet,
        "fleet_swaps": args.fleet_swaps,
    }
    rows = [
        ("swap confirmed (engine start -> confirmed), median", f"{out['swap_confirm_ms_median']} ms", "<= 1.5 x floor"),
        ("  same, from opening the transport, median", f"{out['swap_confirm_cold_ms_median']} ms", ""),
        ("nginx floor (raw reload -> last old-slot response), median", f"{out['nginx_floor_ms_median']} ms", ""),
        ("ratio", f"{out['ratio']}", "<= 1.5"),
        ("  one round trip to the LB under the same load, median", f"{out['lb_round_trip_ms_median']} ms", ""),
        (
            f"failed requests through {args.swaps} swaps",
            f"{out['failed_requests']} of {out['requests_through_swaps']}",
            "0",
        ),
        ("strict count (errors on reused connections, before retry)", f"{out['strict_failed_requests']}", ""),
        (f"naive restart: failed requests ({args.naive} restarts)", f"{out['naive_failed_requests']}", ""),
        ("naive restart: longest gap with no successful response", f"{out['naive_gap_ms']} ms", ""),
        ("rate held", f"{out['rate_rps']} req/s", ">= 1000"),
        ("  load generator processes", f"{out['generator_processes']}", ""),
        (
            f"p99 latency steady / during swaps (from due; {args.arrivals} arrivals)",
            f"{out['p99_steady_ms']} / {out['p99_swap_ms']} ms",
            "within 50 ms",
        ),
        ("  p99 during swaps from when sent (what a closed loop reports)", f"{out['p99_swap_from_send_ms']} ms", ""),
        (
            f"  p99 around raw reloads (no engine: Nginx's own reload, {RAW_WINDOW_S * 1000:.0f} ms from the signal)",
            f"{out['p99_raw_reload_ms']} ms",
            "",
        ),
        (f"load generator ceiling (static `return 200`, {STATIC_PATH})", f"{out['generator_ceiling_rps']} req/s", ""),
        ("  same through the demo app", f"{out['demo_app_ceiling_rps']} req/s", ""),
        ("default simulation wall time", f"{out['sim_wall_s']} s", "<= 30 s"),
        ("default simulation passed", f"{out['sim_passed']}", "True"),
        ("action image, gzipped", f"{out['action_image_mb']} MB", "<= 60 MB"),
        (
            "action cold start (pull an unseen image -> swap confirmed)",
            f"{out['action_cold_start_ms']} ms",
            "<= 5000 ms",
        ),
        *(
            (f"failed requests per client kind, Nginx {version} ({args.client_swaps} swaps)", str(row), "0 on 1.30")
            for version, row in clients.items()
        ),
    ]
    for name, value in figures["step_ms"].items():  # type: ignore[attr-defined]
        rows.append((f"  engine step: {name}, median", f"{value:.1f} ms", ""))
    rows += fleet_rows(fleet, args.fleet_swaps)
    print_table(rows)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
