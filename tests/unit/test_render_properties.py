"""Property tests from user input to the rendered config: whatever the parsers let through renders
only the directives the engine means to write, with server lines it controls.

Strategies mix well-formed values with arbitrary text, so both the accepting and the refusing
paths are exercised; accepted inputs are counted with ``event`` (see ``pytest --hypothesis-show-statistics``).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_fuzz_targets import examples

from swap_action.errors import InputError
from swap_action.inputs import SLOTS, Slots, other, parse_addresses, parse_name, parse_steps
from swap_action.upstream import marker_address, new_generation, render, weights_for_step

DIRECTIVES = {"upstream", "server", "keepalive", "listen", "access_log", "location", "return"}
FORBIDDEN = ["\n", ";", "{", "}", '"', "'", "\\", " "]
NOT_SEPARATORS = [c for c in FORBIDDEN if not c.isspace()]

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=1, max_size=3).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["[::1]", "[fe80::1]", "[2001:db8::10]", "[::ffff:10.0.0.1]"])
port = st.one_of(*[st.integers(1, 65535)] * 4, st.integers(0, 70000))  # mostly valid: the rest is rare
address = st.builds(lambda host, p: f"{host}:{p}", st.one_of(hostname, ipv4, ipv6), port)
separator = st.sampled_from([",", ", ", " ", "\n", " ,\n"])
address_list = st.builds(lambda items, sep: sep.join(items), st.lists(address, min_size=1, max_size=4), separator)
# Arbitrary text, and addresses with one arbitrary character spliced in.
spliced = st.builds(
    lambda a, i, c: a[: i % (len(a) + 1)] + c + a[i % (len(a) + 1) :], address, st.integers(0, 40), st.characters()
)
address_text = st.one_of(address_list, address_list, address_list, spliced, st.text(max_size=40))

name_text = st.one_of(*[st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,20}", fullmatch=True)] * 3, st.text(max_size=20))
steps_text = st.one_of(
    *[st.lists(st.integers(1, 99), unique=True, max_size=4).map(lambda xs: ",".join(map(str, [*sorted(xs), 100])))] * 3,
    st.lists(st.integers(-5, 120), min_size=1, max_size=5).map(lambda xs: ",".join(map(str, xs))),
    st.text(max_size=20),
)


def directives(text: str) -> list[list[str]]:
    """Statements of an Nginx config as word lists: comments stripped, split on ``;``, ``{`` and ``}``."""
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return [words for words in (part.split() for part in re.split(r"[;{}]", code)) if words]


well_formed_steps = st.lists(st.integers(1, 99), unique=True, max_size=4).map(
    lambda xs: ",".join(map(str, [*sorted(xs), 100]))
)
well_formed_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,20}", fullmatch=True)


@pytest.mark.fuzz
@settings(max_examples=examples(300), deadline=None)
@given(
    blue=address_list,
    green=address_list,
    upstream=well_formed_name,
    steps=well_formed_steps,
    target=st.sampled_from(SLOTS),
    step=st.integers(0, 10),
)
def test_well_formed_inputs_render_only_the_directives_asked_for(
    blue: str, green: str, upstream: str, steps: str, target: str, step: int
) -> None:
    check_render(blue, green, upstream, steps, target, step)


@pytest.mark.fuzz
@settings(max_examples=examples(500), deadline=None)
@given(
    blue=address_text,
    green=address_text,
    upstream=name_text,
    steps=steps_text,
    target=st.sampled_from(SLOTS),
    step=st.integers(0, 10),
)
def test_arbitrary_inputs_that_are_accepted_render_only_the_directives_asked_for(
    blue: str, green: str, upstream: str, steps: str, target: str, step: int
) -> None:
    check_render(blue, green, upstream, steps, target, step)


def check_render(blue: str, green: str, upstream: str, steps: str, target: str, step: int) -> None:
    try:
        slots = Slots(blue=parse_addresses("blue", blue), green=parse_addresses("green", green))
        name = parse_name("upstream", upstream)
        percents = parse_steps("steps", steps)
    except InputError:
        event("refused")
        return
    event("accepted")
    percent = percents[step % len(percents)]
    generation = new_generation()
    text = render(
        upstream=name,
        slots=slots,
        weights=weights_for_step(target, percent),
        generation=generation,
        previous=other(target),
    )
    assert text.isascii()
    assert "weight=0" not in text
    statements = directives(text)
    assert {words[0] for words in statements} == DIRECTIVES
    weights = weights_for_step(target, percent)
    inputs = {address for slot in ("blue", "green") if weights[slot] for address in slots.servers(slot)}
    seen = []
    for words in statements:
        head, args = words[0], words[1:]
        if head == "server" and args:  # a server line of the upstream (not the marker's `server {`)
            seen.append(args[0])
            assert args[0] in inputs
            for param in args[1:]:
                assert re.fullmatch(r"weight=([1-9][0-9]?|100)", param), param
        elif head == "upstream":
            assert args == [name]
        elif head == "keepalive":
            assert args == ["32"]
        elif head == "listen":
            assert args == [marker_address(name)]
        elif head == "access_log":
            assert args == ["off"]
        elif head == "location":
            assert args == ["=", "/generation"]
        elif head == "return":
            assert args == ["200", f'"{generation}\\n"']
        else:
            assert head == "server" and not args
    assert sorted(seen) == sorted(inputs), "every server with traffic once, nothing else (idle ones are left out)"


@pytest.mark.fuzz
@given(text=st.text(max_size=40), char=st.sampled_from(NOT_SEPARATORS), at=st.integers(0, 40))
def test_text_with_config_syntax_is_refused(text: str, char: str, at: int) -> None:
    i = at % (len(text) + 1)
    value = text[:i] + char + text[i:]
    try:
        parse_addresses("blue", value)
    except InputError as exc:
        assert exc.input_name == "blue"
    else:
        raise AssertionError(f"{value!r} was accepted")


@pytest.mark.fuzz
@given(value=address, char=st.sampled_from(FORBIDDEN), at=st.integers(1, 40))
def test_an_address_with_a_forbidden_character_inside_is_refused(value: str, char: str, at: int) -> None:
    """Also spaces and newlines: they separate addresses, so inside one they leave broken halves."""
    i = 1 + at % (len(value) - 1)  # strictly inside
    try:
        parse_addresses("blue", value[:i] + char + value[i:])
    except InputError:
        return
    raise AssertionError(f"{value[:i] + char + value[i:]!r} was accepted")


@pytest.mark.fuzz
@given(text=address_text)
def test_accepted_addresses_never_contain_config_syntax(text: str) -> None:
    try:
        accepted = parse_addresses("blue", text)
    except InputError:
        return
    for item in accepted:
        assert item.isascii() and item.isprintable()
        assert not set(item) & set(FORBIDDEN), item
        assert item in text.split() or item in re.split(r"[\s,]+", text)
