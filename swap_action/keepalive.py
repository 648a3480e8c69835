"""What Nginx does with its clients' keep-alive connections at a reload, and ``keepalive_min_timeout``.

At a reload the old workers close their idle keep-alive client connections at once; a client that
sends on one at that instant gets a reset or EOF, and one that never retries (Python ``requests``,
``httpx``, Node's ``fetch``) sees an error. Nginx 1.27.4 added ``keepalive_min_timeout``: a
connection used within that time is not closed on a worker's graceful shutdown, so the old worker
answers a request on it a while longer, through the *old* config (the old slot). The swap accounts
for it exactly: the drain hook, which tells the old slot to refuse new work, is called only once
that time has passed since the switch was confirmed.
"""

from __future__ import annotations

import re

from .nginxconf import Config, Directive

SUPPORTED_FROM = (1, 27, 4)
RECOMMENDED = "keepalive_min_timeout 1s;"
ADVICE = (
    f"clients that never retry (Python requests, httpx, Node's fetch) can get an error on a reused "
    f"connection at each reload: '{RECOMMENDED}' in the http block keeps a recently used connection open "
    "through the old workers' shutdown"
)
EXPOSURE = (
    "Nginx {version} predates keepalive_min_timeout (1.27.4): at each reload its old workers close idle "
    "keep-alive connections, and a client that never retries (Python requests, httpx, Node's fetch) can "
    "get an error on one (measured here on 1.22: 0 to 4 errors per such client in about 2,400 requests "
    "through 10 swaps); clients that retry once (browsers, urllib3, aiohttp) saw none"
)
_UNITS = {"ms": 0.001, "": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_TIME = re.compile(r"(\d+)(ms|s|m|h|d|w|)")


def supported(nginx_version: str) -> bool | None:
    """Whether ``nginx version: nginx/X.Y.Z`` has the directive (None: the version is not readable)."""
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", nginx_version)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups()) >= SUPPORTED_FROM


def seconds(value: str) -> float | None:
    """Nginx's time syntax (``1s``, ``500ms``, ``1m30s``, ``2``) in seconds; None when not one."""
    if not value or _TIME.sub("", value):
        return None
    return sum(int(number) * _UNITS[unit] for number, unit in _TIME.findall(value))


def min_timeout(config: Config) -> float:
    """The largest ``keepalive_min_timeout`` anywhere in the config, in seconds (0: not set). The
    largest bounds how long any old worker may still answer a recently used connection."""
    found = 0.0

    def visit(directives: list[Directive]) -> None:
        nonlocal found
        for directive in directives:
            if directive.name == "keepalive_min_timeout" and directive.args:
                found = max(found, seconds(directive.args[0].value) or 0.0)
            if directive.block:
                visit(directive.block)

    for path in config.files:
        visit(config.parsed(path))
    return found
