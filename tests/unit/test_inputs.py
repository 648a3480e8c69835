"""Input validation: every refusal names the input and says how to fix it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from swap_action.errors import InputError
from swap_action.inputs import (
    BY_NAME,
    INPUTS,
    Input,
    Slots,
    SwapOptions,
    check_drain_policy,
    defaults,
    parse_addresses,
    parse_bool,
    parse_config_path,
    parse_drain_hook,
    parse_hook_command,
    parse_http_path,
    parse_name,
    parse_seconds,
    parse_slot,
    parse_steps,
    parse_targets,
    parse_url,
    swap_options_from,
)

Parser = Callable[[str, str], object]

BAD_VALUES: list[tuple[Parser, str]] = [
    (parse_addresses, ""),
    (parse_addresses, "blue"),
    (parse_addresses, "blue:0"),
    (parse_addresses, "blue:65536"),
    (parse_addresses, "blue:8080,blue:8080"),
    (parse_addresses, "-blue:8080"),
    (parse_slot, "purple"),
    (lambda name, text: parse_slot(name, text, allow_auto=False), "auto"),
    (parse_name, "1app"),
    (parse_name, "app name"),
    (parse_name, "app;"),
    (parse_steps, ""),
    (parse_steps, "10,50"),
    (parse_steps, "50,10,100"),
    (parse_steps, "0,100"),
    (parse_steps, "10,abc,100"),
    (parse_steps, "10,10,100"),
    (parse_seconds, "soon"),
    (parse_seconds, "-1s"),
    (parse_bool, "maybe"),
    (parse_http_path, "healthz"),
    (parse_http_path, "/health z"),
    (parse_url, "127.0.0.1/"),
    (parse_url, "-o/etc/nginx/nginx.conf"),
    (parse_url, "file:///etc/shadow"),
    (parse_url, "http://127.0.0.1/ -o /tmp/x"),
    (parse_config_path, "upstream.conf"),
    (parse_config_path, "/etc/nginx/"),
    (parse_config_path, "/etc/nginx/../x.conf"),
    (parse_config_path, "/etc/nginx/up stream.conf"),
    (parse_drain_hook, "PATCH /drain"),
    (parse_drain_hook, "POST /drain extra"),
    (parse_drain_hook, "drain"),
    (check_drain_policy, "never"),
]


@pytest.mark.parametrize(("parser", "value"), BAD_VALUES, ids=[f"{p.__name__}:{v!r}" for p, v in BAD_VALUES])
def test_each_refusal_names_the_input_and_a_fix(parser: Parser, value: str) -> None:
    with pytest.raises(InputError) as caught:
        parser("the-input", value)
    assert caught.value.input_name == "the-input"
    assert caught.value.cause.startswith("input 'the-input': ")
    assert caught.value.fix, "a fix is given"
    assert "\n" not in caught.value.cause, "the value is printed escaped, on one line"


INJECTIONS = [
    "blue:8080;",
    "blue:8080;server evil:80",
    "blue:8080 down;server evil:80",
    "blue:8080\n}\nserver { listen 81; }",
    "blue:80\n80",
    "bl ue:8080",
    "blue :8080",
    "blue:8080}",
    "{blue:8080",
    '"blue:8080"',
    "'blue:8080'",
    "blue:8080'",
    "blue\\:8080",
    "blue:8080\\n",
    "blue:８０８０",  # fullwidth digits are digits to Python, not to Nginx  # noqa: RUF001
    "١٢.1.1.1:80",
]


@pytest.mark.parametrize("value", INJECTIONS, ids=[repr(v) for v in INJECTIONS])
def test_addresses_with_config_syntax_are_refused(value: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_addresses("blue", value)
    assert caught.value.input_name == "blue"


def test_spaces_commas_and_newlines_separate_whole_addresses() -> None:
    # They are list separators: each item must still be a complete host:port on its own.
    assert parse_addresses("blue", " blue-1:8080, blue-2:8080\n10.0.0.3:80 [::1]:8080 ") == (
        "blue-1:8080",
        "blue-2:8080",
        "10.0.0.3:80",
        "[::1]:8080",
    )


def test_good_values() -> None:
    assert parse_slot("to", " Green ") == "green"
    assert parse_slot("to", "auto", allow_auto=True) == "auto"
    assert parse_name("upstream", "app_v2-x") == "app_v2-x"
    assert parse_steps("steps", "10, 50 100") == (10, 50, 100)
    assert parse_seconds("drain-timeout", "500ms") == 0.5
    assert parse_seconds("drain-timeout", "2m") == 120
    assert parse_bool("no-rollback", "yes") is True
    assert parse_http_path("health-path", "/healthz?full=1") == "/healthz?full=1"
    assert parse_url("verify-url", "https://example.test:8443/v?x=1") == "https://example.test:8443/v?x=1"
    assert parse_config_path("config-path", "/etc/nginx/conf.d/upstream.conf") == "/etc/nginx/conf.d/upstream.conf"
    assert parse_drain_hook("drain-hook", "/admin/drain") == ("POST", "/admin/drain")
    assert parse_drain_hook("drain-hook", "put /admin/drain") == ("PUT", "/admin/drain")
    assert parse_drain_hook("drain-hook", " ") is None
    assert check_drain_policy("drain-policy", "WAIT") == "wait"


def test_a_server_in_both_slots_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        Slots(blue=("a:80", "b:80"), green=("b:80",))
    assert caught.value.input_name == "green"
    assert "b:80" in caught.value.cause and caught.value.fix


# -- the one table of inputs ----------------------------------------------------------------------


def test_the_table_names_each_input_once_with_its_variable() -> None:
    names = [spec.name for spec in INPUTS]
    assert len(names) == len(set(names)) and names[0] == "target"
    assert BY_NAME["rollback-on-failure"].env == "BG_ROLLBACK_ON_FAILURE"
    assert BY_NAME["config-path"].default == "", "empty: found from the running config"
    assert [spec.name for spec in INPUTS if spec.secret] == ["ssh-key", "known-hosts"]
    assert [spec.name for spec in INPUTS if spec.required] == ["target"]
    assert defaults() == {spec.name: spec.default for spec in INPUTS}


@pytest.mark.parametrize("spec", [spec for spec in INPUTS if spec.parse], ids=lambda spec: spec.name)
def test_every_default_parses(spec: Input) -> None:
    assert spec.parse is not None
    spec.parse(spec.name, spec.default)


def test_options_from_nothing_are_the_table_defaults() -> None:
    options = swap_options_from({})
    assert options == SwapOptions(
        config_path=None, upstream="app", slots=Slots(blue=(), green=()), staging_upstream="app_staging"
    )


def test_an_empty_value_takes_the_default_unless_empty_means_skip() -> None:
    options = swap_options_from({"steps": " ", "upstream": "", "health-path": "", "to": ""})
    assert (options.steps, options.upstream, options.to) == ((100,), "app", "auto")
    assert options.health_path is None, "an explicit empty health-path skips the gate"
    assert swap_options_from({"health-path": None}).health_path == "/healthz"  # type: ignore[dict-item]


def test_values_are_parsed_by_the_table() -> None:
    options = swap_options_from(
        {
            "blue": "b1:80, b2:80",
            "green": "g1:80",
            "to": "GREEN",
            "steps": "10,100",
            "step-pause": "2s",
            "verify-url": "http://127.0.0.1/",
            "verify-expect": " 200 ",
            "drain-hook": "/admin/drain",
            "drain-policy": "wait",
            "rollback-on-failure": "false",
            "dry-run": "yes",
            "lock-timeout": "1m",
        },
        template="upstream {{ upstream }} {}",
    )
    assert options.slots == Slots(blue=("b1:80", "b2:80"), green=("g1:80",))
    assert (options.to, options.steps, options.step_pause) == ("green", (10, 100), 2.0)
    assert (options.verify_url, options.verify_expect) == ("http://127.0.0.1/", "200")
    assert (options.drain_hook, options.drain_policy) == (("POST", "/admin/drain"), "wait")
    assert (options.rollback_on_failure, options.dry_run, options.lock_timeout) == (False, True, 60.0)
    assert options.template == "upstream {{ upstream }} {}"


def test_the_first_bad_value_is_named() -> None:
    with pytest.raises(InputError) as caught:
        swap_options_from({"upstream": "a b", "steps": "50,10"})
    assert caught.value.input_name == "upstream", "in the table's order"


def test_verify_expect_needs_verify_url() -> None:
    with pytest.raises(InputError) as caught:
        swap_options_from({"verify-expect": "green"})
    assert caught.value.input_name == "verify-expect"


def test_the_staging_upstream_is_named_for_the_upstream_unless_named_or_turned_off() -> None:
    assert swap_options_from({"upstream": "web"}).staging_upstream == "web_staging"
    assert not swap_options_from({"upstream": "web"}).staging_requested, "adoption adds none unless asked"
    named = swap_options_from({"staging-upstream": "preview"})
    assert (named.staging_upstream, named.staging_requested) == ("preview", True)
    assert swap_options_from({"staging-upstream": "none"}).staging_upstream is None
    with pytest.raises(InputError, match="staging-upstream"):
        swap_options_from({"staging-upstream": "app"})


def test_targets_are_split_on_commas_and_lines_and_each_is_checked() -> None:
    assert parse_targets("target", "docker://lb1,\n docker://lb2\nlocal") == ("docker://lb1", "docker://lb2", "local")
    with pytest.raises(InputError, match="listed twice"):
        parse_targets("target", "docker://lb1, docker://lb1")
    with pytest.raises(InputError, match="not a target"):
        parse_targets("target", "docker://lb1, http://lb2")


def test_a_hook_is_a_command_without_nul_and_of_bounded_size() -> None:
    assert parse_hook_command("pre-switch", "  ./migrate.sh --expand\n") == "./migrate.sh --expand"
    with pytest.raises(InputError, match="NUL"):
        parse_hook_command("pre-switch", "a\x00b")
    with pytest.raises(InputError, match="longer"):
        parse_hook_command("pre-switch", "x" * 20000)
