"""The one output format of every LB script, parsed here and nowhere else.

Each line is a record::

    NAME=VALUE        a field; VALUE is the rest of the line (a name may repeat)
    NAME:LENGTH       a blob: exactly LENGTH bytes follow, then a newline

Whatever was read on the LB (a file, an HTTP body, Nginx's output) travels only as a blob, so its
bytes can never be taken for a field. Every value is untrusted: callers convert with the helpers
below, which never raise on garbage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(rb"^([a-z_]+)([=:])")


class WireError(ValueError):
    """The output does not follow the format (a script failed to run, or was cut short)."""


@dataclass
class Records:
    fields: list[tuple[str, str]] = field(default_factory=list)
    blobs: list[tuple[str, bytes]] = field(default_factory=list)
    order: list[tuple[str, int]] = field(default_factory=list)  # (name, index into fields or blobs)

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.fields if key == name), default)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.fields)

    def blob(self, name: str, default: str = "") -> str:
        return next((value.decode(errors="replace") for key, value in self.blobs if key == name), default)

    def blob_bytes(self, name: str) -> bytes | None:
        return next((value for key, value in self.blobs if key == name), None)

    def number(self, name: str) -> int | None:
        return to_int(self.get(name))

    def groups(self, start: str) -> list[Records]:
        """Records split at each field named ``start`` (e.g. one group per ``url=``)."""
        groups: list[Records] = []
        for name, index in self.order:
            kind, _, key = name.partition(" ")
            if kind == "f" and key == start:
                groups.append(Records())
            if not groups:
                continue
            if kind == "f":
                groups[-1].add_field(*self.fields[index])
            else:
                groups[-1].add_blob(*self.blobs[index])
        return groups

    def add_field(self, name: str, value: str) -> None:
        self.order.append((f"f {name}", len(self.fields)))
        self.fields.append((name, value))

    def add_blob(self, name: str, data: bytes) -> None:
        self.order.append((f"b {name}", len(self.blobs)))
        self.blobs.append((name, data))


def parse(data: bytes) -> Records:
    records = Records()
    position = 0
    while position < len(data):
        end = data.find(b"\n", position)
        line = data[position : len(data) if end < 0 else end]
        position = len(data) if end < 0 else end + 1
        match = _NAME.match(line)
        if not match:
            if line.strip():
                raise WireError(f"unexpected output from the LB: {line[:120].decode(errors='replace')!r}")
            continue
        name = match.group(1).decode()
        rest = line[match.end() :]
        if match.group(2) == b"=":
            records.add_field(name, rest.decode(errors="replace"))
            continue
        length = to_int(rest.decode(errors="replace"))
        if length is None:
            raise WireError(f"unexpected output from the LB: {line[:120].decode(errors='replace')!r}")
        if position + length > len(data):
            raise WireError(f"the LB's output was cut short in '{name}'")
        records.add_blob(name, data[position : position + length])
        position += length + 1  # the blob's closing newline
    return records


def to_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def printable(text: str, limit: int = 120) -> str:
    """A value read from the LB, made safe to show (no control characters, bounded)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]
