"""Fuzz targets: whatever a user or the LB puts in reaches the rendered file, a shell, a URL or a
workflow command only in a shape that is safe there.

``make fuzz`` runs every test marked ``fuzz`` (these, and the property tests of
test_render_properties, test_adopt, test_wire, test_lbscripts and test_security_findings) with at
least 10,000 examples each: the ``fuzz`` profile of tests/unit/conftest.py. ``make test`` and CI
run the ``ci`` profile: the counts written next to each test. A test's own
``@settings(max_examples=...)`` overrides any profile, so such tests take their count from
``examples(n)``.

- the rendered file: a state line read back from the LB lets only valid values through, and the
  file rendered from them reads back the same (``upstream.parse_state``, ``render``);
- the action's inputs: any ``BG_*`` environment through ``swap_action.action.run`` against the fake
  LB. Refused input never touches the LB; every file the LB is given or holds passes its
  ``nginx -t`` and Nginx's grammar with only the engine's directives, and what Nginx serves is what
  is on disk; every URL it is asked for is a plain http(s) URL; every line of a secret is masked
  before anything else is written, and a secret reaches no log line, output, summary or report;
- shell-bound arguments: the LB scripts hand curl each URL as one argument, never expanded;
- URLs: an accepted verify URL is accepted again as it is, and it and the health and drain-hook
  URLs built from accepted inputs hold only a URL's characters (never an option, a space or a quote);
- workflow commands: an annotation, group or mask is one line the runner decodes back exactly;
  outputs read back exactly, whatever their values.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import paramiko
import pytest
from action_runs import github_environ
from fakes import LB_CONFIG, App, FakeHost, NoTransport, nginx_test
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_github import read_outputs

from swap_action import action
from swap_action.errors import InputError, StateError
from swap_action.github import Commands, output_block
from swap_action.hooks import HOOK_NAMES
from swap_action.host import Begun, Installed, Planned, ScriptedHost
from swap_action.host.api import HttpAnswer, ReloadRequest
from swap_action.host.scripted import program
from swap_action.inputs import (
    INPUTS,
    SLOTS,
    parse_addresses,
    parse_drain_hook,
    parse_http_path,
    parse_url,
)
from swap_action.nginxconf import ConfigSyntaxError, Directive, parse
from swap_action.transport import Transport
from swap_action.transport.local import LocalTransport
from swap_action.transport.ssh import SshTransport
from swap_action.upstream import STATE_PREFIX, parse_state, render, weights_for_step


def examples(n: int) -> int:
    """``max_examples`` for a test that sets its own: ``n`` under the ci profile, at least the fuzz
    profile's count under ``HYPOTHESIS_PROFILE=fuzz`` (tests/unit/conftest.py registers both)."""
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "fuzz":
        return max(n, settings.get_profile("fuzz").max_examples)
    return n


# -- strategies ---------------------------------------------------------------------------------
# What text aimed at a config, a shell, curl, a URL or the runner would try.
NASTY = [
    "\n", "\r", "\r\n", "\t", " ", ";", "{", "}", '"', "'", "\\", "#", "|", "&", ">", "<", "*", "?",
    "$(id)", "`id`", "${HOME}", "$IFS", "[a-b]", "{a,b}", "~", "..", "/", "-", "--", "-K/etc/passwd",
    "-o/tmp/x", "%", "%0A", "%25", "::", "::error::x", "::add-mask::x", "##[error]x", "\x1b[31m",
    "\x0b", "\x85", "\u2028", "\ufeff", "\u00a0", "\uff11", "\u210c", "\u00e9", "=", ",", ":", "@", "\x7f",
]  # fmt: skip
nasty = st.sampled_from(NASTY)
# Text that argv, environment variables and files can carry (no NUL, no lone surrogate).
plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


def fuzzed(*good: str) -> st.SearchStrategy[str]:
    """Good values, the same with nasty text spliced in, nasty text alone, and arbitrary text."""
    base = st.sampled_from(good)
    spliced = st.builds(
        lambda text, at, extra: text[: at % (len(text) + 1)] + extra + text[at % (len(text) + 1) :],
        base,
        st.integers(0, 80),
        st.one_of(nasty, st.lists(nasty, min_size=1, max_size=4).map("".join), plain_text),
    )
    mixed = st.lists(st.one_of(nasty, plain_text, base), min_size=1, max_size=5).map("".join)
    return st.one_of(base, spliced, spliced, mixed, plain_text)


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
host = st.one_of(
    st.lists(label, min_size=1, max_size=3).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["[::1]", "[fe80::1]", "[2001:db8::10]", "[::ffff:10.0.0.1]"]),
)
address = st.builds(lambda h, p: f"{h}:{p}", host, st.integers(1, 65535))
address_list = st.builds(
    lambda items, sep: sep.join(dict.fromkeys(items)),
    st.lists(address, min_size=1, max_size=3),
    st.sampled_from([",", ", ", " ", "\n"]),
)
URL_EXAMPLES = (
    "http://127.0.0.1/",
    "https://lb.example:8443/version?x=1&y=2#top",
    "http://[::1]:8080/a/b;c=d",
    "http://lb/$(id)",
    "http://user:p%40ss@lb:8080/",
)
PATH_EXAMPLES = ("/healthz", "/status?full=1", "/a-b/c_d.e~f/%20", "/$x;y")
TOKEN = st.text(alphabet="BCDFGHJKLMNPQRSTVWXZ", min_size=16, max_size=16).map(lambda t: f"Q{t}Q")


@st.composite
def secret_values(draw: st.DrawFn) -> tuple[str, str | None]:
    """A secret input: none, or arbitrary lines (a key-like block, nasty text) holding a token."""
    if draw(st.booleans()):
        return "", None
    token = draw(TOKEN)
    parts = draw(
        st.lists(
            st.one_of(
                nasty,
                plain_text,
                st.sampled_from(["-----BEGIN OPENSSH PRIVATE KEY-----", "==", "b3BlbnNzaC1rZXk%tdjEA", "\n"]),
            ),
            max_size=8,
        )
    )
    parts.insert(draw(st.integers(0, len(parts))), token)
    return "".join(parts), token


# -- what may reach the rendered file ---------------------------------------------------------------
ENGINE_DIRECTIVES = {"upstream", "server", "keepalive", "listen", "access_log", "location", "return"}
SERVER_PARAM = re.compile(r"^(down|weight=([1-9][0-9]?|100))$")


def walk(directives: Sequence[Directive]) -> Iterator[Directive]:
    for directive in directives:
        yield directive
        yield from walk(directive.block or [])


def assert_engine_config(text: str, servers: set[str], path: str = LB_CONFIG) -> None:
    """A file the engine rendered: the fake's ``nginx -t`` and Nginx's grammar accept it, it holds
    only the engine's directives, and its server lines name only the given servers."""
    assert nginx_test(text, path) is None, text
    try:
        tree = parse(text)
    except ConfigSyntaxError as exc:
        raise AssertionError(f"not Nginx's grammar ({exc}):\n{text}") from None
    for directive in walk(tree):
        assert directive.name in ENGINE_DIRECTIVES, text
        values = directive.values
        if directive.name == "server" and directive.block is None:
            assert values[0] in servers, (values[0], servers)
            assert all(SERVER_PARAM.match(param) for param in values[1:]), values


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=False), plain_text)
STATE_FUZZ: dict[str, st.SearchStrategy[Any]] = {
    "live": st.one_of(fuzzed(*SLOTS), json_leaf),
    "previous": st.one_of(fuzzed(*SLOTS), json_leaf),
    "weights": st.one_of(
        st.dictionaries(st.one_of(st.sampled_from(SLOTS), plain_text), st.one_of(st.integers(-5, 150), json_leaf)),
        json_leaf,
    ),
    "blue": st.one_of(st.lists(st.one_of(address, fuzzed("blue:8080", "[::1]:8081")), max_size=3), json_leaf),
    "green": st.one_of(st.lists(st.one_of(address, fuzzed("green:8080", "10.0.0.1:80")), max_size=3), json_leaf),
    "generation": st.one_of(fuzzed("g1700000000000-abcdef", "g1"), json_leaf),
    "adopted": json_leaf,
}


@st.composite
def state_line_values(draw: st.DrawFn) -> Any:
    """A state line's JSON as the engine writes it with up to two fields fuzzed or left out, or
    (one in ten) arbitrary JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.dictionaries(plain_text, json_leaf, max_size=3), st.lists(json_leaf), json_leaf))
    blue = draw(st.lists(address, max_size=3, unique=True))
    green = draw(st.lists(address.filter(lambda item: item not in blue), max_size=3, unique=True))
    live = draw(st.sampled_from(SLOTS))
    data: dict[str, Any] = {
        "live": live,
        "weights": weights_for_step(live, draw(st.sampled_from([100, 90, 50]))),
        "blue": blue,
        "green": green,
        "generation": draw(st.from_regex(r"g[0-9]{1,13}-[0-9a-f]{6}", fullmatch=True)),
    }
    if draw(st.booleans()):
        data["previous"] = draw(st.sampled_from([*SLOTS, None]))
    if draw(st.booleans()):
        data["adopted"] = draw(st.booleans())
    for name in draw(st.lists(st.sampled_from(sorted(STATE_FUZZ)), max_size=2, unique=True)):
        if name in data and draw(st.integers(0, 3)) == 0:
            del data[name]
        else:
            data[name] = draw(STATE_FUZZ[name])
    return data


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None)
@given(
    data=state_line_values(),
    raw=st.one_of(st.none(), st.none(), st.none(), fuzzed('{"live":"blue"}')),
    before=st.sampled_from(["", "# Managed by bluegreen-swap\n", "upstream app {\n"]),
    after=st.sampled_from(["", "\n", "\nserver evil:1;\n"]),
)
def test_a_state_line_read_back_lets_only_valid_values_reach_the_next_render(
    data: Any, raw: str | None, before: str, after: str
) -> None:
    text = before + STATE_PREFIX + (json.dumps(data) if raw is None else raw) + after
    try:
        state = parse_state(text)
    except StateError:
        event("refused")
        return
    assert state.live in (*SLOTS, None) and state.previous in (*SLOTS, None)
    assert set(state.weights) <= set(SLOTS)
    assert all(type(value) is int and 0 <= value <= 100 for value in state.weights.values())
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", state.generation)
    for slot in SLOTS:
        for item in getattr(state, slot):
            assert parse_addresses(slot, item) == (item,)
    try:
        slots = state.slots
    except InputError:
        event("refused: a server in both slots")
        return
    event("accepted")
    live = state.live or "blue"
    rendered = render(
        upstream="app",
        slots=slots,
        weights=weights_for_step(live, 100),
        generation=state.generation,
        previous=state.previous,
    )
    assert_engine_config(rendered, set(slots.blue) | set(slots.green))
    again = parse_state(rendered)
    assert (again.blue, again.green, again.generation, again.previous) == (
        slots.blue,
        slots.green,
        state.generation,
        state.previous,
    )
    assert again.live == live and again.weights == dict(sorted(weights_for_step(live, 100).items()))


# -- the action's inputs, end to end against the fake LB ---------------------------------------------
# Valid values of each input (a few each); the test fuzzes up to three inputs at a time, so that
# both the refusing paths and the swap itself are exercised.
GOOD: dict[str, tuple[str, ...]] = {
    "target": ("docker://lb", "local", "ssh://deploy@lb.example:2222"),
    "config-path": ("", LB_CONFIG),
    "template": ("",),
    "upstream": ("app",),
    "blue": ("", "blue:8080", "blue:8080, blue2:8080"),
    "green": ("", "green:8080", "green:8080\n10.0.0.7:8080"),
    "to": ("auto", "green", " Blue "),
    "steps": ("100", "10,50,100"),
    "step-pause": ("0s", "1"),
    "health-path": ("/healthz", ""),
    "verify-url": ("", "http://127.0.0.1/"),
    "verify-expect": ("",),
    "drain-timeout": ("30s", "0"),
    "drain-hook": ("", "POST /admin/drain"),
    "drain-policy": ("cut", "wait"),
    "rollback-on-failure": ("true", "false"),
    "dry-run": ("false", "true"),
    "lock-timeout": ("120s",),
}
SECRETS = tuple(spec.name for spec in INPUTS if spec.secret)
FUZZABLE = tuple(spec.name for spec in INPUTS if not spec.secret)
EXTRA_FUZZ: dict[str, st.SearchStrategy[str]] = {
    "template": st.sampled_from(["missing.j2", "../outside.j2", "/etc/passwd", " "]),
    "blue": st.one_of(fuzzed("blue:8080", "10.0.0.1:80 [::1]:8081"), address_list),
    "green": st.one_of(fuzzed("green:8080", "green:8080,green2:8080"), address_list),
    "health-path": fuzzed(*PATH_EXAMPLES),
    "verify-url": fuzzed(*URL_EXAMPLES),
    "verify-expect": fuzzed("green", "200", "blue"),
    "drain-hook": fuzzed("POST /admin/drain", "/admin/drain", "DELETE /admin/x?y=1"),
    # Hooks are shell commands the workflow's author writes: fuzzed text would run as one here.
    **{hook: st.sampled_from(["", "true", "exit 3", 'test -n "$SWAP_TARGET_SLOT"']) for hook in HOOK_NAMES},
}


@st.composite
def action_inputs(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str | None]]:
    """(every input's text, each secret input's token): good values, up to three of them fuzzed
    (a hook only ever from its short list of harmless commands)."""
    values = {name: draw(st.sampled_from(GOOD.get(name, (BY_DEFAULT[name],)))) for name in FUZZABLE}
    for name in draw(st.lists(st.sampled_from(FUZZABLE), max_size=3, unique=True)):
        good = GOOD.get(name, (BY_DEFAULT[name],))
        if name in HOOK_NAMES:
            values[name] = draw(EXTRA_FUZZ[name])
            continue
        values[name] = draw(EXTRA_FUZZ.get(name, fuzzed(*good)) if draw(st.booleans()) else fuzzed(*good))
    tokens: dict[str, str | None] = {}
    for name in SECRETS:
        values[name], tokens[name] = draw(secret_values())
    return values, tokens


BY_DEFAULT = {spec.name: spec.default for spec in INPUTS}


class RecordingHost(FakeHost):
    """The fake LB, recording every URL it is asked to request and every file text it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.texts: list[str] = []

    def begin(self, config_path: str, lock_dir: str, owner: str, lease_s: int, gate_urls: Sequence[str] = (), *args: Any, **kwargs: Any) -> Begun:  # fmt: skip
        self.urls += gate_urls
        return super().begin(config_path, lock_dir, owner, lease_s, gate_urls, *args, **kwargs)

    def plan(self, config_path: str, text: str, generation: str, health_urls: Sequence[str], max_s: float) -> Planned:
        self.urls += health_urls
        self.texts.append(text)
        return super().plan(config_path, text, generation, health_urls, max_s)

    def install(
        self,
        config_path: str,
        text: str,
        generation: str,
        health_urls: Sequence[str],
        max_s: float,
        gate: str = "",
        reload: ReloadRequest | None = None,
        proof: tuple[str, str] | None = None,
    ) -> Installed:
        self.urls += health_urls
        self.texts.append(text)
        return super().install(config_path, text, generation, health_urls, max_s, gate, reload, proof)

    def http(self, method: str, urls: Sequence[str], max_s: float) -> list[HttpAnswer]:
        self.urls += urls
        return super().http(method, urls, max_s)


def runner_unescape_data(text: str) -> str:
    """How the Actions runner decodes a command's message (ActionCommand.UnescapeData)."""
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def runner_unescape_property(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


URL_SHAPE = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")


def assert_plain_url(url: str) -> None:
    """A URL handed to curl: http(s), then only the characters of a URL (printable ASCII, no space,
    no quote, no backslash), so curl takes it as one URL and never as an option."""
    assert URL_SHAPE.fullmatch(url), url


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.fuzz
@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=action_inputs())
def test_the_actions_inputs_reach_the_lb_only_validated_and_secrets_stay_masked(
    workspace: Path, case: tuple[dict[str, str], dict[str, str | None]]
) -> None:
    inputs, tokens = case
    fake = RecordingHost()
    for slot in SLOTS:  # every server the inputs name answers (refused ones never get this far)
        for item in re.split(r"[\s,]+", inputs[slot]):
            fake.apps.setdefault(item, App(slot))
    environ = {**github_environ(workspace), **{spec.env: inputs[spec.name] for spec in INPUTS}}
    (workspace / "bluegreen-swap-report-swap.json").write_text("")

    def open_transport(target: str, *, ssh_key: str | None = None, known_hosts: str | None = None) -> Transport:
        if target.strip().startswith("ssh://"):  # the real checks of the URL, the key and known-hosts
            SshTransport.from_url(target, key=ssh_key, known_hosts=known_hosts)
        return NoTransport()

    stream = io.StringIO()
    with (
        mock.patch.object(action, "open_transport", open_transport),
        mock.patch.object(action, "ScriptedHost", lambda transport, **_: fake),
        mock.patch.object(paramiko.SSHClient, "connect", side_effect=paramiko.SSHException("offline: a fuzz test")),
        mock.patch.object(time, "sleep"),  # step pauses, lock polls, the drain's loop
    ):
        code = action.run(environ, Commands(environ, stream))
    event(f"exit {code}")
    assert code in (0, 1)
    try:
        action.parse_request(action.read_inputs(environ), workspace)
    except InputError:
        assert fake.calls == [], "refused input must never touch the LB"
    if fake.calls:
        event("reached the LB")

    # The rendered file: every text the LB was given and every file it holds is one the engine means.
    servers = set(fake.apps)
    for text in [*fake.texts, *fake.files.values(), fake.served]:
        assert_engine_config(text, servers)
    assert fake.live_text() == fake.served, "what Nginx serves is what is on disk"
    for url in fake.urls:
        assert_plain_url(url)

    # Secrets: masked before anything else, and never written in the clear.
    log = stream.getvalue()
    lines = log.split("\n")
    masks = [i for i, line in enumerate(lines) if line.startswith("::add-mask::")]
    assert masks == list(range(len(masks))), "every ::add-mask:: comes before any other line"
    masked = {runner_unescape_data(lines[i].removeprefix("::add-mask::")) for i in masks}
    for name in SECRETS:
        wanted = {part.strip() for part in inputs[name].splitlines() if len(part.strip()) >= 4}
        assert wanted <= masked
    written = {
        "log": "\n".join(lines[len(masks) :]),
        "outputs": (workspace / "output").read_text(),
        "summary": (workspace / "summary").read_text(),
        "report": (workspace / "bluegreen-swap-report-swap.json").read_text(),
    }
    for name, token in tokens.items():
        if token is not None:
            for where, text in written.items():
                assert token not in text, f"{name} written in the clear to the {where}"
    assert "\r" not in log


# -- shell-bound arguments: the LB scripts hand curl each URL as one argument ------------------------------
# A curl that records its argument vector (count, then each argument, NUL-terminated) and answers 200.
CURL_STUB = """#!/bin/sh
printf '%s\\0' "$#" "$@" >> "$FUZZ_CURL_ARGV"
while [ "$#" -gt 0 ]; do
    case "$1" in -o) printf 'ok' > "$2"; printf '200 0.001\\n'; shift ;; esac
    shift
done
"""


@pytest.fixture
def recording_curl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with the recording curl first; the file it appends its argument vectors to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(CURL_STUB)
    (bin_dir / "curl").chmod(0o755)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("FUZZ_CURL_ARGV", str(tmp_path / "argv"))
    return tmp_path / "argv"


def curl_transfers(path: Path) -> list[list[str]]:
    """Each transfer's arguments as curl received them: every call's, split at --next."""
    items = path.read_bytes().split(b"\0")[:-1] if path.exists() else []
    transfers, index = [], 0
    while index < len(items):
        count = int(items[index])
        transfer: list[str] = []
        for item in items[index + 1 : index + 1 + count]:
            if item == b"--next":
                transfers.append(transfer)
                transfer = []
            else:
                transfer.append(item.decode("utf-8", "surrogateescape"))
        transfers.append(transfer)
        index += 1 + count
    return transfers


def http_get_argv(method: str, max_s: str, urls: Sequence[str]) -> list[str]:
    return ["sh", "-c", program("http_get"), "bluegreen-swap", "http_get", method, max_s, *urls]


# URLs parse_url accepts, built (not filtered) from its alphabet: shell syntax, globs and quotes included.
URL_CHARS = "ABCXYZabcxyz0123456789._~:/?#[]@!$&'()*+,;=%-"
accepted_url = st.builds(
    lambda scheme, server, path: f"{scheme}://{server}{path}",
    st.sampled_from(["http", "https"]),
    st.one_of(host, address),
    st.text(alphabet=URL_CHARS, max_size=30).map(lambda text: "/" + text),
)
health_url = st.builds(lambda server, path: f"http://{server}{path}", address, st.sampled_from(PATH_EXAMPLES))


def _accepted(parser: Any, text: str) -> bool:
    try:
        parser("x", text)
    except InputError:
        return False
    return True


@pytest.mark.fuzz
@settings(max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    urls=st.lists(st.one_of(accepted_url, health_url, plain_text), min_size=1, max_size=3),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_the_lb_scripts_hand_curl_each_url_as_one_argument(recording_curl: Path, urls: list[str], method: str) -> None:
    """Shell syntax, globs, spaces, dashes: curl gets the very text, last, after its own options.
    (Only validated URLs reach http_get: an arbitrary text starting with '-' would be an option to
    curl; URL validation, tested above and below, is what keeps that from happening.)"""
    recording_curl.write_bytes(b"")
    done = LocalTransport().run(http_get_argv(method, "2", urls), timeout=20)
    assert done.ok, done.output
    transfers = curl_transfers(recording_curl)
    assert [transfer[-1] for transfer in transfers] == urls
    for transfer in transfers:
        assert len(transfer) == 15, transfer  # the options, then the URL: nothing split or added
        assert transfer[:7] == ["-s", "-g", "--proto", "=http,https", "-X", method, "--max-time"]
    if all(_accepted(parse_url, url) for url in urls):
        event("all validated")
        answers = ScriptedHost(LocalTransport()).http(method, urls, 2)
        assert [answer.url for answer in answers] == urls
        assert all(answer.status == 200 and answer.body == "ok" for answer in answers)


def test_http_get_gives_every_url_the_callers_max_time(recording_curl: Path) -> None:
    recording_curl.write_bytes(b"")
    ScriptedHost(LocalTransport()).http("GET", ["http://a:1/", "http://b:2/"], 2)
    transfers = curl_transfers(recording_curl)
    assert [transfer[transfer.index("--max-time") + 1] for transfer in transfers] == ["2", "2"]


# -- URLs ------------------------------------------------------------------------------------------------
@pytest.mark.fuzz
@settings(max_examples=examples(300), deadline=None)
@given(
    url=fuzzed(*URL_EXAMPLES),
    path=fuzzed(*PATH_EXAMPLES),
    hook=fuzzed("POST /admin/drain", "/admin/drain", "get /x?y=1"),
    servers=st.one_of(address_list, fuzzed("blue:8080", "[::1]:8081")),
)
def test_urls_from_accepted_inputs_are_plain_http_urls(url: str, path: str, hook: str, servers: str) -> None:
    """What the engine hands curl: the verify URL, and ``http://{server}{path}`` for the health path
    and the drain hook (swap_action/run.py, swap_action/drain.py)."""
    built: list[str] = []
    try:
        accepted = parse_url("verify-url", url)
    except InputError:
        pass
    else:
        event("verify-url accepted")
        assert parse_url("verify-url", accepted) == accepted == url.strip()
        assert urlsplit(accepted).scheme in ("http", "https") and not accepted.startswith("-")
        built.append(accepted)
    try:
        addresses = parse_addresses("blue", servers)
    except InputError:
        addresses = ("blue:8080",)
    try:
        health = parse_http_path("health-path", path)
        built += [f"http://{server}{health}" for server in addresses]
        event("health-path accepted")
    except InputError:
        pass
    try:
        drain = parse_drain_hook("drain-hook", hook)
    except InputError:
        drain = None
    if drain is not None:
        event("drain-hook accepted")
        method, hook_path = drain
        assert method in ("GET", "POST", "PUT", "DELETE")
        built += [f"http://{server}{hook_path}" for server in addresses]
    for item in built:
        assert_plain_url(item)
        assert not item.startswith("-")


# -- workflow commands -------------------------------------------------------------------------------------
def github_commands(tmp_path: Path) -> tuple[Commands, io.StringIO, Path]:
    output = tmp_path / "output"
    output.write_text("")
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)}
    stream = io.StringIO()
    return Commands(environ, stream), stream, output


def runner_parse(line: str) -> tuple[str, dict[str, str], str]:
    """The runner's reading of a ``::command props::data`` line (ActionCommand.TryParseV2)."""
    message = line.lstrip()
    assert message.startswith("::"), line
    end = message.index("::", 2)
    info, data = message[2:end], message[end + 2 :]
    name, _, props = info.partition(" ")
    properties = {}
    for pair in filter(None, props.split(",")):
        key, _, value = pair.partition("=")
        properties[key] = runner_unescape_property(value)
    return name, properties, runner_unescape_data(data)


workflow_text = st.one_of(fuzzed("cause: 100% broken", "bluegreen-swap: verify, failed"), plain_text)


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["error", "warning", "group"]), message=workflow_text, title=workflow_text)
def test_an_annotation_or_group_is_one_line_the_runner_decodes_exactly(
    tmp_path: Path, kind: str, message: str, title: str
) -> None:
    commands, stream, _ = github_commands(tmp_path)
    if kind == "group":
        commands.group(message)
    else:
        getattr(commands, kind)(message, title=title)
    out = stream.getvalue()
    assert out.endswith("\n") and "\n" not in out[:-1] and "\r" not in out, "one physical line"
    name, properties, data = runner_parse(out[:-1])
    assert name == kind and data == message
    assert properties == ({"title": title} if title and kind != "group" else {})


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    outputs=st.dictionaries(
        st.sampled_from(action.OUTPUTS),
        st.one_of(workflow_text, st.sampled_from(["EOF", "ghadelimiter_x", "a<<EOF", "x\nEOF\ny=1"])),
    ),
    delimiter=st.one_of(st.none(), st.sampled_from(["EOF", "ghadelimiter_x", "=", "<<"]), plain_text),
)
def test_outputs_read_back_exactly_whatever_their_values(
    tmp_path: Path, outputs: dict[str, str], delimiter: str | None
) -> None:
    commands, _, path = github_commands(tmp_path)
    commands.set_outputs(outputs)
    assert read_outputs(path.read_bytes().decode()) == outputs  # as the runner reads it: no newline translation
    if delimiter and "\n" not in delimiter and "<<" not in delimiter:
        for name, value in outputs.items():  # a delimiter found in the value is never used
            block = output_block(name, value + delimiter, delimiter)
            assert read_outputs(block) == {name: value + delimiter}


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=st.lists(st.one_of(workflow_text, nasty), max_size=8).map("".join), then=workflow_text)
def test_every_line_of_any_secret_is_masked_on_one_line_before_it_is_used(
    tmp_path: Path, secret: str, then: str
) -> None:
    commands, stream, _ = github_commands(tmp_path)
    commands.mask(secret)
    commands.error(then)
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and "\r" not in stream.getvalue()
    masks = [runner_parse(line) for line in lines[:-2]]
    assert all(name == "add-mask" and not properties for name, properties, _ in masks)
    expected = {part.strip() for part in secret.splitlines() if len(part.strip()) >= 4}
    assert sorted(data for _, _, data in masks) == sorted(expected)
    assert runner_parse(lines[-2])[0] == "error"


def test_the_shell_stub_sees_arguments_as_sh_passes_them(recording_curl: Path) -> None:
    """The recording curl itself: an argument with a NUL-free oddity survives the round trip."""
    recording_curl.write_bytes(b"")
    odd = "a b\n$(id)\\'\"*"
    subprocess.run(["sh", "-c", 'curl -o /dev/null "$1"', "sh", odd], check=True, capture_output=True)
    assert curl_transfers(recording_curl) == [["-o", "/dev/null", odd]]
