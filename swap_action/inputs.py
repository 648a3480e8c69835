"""Validation of user input, done before anything on the load balancer is touched.

Only values that can be spliced into an Nginx config safely get through: server addresses are
``host:port`` (a DNS name, an IPv4 address or a bracketed IPv6 address), names are identifiers,
so no newline, ``;``, ``{``, ``}``, quote or space can ever reach the rendered config.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .durations import parse_duration
from .errors import InputError

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
    """An http(s) URL; it is handed to curl on the LB, so nothing else (no ``-option``, no ``file://``)."""
    value = text.strip()
    if not _URL.match(value):
        raise InputError(
            name,
            f"'{_printable(text)}' is not an http:// or https:// URL",
            "write a full URL such as http://127.0.0.1/ (it is requested from the LB host)",
        )
    return value


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

    config_path: str
    upstream: str
    slots: Slots
    to: str = "auto"
    steps: tuple[int, ...] = (100,)
    step_pause: float = 0.0
    health_path: str | None = "/healthz"
    verify_url: str | None = None
    verify_expect: str | None = None
    drain_timeout: float = 30.0
    drain_hook: tuple[str, str] | None = None
    drain_policy: str = "cut"
    rollback_on_failure: bool = True
    dry_run: bool = False
    template: str | None = None
    lock_timeout: float = 120.0
    confirm_timeout: float = 10.0


def check_drain_policy(name: str, text: str) -> str:
    value = text.strip().lower()
    if value not in ("cut", "wait"):
        raise InputError(name, f"'{_printable(text)}' is not a drain policy", "use cut or wait")
    return value


def swap_options_from(raw: Mapping[str, str], *, template: str | None = None) -> SwapOptions:
    """``SwapOptions`` from values as users write them, keyed by the action's input names (the
    CLI's flags carry the same names). Raises ``InputError`` naming the first bad one."""

    def value(name: str) -> str:
        return (raw.get(name) or "").strip()

    verify_url = parse_url("verify-url", value("verify-url")) if value("verify-url") else None
    if value("verify-expect") and not verify_url:
        raise InputError("verify-expect", "is set but verify-url is not", "set verify-url too, or drop verify-expect")
    return SwapOptions(
        config_path=parse_config_path("config-path", value("config-path")),
        upstream=parse_name("upstream", value("upstream") or "app"),
        slots=Slots(
            blue=parse_addresses("blue", value("blue")) if value("blue") else (),
            green=parse_addresses("green", value("green")) if value("green") else (),
        ),
        to=parse_slot("to", value("to") or "auto", allow_auto=True),
        steps=parse_steps("steps", value("steps") or "100"),
        step_pause=parse_seconds("step-pause", value("step-pause") or "0s"),
        health_path=parse_http_path("health-path", value("health-path")) if value("health-path") else None,
        verify_url=verify_url,
        verify_expect=value("verify-expect") or None,
        drain_timeout=parse_seconds("drain-timeout", value("drain-timeout") or "30s"),
        drain_hook=parse_drain_hook("drain-hook", value("drain-hook")),
        drain_policy=check_drain_policy("drain-policy", value("drain-policy") or "cut"),
        rollback_on_failure=parse_bool("rollback-on-failure", value("rollback-on-failure") or "true"),
        dry_run=parse_bool("dry-run", value("dry-run") or "false"),
        template=template,
        lock_timeout=parse_seconds("lock-timeout", value("lock-timeout") or "120s"),
    )
