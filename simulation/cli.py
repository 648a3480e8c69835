"""``python -m simulation run``: validate a blue-green swap of your app through Nginx, under load.

Exit code 0 only when every assertion holds.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from swap_action.durations import parse_duration
from swap_action.errors import InputError
from swap_action.inputs import parse_steps

from .assertions import evaluate
from .bad_swaps import BAD_SWAPS, FLEET_BAD_SWAPS
from .clients import KINDS, parse_kinds
from .environment import APP_IMAGE, LB_IMAGE, UPSTREAM, AppSpec, StartupError
from .report import summary_lines, write
from .scenario import DEMO_DRAIN_HOOK, MAX_SKEW_S, Scenario, run
from .staging import STAGING_HOST, STAGING_RATE
from .traffic import ARRIVALS


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _kinds(flag: str, text: str) -> tuple[str, ...]:
    try:
        return parse_kinds(text)
    except ValueError as exc:
        raise InputError(flag, str(exc), f"for example {flag} requests,fetch (or all)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulation", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a simulated swap under load and report", description=__doc__)
    app = p.add_argument_group("the app")
    app.add_argument("--blue-image", default=APP_IMAGE, help="image of the live slot (default: the demo app)")
    app.add_argument("--green-image", default=APP_IMAGE, help="image of the slot swapped to (default: the demo app)")
    app.add_argument("--app-port", type=int, default=8080, help="port the app listens on (default 8080)")
    app.add_argument(
        "--health-path", default="/healthz", help="health endpoint checked before the swap (default /healthz)"
    )
    app.add_argument("--path", default="/", help="path of the steady load (default /)")
    app.add_argument(
        "--long-path",
        default=None,
        help="a slow endpoint whose requests span the swap, e.g. /delay/5, or 'none' "
        "(default: the demo app's /slow?seconds=N, N long enough to span every canary step)",
    )
    app.add_argument("--ws-path", default="/ws", help="WebSocket path, or 'none' (default /ws)")
    app.add_argument(
        "--no-ws-echo",
        action="store_true",
        help="the app does not echo WebSocket messages (liveness by ping/pong only)",
    )
    app.add_argument(
        "--app-env", action="append", default=[], metavar="KEY=VALUE", help="environment for both app containers"
    )
    load = p.add_argument_group("traffic")
    load.add_argument("--rate", type=float, default=400.0, help="steady requests per second (default 400)")
    load.add_argument(
        "--arrivals",
        choices=ARRIVALS,
        default="constant",
        help="constant or poisson: open loop, requests due at --rate whatever the responses do, latency "
        "counted from when each was due; closed: each client waits for its response (the old model, which "
        "hides stalls). Default constant",
    )
    load.add_argument(
        "--clients",
        type=int,
        default=16,
        help="keep-alive share of the rate, against --fresh-clients (default 16: 16 of 20 = 80%%); closed "
        "loop: keep-alive clients",
    )
    load.add_argument(
        "--fresh-clients",
        type=int,
        default=4,
        help="share of the rate on a new connection per request (default 4); closed loop: such clients",
    )
    load.add_argument(
        "--processes",
        type=int,
        default=0,
        help="load generator processes (default 0: as many as the rate needs, at most one per CPU)",
    )
    load.add_argument(
        "--client-kinds",
        default="",
        metavar="KINDS",
        help="real client libraries beside the steady load, comma-separated or 'all': "
        + ", ".join(KINDS)
        + " (fetch needs node). Each reuses one keep-alive connection as an application would; the "
        "report gives failed requests per kind and per swap",
    )
    load.add_argument("--client-rate", type=float, default=50.0, help="requests per second per client kind (50)")
    load.add_argument(
        "--require-zero",
        default="",
        metavar="KINDS",
        help="client kinds that must see no failed request (run even if not in --client-kinds); the "
        "others are reported only",
    )
    load.add_argument(
        "--allow-saturation",
        action="store_true",
        help="holding less than 95%% of --rate is a warning, not a failure (to probe a ceiling on purpose)",
    )
    load.add_argument("--long-requests", type=int, default=5, help="long requests spanning the swap (default 5)")
    load.add_argument("--websockets", type=int, default=5, help="WebSockets open through the swap (default 5)")
    swap = p.add_argument_group("the swap")
    swap.add_argument("--steps", default="100", help="canary steps, e.g. 10,50,100 (default 100: instant)")
    swap.add_argument("--step-pause", type=_duration, default=0.0, help="pause between canary steps (default 0s)")
    swap.add_argument("--swaps", type=int, default=1, help="consecutive swaps, alternating slots (default 1)")
    swap.add_argument("--drain-timeout", type=_duration, default=15.0, help="drain deadline (default 15s)")
    swap.add_argument(
        "--drain-policy",
        default="cut",
        help="as the action's drain-policy: at the drain deadline, cut (stop the old workers, closing "
        "what is left) or wait (leave them and report it) (default cut)",
    )
    swap.add_argument(
        "--drain-hook",
        default=None,
        help="as the action's drain-hook: '[METHOD] /path' called on the old slot's servers when the drain "
        "starts, or 'none'. The demo app's hook closes its WebSockets with 1001; with none they stay "
        f"open until the drain deadline (default: '{DEMO_DRAIN_HOOK}' when both slots run the demo "
        "app, else none)",
    )
    swap.add_argument(
        "--bad-swap",
        choices=sorted(BAD_SWAPS),
        default=None,
        help="a swap done wrong on purpose, to see the harness fail it (simulation/bad_swaps.py); fleet-refused "
        "(with --lbs 2 or more): the engine's pre-switch hook breaks the second LB's config after prepare, its "
        "nginx -t refuses while the first LB commits, and every LB must end on the old slot",
    )
    swap.add_argument(
        "--staging-check",
        action="store_true",
        help=f"route Host {STAGING_HOST} to the managed file's staging upstream (<upstream>_staging, always the "
        "idle slot) and probe it through the LBs; staging_idle checks that each answer outside the switch "
        "windows came from the idle slot (meant for --swaps 2 or more)",
    )
    swap.add_argument(
        "--staging-rate",
        type=float,
        default=STAGING_RATE,
        help=f"staging probes per second, all LBs together (default {STAGING_RATE:g})",
    )
    lb = p.add_argument_group(
        "the load balancer",
        "The harness adds to the LB's config only what it needs (the managed upstream file and its "
        "include, the X-Upstream-Addr header where the site proxies to the upstream) and says what it added.",
    )
    lb.add_argument(
        "--nginx-image",
        default=LB_IMAGE,
        help="your Nginx image, any version; it needs sh, coreutils, awk, getent and curl (default: the project's "
        f"{LB_IMAGE}, Debian bookworm's Nginx 1.22.1)",
    )
    lb.add_argument(
        "--nginx-conf",
        type=Path,
        help="your full nginx.conf, or a directory of config (holding nginx.conf) laid over /etc/nginx "
        "(default: the image's own)",
    )
    lb.add_argument(
        "--nginx-template",
        type=Path,
        help="your server block as a jinja2 template (variables: upstream, listen, bluegreen_headers); it "
        "replaces the server blocks on port 80",
    )
    lb.add_argument("--upstream", default=UPSTREAM, help=f"the upstream your site proxies to (default {UPSTREAM})")
    lb.add_argument(
        "--lbs",
        type=int,
        default=1,
        help="load balancers in front of the same two slots (a fleet): each request, connection and WebSocket "
        "goes to the next LB in turn, like DNS round robin, and the engine swaps them all in one run (default 1)",
    )
    lb.add_argument(
        "--max-skew",
        type=_duration,
        default=MAX_SKEW_S,
        help="with --lbs 2 or more: the widest window allowed between the first and the last LB proving a "
        f"step live (default {MAX_SKEW_S * 1000:.0f}ms)",
    )
    stack = p.add_argument_group(
        "a team's compose stack",
        "Run your own compose file(s) as the world (Compose v2, 'docker compose'): the slots are two of its "
        "services, everything else (a database) runs as you wrote it. Your files are not modified: what the "
        "harness changes goes in a generated override file, listed in the report.",
    )
    stack.add_argument(
        "--compose",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="your compose file; repeat for overrides, in order (as docker compose -f)",
    )
    stack.add_argument("--blue-service", default="blue", help="the service of the live slot (default blue)")
    stack.add_argument("--green-service", default="green", help="the service swapped to (default green)")
    stack.add_argument(
        "--lb-service",
        default=None,
        help="your Nginx service, used as the LB through the Docker transport (default: the harness's LB, "
        "--nginx-image, in front of the two services on the stack's network)",
    )
    stack.add_argument(
        "--compose-timeout",
        type=_duration,
        default=120.0,
        help="how long the stack may take to be healthy after 'up' (default 120s)",
    )
    p.add_argument(
        "--report-dir",
        type=Path,
        default=Path(os.environ.get("REPORT_DIR", "simulation-report")),
        help="where report.json, junit.xml and report.html go (default $REPORT_DIR or ./simulation-report)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def scenario_from(args: argparse.Namespace) -> Scenario:
    env = dict(item.split("=", 1) for item in args.app_env if "=" in item)
    spec = {"port": args.app_port, "health_path": args.health_path, "env": env}
    ws_path = None if args.ws_path.lower() == "none" else args.ws_path
    no_long = args.long_path is not None and args.long_path.lower() == "none"
    compose = tuple(args.compose)
    images = (args.blue_image, args.green_image)
    if compose:
        _check_compose_flags(args)
        images = (f"compose service {args.blue_service}", f"compose service {args.green_service}")
    if args.drain_hook is None:
        demo = args.blue_image == APP_IMAGE and args.green_image == APP_IMAGE and not compose
        hook = DEMO_DRAIN_HOOK if demo else None
    else:
        hook = None if args.drain_hook.lower() == "none" else args.drain_hook
    steps = parse_steps("steps", args.steps)
    if args.bad_swap in FLEET_BAD_SWAPS and args.lbs < 2:
        raise InputError("--bad-swap", f"{args.bad_swap} needs a fleet", "add --lbs 2")
    return Scenario(
        blue=AppSpec(image=images[0], **spec),
        green=AppSpec(image=images[1], **spec),
        nginx_template=args.nginx_template.read_text() if args.nginx_template else None,
        lb_image=args.nginx_image,
        nginx_conf=args.nginx_conf,
        upstream=args.upstream,
        path=args.path,
        rate=args.rate,
        keepalive_clients=args.clients,
        fresh_clients=args.fresh_clients,
        arrivals=args.arrivals,
        processes=args.processes,
        allow_saturation=args.allow_saturation,
        client_kinds=_kinds("--client-kinds", args.client_kinds),
        client_rate=args.client_rate,
        require_zero=_kinds("--require-zero", args.require_zero),
        long_requests=0 if no_long else args.long_requests,
        long_path=None if no_long else args.long_path,
        websockets=args.websockets if ws_path else 0,
        ws_path=ws_path,
        ws_echo=not args.no_ws_echo,
        steps=steps,
        step_pause=args.step_pause,
        swaps=args.swaps,
        drain_timeout=args.drain_timeout,
        drain_policy=args.drain_policy,
        drain_hook=hook,
        compose=compose,
        blue_service=args.blue_service,
        green_service=args.green_service,
        lb_service=args.lb_service,
        compose_timeout=args.compose_timeout,
        app_env=env if compose else {},
        lbs=args.lbs,
        max_skew=args.max_skew,
        staging_check=args.staging_check,
        staging_rate=args.staging_rate,
        swapper=BAD_SWAPS[args.bad_swap] if args.bad_swap else None,
    )


def _check_compose_flags(args: argparse.Namespace) -> None:
    """Flags that mean nothing with --compose (the slots' images and environment are the file's), or
    with --lb-service (the LB is the team's service, its image and config the file's)."""
    if args.blue_image != APP_IMAGE or args.green_image != APP_IMAGE:
        raise InputError(
            "--blue-image", "with --compose the slots' images are the services' own", "drop --blue-image/--green-image"
        )
    if args.lb_service is not None:
        for flag, value, default in (
            ("--nginx-image", args.nginx_image, LB_IMAGE),
            ("--nginx-conf", args.nginx_conf, None),
            ("--nginx-template", args.nginx_template, None),
        ):
            if value != default:
                raise InputError(
                    flag,
                    f"with --lb-service the LB is your service {args.lb_service}: its image and config are the file's",
                    f"drop {flag}, or drop --lb-service to put the harness's LB ({flag}) in front of the services",
                )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = (lambda _line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        result = run(scenario_from(args), progress)
    except InputError as exc:  # the swap's values, refused as the action refuses them
        print(f"error: {exc.cause}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checks = evaluate(result)
    report = write(args.report_dir, result, checks)
    print("\n".join(summary_lines(report)))
    print(
        f"\nreport: {args.report_dir / 'report.json'}, {args.report_dir / 'report.html'}, {args.report_dir / 'junit.xml'}"
    )
    return 0 if report.passed else 1
