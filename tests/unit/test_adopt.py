"""Adopting a hand-written upstream: the live slot is inferred from down/weights, and a swap changes
only down/weight= of the slots' servers; every other directive, parameter and comment stays byte
for byte (property tests over generated upstreams)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_targets import examples

from swap_action import adopt
from swap_action.inputs import Slots
from swap_action.nginxconf import parse
from swap_action.upstream import parse_state, weights_for_step

OTHER_DIRECTIVES = [
    "least_conn;",
    "keepalive 16;",
    "keepalive_timeout 60s;",
    "zone app 64k;",
    "hash $request_uri consistent;",
    "# keep this comment",
    "keepalive_requests 1000;",
]
PARAMS = ["max_fails=3", "fail_timeout=10s", "slow_start=30s", "max_conns=100", "weight=5", "down"]


@st.composite
def upstreams(draw: st.DrawFn) -> tuple[str, Slots]:
    blue = [f"blue{i}:8080" for i in range(draw(st.integers(1, 3)))]
    green = [f"green{i}:8080" for i in range(draw(st.integers(1, 3)))]
    lines = [draw(st.sampled_from(OTHER_DIRECTIVES)) for _ in range(draw(st.integers(0, 4)))]
    live_down = draw(st.sampled_from(["green", "blue"]))
    for address in blue + green + ["spare:8080"]:
        params = draw(st.lists(st.sampled_from(PARAMS[:5]), unique=True, max_size=3))
        if address.startswith(live_down):
            params.append("down")
        if address == "spare:8080":
            params = ["backup"]
        lines.insert(draw(st.integers(0, len(lines))), f"server {address}{''.join(' ' + p for p in params)};")
    indent = draw(st.sampled_from(["    ", "\t", "  "]))
    head = draw(st.sampled_from(["", "# my upstream\n", "map $a $b { default 1; }\n"]))
    text = head + "upstream app {\n" + "".join(f"{indent}{line}\n" for line in lines) + "}\n"
    return text, Slots(tuple(blue), tuple(green))


def _servers(text: str) -> dict[str, list[str]]:
    upstream = adopt.find_upstream(text, "app")
    assert upstream is not None
    return {s.address: s.directive.values[1:] for s in adopt.user_servers(upstream)}


def _others(text: str) -> list[str]:
    upstream = adopt.find_upstream(text, "app")
    assert upstream is not None and upstream.block is not None
    return [text[d.start : d.end] for d in upstream.block if d.name != "server"]


@pytest.mark.fuzz
@settings(max_examples=examples(300), deadline=None)
@given(upstreams(), st.sampled_from(["blue", "green"]), st.sampled_from([10, 50, 100]))
def test_a_swap_changes_only_what_it_owns(case: tuple[str, Slots], target: str, percent: int) -> None:
    text, slots = case
    weights = weights_for_step(target, percent)
    out = adopt.edit(text, upstream="app", slots=slots, weights=weights, generation="g1", previous="blue")
    assert _others(out) == _others(text), "every other directive, byte for byte"
    for line in text.splitlines():
        if line.lstrip().startswith("#") or line.startswith("map "):
            assert line in out.splitlines(), "comments and other blocks stay"
    before, after = _servers(text), _servers(out)
    assert after["spare:8080"] == before["spare:8080"] == ["backup"], "a server of no slot is not touched"
    for slot in ("blue", "green"):
        for address in slots.servers(slot):
            kept = [p for p in before[address] if p != "down" and not p.startswith("weight=")]
            assert [p for p in after[address] if p != "down" and not p.startswith("weight=")] == kept
            assert ("down" in after[address]) == (weights[slot] == 0)
    parse(out)  # still Nginx's grammar
    state = parse_state(out)
    assert state.adopted and state.weights == dict(sorted(weights.items()))


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None)
@given(upstreams())
def test_the_live_slot_is_inferred_from_down(case: tuple[str, Slots]) -> None:
    text, slots = case
    state = adopt.infer(text, "app", slots)
    assert state is not None and state.inferred and state.adopted
    down = {address for address, params in _servers(text).items() if "down" in params}
    expected = "blue" if set(slots.green) <= down else "green"
    assert state.live == expected


def test_a_second_swap_replaces_our_lines_and_keeps_the_users() -> None:
    text = "upstream app {\n    keepalive 16;\n    server blue:8080 max_fails=3;\n    server green:8080 down;\n}\n"
    slots = Slots(("blue:8080",), ("green:8080",))
    once = adopt.edit(
        text, upstream="app", slots=slots, weights={"blue": 0, "green": 100}, generation="g1", previous="blue"
    )
    twice = adopt.edit(
        once, upstream="app", slots=slots, weights={"blue": 100, "green": 0}, generation="g2", previous="green"
    )
    assert twice.count("# bluegreen-swap state:") == 1 and twice.count("# Generation marker:") == 1
    assert "server blue:8080 max_fails=3;" in twice and "server green:8080 down;" in twice
    assert '"g2\\n"' in twice and "g1" not in twice


@pytest.mark.parametrize(
    ("host", "slot"),
    [("blue:8080", "blue"), ("app-green.internal:80", "green"), ("10.0.0.1:80", None), ("bluebird:1", None)],
)
def test_slots_from_host_names(host: str, slot: str | None) -> None:
    assert adopt.slot_of_host(host) == slot
