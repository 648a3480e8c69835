"""The staging upstream: a second upstream in the managed file that always points at the idle slot
(the target before the switch, the old slot after it), rendered, recorded in the state line,
adopted only when asked, and a drain that counts only the old workers' connections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import crossplane  # type: ignore[import-untyped]
import pytest
from fakes import LB_CONFIG, FakeHost, initial_file, nginx_test
from test_engine import Quiet

from swap_action import adopt
from swap_action.drain import drain
from swap_action.engine import Engine
from swap_action.errors import InputError, StateError
from swap_action.host import Connections
from swap_action.inputs import Slots, swap_options_from
from swap_action.nginxconf import parse
from swap_action.upstream import STATE_PREFIX, parse_state, render, weights_for_step

ROOT = Path(__file__).resolve().parents[2]
SLOTS = Slots(blue=("blue-1:8080", "blue-2:8080"), green=("green-1:8080",))


def rendered(target: str = "green", percent: int = 100, **changes: object) -> str:
    arguments: dict[str, object] = {
        "upstream": "app",
        "slots": SLOTS,
        "weights": weights_for_step(target, percent),
        "generation": "g1",
        "previous": "blue" if target == "green" else "green",
        "staging_upstream": "app_staging",
        "staging_slot": target if percent < 100 else ("blue" if target == "green" else "green"),
    }
    arguments.update(changes)
    return render(**arguments)  # type: ignore[arg-type]


def block(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"upstream {name} {{"))
    return lines[start : lines.index("}", start) + 1]


def upstream_names(text: str) -> list[str]:
    return [d.values[0] for d in parse(text) if d.name == "upstream"]


def state_json(text: str) -> dict[str, object]:
    line = next(line for line in text.splitlines() if line.startswith(STATE_PREFIX))
    data: dict[str, object] = json.loads(line[len(STATE_PREFIX) :])
    return data


# -- rendering --------------------------------------------------------------------------------------


def test_without_staging_the_file_is_what_it_always_was() -> None:
    text = rendered(staging_upstream=None, staging_slot=None)
    assert upstream_names(text) == ["app"]
    assert "staging" not in state_json(text), "the state line of a file without one is unchanged"
    assert parse_state(text).staging_upstream is None and parse_state(text).staging is None
    # The shipped initial file (no staging) still renders byte for byte: test_upstream checks it.
    assert rendered(staging_upstream="app_staging", staging_slot=None) == text


def test_after_the_switch_the_staging_upstream_is_the_old_slot() -> None:
    text = rendered("green", 100)
    assert upstream_names(text) == ["app", "app_staging"], "after the live upstream"
    assert block(text, "app_staging") == [
        "upstream app_staging {",
        "    server blue-1:8080;  # slot=blue",
        "    server blue-2:8080;  # slot=blue",
        "    keepalive 32;",
        "}",
    ]
    assert block(text, "app")[1] == "    server green-1:8080;  # slot=green"
    state = parse_state(text)
    assert (state.live, state.staging_upstream, state.staging) == ("green", "app_staging", "blue")


def test_before_the_switch_it_is_the_target() -> None:
    """A canary step (the target has part of the traffic): staging is still the target."""
    text = rendered("green", 10, staging_slot="green")
    assert block(text, "app_staging")[1:-1] == ["    server green-1:8080;  # slot=green", "    keepalive 32;"]
    assert parse_state(text).staging == "green"


def test_a_staging_slot_without_servers_renders_no_upstream_and_says_so() -> None:
    text = rendered("blue", 100, slots=Slots(blue=("blue-1:8080",), green=()), staging_slot="green")
    assert upstream_names(text) == ["app"]
    assert "# No staging upstream app_staging: the idle slot (green) has no servers." in text
    assert parse_state(text).staging_upstream is None, "the state line records only what the file defines"


def test_the_state_line_round_trip() -> None:
    text = rendered("blue", 100)
    state = parse_state(text)
    assert (state.staging_upstream, state.staging) == ("app_staging", "green")
    data = state_json(text)
    assert (data["staging_upstream"], data["staging"]) == ("app_staging", "green")
    assert state.to_json() == json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_old_state_lines_still_parse() -> None:
    shipped = (ROOT / "images/lb/upstream.conf").read_text()
    state = parse_state(shipped)
    assert (state.live, state.staging_upstream, state.staging) == ("blue", None, None)
    assert parse_state(initial_file()).staging_upstream is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("staging_upstream", "app; } server { listen 81"),  # a name that would render another block
        ("staging_upstream", ["app_staging"]),
        ("staging", "purple"),
    ],
)
def test_a_crafted_staging_field_is_refused(field: str, value: object) -> None:
    text = rendered("green", 100)
    line = next(line for line in text.splitlines() if line.startswith(STATE_PREFIX))
    data = state_json(text)
    data[field] = value
    with pytest.raises(StateError):
        parse_state(text.replace(line, STATE_PREFIX + json.dumps(data)))


def test_the_rendered_file_passes_the_toy_nginx_t_and_crossplane() -> None:
    """A real ``nginx -t`` of it runs in tests/integration/test_staging_route.py."""
    text = rendered("green", 100)
    assert nginx_test(text, LB_CONFIG) is None
    path = Path("/tmp") / f"staging-{id(text)}.conf"
    path.write_text(f"http {{\n{text}\n}}\n")
    try:
        payload = crossplane.parse(str(path), single=True, comments=False, check_ctx=False, check_args=False)
    finally:
        path.unlink()
    assert payload["status"] == "ok"
    http = payload["config"][0]["parsed"][0]["block"]
    assert [d["args"][0] for d in http if d["directive"] == "upstream"] == ["app", "app_staging"]


def test_a_user_template_gets_the_staging_variables() -> None:
    template = (
        "upstream {{ upstream }} {\n{%- for s in servers if not s.down %}\n    server {{ s.address }};\n"
        "{%- endfor %}\n}\n{% if staging_upstream %}upstream {{ staging_upstream }} {  # {{ staging_slot }}\n"
        "{%- for s in staging_servers %}\n    server {{ s.address }} max_fails=0;\n{%- endfor %}\n}\n{% endif %}"
    )
    text = rendered("green", 100, template=template)
    assert block(text, "app_staging") == [
        "upstream app_staging {  # blue",
        "    server blue-1:8080 max_fails=0;",
        "    server blue-2:8080 max_fails=0;",
        "}",
    ]
    assert parse_state(text).staging == "blue"


def test_a_user_template_that_ignores_staging_records_none() -> None:
    template = "upstream {{ upstream }} {\n{%- for s in servers %}\n    server {{ s.address }};\n{%- endfor %}\n}\n"
    assert parse_state(rendered("green", 100, template=template)).staging_upstream is None


def test_a_template_defining_only_the_staging_upstream_is_refused() -> None:
    """``upstream app_staging`` is not ``upstream app``."""
    template = "upstream {{ staging_upstream }} {\n    server x:1;\n}\n"
    with pytest.raises(InputError, match="defines no 'upstream app' block"):
        rendered("green", 100, template=template)


# -- adoption ---------------------------------------------------------------------------------------

HAND_WRITTEN = """# my upstream
upstream app {
    least_conn;
    server blue-1:8080 max_fails=3 fail_timeout=5s;  # the first
    server blue-2:8080 weight=3;
    server green-1:8080 down slow_start=10s;
    server spare:8080 backup;
    keepalive 16;
}

map $http_x_slot $pool {
    default app;
}
"""


def edited(text: str, target: str = "green", **staging: str | None) -> str:
    return adopt.edit(
        text,
        upstream="app",
        slots=SLOTS,
        weights=weights_for_step(target, 100),
        generation="g1",
        previous="blue" if target == "green" else "green",
        **staging,
    )


def user_part(text: str) -> str:
    """Without the state line (it changes on every swap) and the marker."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(STATE_PREFIX)).split(
        "\n# Generation marker:"
    )[0]


def test_adoption_adds_no_staging_upstream_unless_asked() -> None:
    out = edited(HAND_WRITTEN)
    assert upstream_names(out) == ["app"] and parse_state(out).staging_upstream is None
    assert "staging" not in state_json(out)


def test_asked_it_adds_one_and_changes_nothing_else() -> None:
    plain = edited(HAND_WRITTEN)
    out = edited(HAND_WRITTEN, staging_upstream="app_staging", staging_slot="blue")
    assert upstream_names(out) == ["app", "app_staging"], "right after the user's upstream"
    assert block(out, "app_staging") == [
        "upstream app_staging {",
        "    server blue-1:8080 max_fails=3 fail_timeout=5s;  # bluegreen-swap staging: slot=blue",
        "    server blue-2:8080;  # bluegreen-swap staging: slot=blue",  # weight= is the swap's, not copied
        "    keepalive 16;",  # the user's keepalive
        "}",
    ]
    added = "\n\n# Staging (added by bluegreen-swap): always the idle slot.\n" + "\n".join(block(out, "app_staging"))
    assert user_part(out).replace(added, "", 1) == user_part(plain), "every other byte as without it"
    state = parse_state(out)
    assert (state.adopted, state.staging_upstream, state.staging) == (True, "app_staging", "blue")


def test_the_copied_lines_leave_out_down_and_backup() -> None:
    text = HAND_WRITTEN.replace("server blue-1:8080 max_fails=3", "server blue-1:8080 backup max_fails=3")
    out = edited(text, "blue", staging_upstream="app_staging", staging_slot="green")
    assert (
        block(out, "app_staging")[1] == "    server green-1:8080 slow_start=10s;  # bluegreen-swap staging: slot=green"
    )


def test_the_next_swap_keeps_it_pointing_at_the_idle_slot() -> None:
    first = edited(HAND_WRITTEN, staging_upstream="app_staging", staging_slot="blue")
    back = edited(first, "blue", staging_upstream="app_staging", staging_slot="green")
    assert block(back, "app_staging") == [
        "upstream app_staging {",
        "    server green-1:8080 slow_start=10s;  # bluegreen-swap staging: slot=green",
        "    keepalive 16;",
        "}",
    ]
    assert parse_state(back).staging == "green"
    # Only the staging lines and what the swap owns in the live upstream changed.
    assert block(back, "app")[1:4] == [
        "    least_conn;",
        "    server blue-1:8080 max_fails=3 fail_timeout=5s;  # the first",
        "    server blue-2:8080;",  # weight=1 of the live slot: the swap's, as always
    ]
    again = edited(back, "blue", staging_upstream="app_staging", staging_slot="green")
    assert user_part(again) == user_part(back), "already the idle slot's: not a byte changes"


def test_a_users_own_staging_upstream_keeps_every_other_byte() -> None:
    own = HAND_WRITTEN + (
        "\nupstream app_staging {\n    # the idle slot, for QA\n    server blue-1:8080 max_fails=1;\n"
        "    server qa-proxy:8080 backup;\n    keepalive 4;\n}\n"
    )
    out = edited(own, staging_upstream="app_staging", staging_slot="blue")
    assert user_part(out).count("upstream app_staging") == 1
    assert block(out, "app_staging")[1] == "    # the idle slot, for QA"
    moved = edited(own, "blue", staging_upstream="app_staging", staging_slot="green")
    assert block(moved, "app_staging") == [
        "upstream app_staging {",
        "    # the idle slot, for QA",
        "    server green-1:8080 slow_start=10s;  # bluegreen-swap staging: slot=green",
        "    server qa-proxy:8080 backup;",  # not a slot's server: not ours
        "    keepalive 4;",
        "}",
    ]


def test_a_staging_slot_without_servers_adds_nothing() -> None:
    out = adopt.edit(
        HAND_WRITTEN, upstream="app", slots=Slots(blue=("blue-1:8080",), green=()),
        weights=weights_for_step("blue", 100), generation="g1", previous="green",
        staging_upstream="app_staging", staging_slot="green",
    )  # fmt: skip
    assert upstream_names(out) == ["app"] and parse_state(out).staging_upstream is None


def test_read_state_reports_a_hand_written_staging_upstream() -> None:
    text = HAND_WRITTEN + "\nupstream app_staging {\n    server green-1:8080;\n}\n"
    state = adopt.read_state(text, "app", SLOTS)
    assert state is not None and state.inferred
    assert (state.live, state.staging_upstream, state.staging) == ("blue", "app_staging", "green")
    named = adopt.read_state(text.replace("app_staging", "preview"), "app", SLOTS, staging_upstream="preview")
    assert named is not None and (named.staging_upstream, named.staging) == ("preview", "green")
    none = adopt.read_state(HAND_WRITTEN, "app", SLOTS)
    assert none is not None and (none.staging_upstream, none.staging) == (None, None)
    written = adopt.read_state(edited(HAND_WRITTEN, staging_upstream="app_staging", staging_slot="blue"), "app", SLOTS)
    assert written is not None and (written.staging_upstream, written.staging) == ("app_staging", "blue")


# -- through the engine (the fake LB) -----------------------------------------------------------------


def swap(fake: FakeHost, **inputs: str) -> Engine:
    engine = Engine(fake, Quiet())
    values = {"config-path": LB_CONFIG, "to": "green", "verify-url": "http://127.0.0.1/"} | inputs
    engine.swap(swap_options_from(values))
    return engine


def test_a_swap_renders_the_staging_upstream_by_default() -> None:
    fake = FakeHost()
    engine = swap(fake, blue="blue:8080", green="green:8080")
    text = fake.live_text()
    assert text is not None and upstream_names(text) == ["app", "app_staging"]
    assert block(text, "app_staging")[1] == "    server blue:8080;  # slot=blue"
    assert fake.served_slot() == "green", "the staging upstream does not take the live traffic"
    assert engine.last_report is not None and engine.last_report.staging_slot == "blue"
    off = FakeHost()
    swap(off, blue="blue:8080", green="green:8080", **{"staging-upstream": "none"})
    assert upstream_names(off.live_text() or "") == ["app"]


@pytest.mark.parametrize(("given", "expected"), [("", ["app"]), ("app_staging", ["app", "app_staging"])])
def test_an_adopted_file_gets_one_only_when_asked(given: str, expected: list[str]) -> None:
    fake = FakeHost(managed="upstream app {\n    server blue:8080;\n    server green:8080 down;\n}\n")
    swap(fake, **{"staging-upstream": given})
    text = fake.live_text()
    assert text is not None and upstream_names(text) == expected
    if given:
        swap(fake, to="blue")  # not asked again: the file has it, so it is kept at the idle slot
        text = fake.live_text() or ""
        assert block(text, "app_staging")[1] == "    server green:8080;  # bluegreen-swap staging: slot=green"


# -- the drain --------------------------------------------------------------------------------------


class Draining(FakeHost):
    """New workers keep connections to the old slot (staging traffic); old ones hold ``old``."""

    def __init__(self, old: int | None, total: int = 3) -> None:
        super().__init__()
        self.old, self.total = old, total

    def connections(self, servers: Sequence[str]) -> Connections:
        return Connections(self.total, (), from_old_workers=self.old)


def test_the_drain_ends_when_the_old_workers_hold_nothing_though_staging_traffic_flows() -> None:
    result = drain(Draining(old=0), ["blue:8080"], {101}, timeout=1.0, policy="wait", hook=None)
    assert (result.outcome, result.connections_left) == ("complete", 0)


def test_the_drain_waits_for_the_old_workers_connections() -> None:
    result = drain(Draining(old=2), ["blue:8080"], {101}, timeout=0.3, policy="wait", hook=None)
    assert (result.outcome, result.connections_left) == ("timeout", 2)


def test_unreadable_old_workers_fall_back_to_every_connection() -> None:
    result = drain(Draining(old=None), ["blue:8080"], {101}, timeout=0.3, policy="wait", hook=None)
    assert (result.outcome, result.connections_left) == ("timeout", 3)
    assert drain(Draining(old=None, total=0), ["blue:8080"], set(), timeout=1.0, policy="wait", hook=None).outcome == (
        "complete"
    )
