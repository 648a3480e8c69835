"""Durations as users write them: ``30s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Return seconds; raise ``ValueError`` naming the accepted forms."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a duration; write e.g. 30s, 500ms, 2m or a number of seconds")
    value, unit = match.groups()
    return float(value) * _UNITS[unit or "s"]
