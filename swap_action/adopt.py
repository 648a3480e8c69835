"""A hand-written upstream file, adopted as it is: the swap owns only which servers are ``down``,
their ``weight=``, the state line and the generation marker. Every other directive, server
parameter, comment and byte of the user's file stays as it was.

Which server is in which slot comes from the inputs (blue, green); without them, from the host
name (a first label ``blue`` or ``green``, or one ending in ``-blue``/``-green``), as status does.

The staging upstream (a second upstream that always points at the idle slot) is added to an adopted
file only when asked (``edit``'s ``staging_upstream``); one the file already defines is kept
pointing at the idle slot: its slot servers' lines change, every other byte of it stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError, StateError
from .inputs import SLOTS, Slots
from .nginxconf import ConfigSyntaxError, Directive, parse
from .upstream import STATE_PREFIX, State, marker_block, parse_state, server_lines, state_for

HEADER = "# Managed by bluegreen-swap (adopted): a swap changes only down/weight= of the slots' servers.\n"
MARKER_COMMENT = "# Generation marker:"
STAGING_MARK = "bluegreen-swap staging"  # the comment on the staging server lines a swap writes
# Parameters of a user's server line the staging copy leaves out: the swap owns down and weight=,
# and a backup of the live upstream is no staging server.
_NOT_FOR_STAGING = ("down", "backup")

Edit = tuple[int, int, str]  # (start, end, replacement) in the user's text


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


def read_state(text: str, name: str, given: Slots, *, staging_upstream: str | None = None) -> State | None:
    """What a managed file says is live: its state line, else inferred from a hand-written
    ``upstream name`` (None: the file defines no such upstream). Without a state line, a staging
    upstream (``staging_upstream``, by default ``<name>_staging``) is reported when the file
    defines one, with the slot its servers belong to."""
    return parse_state(text) if STATE_PREFIX in text else infer(text, name, given, staging_upstream=staging_upstream)


def slot_of_host(address: str) -> str | None:
    host = address.rsplit(":", 1)[0].strip("[]").split(".")[0].lower()
    for slot in SLOTS:
        if host == slot or host.endswith(f"-{slot}") or host.endswith(f"_{slot}"):
            return slot
    return None


def _slot_of(address: str, given: Slots) -> str | None:
    return next((s for s in SLOTS if address in given.servers(s)), None) or slot_of_host(address)


def infer(text: str, name: str, given: Slots, *, staging_upstream: str | None = None) -> State | None:
    """The state of a file the engine did not write (None: it defines no ``upstream name``)."""
    upstream = find_upstream(text, name)
    if upstream is None:
        return None
    servers = user_servers(upstream)
    slots: dict[str, list[str]] = {"blue": [], "green": []}
    for server in servers:
        slot = _slot_of(server.address, given)
        if slot:
            slots[slot].append(server.address)
    staging_name = staging_upstream or f"{name}_staging"
    staging_block = find_upstream(text, staging_name)
    staging_slots = {_slot_of(s.address, given) for s in user_servers(staging_block)} if staging_block else set()
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
        staging_upstream=staging_name if staging_block else None,
        staging=next(iter(staging_slots)) if len(staging_slots) == 1 else None,
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
    staging_upstream: str | None = None,
    staging_slot: str | None = None,
) -> str:
    """The user's file with only the slots' ``down``/``weight=`` changed, our state line on top and
    our marker at the end (both replaced on later swaps).

    With ``staging_upstream`` and ``staging_slot`` (the caller passes them only when the staging
    upstream was asked for, or the file defines it already): a file without ``upstream
    <staging_upstream>`` gets one after the user's upstream, its server lines copied from the
    user's for that slot (without ``down``, ``backup`` and ``weight=``), and the user's
    ``keepalive``; a file with one gets its slot servers' lines pointed at ``staging_slot``, every
    other byte of it kept. A slot without servers adds none and leaves an existing one as it is."""
    body = _user_part(text)
    block = find_upstream(body, upstream)
    if block is None:
        raise StateError(
            f"the managed file no longer defines 'upstream {upstream}'", "restore it, or pass the right 'upstream'"
        )
    wanted = {line.address: line for line in server_lines(slots, weights)}
    edits: list[Edit] = []
    present = {server.address for server in user_servers(block)}
    missing = [line for address, line in wanted.items() if address not in present]
    if missing:
        # A slot's server the file does not list yet: a line of ours, before the block's '}'.
        edits.append(
            _before_close(
                body,
                block,
                [
                    f"server {line.address}{' down' if line.down else (f' weight={line.weight}' if line.weight != 1 else '')};"
                    f"  # added by bluegreen-swap: slot={line.slot}"
                    for line in missing
                ],
            )
        )
    for server in user_servers(block):
        line = wanted.get(server.address)
        if line is None:
            continue  # not a slot's server (a backup, say): not ours to touch
        keep = [a for a in server.directive.args[1:] if a.value != "down" and not a.value.startswith("weight=")]
        params = [body[a.start : a.end] for a in keep]
        params += ["down"] if line.down else ([f"weight={line.weight}"] if line.weight != 1 else [])
        start = server.directive.args[0].end
        edits.append((start, server.directive.end, "".join(f" {p}" for p in params) + ";"))
    staging: tuple[str | None, str | None] = (None, None)
    if staging_upstream and staging_slot and staging_upstream != upstream:
        staging, more = _staging_edits(body, block, staging_upstream, slots, staging_slot)
        edits += more
    for start, end, replacement in sorted(edits, reverse=True):
        body = body[:start] + replacement + body[end:]
    state = state_for(
        slots, weights, generation, previous, adopted=True, staging_upstream=staging[0], staging=staging[1]
    )
    return (
        HEADER
        + f"{STATE_PREFIX}{state.to_json()}\n"
        + body.rstrip("\n")
        + "\n\n"
        + marker_block(upstream, generation, path)
    )


def _staging_edits(
    body: str, main: Directive, name: str, slots: Slots, slot: str
) -> tuple[tuple[str | None, str | None], list[Edit]]:
    """The edits that make ``upstream name`` point at ``slot``'s servers, and (the staging upstream
    the file then defines, the slot it points at) for the state line."""
    wanted = [_staging_server(body, main, address) for address in slots.servers(slot)]
    block = find_upstream(body, name)
    if block is None:
        if not wanted:
            return (None, None), []  # nothing to point at: no upstream without servers
        indent = _indent(body, main)
        keepalive = [body[d.start : d.end] for d in main.block or [] if d.name == "keepalive"][:1]
        lines = [f"{indent}{line}  # {STAGING_MARK}: slot={slot}\n" for line in wanted]
        added = (
            f"\n\n# Staging (added by bluegreen-swap): always the idle slot.\nupstream {name} {{\n"
            + "".join(lines)
            + "".join(f"{indent}{directive}\n" for directive in keepalive)
            + "}"
        )
        return (name, slot), [(main.end, main.end, added)]
    if not wanted:
        return (name, None), []  # the slot has no servers: left as it is
    slot_servers = set(slots.blue) | set(slots.green)
    ours = [server for server in user_servers(block) if server.address in slot_servers]
    if {s.address for s in ours} == set(slots.servers(slot)) and not any(
        a.value in _NOT_FOR_STAGING for s in ours for a in s.directive.args[1:]
    ):
        return (name, slot), []  # already the idle slot's: not a byte changes
    if not ours:
        return (name, slot), [_before_close(body, block, [f"{line}  # {STAGING_MARK}: slot={slot}" for line in wanted])]
    edits: list[Edit] = []
    for index, server in enumerate(ours):
        start, end, whole_line = _line_span(body, server.directive)
        if index:
            edits.append((start, end, ""))
        elif whole_line:
            indent = body[start : server.directive.start]
            edits.append((start, end, "".join(f"{indent}{line}  # {STAGING_MARK}: slot={slot}\n" for line in wanted)))
        else:
            edits.append((start, end, " ".join(wanted)))
    return (name, slot), edits


def _staging_server(body: str, main: Directive, address: str) -> str:
    """A staging server line for ``address``: the user's parameters for it in the live upstream,
    without those the swap owns or that make no sense there (down, backup, weight=)."""
    server = next((s for s in user_servers(main) if s.address == address), None)
    params = (
        [
            body[a.start : a.end]
            for a in server.directive.args[1:]
            if a.value not in _NOT_FOR_STAGING and not a.value.startswith("weight=")
        ]
        if server
        else []
    )
    return f"server {address}" + "".join(f" {p}" for p in params) + ";"


def _line_span(body: str, directive: Directive) -> tuple[int, int, bool]:
    """The directive's own line (with its indent, a comment after it and the newline) when it is
    alone on it, else just the directive; and which of the two."""
    line_start = body.rfind("\n", 0, directive.start) + 1
    newline = body.find("\n", directive.end)
    line_end = len(body) if newline < 0 else newline + 1
    after = body[directive.end : line_end].strip()
    if not body[line_start : directive.start].strip() and (not after or after.startswith("#")):
        return line_start, line_end, True
    return directive.start, directive.end, False


def _before_close(body: str, block: Directive, lines: list[str]) -> Edit:
    """Lines of ours at the end of ``block``, before its '}' (on their own lines)."""
    indent = _indent(body, block)
    added = "".join(f"{indent}{line}\n" for line in lines)
    close = block.end - 1  # the block's '}'
    line_start = body.rfind("\n", 0, close) + 1
    at = line_start if not body[line_start:close].strip() else close
    return (at, at, added if at == line_start else "\n" + added)


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
