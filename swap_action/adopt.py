"""A hand-written upstream file, adopted as it is: the swap owns only which servers are ``down``,
their ``weight=``, the state line and the generation marker. Every other directive, server
parameter, comment and byte of the user's file stays as it was.

Which server is in which slot comes from the inputs (blue, green); without them, from the host
name (a first label ``blue`` or ``green``, or one ending in ``-blue``/``-green``), as status does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError, StateError
from .inputs import SLOTS, Slots
from .nginxconf import ConfigSyntaxError, Directive, parse
from .upstream import STATE_PREFIX, State, marker_block, parse_state, server_lines, state_for

HEADER = "# Managed by bluegreen-swap (adopted): a swap changes only down/weight= of the slots' servers.\n"
MARKER_COMMENT = "# Generation marker:"


@dataclass(frozen=True)
class UserServer:
    address: str
    down: bool
    weight: int
    directive: Directive


def find_upstream(text: str, name: str) -> Directive | None:
    try:
        directives = parse(text)
    except ConfigSyntaxError as exc:
        raise StateError(f"the managed file does not parse: {exc}", "fix it by hand; nginx -t shows where") from None
    return next((d for d in directives if d.name == "upstream" and d.values[:1] == [name] and d.block), None)


def user_servers(upstream: Directive) -> list[UserServer]:
    servers = []
    for directive in upstream.block or []:
        if directive.name != "server" or not directive.args:
            continue
        params = directive.values[1:]
        weights = [p.removeprefix("weight=") for p in params if p.startswith("weight=")]
        weight = int(weights[0]) if weights and weights[0].isdigit() else 1
        servers.append(UserServer(directive.args[0].value, "down" in params, weight, directive))
    return servers


def read_state(text: str, name: str, given: Slots) -> State | None:
    """What a managed file says is live: its state line, else inferred from a hand-written
    ``upstream name`` (None: the file defines no such upstream)."""
    return parse_state(text) if STATE_PREFIX in text else infer(text, name, given)


def slot_of_host(address: str) -> str | None:
    host = address.rsplit(":", 1)[0].strip("[]").split(".")[0].lower()
    for slot in SLOTS:
        if host == slot or host.endswith(f"-{slot}") or host.endswith(f"_{slot}"):
            return slot
    return None


def infer(text: str, name: str, given: Slots) -> State | None:
    """The state of a file the engine did not write (None: it defines no ``upstream name``)."""
    upstream = find_upstream(text, name)
    if upstream is None:
        return None
    servers = user_servers(upstream)
    slots: dict[str, list[str]] = {"blue": [], "green": []}
    for server in servers:
        slot = next((s for s in SLOTS if server.address in given.servers(s)), None) or slot_of_host(server.address)
        if slot:
            slots[slot].append(server.address)
    up = {slot: sum(s.weight for s in servers if s.address in slots[slot] and not s.down) for slot in SLOTS}
    total = sum(up.values())
    weights = {slot: round(100 * up[slot] / total) for slot in SLOTS} if total else {}
    live = max(SLOTS, key=lambda slot: up[slot]) if total and up["blue"] != up["green"] else None
    return State(
        live=live,
        weights=weights,
        blue=tuple(slots["blue"]),
        green=tuple(slots["green"]),
        generation="unknown",
        previous=None,
        adopted=True,
        inferred=True,
    )


def edit(
    text: str,
    *,
    upstream: str,
    slots: Slots,
    weights: dict[str, int],
    generation: str,
    previous: str | None,
    path: str | None = None,
) -> str:
    """The user's file with only the slots' ``down``/``weight=`` changed, our state line on top and
    our marker at the end (both replaced on later swaps)."""
    body = _user_part(text)
    block = find_upstream(body, upstream)
    if block is None:
        raise StateError(
            f"the managed file no longer defines 'upstream {upstream}'", "restore it, or pass the right 'upstream'"
        )
    wanted = {line.address: line for line in server_lines(slots, weights)}
    edits: list[tuple[int, int, str]] = []
    present = {server.address for server in user_servers(block)}
    missing = [line for address, line in wanted.items() if address not in present]
    if missing:
        # A slot's server the file does not list yet: a line of ours, before the block's '}'.
        indent = _indent(body, block)
        added = "".join(
            f"{indent}server {line.address}{' down' if line.down else (f' weight={line.weight}' if line.weight != 1 else '')};"
            f"  # added by bluegreen-swap: slot={line.slot}\n"
            for line in missing
        )
        close = block.end - 1  # the block's '}'
        line_start = body.rfind("\n", 0, close) + 1
        at = line_start if not body[line_start:close].strip() else close
        edits.append((at, at, added if at == line_start else "\n" + added))
    for server in user_servers(block):
        line = wanted.get(server.address)
        if line is None:
            continue  # not a slot's server (a backup, say): not ours to touch
        keep = [a for a in server.directive.args[1:] if a.value != "down" and not a.value.startswith("weight=")]
        params = [body[a.start : a.end] for a in keep]
        params += ["down"] if line.down else ([f"weight={line.weight}"] if line.weight != 1 else [])
        start = server.directive.args[0].end
        edits.append((start, server.directive.end, "".join(f" {p}" for p in params) + ";"))
    for start, end, replacement in sorted(edits, reverse=True):
        body = body[:start] + replacement + body[end:]
    state = state_for(slots, weights, generation, previous, adopted=True)
    return (
        HEADER
        + f"{STATE_PREFIX}{state.to_json()}\n"
        + body.rstrip("\n")
        + "\n\n"
        + marker_block(upstream, generation, path)
    )


def _indent(body: str, block: Directive) -> str:
    first = next(iter(block.block or []), None)
    if first is None:
        return "    "
    line_start = body.rfind("\n", 0, first.start) + 1
    return body[line_start : first.start] if not body[line_start : first.start].strip() else "    "


def _user_part(text: str) -> str:
    """The user's own text: without our two header lines and our marker block (from a later swap)."""
    lines = text.splitlines(keepends=True)
    while lines and (lines[0].startswith(STATE_PREFIX) or lines[0] == HEADER):
        lines.pop(0)
    body = "".join(lines)
    marker = body.rfind("\n" + MARKER_COMMENT)
    return body[: marker + 1] if marker >= 0 else body


def refuse_site_file(path: str, upstream: str) -> InputError:
    return InputError(
        "config-path",
        f"{path} defines 'upstream {upstream}' next to server blocks: a swap manages an upstream only in "
        "a file of its own (it adds a state line and a marker server to that file)",
        f"move the upstream into its own included file: python -m swap_action adopt --config-path {path} "
        f"--upstream {upstream} (it runs nginx -t, keeps a backup and restores everything on failure)",
    )


def split_site(text: str, upstream: str, new_path: str) -> tuple[str, str]:
    """A site file's text with ``upstream`` moved out: (the site with ``include new_path;`` where the
    block was, the upstream's own file). Every other byte of the site stays."""
    block = find_upstream(text, upstream)
    if block is None:
        raise InputError("upstream", f"the file defines no 'upstream {upstream}'", "pass the upstream's name")
    moved = text[block.start : block.end] + "\n"
    return text[: block.start] + f"include {new_path};" + text[block.end :], moved
