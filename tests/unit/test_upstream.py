"""Rendering the managed file and reading its state back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import initial_file

from swap_action import adopt
from swap_action.errors import InputError, StateError
from swap_action.inputs import Slots, swap_options_from
from swap_action.upstream import (
    STATE_PREFIX,
    State,
    marker_address,
    parse_state,
    render,
    server_lines,
    weights_for_step,
)

ROOT = Path(__file__).resolve().parents[2]
SLOTS = Slots(blue=("blue-1:8080", "blue-2:8080"), green=("green-1:8080",))


def upstream_block(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("upstream "))
    end = lines.index("}", start)
    return lines[start : end + 1]


def test_a_slot_with_no_traffic_is_left_out_never_weight_zero() -> None:
    text = render(upstream="app", slots=SLOTS, weights={"blue": 0, "green": 100}, generation="g1", previous="blue")
    assert upstream_block(text) == [
        "upstream app {",
        "    server green-1:8080;  # slot=green",
        "    # idle, no traffic: server blue-1:8080;  # slot=blue",
        "    # idle, no traffic: server blue-2:8080;  # slot=blue",
        "    keepalive 32;",
        "}",
    ]
    assert "weight=0" not in text


def test_a_slot_missing_from_the_weights_is_down() -> None:
    text = render(upstream="app", slots=SLOTS, weights={"green": 100}, generation="g1", previous=None)
    assert "# idle, no traffic: server blue-1:8080;" in text and "weight=0" not in text
    assert " down" not in text


@pytest.mark.parametrize(
    ("percent", "blue", "green"),
    [
        (10, " weight=90", " weight=10"),
        (50, " weight=50", " weight=50"),
        (99, "", " weight=99"),  # weight=1 is Nginx's default and not written
        (1, " weight=99", ""),
    ],
)
def test_canary_weights(percent: int, blue: str, green: str) -> None:
    slots = Slots(blue=("blue-1:8080",), green=("green-1:8080",))
    text = render(
        upstream="app", slots=slots, weights=weights_for_step("green", percent), generation="g1", previous="blue"
    )
    block = upstream_block(text)
    assert f"    server blue-1:8080{blue};  # slot=blue" in block
    assert f"    server green-1:8080{green};  # slot=green" in block
    assert "down" not in "\n".join(block)


def test_canary_share_is_per_slot_not_per_server() -> None:
    """10% to one green server against two blue servers: 10 vs 45 + 45, so green gets 10%."""
    lines = server_lines(SLOTS, weights_for_step("green", 10))
    total = sum(s.weight for s in lines)
    assert [(s.address, s.weight) for s in lines] == [("blue-1:8080", 45), ("blue-2:8080", 45), ("green-1:8080", 10)]
    assert sum(s.weight for s in lines if s.slot == "green") / total == pytest.approx(0.10)


def test_server_lines_weights() -> None:
    assert [(s.address, s.weight, s.down) for s in server_lines(SLOTS, {"blue": 100, "green": 0})] == [
        ("blue-1:8080", 1, False),
        ("blue-2:8080", 1, False),
        ("green-1:8080", 1, True),
    ]


def test_state_round_trip() -> None:
    for weights, previous in (({"blue": 100, "green": 0}, None), ({"blue": 30, "green": 70}, "blue")):
        text = render(upstream="app", slots=SLOTS, weights=weights, generation="g42-abc", previous=previous)
        state = parse_state(text)
        assert state == State(
            live=max(weights, key=lambda slot: weights[slot]),
            weights=weights,
            blue=SLOTS.blue,
            green=SLOTS.green,
            generation="g42-abc",
            previous=previous,
        )
        assert state.slots == SLOTS


def test_state_of_a_hand_written_file_is_inferred_from_down() -> None:
    text = "upstream app {\n    server a:80;  # slot=blue\n    server b:80 down;  # slot=green\n}\n"
    state = adopt.read_state(text, "app", Slots(("a:80",), ("b:80",)))
    assert state is not None
    assert (state.live, state.blue, state.green, state.generation) == ("blue", ("a:80",), ("b:80",), "unknown")


def test_damaged_state_line_is_a_state_error() -> None:
    with pytest.raises(StateError) as caught:
        parse_state("# bluegreen-swap state: {not json\n")
    assert ".previous" in caught.value.fix


def test_the_marker_answers_the_generation() -> None:
    text = render(upstream="web", slots=SLOTS, weights={"blue": 100}, generation="g7-x", previous=None)
    assert f"listen {marker_address('web')};" in text
    assert 'location = /generation { return 200 "g7-x\\n"; }' in text


def test_user_template_with_a_missing_variable_names_it() -> None:
    template = "upstream {{ upstream }} {\n    server {{ primary_server }};\n}\n"
    with pytest.raises(InputError) as caught:
        render(upstream="app", slots=SLOTS, weights={"blue": 100}, generation="g1", previous=None, template=template)
    assert caught.value.input_name == "template"
    assert "primary_server" in caught.value.cause
    assert "servers" in caught.value.fix and "upstream" in caught.value.fix


def test_template_without_the_upstream_block_is_refused() -> None:
    template = "{% for s in servers %}server {{ s.address }};\n{% endfor %}"
    with pytest.raises(InputError) as caught:
        render(upstream="app", slots=SLOTS, weights={"blue": 100}, generation="g1", previous=None, template=template)
    assert caught.value.input_name == "template"
    assert "upstream app" in caught.value.cause


def test_template_with_bad_syntax_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        render(upstream="app", slots=SLOTS, weights={"blue": 100}, generation="g1", previous=None, template="{% for %}")
    assert caught.value.input_name == "template"


def test_template_cannot_reach_outside_the_sandbox() -> None:
    template = "upstream {{ upstream }} { {{ ''.__class__.__mro__[1].__subclasses__() }} }"
    with pytest.raises(InputError):
        render(upstream="app", slots=SLOTS, weights={"blue": 100}, generation="g1", previous=None, template=template)


def test_user_template_renders() -> None:
    template = (
        "upstream {{ upstream }} {\n    least_conn;\n{%- for s in servers %}\n"
        "    server {{ s.address }}{% if s.down %} down{% endif %} max_fails=2;\n{%- endfor %}\n}\n"
    )
    text = render(
        upstream="app",
        slots=SLOTS,
        weights={"blue": 0, "green": 100},
        generation="g1",
        previous=None,
        template=template,
    )
    assert "    server blue-1:8080 down max_fails=2;" in text and "least_conn;" in text
    assert parse_state(text).live == "green"


def test_shipped_initial_file_is_what_render_writes() -> None:
    """images/lb/upstream.conf must stay byte-identical to what the engine itself would render."""
    expected = render(
        upstream="app",
        slots=Slots(blue=("blue:8080",), green=("green:8080",)),
        weights=weights_for_step("blue", 100),
        generation="g0-initial",
        previous=None,
    )
    assert (ROOT / "images/lb/upstream.conf").read_text() == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("blue", ["blue:8080;}\nserver {\n listen 81"]),  # an address that would render another block
        ("green", "green:8080"),
        ("live", "purple"),
        ("weights", {"blue": 101, "green": 0}),
        ("generation", 'g1"; return 200 "x'),
        ("previous", ["blue"]),
    ],
)
def test_a_crafted_state_line_is_refused_before_it_is_rendered_again(field: str, value: object) -> None:
    """Read back from the LB, the state line is untrusted: each value is checked as an input is."""
    text = initial_file()
    line = next(line for line in text.splitlines() if line.startswith(STATE_PREFIX))
    data = json.loads(line[len(STATE_PREFIX) :])
    data[field] = value
    crafted = text.replace(line, STATE_PREFIX + json.dumps(data))
    with pytest.raises(StateError):
        parse_state(crafted)


@pytest.mark.parametrize("text", ["25h", "100000000h", "9" * 400, "1e9s"])
def test_durations_are_bounded(text: str) -> None:
    with pytest.raises(InputError):
        swap_options_from({"step-pause": text})
