"""Soak of the swap (run by `make soak`): many consecutive swaps under load, with the LB watched
for what a leak would leave behind. Prints its figures, then one JSON line.

It is the simulation (``simulation.scenario.run``), not a harness of its own: Nginx and two app
slots in containers, steady load from keep-alive and fresh-connection clients, WebSockets held
open through every swap (the demo app's drain hook closes them with 1001 and the clients reconnect
to the new slot), and long requests started before every swap (``long_every_swap``), so that each
drain has requests in flight on the old slot. The scenario's ``checkpoint`` samples the LB
container's /proc through docker exec (no procps needed) once before the first swap and after each
swap, its drain over:

- old workers left: Nginx processes titled "worker process is shutting down";
- the number of Nginx processes, their total RSS (VmRSS) and their open file descriptors.

Exit 1 when any of these fails: every swap confirmed; zero failed requests under the harness's
client model (the strict count is reported beside, not judged: see the README's client model);
zero failed long requests; no old worker left after any drain; every WebSocket still connected at
the end; the harness's own checks (except ``in_flight_completed_on_old``, which judges the first
swap's long requests only: the soak judges every swap's); no more Nginx processes at the end than
at the start; memory and descriptors within their tolerance (``MEMORY``, ``FDS``), both at the end
and in the trend fitted over every sample. Exit 2 when the run could not start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulation.assertions import Check, evaluate, failed_requests
from simulation.environment import Environment, StartupError
from simulation.records import RequestRecord, WebSocketRecord
from simulation.scenario import RunResult, Scenario, SwapRun, run
from swap_action.errors import InputError

# Per Nginx process: "PID RSS_KIB FDS TITLE", from /proc only (the LB may have no ps), no fork per
# process. (/proc/PID/fd of the www-data workers is readable by the container's root.)
SAMPLE_SCRIPT = r"""
for d in /proc/[0-9]*; do
  t=; read -r t < "$d/cmdline" 2>/dev/null
  case "$t" in "nginx: "*) ;; *) continue ;; esac
  r=0
  while read -r k v _; do [ "$k" = VmRSS: ] && r=$v; done 2>/dev/null < "$d/status"
  set -- "$d"/fd/*; [ "$1" = "$d/fd/*" ] && set --
  echo "${d#/proc/} $r $# $t"
done
"""
SHUTTING_DOWN = "shutting down"


@dataclass(frozen=True)
class Tolerance:
    """Growth allowed over the run: a fraction of the start value plus a constant."""

    fraction: float
    constant: float

    def allowed(self, start: float) -> float:
        return start * self.fraction + self.constant


# The tolerances are sized so that sampling noise passes and a leak per swap does not. Every sample
# is taken at the same point (steady load and WebSockets on, no long request in flight, the new
# workers a few seconds old), but what is open at that instant varies.
# Memory: 10% + 4 MiB. The LB's Nginx is about 11 MiB in all; measured, the first reload raises it
# once by about 2 MiB and it then stays flat (within 0.3 MiB over 100 swaps). A reload leaking
# 64 KiB would exceed the tolerance within 100 swaps.
# Descriptors: 10% + 32. About 70 in all, and 68 to 87 between samples of one run: besides a fixed
# part (listening sockets, logs, epoll, channels) and the clients' connections, each worker keeps
# up to 32 idle upstream connections (`keepalive 32`), filled or emptied by the last peak of
# concurrency. One descriptor leaked per swap exceeds the tolerance by swap 40.
MEMORY = Tolerance(fraction=0.10, constant=4096.0)  # KiB
FDS = Tolerance(fraction=0.10, constant=32.0)


@dataclass(frozen=True)
class LbSample:
    """The LB's Nginx processes at one checkpoint."""

    after_swap: int  # 0: before the first swap
    processes: int
    rss_kib: int
    fds: int
    shutting_down: int  # old workers still running ("worker process is shutting down")
    titles: tuple[str, ...] = ()


def parse_sample(after_swap: int, text: str) -> LbSample:
    """``SAMPLE_SCRIPT``'s output ("PID RSS_KIB FDS TITLE" per line) as one sample."""
    rss = fds = 0
    titles: list[str] = []
    for line in text.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 4 or not parts[0].isdigit():
            continue  # not a process line (a shell's warning)
        rss += int(parts[1]) if parts[1].isdigit() else 0
        fds += int(parts[2]) if parts[2].isdigit() else 0
        titles.append(parts[3])
    return LbSample(
        after_swap=after_swap,
        processes=len(titles),
        rss_kib=rss,
        fds=fds,
        shutting_down=sum(SHUTTING_DOWN in title for title in titles),
        titles=tuple(titles),
    )


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


@dataclass(frozen=True)
class Trend:
    """One resource over the run: start, end, the fitted slope, and whether it stayed within tolerance."""

    name: str
    unit: str
    start: float
    end: float
    slope_per_10_swaps: float
    fitted_growth: float  # the fitted slope over the whole run (first to last sample)
    allowed: float

    @property
    def growth(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> bool:
        return self.growth <= self.allowed and self.fitted_growth <= self.allowed

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "growth": round(self.growth, 1),
            "slope_per_10_swaps": round(self.slope_per_10_swaps, 2),
            "fitted_growth": round(self.fitted_growth, 1),
            "allowed_growth": round(self.allowed, 1),
            "ok": self.ok,
        }


def trend(name: str, unit: str, points: Sequence[tuple[int, float]], tolerance: Tolerance) -> Trend:
    """``points``: (swaps done, value), in order; the first is the start."""
    if not points:
        return Trend(name, unit, 0.0, 0.0, 0.0, 0.0, tolerance.allowed(0.0))
    per_swap = slope([(float(x), y) for x, y in points])
    span = points[-1][0] - points[0][0]
    start = points[0][1]
    return Trend(name, unit, start, points[-1][1], per_swap * 10, per_swap * span, tolerance.allowed(start))


@dataclass(frozen=True)
class Figures:
    """What the verdict reads (all counts, no records)."""

    swaps_asked: int
    swaps_done: int  # confirmed, without error
    failed_requests: int  # the harness's pass/fail model
    failed_long: int
    old_workers_after_drain: tuple[int, ...]  # per swap, in order
    websockets_opened: int
    websockets_alive_at_end: int
    failed_checks: tuple[str, ...]  # the harness's checks the soak judges
    processes_start: int
    processes_end: int
    memory: Trend
    fds: Trend


def verdict(figures: Figures) -> list[str]:
    """Why the soak failed, one reason per line; empty when it passed."""
    reasons: list[str] = []
    if figures.swaps_done < figures.swaps_asked:
        reasons.append(f"{figures.swaps_done}/{figures.swaps_asked} swaps confirmed")
    if figures.failed_requests:
        reasons.append(f"{figures.failed_requests} failed request(s)")
    if figures.failed_long:
        reasons.append(f"{figures.failed_long} failed long request(s)")
    left = [n for n in figures.old_workers_after_drain if n]
    if left:
        reasons.append(f"old workers left after {len(left)} drain(s) (at most {max(left)})")
    if len(figures.old_workers_after_drain) < figures.swaps_done:
        reasons.append(f"the LB was sampled after {len(figures.old_workers_after_drain)} of {figures.swaps_done} swaps")
    if figures.websockets_alive_at_end < figures.websockets_opened:
        reasons.append(f"{figures.websockets_opened - figures.websockets_alive_at_end} WebSocket(s) gave up")
    if figures.failed_checks:
        reasons.append(f"harness check(s) failed: {', '.join(figures.failed_checks)}")
    if figures.processes_end > figures.processes_start:
        reasons.append(f"Nginx processes {figures.processes_start} -> {figures.processes_end}")
    for t in (figures.memory, figures.fds):
        if not t.ok:
            reasons.append(
                f"{t.name} grew beyond tolerance: {t.start:.0f} -> {t.end:.0f} {t.unit} "
                f"(fitted growth {t.fitted_growth:+.0f}, allowed {t.allowed:.0f})"
            )
    return reasons


def spanning(record: RequestRecord, swaps: Sequence[SwapRun]) -> bool:
    """True when a confirmed switch happened while the request was in flight."""
    return any(s.report and s.report.confirmed_at and record.start < s.report.confirmed_at < record.end for s in swaps)


def websockets_alive_at_end(records: Sequence[WebSocketRecord]) -> tuple[int, int]:
    """(WebSockets opened, those whose last connection was still open when traffic stopped)."""
    last: dict[int, WebSocketRecord] = {}
    for record in records:
        if record.id not in last or record.attempt > last[record.id].attempt:
            last[record.id] = record
    alive = sum(r.closed_by == "client" and r.close_code == 1000 for r in last.values())
    return len(last), alive


@dataclass
class Sampler:
    """The scenario's checkpoint: one ``LbSample`` before the first swap and after each swap."""

    progress: Callable[[str], None]
    samples: list[LbSample] = field(default_factory=list)
    swaps: list[SwapRun] = field(default_factory=list)
    total: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, env: Environment, swap: SwapRun | None) -> None:
        code, out = env.lb_exec("sh", "-c", SAMPLE_SCRIPT)
        sample = parse_sample(len(self.samples), out if code == 0 else "")
        self.samples.append(sample)
        elapsed = time.perf_counter() - self.started
        lb = f"nginx {sample.processes} procs, {sample.rss_kib / 1024:.1f} MiB, {sample.fds} fds"
        if swap is None:
            self.progress(f"soak: start: {lb}")
            return
        self.swaps.append(swap)
        drain = swap.report.drain if swap.report else None
        drained = f"drain {drain.outcome} in {drain.duration_ms / 1000:.1f}s" if drain else "no drain"
        self.progress(
            f"soak: swap {sample.after_swap}/{self.total} -> {swap.target}: {drained}; "
            f"old workers left {sample.shutting_down}; {lb}; {elapsed:.0f}s"
        )


JUDGED_CHECKS_EXCLUDE = ("in_flight_completed_on_old",)


def figures_of(result: RunResult, samples: Sequence[LbSample], asked: int, checks: Sequence[Check]) -> Figures:
    counts = failed_requests(result.requests)
    long = [r for r in result.requests if r.kind == "long"]
    opened, alive = websockets_alive_at_end(result.websockets)
    after = [s for s in samples if s.after_swap > 0]
    first, last = (samples[0], samples[-1]) if samples else (None, None)
    return Figures(
        swaps_asked=asked,
        swaps_done=sum(1 for s in result.swaps if s.error is None and s.report and s.report.confirmed_at),
        failed_requests=counts.failed,
        failed_long=sum(r.failed for r in long),
        old_workers_after_drain=tuple(s.shutting_down for s in after),
        websockets_opened=opened,
        websockets_alive_at_end=alive,
        failed_checks=tuple(c.name for c in checks if not c.passed and c.name not in JUDGED_CHECKS_EXCLUDE),
        processes_start=first.processes if first else 0,
        processes_end=last.processes if last else 0,
        memory=trend("LB memory (RSS)", "KiB", [(s.after_swap, s.rss_kib) for s in samples], MEMORY),
        fds=trend("LB open fds", "fds", [(s.after_swap, s.fds) for s in samples], FDS),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swaps", type=int, default=100, help="consecutive swaps (default 100)")
    parser.add_argument("--rate", type=float, default=500.0, help="steady requests per second (default 500)")
    parser.add_argument("--long-requests", type=int, default=5, help="long requests in flight at each swap (default 5)")
    parser.add_argument(
        "--long-seconds", type=int, default=3, help="length of each long request, /slow?seconds=N (default 3)"
    )
    parser.add_argument("--websockets", type=int, default=5, help="WebSockets held through the swaps (default 5)")
    parser.add_argument("--drain-timeout", type=float, default=15.0, help="each drain's deadline, seconds (default 15)")
    parser.add_argument("--verbose", action="store_true", help="the harness's and the engine's progress lines too")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def harness(line: str) -> None:
        # The engine's step lines are indented, the per-swap lines are the sampler's: shown with --verbose.
        if args.verbose or not line.startswith((" ", "swap ", "redeploying ")):
            say(line)

    sampler = Sampler(say, total=args.swaps)
    scenario = Scenario(
        rate=args.rate,
        swaps=args.swaps,
        long_requests=args.long_requests,
        long_path=f"/slow?seconds={args.long_seconds}",
        long_every_swap=True,
        websockets=args.websockets,
        drain_timeout=args.drain_timeout,
        checkpoint=sampler,
    )
    say(
        f"soak: {args.swaps} swaps at {args.rate:.0f} req/s, {args.long_requests} long requests "
        f"({args.long_seconds} s) in flight at each swap, {args.websockets} WebSockets held through them"
    )
    wall = time.perf_counter()
    try:
        result = run(scenario, harness)
    except (InputError, StartupError) as exc:
        say(f"error: {exc}")
        return 2
    for swap in result.swaps:
        if swap.error:
            say(f"swap to {swap.target} failed: {swap.error.text()}")
    checks = evaluate(result)
    duration = time.perf_counter() - wall
    figures = figures_of(result, sampler.samples, args.swaps, checks)
    reasons = verdict(figures)
    counts = failed_requests(result.requests)
    long = [r for r in result.requests if r.kind == "long"]
    drains = [s.report.drain for s in result.swaps if s.report and s.report.drain]
    close_codes = Counter(str(w.close_code) for w in result.websockets if w.closed_by != "client")
    old = figures.old_workers_after_drain
    span = max(result.traffic_ended_at - result.traffic_started_at, 1e-9)
    every_10 = [s for s in sampler.samples if s.after_swap % 10 == 0 or s is sampler.samples[-1]]

    out: dict[str, Any] = {
        "passed": not reasons,
        "reasons": reasons,
        "swaps": figures.swaps_done,
        "swaps_asked": args.swaps,
        "rate_asked_rps": args.rate,
        "rate_rps": round(counts.total / span, 1),
        "requests": counts.total,
        "failed_requests": counts.failed,
        "strict_failed_requests": len(counts.strict),
        "long_requests": len(long),
        "long_failed": figures.failed_long,
        "long_spanning_switch": sum(spanning(r, result.swaps) for r in long),
        "websockets": figures.websockets_opened,
        "websockets_alive_at_end": figures.websockets_alive_at_end,
        "websocket_reconnects": sum(1 for w in result.websockets if w.attempt > 1),
        "websocket_close_codes": dict(close_codes),
        "old_workers_after_drain_max": max(old, default=0),
        "swaps_with_old_workers_left": sum(1 for n in old if n),
        "drain_outcomes": dict(Counter(d.outcome for d in drains)),
        "drain_ms_max": round(max((d.duration_ms for d in drains), default=0.0), 1),
        "nginx_processes": {"start": figures.processes_start, "end": figures.processes_end},
        "memory_kib": figures.memory.to_dict(),
        "fds": figures.fds.to_dict(),
        "tolerance": {
            "memory": f"{MEMORY.fraction:.0%} of start + {MEMORY.constant:.0f} KiB",
            "fds": f"{FDS.fraction:.0%} of start + {FDS.constant:.0f}",
        },
        "samples": [
            {"after_swap": s.after_swap, "processes": s.processes, "rss_kib": s.rss_kib, "fds": s.fds} for s in every_10
        ],
        "checks": {c.name: c.passed for c in checks},
        "duration_s": round(duration, 1),
    }
    mem, fds = figures.memory, figures.fds
    rows = [
        ("swaps confirmed", f"{figures.swaps_done}/{args.swaps}", "all"),
        ("rate held", f"{out['rate_rps']} req/s", f"{args.rate:.0f} (not judged)"),
        ("failed requests (keep-alive with one retry, fresh)", f"{counts.failed} of {counts.total}", "0"),
        ("strict count (errors on reused connections, before retry)", f"{len(counts.strict)}", "reported"),
        (
            "long requests failed / spanning a switch",
            f"{figures.failed_long} / {out['long_spanning_switch']} of {len(long)}",
            "0 failed",
        ),
        (
            "WebSockets alive at the end (reconnects)",
            f"{figures.websockets_alive_at_end}/{figures.websockets_opened} ({out['websocket_reconnects']})",
            "all",
        ),
        ("  their closes by the server/network", f"{dict(close_codes)}", "1001"),
        (
            "old workers left after a drain: max / swaps with any",
            f"{max(old, default=0)} / {out['swaps_with_old_workers_left']}",
            "0 / 0",
        ),
        ("drain outcomes (longest)", f"{out['drain_outcomes']} ({out['drain_ms_max'] / 1000:.1f} s)", "complete"),
        ("Nginx processes start -> end", f"{figures.processes_start} -> {figures.processes_end}", "no more"),
        (
            "LB memory (RSS) start -> end",
            f"{mem.start / 1024:.1f} -> {mem.end / 1024:.1f} MiB",
            f"<= +{mem.allowed / 1024:.1f} MiB",
        ),
        (
            "  trend per 10 swaps / fitted over the run",
            f"{mem.slope_per_10_swaps:+.0f} / {mem.fitted_growth:+.0f} KiB",
            "",
        ),
        ("LB open fds start -> end", f"{fds.start:.0f} -> {fds.end:.0f}", f"<= +{fds.allowed:.0f}"),
        ("  trend per 10 swaps / fitted over the run", f"{fds.slope_per_10_swaps:+.2f} / {fds.fitted_growth:+.1f}", ""),
        ("harness checks failed", ", ".join(figures.failed_checks) or "none", "none"),
        ("duration", f"{duration:.0f} s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>26}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>26}  {target}")
    print(
        "samples (after swap: processes, RSS MiB, fds): "
        + ", ".join(f"{s.after_swap}: {s.processes}, {s.rss_kib / 1024:.1f}, {s.fds}" for s in every_10)
    )
    if JUDGED_CHECKS_EXCLUDE[0] in out["checks"]:
        print(f"(not judged: {', '.join(JUDGED_CHECKS_EXCLUDE)}, about the first swap's long requests only)")
    print("PASSED" if not reasons else "FAILED: " + "; ".join(reasons))
    print(json.dumps(out))
    return 0 if not reasons else 1


if __name__ == "__main__":
    sys.exit(main())
