"""Command line: ``python -m swap_action {swap,status,rollback,plan,adopt,lock} [options]``.

A thin layer over ``Engine``: it turns the flags into ``SwapOptions`` with the parsers of
``swap_action.inputs`` (so a bad value is refused before anything on the LB is touched), opens the
transport, runs the engine and prints. The timeline goes to stderr as it happens; stdout carries
the result (a summary line, the plan's diff, the status) or, with ``--json``, only the JSON report.

Exit status: 0 done (also "already live, nothing changed"), 1 the swap failed (``SwapError``),
2 invalid input (``InputError`` or a flag argparse refuses), 130 interrupted.

``--config-path`` left out: the preflight finds the file the running Nginx loads (``nginx -T``)
that carries the swap's state line, else the one that defines the upstream. ``adopt`` moves an
upstream out of a site file into a file of its own. ``lock status`` shows who holds the swap lock
on the LB, since when, how long its lease has left; ``lock break`` removes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from . import adopt_site, preflight
from .engine import Engine
from .errors import InputError, SwapError
from .fleet import FleetEngine
from .host import ScriptedHost
from .host.scripted import CUT_HELPER, cut_helper, sudoers_lines
from .host.wire import printable
from .inputs import (
    BY_NAME,
    SwapOptions,
    parse_config_path,
    parse_name,
    parse_targets,
    swap_options_from,
)
from .lease import lock_dir_for
from .outcome import LbOutcome, Result, SwapReport
from .timeline import PlainObserver
from .transport import Transport, open_transport
from .upstream import marker_address

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130

_NGINX_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: ")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error says which flag and exits 2 like any other input error."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"error: {message}\nfix: see '{self.prog} --help'\n")


def _flag(group: argparse._ArgumentGroup, name: str, *, metavar: str | None = None, extra: str = "") -> None:
    """A flag named and defaulted as the input of the same name (``inputs.INPUTS``)."""
    spec = BY_NAME[name]
    default = f" (default: {spec.default})" if spec.default else ""
    group.add_argument(f"--{name}", default=spec.default, metavar=metavar, help=spec.help + default + extra)


def build_parser() -> argparse.ArgumentParser:
    connection = _Parser(add_help=False)
    group = connection.add_argument_group("load balancer")
    group.add_argument(
        "--target",
        action="append",
        help="where Nginx runs: ssh://user@host[:port], docker://<container> or local (default: local); "
        "give it more than once (or comma-separated) to swap a fleet of LBs all or nothing",
    )
    group.add_argument("--ssh-key-file", metavar="FILE", help="unencrypted OpenSSH private key for an ssh:// target")
    group.add_argument(
        "--known-hosts-file", metavar="FILE", help="known_hosts lines for the ssh:// host (never accepted blindly)"
    )
    _flag(group, "config-path", metavar="PATH", extra="; for adopt: the site file that holds the upstream")
    _flag(group, "upstream")
    group.add_argument("--sudo", action="store_true", help=BY_NAME["sudo"].help.replace("%", "%%"))
    group.add_argument("--json", action="store_true", help="print the report as JSON on stdout")

    swapping = _Parser(add_help=False)
    group = swapping.add_argument_group("swap")
    _flag(group, "blue", metavar="HOST:PORT,...")
    _flag(group, "green", metavar="HOST:PORT,...")
    group.add_argument("--template", metavar="FILE", help="jinja2 template of the upstream block (default: built-in)")
    _flag(group, "steps")
    _flag(group, "step-pause", metavar="DURATION")
    _flag(group, "health-path", metavar="PATH", extra="; '' to skip")
    _flag(group, "verify-url", metavar="URL")
    _flag(group, "verify-expect", metavar="TEXT|CODE")
    _flag(group, "drain-timeout", metavar="DURATION")
    _flag(group, "drain-hook", metavar="[METHOD] PATH")
    _flag(group, "drain-policy")
    group.add_argument(
        "--no-rollback", action="store_true", help="leave a failed step in place (default: restore the previous config)"
    )
    _flag(group, "lock-timeout", metavar="DURATION")
    _flag(group, "pre-switch", metavar="COMMAND")
    _flag(group, "post-switch", metavar="COMMAND")
    _flag(group, "post-drain", metavar="COMMAND")
    _flag(group, "hook-timeout", metavar="DURATION")
    _flag(group, "staging-upstream", metavar="NAME")
    _flag(group, "staging-url", metavar="URL")
    group.add_argument("--break-lock", action="store_true", help=BY_NAME["break-lock"].help.replace("%", "%%"))

    target = _Parser(add_help=False)
    _flag(target.add_argument_group("target"), "to")

    parser = _Parser(
        prog="python -m swap_action",
        description="Zero-downtime blue-green swaps on Nginx.",
        epilog="Exit status: 0 done, 1 the swap failed (the error says what to do), 2 invalid input.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    commands.add_parser(
        "swap", parents=[connection, swapping, target], help="switch traffic to the other slot (or --to SLOT)"
    )
    commands.add_parser(
        "plan",
        parents=[connection, swapping, target],
        help="render, health-check and nginx -t the swap, print the diff; change nothing",
    )
    commands.add_parser(
        "rollback", parents=[connection, swapping], help="switch back to the slot recorded as previous in the file"
    )
    commands.add_parser("status", parents=[connection], help="what is live, and whether Nginx serves the file")
    commands.add_parser(
        "adopt",
        parents=[connection],
        help="move an upstream out of the site file given as --config-path into a file of its own (nginx -t, "
        "a backup, everything put back on failure)",
    )
    locking = commands.add_parser(
        "lock",
        parents=[connection],
        help="'lock status': who holds the swap lock on the LB; 'lock break': remove it (a cancelled run's)",
    )
    locking.add_argument("action", choices=("status", "break"), help="status (changes nothing) or break")
    setup = commands.add_parser(
        "sudo-setup",
        help="print what an LB host needs for --sudo: the sudoers lines for --user, or with --helper the "
        "cut helper script (README 'Least privilege')",
    )
    setup.add_argument("--user", default="deploy", help="the SSH or local user that runs swaps (default deploy)")
    setup.add_argument("--nginx", default="/usr/sbin/nginx", help="the nginx binary's path (default /usr/sbin/nginx)")
    setup.add_argument("--helper", action="store_true", help=f"print the cut helper to install as {CUT_HELPER}")
    return parser


# -- arguments -> validated values ----------------------------------------------------------
def swap_options(args: argparse.Namespace) -> SwapOptions:
    """Every flag through its parser; raises ``InputError`` naming the flag."""
    raw = {
        name: getattr(args, name.replace("-", "_"))
        for name in BY_NAME
        if BY_NAME[name].parse is not None and hasattr(args, name.replace("-", "_"))
    }
    raw |= {
        "rollback-on-failure": "false" if args.no_rollback else "true",
        "dry-run": "true" if args.command == "plan" else "false",
        "lock-timeout": args.lock_timeout,
        "break-lock": "true" if args.break_lock else "false",
        "sudo": "true" if args.sudo else "false",
    }
    return swap_options_from(raw, template=_read("template", args.template) if args.template else None)


def _read(name: str, path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InputError(name, f"cannot read {path}: {reason}", "give a readable file") from None


def targets_of(args: argparse.Namespace) -> tuple[str, ...]:
    """Every --target (each may list several, comma-separated); none given: local."""
    return parse_targets("target", ",".join(args.target or ["local"]))


def transport_for(args: argparse.Namespace, target: str | None = None) -> Transport:
    """A transport to ``target`` (default: the only --target; more than one is refused here)."""
    if target is None:
        targets = targets_of(args)
        if len(targets) > 1:
            raise InputError(
                "target", f"{args.command} works on one load balancer, {len(targets)} were given", "pass one --target"
            )
        target = targets[0]
    key = _read("ssh-key-file", args.ssh_key_file) if args.ssh_key_file else None
    known = _read("known-hosts-file", args.known_hosts_file) if args.known_hosts_file else None
    return open_transport(target, ssh_key=key, known_hosts=known)


# -- output ---------------------------------------------------------------------------------
def _summary(command: str, report: SwapReport) -> str:
    outcome = report.outcome
    took = f"{report.duration_ms:.0f} ms"
    if outcome.error is not None:
        return f"{command} FAILED after {took}: {outcome.error.title}. {outcome.state_sentence()}"
    if outcome.result is Result.PLANNED:
        return (
            f"plan: {outcome.previous or 'unknown'} -> {outcome.target} passes nginx -t; nothing was changed ({took})"
        )
    if report.dry_run:
        return f"plan: {outcome.target} is already live with these servers; nothing would change ({took})"
    if not outcome.changed:
        return f"{outcome.target} is already live with these servers: nothing changed ({took})"
    drain = f"; drain {report.drain.outcome}" if report.drain else ""
    verb = "rolled back" if command == "rollback" else "swapped"
    return f"{verb} {outcome.previous or 'unknown'} -> {outcome.active} in {took}{drain}"


def _print_error(exc: SwapError, err: TextIO) -> None:
    print(f"error: {exc.cause}", file=err)
    if exc.fix:
        print(f"fix: {exc.fix}", file=err)
    # Nginx's own output (e.g. from nginx -t), once per distinct message (timestamps and pids differ).
    seen: set[str] = set()
    for line in exc.detail.strip().splitlines():
        key = _NGINX_PREFIX.sub(r"[\1] ", line)
        if key.strip() and key not in seen:
            seen.add(key)
            print(f"  | {line}", file=err)


def _run_swap(args: argparse.Namespace, options: SwapOptions, out: TextIO, err: TextIO) -> int:
    targets = targets_of(args)
    with contextlib.ExitStack() as stack:
        members = [
            (target, ScriptedHost(stack.enter_context(transport_for(args, target)), sudo=args.sudo))
            for target in targets
        ]
        engine = FleetEngine(members, PlainObserver(lambda line: print(line, file=err, flush=True)))
        code = EXIT_OK
        try:
            if args.command == "rollback":
                engine.rollback(options)
            elif args.command == "plan":
                engine.plan(options)
            else:
                engine.swap(options)
        except SwapError as exc:
            _print_error(exc, err)
            code = EXIT_INPUT if isinstance(exc, InputError) else EXIT_FAILED
        report = engine.last_report
        assert report is not None
        if args.json:
            print(json.dumps(report.to_dict(), indent=2), file=out)
        elif args.command == "plan" and report.config_diff:
            print(report.config_diff, end="" if report.config_diff.endswith("\n") else "\n", file=out)
        print(_summary(args.command, report), file=err if args.json or code else out)
        if len(report.lbs) > 1 and not args.json:
            for lb in report.lbs:
                print(_lb_line(lb), file=err if code else out)
        return code


def _lb_line(lb: LbOutcome) -> str:
    after = lb.after or "unknown"
    what = "restored" if lb.restored else "changed" if lb.changed else "unchanged"
    line = f"  {lb.target}: {lb.before or 'unknown'} -> {after} ({what})"
    return line + (f": {lb.error.cause}" if lb.error else "")


def _run_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    targets = targets_of(args)
    statuses = []
    for index, target in enumerate(targets):
        if index and not args.json:
            print(file=out)  # one block per load balancer
        statuses.append(_status_of(args, target, out))
    if args.json:
        print(json.dumps(statuses[0] if len(statuses) == 1 else statuses, indent=2), file=out)
    return EXIT_OK


def _status_of(args: argparse.Namespace, target: str, out: TextIO) -> dict[str, Any]:
    given = parse_config_path("config-path", args.config_path) if args.config_path.strip() else None
    upstream = parse_name("upstream", args.upstream)
    with transport_for(args, target) as transport:
        host = ScriptedHost(transport, sudo=args.sudo)
        config_path = given or preflight.discover(preflight.config_of(host.dump_config()), upstream)
        probe, state = Engine(host).status(config_path, upstream)
        address = marker_address(upstream)
        served = host.marker_generation(address)
    generation = state.generation if state else None
    status: dict[str, Any] = {
        "target": transport.description,
        "config_path": config_path,
        "nginx_version": probe.nginx_version,
        "master_pid": probe.master_pid,
        "pid_file": probe.pid_file,
        "master_problem": probe.master_problem or None,
        "managed_file": probe.managed_file is not None,
        "live": state.live if state else None,
        "inferred": bool(state and state.inferred),
        "previous": state.previous if state else None,
        "weights": state.weights if state else {},
        "blue": list(state.blue) if state else [],
        "green": list(state.green) if state else [],
        "generation": generation,
        "marker": {"address": address, "answer": served, "matches_file": served is not None and served == generation},
        "staging": {
            "upstream": state.staging_upstream if state else None,
            "slot": state.staging if state else None,
        },
    }
    if args.json:
        return status
    weights = ", ".join(f"{slot} {percent}%" for slot, percent in status["weights"].items()) or "-"
    if served is None:
        marker = f"not answering on {address}"
    elif served == generation:
        marker = f"answers {served}: Nginx serves this file"
    else:
        marker = (
            f"answers {served}, the file says {generation}: Nginx serves another config (reload pending or refused)"
        )
    rows = [
        ("target", status["target"]),
        ("nginx", probe.nginx_version),
        ("master", f"pid {probe.master_pid} (from {probe.pid_file})" if probe.master_pid else probe.master_problem),
        ("config", config_path if probe.managed_file is not None else f"{config_path} (missing)"),
        ("live slot", _live(status)),
        ("weights", weights),
        ("blue", _servers(status["blue"], status["weights"].get("blue"))),
        ("green", _servers(status["green"], status["weights"].get("green"))),
        ("generation", generation or "-"),
        ("marker", marker),
        ("routes", _routes(upstream, status)),
    ]
    for name, value in rows:
        print(f"{name + ':':<12} {value}", file=out)
    return status


def _run_lock(args: argparse.Namespace, out: TextIO) -> int:
    given = parse_config_path("config-path", args.config_path) if args.config_path.strip() else None
    upstream = parse_name("upstream", args.upstream)
    with transport_for(args) as transport:
        host = ScriptedHost(transport, sudo=args.sudo)
        config_path = given or preflight.discover(preflight.config_of(host.dump_config()), upstream)
        where = lock_dir_for(config_path)
        lock = host.lock_status(where) if args.action == "status" else host.break_lock(where)
    # The owner text was read on the LB: untrusted, shown printable only (no newline, no escape).
    holder = printable(lock.holder, 200) if lock.held else ""
    since = _utc(lock.since) if lock.held else None
    status = {
        "lock": where,
        "held": lock.held,
        "holder": holder or None,
        "since": since,  # ISO 8601, UTC, the LB's clock
        "age_s": lock.age_s,
        "lease_left_s": lock.left_s,
        "run_url": _run_url(holder),
        "broken": lock.held if args.action == "break" else False,
    }
    if args.json:
        print(json.dumps(status, indent=2), file=out)
        return EXIT_OK
    if not lock.held:
        print(f"{where}: free" + (": nothing to break" if args.action == "break" else ""), file=out)
        return EXIT_OK
    print(f"{where}: " + ("broke the lock; it was held" if args.action == "break" else "held"), file=out)
    for name, value in _lock_rows(status, broken=args.action == "break"):
        print(f"  {name + ':':<12} {value}", file=out)
    return EXIT_OK


_RUN_URL = re.compile(
    r"https?://[A-Za-z0-9.:-]+(?:/[A-Za-z0-9._-]+){2}/actions/runs/[0-9]+(?:/attempts/[0-9]+)?(?= |$)"
)


def _run_url(holder: str) -> str | None:
    """The GitHub run's URL a holder's text starts with (``run._owner``: "URL (stamp)"), if any."""
    match = _RUN_URL.match(holder)
    return match.group(0) if match else None


def _utc(unix: int | None) -> str | None:
    if unix is None:
        return None
    with contextlib.suppress(OverflowError, OSError, ValueError):  # a year past 9999 is not a time
        return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _span(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _lock_rows(status: dict[str, Any], *, broken: bool) -> list[tuple[str, str]]:
    age = status["age_s"]
    ago = f"{_span(age)} ago" if age is not None and age >= 0 else "age unknown"
    left = status["lease_left_s"]
    if left is None:
        lease = "unknown"
    elif left >= 0 and broken:
        lease = f"{_span(left)} when broken (a holder still running loses the lock at its next renewal)"
    elif left >= 0:
        lease = f"{_span(left)} (its holder renews it every few seconds while it runs)"
    else:
        lease = f"none, it ended {_span(-left)} ago: the holder died; the next swap takes the lock over"
    return [
        ("holder", status["holder"] or "unknown"),
        ("since", f"{status['since'] or 'unknown'} ({ago}, the LB's clock)"),
        ("lease left", lease),
        ("run", status["run_url"] or "- (not a GitHub Actions run)"),
    ]


def _run_adopt(args: argparse.Namespace, out: TextIO) -> int:
    if not args.config_path.strip():
        raise InputError("config-path", "adopt needs the site file that holds the upstream", "pass --config-path")
    site = parse_config_path("config-path", args.config_path)
    upstream = parse_name("upstream", args.upstream)
    with transport_for(args) as transport:
        new_path = adopt_site.move_out(ScriptedHost(transport, sudo=args.sudo), site, upstream)
    print(
        f"moved 'upstream {upstream}' out of {site} into {new_path}, included where it was; nginx -t passes; "
        f"the site's old bytes are in {site}.previous. Swap with --config-path {new_path} (or leave it empty).",
        file=out,
    )
    return EXIT_OK


def _routes(upstream: str, status: dict[str, Any]) -> str:
    live = f"{upstream} -> {status['live'] or 'unknown'}"
    staging = status["staging"]
    if not staging["upstream"]:
        return f"{live}; no staging upstream"
    return f"{live}; {staging['upstream']} -> {staging['slot'] or 'unknown'} (staging: the idle slot)"


def _live(status: dict[str, Any]) -> str:
    if status["inferred"]:
        return f"{status['live'] or 'unknown'} (inferred from down/weights: a hand-written upstream, adopted on the first swap)"
    return f"{status['live'] or 'unknown'} (previous: {status['previous'] or '-'})"


def _servers(servers: list[str], percent: int | None) -> str:
    if not servers:
        return "-"
    return ", ".join(servers) + (" (down)" if percent == 0 else "")


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if args.command == "status":
            return _run_status(args, out, err)
        if args.command == "adopt":
            return _run_adopt(args, out)
        if args.command == "lock":
            return _run_lock(args, out)
        if args.command == "sudo-setup":
            print(cut_helper(args.nginx) if args.helper else "\n".join(sudoers_lines(args.user, args.nginx)), file=out)
            return EXIT_OK
        options = swap_options(args)
        return _run_swap(args, options, out, err)
    except SwapError as exc:  # raised before the engine ran: inputs, transport, status
        _print_error(exc, err)
        return EXIT_INPUT if isinstance(exc, InputError) else EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_INTERRUPTED
