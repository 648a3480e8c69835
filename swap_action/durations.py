"""Durations as users write them: ``30s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,6})?)\s*(ms|s|m|h)?\s*$", re.ASCII)
MAX_SECONDS = 24 * 3600.0  # no wait of a swap is longer than a day (a lock's deadline is built from them)


def parse_duration(text: str) -> float:
    """Return seconds; raise ``ValueError`` naming the accepted forms."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"'{text[:40]}' is not a duration; write e.g. 30s, 500ms, 2m or a number of seconds")
    value, unit = match.groups()
    seconds = float(value) * _UNITS[unit or "s"]
    if seconds > MAX_SECONDS:
        raise ValueError(f"'{text}' is longer than a day; write at most 24h")
    return seconds
