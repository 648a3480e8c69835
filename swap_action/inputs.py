"""Validation of user input, done before anything on the load balancer is touched.

Only values that can be spliced into an Nginx config safely get through: server addresses are
``host:port`` (a DNS name, an IPv4 address or a bracketed IPv6 address), names are identifiers,
so no newline, ``;``, ``{``, ``}``, quote or space can ever reach the rendered config.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .durations import parse_duration
from .errors import InputError
from .redact import redact_credentials

SLOTS = ("blue", "green")

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\d{{1,3}}(?:\.\d{{1,3}}){{3}}|\[[0-9A-Fa-f:.]+\])"
# re.ASCII: without it \d also matches non-ASCII digits (e.g. fullwidth), which would reach the config.
_ADDRESS = re.compile(rf"^(?P<host>{_HOST}):(?P<port>\d{{1,5}})$", re.ASCII)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")
_CONFIG_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+$", re.ASCII)


def parse_addresses(name: str, text: str) -> tuple[str, ...]:
    """Split a list of ``host:port`` (commas, spaces or newlines) and validate each one."""
    items = [item for item in re.split(r"[\s,]+", text.strip()) if item]
    if not items:
        raise InputError(name, "no server given", f"set '{name}' to one or more host:port, e.g. {name}:8080")
    seen: list[str] = []
    for item in items:
        match = _ADDRESS.match(item)
        if not match or not 0 < int(match.group("port")) < 65536:
            raise InputError(
                name,
                f"'{_printable(item)}' is not a server address",
                "write host:port (a DNS name, IPv4 or [IPv6] address and a port 1-65535), several separated by commas",
            )
        if item in seen:
            raise InputError(name, f"'{item}' is listed twice", "list each server once")
        seen.append(item)
    return tuple(seen)


def parse_slot(name: str, text: str, *, allow_auto: bool = False) -> str:
    value = text.strip().lower()
    allowed = (*SLOTS, "auto") if allow_auto else SLOTS
    if value not in allowed:
        raise InputError(name, f"'{_printable(text)}' is not a slot", f"use one of: {', '.join(allowed)}")
    return value


def parse_name(name: str, text: str) -> str:
    value = text.strip()
    if not _NAME.match(value):
        raise InputError(
            name,
            f"'{_printable(text)}' is not a valid Nginx upstream name",
            "use letters, digits, '_' and '-', starting with a letter or '_'",
        )
    return value


def parse_steps(name: str, text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(part) for part in re.split(r"[\s,]+", text.strip()) if part)
    except ValueError:
        raise InputError(name, f"'{_printable(text)}' is not a list of percentages", "write e.g. 10,50,100") from None
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps):
        raise InputError(
            name,
            f"'{_printable(text)}': every step must be 1-100 and the last one 100",
            "write increasing percentages of traffic for the target slot, ending at 100, e.g. 10,50,100",
        )
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise InputError(name, f"'{text}': steps must increase", "write e.g. 10,50,100")
    return steps


def parse_seconds(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(name, str(exc), "write e.g. 30s, 500ms or 2m") from None


def parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off", ""):
        return False
    raise InputError(name, f"'{_printable(text)}' is not a boolean", "use true or false")


def parse_http_path(name: str, text: str) -> str:
    value = text.strip()
    if not _PATH.match(value):
        raise InputError(name, f"'{_printable(text)}' is not an HTTP path", "write a path like /healthz")
    return value


def parse_url(name: str, text: str) -> str:
    """An http(s) URL; it is handed to curl on the LB, so nothing else (no ``-option``, no ``file://``).

    Basic-auth credentials (``http://user:pass@host/``) are accepted and sent; wherever the URL is
    shown the password is ``***`` (``SwapOptions.shown_verify_url``, ``redact.redact_credentials``).
    """
    value = text.strip()
    if not _URL.match(value) or not _has_host_and_port(value):
        raise InputError(
            name,
            f"{_shown_url(text)} is not an http:// or https:// URL",
            "write a full URL such as http://127.0.0.1/ (it is requested from the LB host); "
            "percent-encode '@', ':', '/', '?' and '#' in a user name or password (%40, %3A, %2F, %3F, %23)",
        )
    return value


MAX_HOOK_BYTES = 16 * 1024


def parse_hook_command(name: str, text: str) -> str:
    """A hook: a shell command (one line or a script block) run on the runner by ``sh -c``. It is
    the workflow author's own code, like a ``run:`` step; only what no shell reads sanely is refused."""
    value = text.strip()
    if "\x00" in value or len(value.encode()) > MAX_HOOK_BYTES:
        raise InputError(
            name,
            "holds a NUL byte" if "\x00" in value else f"is longer than {MAX_HOOK_BYTES} bytes",
            "call a script from the repository instead, e.g. ./scripts/migrate.sh",
        )
    return value


def parse_targets(name: str, text: str) -> tuple[str, ...]:
    """One or more LB targets, one per line or comma-separated (a fleet), each listed once."""
    items = [item.strip() for item in re.split(r"[\n,]+", text) if item.strip()]
    if not items:
        raise InputError(name, "no load balancer given", "set target to ssh://user@host, docker://<container> or local")
    for item in items:
        if not (item.startswith(("docker://", "ssh://")) or item == "local"):
            raise InputError(
                name,
                f"'{_printable(item)}' is not a target",
                "use ssh://user@host[:port], docker://<container> or local; several separated by commas or newlines",
            )
    seen = [item for index, item in enumerate(items) if item in items[:index]]
    if seen:
        raise InputError(name, f"'{_printable(seen[0])}' is listed twice", "list each load balancer once")
    return tuple(items)


def _has_host_and_port(url: str) -> bool:
    """A host, and a port that is a number: a '/', '?' or '#' in a password would end the host part early."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when it is not a number 0-65535
    except ValueError:
        return False
    return bool(parts.hostname)


def _shown_url(text: str) -> str:
    """A refused URL in its error: with an '@' it may hold a password that cannot be told apart, so it is not echoed."""
    return "the URL (not shown: it has an '@', perhaps a password)" if "@" in text else f"'{_printable(text)}'"


def parse_config_path(name: str, text: str) -> str:
    value = text.strip()
    if not _CONFIG_PATH.match(value) or "/../" in value or value.endswith("/"):
        raise InputError(
            name,
            f"'{_printable(text)}' is not an absolute file path",
            "give the absolute path of the upstream file Nginx includes, e.g. /etc/nginx/conf.d/upstream.conf",
        )
    return value


def parse_drain_hook(name: str, text: str) -> tuple[str, str] | None:
    """``[METHOD ]/path`` called on each server of the old slot; empty means none."""
    value = text.strip()
    if not value:
        return None
    parts = value.split()
    method, path = ("POST", parts[0]) if len(parts) == 1 else (parts[0].upper(), parts[1])
    if len(parts) > 2 or method not in ("GET", "POST", "PUT", "DELETE") or not _PATH.match(path):
        raise InputError(
            name,
            f"'{_printable(text)}' is not a drain hook",
            "write a path, optionally after a method: POST /admin/drain",
        )
    return method, path


def _printable(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")[:80]


@dataclass(frozen=True)
class Slots:
    """The servers of each slot."""

    blue: tuple[str, ...]
    green: tuple[str, ...]

    def servers(self, slot: str) -> tuple[str, ...]:
        return self.blue if slot == "blue" else self.green

    def __post_init__(self) -> None:
        shared = set(self.blue) & set(self.green)
        if shared:
            raise InputError("green", f"{', '.join(sorted(shared))} is in both slots", "give each slot its own servers")


def other(slot: str) -> str:
    return "green" if slot == "blue" else "blue"


@dataclass(frozen=True)
class SwapOptions:
    """Everything a swap needs, validated."""

    config_path: str | None  # None: the file Nginx loads that defines the upstream (found by the preflight)
    upstream: str
    slots: Slots
    to: str = "auto"
    steps: tuple[int, ...] = (100,)
    step_pause: float = 0.0
    health_path: str | None = "/healthz"
    verify_url: str | None = None  # sent as given (credentials included); shown as shown_verify_url
    verify_expect: str | None = None
    drain_timeout: float = 30.0
    drain_hook: tuple[str, str] | None = None
    drain_policy: str = "cut"
    rollback_on_failure: bool = True
    dry_run: bool = False
    template: str | None = None
    lock_timeout: float = 120.0
    break_lock: bool = False
    sudo: bool = False  # the LB's root commands through 'sudo -n' (README "Least privilege")
    confirm_timeout: float = 10.0
    # Commands run on the runner (or the CLI's host) around the switch (swap_action/hooks.py).
    pre_switch: str | None = None  # after the health gate, before any LB changes: a failure changes nothing
    post_switch: str | None = None  # after verify, before the drain: a failure restores every LB
    post_drain: str | None = None  # after the drain: a failure is reported, the swap stays
    hook_timeout: float = 300.0
    # The second upstream that always points at the idle slot ('<upstream>_staging' by default for
    # the built-in template; None: none). An adopted, hand-written file gets one only when asked.
    staging_upstream: str | None = None
    staging_requested: bool = False  # staging-upstream was given explicitly (adoption adds it then)
    staging_url: str | None = None  # how a person (and the pre-switch hook) reaches the staging route

    def hook_command(self, name: str) -> str | None:
        """The command of the hook ``name`` (pre-switch, post-switch or post-drain); None: unset."""
        return {"pre-switch": self.pre_switch, "post-switch": self.post_switch, "post-drain": self.post_drain}[name]

    @property
    def shown_verify_url(self) -> str | None:
        """verify-url as logs, errors and reports show it: a password in it is ``***``."""
        return redact_credentials(self.verify_url) if self.verify_url else None


def check_drain_policy(name: str, text: str) -> str:
    value = text.strip().lower()
    if value not in ("cut", "wait"):
        raise InputError(name, f"'{_printable(text)}' is not a drain policy", "use cut or wait")
    return value


def _optional(parse: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    return lambda name, text: parse(name, text) if text.strip() else None


def _text(name: str, text: str) -> str | None:
    return text.strip() or None


@dataclass(frozen=True)
class Input:
    """One input, as the action, the CLI and the simulation all take it."""

    name: str  # the action's input name; the CLI's flag is --NAME
    default: str  # as users write it; "" for none
    help: str  # action.yml's description
    parse: Callable[[str, str], Any] | None = None  # (name, text) -> value; None: handled by its face
    secret: bool = False  # masked in logs
    empty_is_a_value: bool = False  # an explicit "" means something (skip), not "use the default"
    required: bool = False

    @property
    def env(self) -> str:
        """The variable action.yml's runs.env sets for it."""
        return "BG_" + self.name.upper().replace("-", "_")


# The one table of inputs: action.yml is checked against it (tests/unit/test_action_yml.py).
INPUTS: tuple[Input, ...] = (
    Input(
        "target",
        "",
        "Where Nginx runs: `ssh://user@host[:port]`, `docker://<container>` (through the Docker socket of the runner) or `local` (self-hosted runner on the LB host). Several load balancers (a fleet): one per line or comma-separated; they are swapped all or nothing.",
        required=True,
    ),
    Input(
        "ssh-key",
        "",
        "Unencrypted OpenSSH private key (ed25519, ecdsa or rsa) for an `ssh://` target. Pass a secret; every line is masked in the log.",
        secret=True,
    ),
    Input(
        "known-hosts",
        "",
        "The LB host's public key lines (`ssh-keyscan` output checked out of band) for an `ssh://` target; unknown host keys are refused. Masked in the log.",
        secret=True,
    ),
    Input(
        "config-path",
        "",
        "Absolute path on the LB of the upstream file to manage, included in Nginx's http context. Empty: the file "
        "the running Nginx loads (nginx -T) that carries the swap's state line, else the one that defines the upstream.",
        _optional(parse_config_path),
    ),
    Input(
        "template",
        "",
        "Path, relative to the repository root (GITHUB_WORKSPACE), of a jinja2 template for the upstream block; empty uses the built-in one. Check out the repository first.",
    ),
    Input("upstream", "app", "Name of the Nginx upstream block the site proxies to.", parse_name),
    Input(
        "blue",
        "",
        "Servers of the blue slot, one or more host:port separated by commas; empty keeps the ones the managed file records.",
        _optional(parse_addresses),
    ),
    Input(
        "green",
        "",
        "Servers of the green slot, one or more host:port separated by commas; empty keeps the ones the managed file records.",
        _optional(parse_addresses),
    ),
    Input(
        "to",
        "auto",
        "Slot to make live: `blue`, `green` or `auto` (the one that is not live now).",
        lambda name, text: parse_slot(name, text, allow_auto=True),
    ),
    Input(
        "steps",
        "100",
        "Percentages of traffic for the target slot, increasing and ending at 100 (e.g. `10,50,100` for a canary); `100` switches at once.",
        parse_steps,
    ),
    Input("step-pause", "0s", "Pause between canary steps (e.g. `30s`, `500ms`, `2m`).", parse_seconds),
    Input(
        "health-path",
        "/healthz",
        "Path requested from the LB on every server of the target slot before the switch; it must answer 2xx. Empty skips the health gate.",
        _optional(parse_http_path),
        empty_is_a_value=True,
    ),
    Input(
        "verify-url",
        "",
        "URL requested from the LB host after each step (e.g. `http://127.0.0.1/`); a failure restores the previous config. Empty skips verification.",
        _optional(parse_url),
    ),
    Input(
        "verify-expect",
        "",
        "What verify-url must answer: a 3-digit status code, or text the body must contain after the last step. Empty accepts any 2xx/3xx.",
        _text,
    ),
    Input(
        "drain-timeout",
        "30s",
        "How long to wait for the old slot's connections and old Nginx workers to finish after the switch.",
        parse_seconds,
    ),
    Input(
        "drain-hook",
        "",
        "`[METHOD ]/path` called on each old-slot server right after the switch (e.g. `POST /admin/drain`), so it can close WebSockets cleanly. Empty calls nothing.",
        parse_drain_hook,
    ),
    Input(
        "drain-policy",
        "cut",
        "At the drain deadline: `cut` stops the old workers (their connections are closed), `wait` leaves them and reports it.",
        lambda name, text: check_drain_policy(name, text),
    ),
    Input(
        "rollback-on-failure",
        "true",
        "When a step after the first apply fails, restore the previous config and reload (named for the usual word; nothing is swapped back that was not changed).",
        parse_bool,
    ),
    Input(
        "dry-run",
        "false",
        "Only plan: read the live state, render and `nginx -t` the new config, print the diff; change nothing.",
        parse_bool,
    ),
    Input(
        "lock-timeout", "120s", "How long to wait for another swap on the same LB to release its lock.", parse_seconds
    ),
    Input(
        "sudo",
        "false",
        "Run the few commands a swap needs as root through `sudo -n` (`nginx -t -q`, `nginx -T`, `nginx -s reload`, the drain's cut helper), for an SSH or local user that is not root; the README gives the sudoers lines.",
        parse_bool,
    ),
    Input(
        "break-lock",
        "false",
        "Remove the LB's swap lock before taking it, whoever holds it (a run cancelled mid-swap frees it by itself within 15 s; use this only when you know no swap runs). The run's log names the holder it broke.",
        parse_bool,
    ),
    Input(
        "pre-switch",
        "",
        'Command run on the runner after the health gate and before any LB changes (e.g. a schema migration); a failure stops the run with nothing changed. The swap\'s facts are in its environment (`SWAP_*`, README "Hooks").',
        _optional(parse_hook_command),
    ),
    Input(
        "post-switch",
        "",
        "Command run on the runner after verify and before the drain (e.g. smoke tests through the LB); a failure restores the previous config on every LB.",
        _optional(parse_hook_command),
    ),
    Input(
        "post-drain",
        "",
        "Command run on the runner after the drain (e.g. stop the old version); a failure is reported, the swap stays.",
        _optional(parse_hook_command),
    ),
    Input(
        "hook-timeout", "5m", "How long each hook may run before it is stopped and counted as failed.", parse_seconds
    ),
    Input(
        "staging-upstream",
        "",
        "Name of a second upstream that always points at the idle slot (staging through the LB). Empty: `<upstream>_staging` in files the action renders, none in an adopted hand-written file; `none` turns it off.",
        _optional(parse_name),
    ),
    Input(
        "staging-url",
        "",
        "URL of the staging route through the LB (e.g. `https://staging.example.com`), given to the hooks as SWAP_STAGING_URL; display only, never requested by the action.",
        _optional(parse_url),
    ),
)
BY_NAME = {spec.name: spec for spec in INPUTS}


def defaults() -> dict[str, str]:
    return {spec.name: spec.default for spec in INPUTS}


def swap_options_from(raw: Mapping[str, str], *, template: str | None = None) -> SwapOptions:
    """``SwapOptions`` from values as users write them, keyed by input name; a missing or empty
    value takes the table's default (except where "" means skip). Raises ``InputError`` naming
    the first bad one."""
    values: dict[str, Any] = {}
    for spec in INPUTS:
        if spec.parse is None:
            continue
        given = raw.get(spec.name)
        text = given if given is not None and (given.strip() or spec.empty_is_a_value) else spec.default
        values[spec.name] = spec.parse(spec.name, text)
    staging = values["staging-upstream"]
    if staging in ("none", "off"):
        staging_name: str | None = None
    else:
        staging_name = staging or f"{values['upstream']}_staging"
        if staging_name == values["upstream"]:
            raise InputError(
                "staging-upstream",
                f"'{staging_name}' is the live upstream's own name",
                "give the staging route its own name",
            )
    if values["verify-expect"] and not values["verify-url"]:
        raise InputError("verify-expect", "is set but verify-url is not", "set verify-url too, or drop verify-expect")
    return SwapOptions(
        config_path=values["config-path"],
        upstream=values["upstream"],
        slots=Slots(blue=values["blue"] or (), green=values["green"] or ()),
        to=values["to"],
        steps=values["steps"],
        step_pause=values["step-pause"],
        health_path=values["health-path"],
        verify_url=values["verify-url"],
        verify_expect=values["verify-expect"],
        drain_timeout=values["drain-timeout"],
        drain_hook=values["drain-hook"],
        drain_policy=values["drain-policy"],
        rollback_on_failure=values["rollback-on-failure"],
        dry_run=values["dry-run"],
        template=template,
        lock_timeout=values["lock-timeout"],
        break_lock=values["break-lock"],
        sudo=values["sudo"],
        pre_switch=values["pre-switch"],
        post_switch=values["post-switch"],
        post_drain=values["post-drain"],
        hook_timeout=values["hook-timeout"],
        staging_upstream=staging_name,
        staging_requested=bool(staging) and staging_name is not None,
        staging_url=values["staging-url"],
    )
