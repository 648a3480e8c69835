"""The managed upstream file: what it says (state) and how it is written (render).

The file the engine writes has three parts:

1. a state line, ``# bluegreen-swap state: {json}``, which says which slot is live, the weights,
   the servers of both slots and the generation; it is how the engine reads the live state back;
2. the upstream itself, rendered from a jinja2 template (ours, or the user's), and, unless turned
   off, a second upstream (``<upstream>_staging`` by default) that always points at the idle slot:
   the target before the switch, the old slot after it (a staging host name routed to it reaches
   the idle slot through the same front door);
3. a marker server on a loopback address of its own that answers ``/generation`` with this file's generation, so
   the engine can prove that the config it wrote is the one Nginx is serving.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
import zlib
from dataclasses import asdict, dataclass
from importlib import resources

import jinja2
import jinja2.sandbox

from .errors import InputError, StateError
from .inputs import SLOTS, Slots, other, parse_addresses, parse_name

STATE_PREFIX = "# bluegreen-swap state: "


@dataclass(frozen=True)
class ServerLine:
    address: str
    slot: str
    weight: int
    down: bool


@dataclass(frozen=True)
class State:
    """What the managed file says is live."""

    live: str | None
    weights: dict[str, int]
    blue: tuple[str, ...]
    green: tuple[str, ...]
    generation: str
    previous: str | None = None
    adopted: bool = False  # a hand-written upstream: edited in place, never re-rendered
    inferred: bool = False  # read from down/weights, not from a state line
    # The staging upstream the file defines (None: none) and the slot it points at (None: unknown,
    # or no staging upstream). Absent from state lines written before it existed: read as None.
    staging_upstream: str | None = None
    staging: str | None = None

    @property
    def slots(self) -> Slots:
        return Slots(blue=self.blue, green=self.green)

    def to_json(self) -> str:
        data = asdict(self)
        data["blue"], data["green"] = list(self.blue), list(self.green)
        del data["inferred"]
        if not self.adopted:
            del data["adopted"]
        if self.staging_upstream is None:  # a file without one reads exactly as before
            del data["staging_upstream"], data["staging"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def state_for(
    slots: Slots,
    weights: dict[str, int],
    generation: str,
    previous: str | None,
    *,
    adopted: bool = False,
    staging_upstream: str | None = None,
    staging: str | None = None,
) -> State:
    """The state line of a file the engine writes: the slot with the larger share is live."""
    return State(
        live=max(weights, key=lambda slot: weights[slot]) if weights else None,
        weights=dict(sorted(weights.items())),
        blue=slots.blue,
        green=slots.green,
        generation=generation,
        previous=previous,
        adopted=adopted,
        staging_upstream=staging_upstream,
        staging=staging if staging_upstream else None,
    )


def new_generation() -> str:
    return f"g{int(time.time() * 1000)}-{secrets.token_hex(3)}"


# The marker listens on a loopback address of its own (any 127/8 address is local on Linux), on a
# port derived from the upstream's name. Not a unix socket: a socket file outlives an Nginx that was
# killed (SIGKILL, OOM, a container killed) and then stops it from starting ("bind() ... Address
# already in use"); a TCP listener leaves nothing behind. Files from earlier versions listened on
# unix:/run/bluegreen-swap-<upstream>.sock: still recognised as markers (``is_marker_listen``).
MARKER_HOST = "127.66.71.83"
MARKER_PORTS = (40000, 10000)  # first port, how many


def marker_address(upstream: str) -> str:
    """Where the marker of ``upstream``'s file answers: ``127.66.71.83:<port>``, from the LB only."""
    first, count = MARKER_PORTS
    return f"{MARKER_HOST}:{first + zlib.crc32(upstream.encode()) % count}"


def is_marker_listen(address: str) -> bool:
    """A ``listen`` address only a marker uses: ours, or an earlier version's unix socket."""
    if address.startswith("unix:/run/bluegreen-swap-") and address.endswith(".sock"):
        return True
    host, _, port = address.rpartition(":")
    return host == MARKER_HOST and port.isdigit()


def weights_for_step(target: str, percent: int) -> dict[str, int]:
    """Percent of traffic for ``target``; the other slot gets the rest (0 = ``down``)."""
    return {target: percent, other(target): 100 - percent}


def server_lines(slots: Slots, weights: dict[str, int]) -> list[ServerLine]:
    """Nginx weights from percentages: a 100/0 split gives weight 1 and ``down`` (the default
    template leaves ``down`` servers out: see upstream.conf.j2).

    Nginx weighs each server line, so a slot's percentage is shared by its servers: 10% to one
    green server against 90% over two blue ones is 10 vs 45 + 45, not 10 vs 90 + 90 (5%).
    """
    lines = []
    for slot in SLOTS:
        percent = weights.get(slot, 0)
        servers = slots.servers(slot)
        weight = 1 if percent == 100 else round(percent / max(len(servers), 1))
        for address in servers:
            lines.append(ServerLine(address=address, slot=slot, weight=min(max(weight, 1), 100), down=percent == 0))
    return lines


def staging_lines(slots: Slots, slot: str | None) -> list[ServerLine]:
    """The staging upstream's servers: every server of ``slot``, an equal share each, none down."""
    return [ServerLine(address, slot, 1, False) for address in slots.servers(slot)] if slot else []


def defines_upstream(text: str, name: str) -> bool:
    """Whether ``text`` opens an ``upstream name {`` block (``app`` is not ``app_staging``)."""
    return re.search(rf"(?<![\w$-])upstream\s+{re.escape(name)}\s*\{{", text) is not None


@functools.lru_cache(maxsize=16)
def _compile(source: str) -> jinja2.Template:
    return _environment().from_string(source)


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


def default_template() -> str:
    return resources.files("swap_action").joinpath("templates/upstream.conf.j2").read_text()


def render(
    *,
    upstream: str,
    slots: Slots,
    weights: dict[str, int],
    generation: str,
    previous: str | None,
    template: str | None = None,
    path: str | None = None,
    staging_upstream: str | None = None,
    staging_slot: str | None = None,
) -> str:
    """Render the whole managed file; raise ``InputError`` for a template that does not render.

    With ``staging_upstream`` and ``staging_slot``, the file also defines ``upstream
    <staging_upstream>`` with the servers of ``staging_slot`` (never with none: a slot without
    servers leaves it out, and a comment says so). The state line records it when the rendered
    file defines it (a user's template may not)."""
    staging_name = staging_upstream if staging_slot else None
    staging = staging_lines(slots, staging_slot) if staging_name else []
    context = {
        "upstream": upstream,
        "servers": server_lines(slots, weights),
        "live": state_for(slots, weights, generation, previous).live,
        "weights": dict(sorted(weights.items())),
        "blue": list(slots.blue),
        "green": list(slots.green),
        "generation": generation,
        "staging_upstream": staging_name,
        "staging_servers": staging,
        "staging_slot": staging_slot if staging_name else None,
    }
    source = template if template is not None else default_template()
    try:
        body = _compile(source).render(**context)
    except jinja2.UndefinedError as exc:
        raise InputError(
            "template",
            f"the template uses an undefined variable ({exc.message})",
            "use only the variables the engine provides: " + ", ".join(sorted(context)),
        ) from None
    except jinja2.TemplateError as exc:
        raise InputError("template", f"the template does not render: {exc}", "fix the jinja2 syntax") from None
    if not defines_upstream(body, upstream):
        raise InputError(
            "template",
            f"the rendered template defines no 'upstream {upstream}' block",
            "render an upstream named {{ upstream }} with its servers from {{ servers }}",
        )
    rendered = staging_name is not None and bool(staging) and defines_upstream(body, staging_name)
    state = state_for(
        slots,
        weights,
        generation,
        previous,
        staging_upstream=staging_name if rendered else None,
        staging=staging_slot if rendered else None,
    )
    return (
        "# Managed by bluegreen-swap: do not edit by hand, the next swap overwrites it.\n"
        f"{STATE_PREFIX}{state.to_json()}\n"
        f"{body.rstrip()}\n\n" + marker_block(upstream, generation, path)
    )


def marker_block(upstream: str, generation: str, path: str | None = None) -> str:
    """The marker server: answers this file's generation (and its path), so the engine can prove
    Nginx serves this very file: a copy elsewhere answers another path."""
    answer = f"{generation} {path}" if path else generation
    return (
        "# Generation marker: lets the swap engine prove this file is the one being served.\n"
        "server {\n"
        f"    listen {marker_address(upstream)};\n"
        "    access_log off;\n"
        f'    location = /generation {{ return 200 "{answer}\\n"; }}\n'
        "}\n"
    )


def parse_state(text: str) -> State:
    """Read the state line of a file the engine wrote (``adopt.read_state`` also reads the others)."""
    for line in text.splitlines():
        if line.startswith(STATE_PREFIX):
            try:
                data = json.loads(line[len(STATE_PREFIX) :])
                # Read back from the LB: untrusted. Every value is checked as an input would be
                # before it can reach a rendered file again.
                return State(
                    live=_slot_or_none(data["live"]),
                    weights={_slot(k): _percent(v) for k, v in data["weights"].items()},
                    blue=_addresses("blue", data["blue"]),
                    green=_addresses("green", data["green"]),
                    generation=_generation(data["generation"]),
                    previous=_slot_or_none(data.get("previous")),
                    adopted=data.get("adopted") is True,
                    staging_upstream=_name_or_none(data.get("staging_upstream")),
                    staging=_slot_or_none(data.get("staging")) if data.get("staging_upstream") else None,
                )
            except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
                raise StateError(
                    f"the state line of the managed file is damaged ({exc})",
                    "restore the file from its .previous copy, or pass 'to' explicitly and let the next swap rewrite it",
                ) from None
    raise StateError(
        "the managed file has no state line", "let a swap adopt it (adopt.read_state), or restore it from .previous"
    )


def _slot(value: object) -> str:
    if value not in SLOTS:
        raise ValueError(f"{str(value)[:40]!r} is not a slot")
    return str(value)


def _slot_or_none(value: object) -> str | None:
    return None if value is None else _slot(value)


def _name_or_none(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("the staging upstream's name is not a string")
    return parse_name("staging_upstream", value)


def _percent(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise ValueError(f"{str(value)[:40]!r} is not a percentage")
    return value


def _addresses(slot: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{slot} is not a list of servers")
    return parse_addresses(slot, ",".join(value)) if value else ()


_GENERATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _generation(value: object) -> str:
    if not isinstance(value, str) or not _GENERATION.match(value):
        raise ValueError("the generation is not one the engine writes")
    return value
