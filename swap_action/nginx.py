"""What Nginx's own messages mean: a hint with the fix for each known refusal."""

from __future__ import annotations

import re

from .errors import ConfigTestError

_HINTS = (
    (
        re.compile(r"\(13: Permission denied\)"),
        "nginx -t needs root here (it opens the pid file, logs and TLS keys as Nginx's master does): run as "
        "root, or as this user with sudo: true (--sudo) and the sudoers lines of the README's 'Least privilege'.",
    ),
    (
        re.compile(r'invalid parameter "weight=0"'),
        "Nginx rejects weight=0: a server that must get no traffic is written 'down' (or left out).",
    ),
    (
        re.compile(r"proxy_set_forwarded_for"),
        "$proxy_set_forwarded_for does not exist; the variable is $proxy_add_x_forwarded_for.",
    ),
    (
        re.compile(r"host not found in upstream"),
        "an upstream host does not resolve from the LB: Nginx resolves names only at (re)load; check the name or use an IP.",
    ),
    (
        re.compile(r"duplicate upstream"),
        "another file already defines this upstream name: pick another 'upstream' or remove the old definition.",
    ),
    (
        re.compile(r"unknown directive"),
        "the template renders a directive this Nginx does not know: check the template.",
    ),
    (
        re.compile(r"is not allowed here|directive is not allowed"),
        "the managed file is included in the http context; the template must render only upstream-level text.",
    ),
)


_IN_FILE = re.compile(r" in (?P<path>/[^\s:]+):\d+\s*$")


def hint_for(nginx_output: str, managed: str | None = None) -> str:
    """The fix for Nginx's refusal; with ``managed`` (the file the swap writes), an error that
    Nginx places in another file says so: that file is broken whatever the swap renders."""
    where = _IN_FILE.search(emerg_line(nginx_output))
    clash = "duplicate upstream" in nginx_output  # placed in the other file, caused by both
    if managed and where and where.group("path") != managed and not clash:
        path = where.group("path")
        return (
            f"the error is in {path}, a file this swap does not write ({managed} is): fix {path} "
            "(nginx -t fails without the swap too), then run the swap again."
        )
    for pattern, hint in _HINTS:
        if pattern.search(nginx_output):
            return hint
    return "fix the template or the inputs; the live config was not changed."


def candidate_error(output: str) -> ConfigTestError:
    """``nginx -t`` refused the candidate on its own: the live file was never touched."""
    return ConfigTestError(
        "nginx -t refused the new upstream config: " + emerg_line(output), hint_for(output), detail=output
    )


def emerg_line(output: str) -> str:
    for line in output.splitlines():
        if "[emerg]" in line:
            return line.split("[emerg]", 1)[1].strip()
    return output.strip().splitlines()[0] if output.strip() else "(no output)"
