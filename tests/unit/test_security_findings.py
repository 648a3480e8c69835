"""Regression tests for security findings of issue 9, each reproduced through the code's own entry points.

1. Text from a user or from the LB (input echoes, error causes, HTTP bodies, holder names) reached
   the step summary as markdown (headings, links, images, HTML, extra table cells) and plain log
   lines as workflow commands.
2. The password of a ``verify-url`` (``http://user:pass@host/``) was shown in the log, the summary
   and the report.
3. A malformed ssh-key or known-hosts line crashed paramiko (AssertionError, IndexError,
   InvalidHostKey...) into a traceback instead of an ``InputError``.
4. A local command that timed out left its grandchildren running.
5. ``config-path`` accepted any path: a dry run showed a 0600 file (``/etc/shadow``) in the
   config-diff, the summary and the report; a symlink was followed; ``/dev/zero`` filled memory.
   Only a regular file the running Nginx loads is managed, and reads are capped (the action run
   on the local transport, with the LB scripts against a temporary directory).
6. reload_confirm's marker was a predictable file in /tmp (``bluegreen-swap-marker.$$``): another
   local user could make an unconfirmed reload read as confirmed, or have root write through a
   symlink.

The markdown checks follow cmark-gfm (GitHub's renderer): a backslash before any ASCII punctuation
is an escape (also when GFM splits a table row into cells, before inline parsing), a run of N
backticks opens a code span that only a run of exactly N closes, and a block (heading, list, quote)
can only start at the beginning of a line.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import re
import stat
import string
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import paramiko
import pytest
from action_runs import Run, github_environ
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fakes import FakeHost
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_targets import examples
from test_lbscripts import GENERATION, Lb, _marker, lb  # noqa: F401 - lb: test_lbscripts' LB fixture

from swap_action import action
from swap_action.errors import (
    CommandTimeout,
    InputError,
    StateError,
    SwapError,
    TransportError,
    VerificationError,
)
from swap_action.github import Commands, GitHubObserver, md_code, md_text, summary_markdown
from swap_action.host import ScriptedHost
from swap_action.host.scripted import MAX_FILE_BYTES
from swap_action.inputs import SwapOptions, parse_url, swap_options_from
from swap_action.outcome import DrainOutcome, ErrorInfo, Outcome, Phase, Result, Step, SwapReport
from swap_action.redact import redact_credentials, redact_document, url_passwords
from swap_action.transport import CommandResult
from swap_action.transport import local as local_transport
from swap_action.transport.local import LocalTransport
from swap_action.transport.ssh import SshTransport, _load_key, parse_known_hosts

# -- helpers: how GitHub reads what we write ---------------------------------------------------
_PUNCT = frozenset(string.punctuation)
_TRUSTED_MARKUP = ("**Cause:**", "**Fix:**", "**failed**")  # the summary's own emphasis
_MARKUP = set("<>[]`*_~&$|\\")  # what must never reach the renderer unescaped from untrusted text
INJECTION = "1\n# Owned\n[x](javascript:alert(1))|<img src=x>"


def _closing_run(line: str, start: int, length: int) -> int:
    """Where the next run of exactly ``length`` backticks starts at or after ``start``; -1 if none."""
    for match in re.finditer(r"`+", line[start:]):
        if len(match.group()) == length:
            return start + match.start()
    return -1


def plain_chars(line: str) -> str:
    """The characters of one markdown line the renderer may read as markup: not backslash-escaped,
    not inside a code span."""
    kept: list[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line) and line[index + 1] in _PUNCT:
            index += 2
            continue
        if char == "`":
            length = len(line[index:]) - len(line[index:].lstrip("`"))
            end = _closing_run(line, index + length, length)
            if end != -1:
                index = end + length
                continue
            kept.append("`" * length)
            index += length
            continue
        kept.append(char)
        index += 1
    return "".join(kept)


def cell_separators(row: str) -> int:
    """How many cell separators GFM finds in a table row (a backslash pairs with the next punctuation)."""
    count = index = 0
    while index < len(row):
        if row[index] == "\\" and index + 1 < len(row) and row[index + 1] in _PUNCT:
            index += 2
            continue
        count += row[index] == "|"
        index += 1
    return count


def unescape(text: str) -> str:
    """What the renderer shows for escaped text."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def markdown_problems(markdown: str, headings: set[str]) -> list[str]:
    """Structure untrusted text could have created: headings, markup outside code spans, extra cells."""
    problems: list[str] = []
    fence: str | None = None
    table: int | None = None
    for line in markdown.split("\n"):
        if fence is not None:
            fence = None if line == fence else fence
            continue
        if line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
            continue
        if line.startswith("#") and line not in headings:
            problems.append(f"heading: {line!r}")
        if line.startswith("|"):
            cells = cell_separators(line)
            table = cells if table is None else table
            if cells != table:
                problems.append(f"{cells} cell separators, not {table}: {line!r}")
            line = line.strip("|")
        else:
            table = None
        text = line
        for markup in _TRUSTED_MARKUP:
            text = text.replace(markup, "")
        loose = set(plain_chars(text)) & _MARKUP - {"|"}
        if loose:
            problems.append(f"unescaped {''.join(sorted(loose))}: {line!r}")
    return problems


def runner_commands(log: str) -> list[str]:
    """The workflow commands the runner would act on in a log (``::stop-commands::`` honoured)."""
    found: list[str] = []
    token: str | None = None
    for raw in re.split(r"\r\n|\r|\n", log):
        line = raw.lstrip()
        if token is not None:
            token = None if line == f"::{token}::" else token
            continue
        if line.startswith("::stop-commands::"):
            token = line.removeprefix("::stop-commands::")
        elif line.startswith(("::", "##[")):
            found.append(line)
    return found


# -- the action against the fake LB: test_action_entrypoint's run_action fixture ------------------
def _report_text(run: Run) -> str:
    return (run.tmp_path / run.outputs["report"]).read_text()


# == 1. markdown injection into the step summary; workflow commands in plain log lines =========
def _headings(markdown: str) -> set[str]:
    """The headings a summary of this shape has (taken from a run with harmless text)."""
    return {line for line in markdown.split("\n") if line.startswith("#")}


def _failed_report(cause: str, fix: str, detail: str) -> SwapReport:
    error = ErrorInfo("VerificationError", VerificationError.title, cause, fix)
    outcome = Outcome(Result.RESTORED, False, "blue", "blue", "green", restored=True, error=error)
    return SwapReport(
        outcome=outcome,
        duration_ms=12.0,
        config_diff="--- a\n+++ b\n-old\n+new\n",
        steps=[
            Step(Phase.LOCK, 0.0, duration_ms=1.0, detail=detail),
            Step(Phase.VERIFY, 0.0, "green", 100, duration_ms=2.0, ok=False, detail=detail),
        ],
        drain=DrainOutcome("complete", 5.0, 0, 0),
    )


def test_an_invalid_input_echoed_in_the_summary_creates_no_markdown(run_action: Any) -> None:
    run = run_action(None, steps=INJECTION)
    assert run.code == 1
    harmless = summary_markdown(_failed_report("x", "y", "z"), target="docker://lb")
    problems = markdown_problems(run.summary, _headings(harmless) | {run.summary.split("\n", 1)[0]})
    assert problems == [], run.summary
    cause = next(line for line in run.summary.split("\n") if line.startswith("**Cause:**"))
    # Shown as it was given, on one line: the escapes only stop it being read as markup.
    assert (
        unescape(cause)
        == "**Cause:** input 'steps': '1\\n# Owned\\n[x](javascript:alert(1))|<img src=x>' is not a list of percentages"
    )
    error_line = next(line for line in run.log.splitlines() if line.startswith("::error"))
    assert "\n" not in error_line and "%0A" in error_line


@pytest.mark.parametrize(
    "text",
    [
        INJECTION,
        "held by evil\n## Owned\n| a | b |\n|---|---|",
        "<script>alert(1)</script> ![img](http://x/y.png) [link](http://x)",
        "body ``` code `x` | cell \\| *em* _em_ ~~del~~ &lt; $x$",
        "trailing backslash \\",
        "`",
    ],
)
def test_untrusted_text_in_cause_fix_detail_and_target_stays_text(text: str) -> None:
    markdown = summary_markdown(_failed_report(text, text, text), target=text, report_path="r.json")
    harmless = summary_markdown(_failed_report("x", "y", "z"), target="docker://lb", report_path="r.json")
    assert markdown_problems(markdown, _headings(harmless)) == [], markdown
    assert markdown.count("\n") == harmless.count("\n"), "a newline in the text made a new line"


_untrusted = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(
    alphabet="`|\\*_[]()<>!#&$~:/\n\r -ahx", max_size=40
)


@pytest.mark.fuzz
@settings(max_examples=examples(300), deadline=None)
@given(cause=_untrusted, fix=_untrusted, detail=_untrusted, target=_untrusted)
def test_any_text_in_the_summary_stays_text(cause: str, fix: str, detail: str, target: str) -> None:
    markdown = summary_markdown(_failed_report(cause, fix, detail), target=target, report_path="r.json")
    same_shape = _failed_report("x", "y" if fix else "", "z")  # an empty fix has no line
    harmless = summary_markdown(same_shape, target="docker://lb", report_path="r.json")
    assert markdown_problems(markdown, _headings(harmless)) == [], markdown
    assert markdown.count("\n") == harmless.count("\n")


@pytest.mark.fuzz
@settings(max_examples=examples(500), deadline=None)
@given(text=_untrusted)
def test_escaped_text_shows_exactly_the_text_on_one_line(text: str) -> None:
    flat = " ".join(text.split())
    for rendered in (md_text(text), md_code(text)):
        assert "\n" not in rendered and "\r" not in rendered
        assert set(plain_chars(rendered)) & _MARKUP == set(), rendered
        assert cell_separators(rendered) == 0, rendered
    assert unescape(md_text(text)) == flat
    code = md_code(text)
    if code.startswith("`"):  # a code span: shown as is, between the fences
        ticks = code[: len(code) - len(code.lstrip("`"))]
        inner = code[len(ticks) : -len(ticks)]
        assert (inner[1:-1] if inner.startswith(" ") and inner.endswith(" ") and inner.strip() else inner) == flat
    else:
        assert unescape(code) == flat


def test_plain_text_outside_github_is_written_as_is() -> None:
    stream = io.StringIO()
    Commands({}, stream).write("::error::not under GitHub, so not a command")
    assert stream.getvalue() == "::error::not under GitHub, so not a command\n"


def test_a_plain_log_line_is_never_read_as_a_workflow_command() -> None:
    stream = io.StringIO()
    commands = Commands({"GITHUB_ACTIONS": "true"}, stream)
    observer = GitHubObserver(commands)
    forged = "held by x\n::add-mask::visible\r::error::forged\n  ##[warning]old-style"
    observer.step_finished(Step(Phase.LOCK, 0.0, duration_ms=1.0, detail=forged))
    observer.info(forged)
    commands.error(f"cause {forged}", title="t")
    assert runner_commands(stream.getvalue()) == [
        "::error title=t::cause held by x%0A::add-mask::visible%0D::error::forged%0A  ##[warning]old-style"
    ]
    assert "::error::forged" in stream.getvalue(), "the text itself is still shown"


# == 2. credentials in verify-url ===================================================================
SECRET = "s3cr3t-Pw"
CREDENTIAL_URL = f"http://bg:{SECRET}@127.0.0.1/"


def _recording(fake: FakeHost) -> list[str]:
    seen: list[str] = []
    request = fake.http

    def http(method: str, urls: Any, max_s: float) -> Any:
        seen.extend(urls)
        return request(method, urls, max_s)

    fake.http = http  # type: ignore[method-assign]
    return seen


def _shown_nowhere(run: Run) -> None:
    masks = [line for line in run.log.splitlines() if line.startswith("::add-mask::")]
    log = "\n".join(line for line in run.log.splitlines() if line not in masks)
    for face, text in (("log", log), ("summary", run.summary), ("report", _report_text(run))):
        assert SECRET not in text, f"{face} shows the password:\n{text}"


def test_a_verify_url_password_is_masked_and_never_shown_when_verification_fails(run_action: Any) -> None:
    fake = FakeHost()
    fake.lb_url = CREDENTIAL_URL
    fake.apps["green:8080"].fail = True
    sent = _recording(fake)
    run = run_action(fake, to="green", verify_url=CREDENTIAL_URL)
    assert run.code == 1, run.log
    assert f"::add-mask::{SECRET}" in run.log
    assert run.log.index("::add-mask::") < run.log.index("::group::")
    _shown_nowhere(run)
    assert "http://bg:***@127.0.0.1/ answered 500" in unescape(run.summary)
    cause = json.loads(_report_text(run))["outcome"]["error"]["cause"]
    assert cause.startswith("http://bg:***@127.0.0.1/ answered 500"), cause
    assert CREDENTIAL_URL in sent, "curl on the LB still gets the credentials"


def test_a_verify_url_password_is_never_shown_when_the_swap_succeeds(run_action: Any) -> None:
    fake = FakeHost()
    fake.lb_url = CREDENTIAL_URL
    sent = _recording(fake)
    run = run_action(fake, to="green", verify_url=CREDENTIAL_URL, verify_expect="green")
    assert run.code == 0, run.log
    _shown_nowhere(run)
    assert "5 x http://bg:***@127.0.0.1/: 200" in run.log and "http://bg:***@127.0.0.1/" in unescape(run.summary)
    assert CREDENTIAL_URL in sent


def test_a_refused_verify_url_does_not_echo_its_password(run_action: Any) -> None:
    run = run_action(None, verify_url=f"http://bg:{SECRET} x@127.0.0.1/")
    assert run.code == 1
    _shown_nowhere(run)
    assert "verify-url" in run.summary


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:pass@host/path", "http://user:***@host/path"),
        ("https://u:p@ss:w@h:8443/x?y=a@b#z", "https://u:***@h:8443/x?y=a@b#z"),
        ("https://a@b:c@host/", "https://a@b:***@host/"),
        ("'http://u:p%40x@h' answered 500 from a@b", "'http://u:***@h' answered 500 from a@b"),
        ("1: http://a:b@c/, 2: HTTP://d:e@f", "1: http://a:***@c/, 2: HTTP://d:***@f"),
        ("http://user@host/ and ssh://deploy@lb:22/", "http://user@host/ and ssh://deploy@lb:22/"),
        ("http://host:8080/x@y and http://h:1/?q=a:b@c", "http://host:8080/x@y and http://h:1/?q=a:b@c"),
        ("no url: a:b@c", "no url: a:b@c"),
    ],
)
def test_a_password_in_a_url_is_redacted_wherever_it_is(text: str, shown: str) -> None:
    assert redact_credentials(text) == shown
    assert redact_credentials(shown) == shown


def test_the_passwords_to_mask_are_the_written_and_the_decoded_ones() -> None:
    assert url_passwords("http://u:p%40ss@h/ and https://v:plain@i") == ["p%40ss", "p@ss", "plain"]
    assert url_passwords("http://u@h/") == []
    assert redact_document({"a": ["http://u:pw@h/", 3, None], "b": {"c": "http://u:pw@h"}}) == {
        "a": ["http://u:***@h/", 3, None],
        "b": {"c": "http://u:***@h"},
    }


def test_a_verify_url_with_credentials_is_kept_for_curl_and_shown_without_its_password() -> None:
    options = swap_options_from({"blue": "b:1", "green": "g:1", "verify-url": f" {CREDENTIAL_URL} "})
    assert options.verify_url == CREDENTIAL_URL
    assert options.shown_verify_url == "http://bg:***@127.0.0.1/"
    assert SwapOptions(None, "app", options.slots).shown_verify_url is None


@pytest.mark.parametrize("url", ["http://user:Se/Cr@host/", "http://user:Se?Cr@host/", "http://user:Se#Cr@host/"])
def test_a_verify_url_whose_password_would_end_the_host_part_is_refused_without_echo(url: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_url("verify-url", url)
    assert "Se" not in str(caught.value) and "Cr" not in str(caught.value)
    assert "%2F" in caught.value.fix


def test_a_verify_url_without_a_host_is_refused() -> None:
    with pytest.raises(InputError):
        parse_url("verify-url", "http:///path")


def test_a_refused_url_without_credentials_is_still_echoed() -> None:
    with pytest.raises(InputError) as caught:
        parse_url("verify-url", "file:///etc/passwd")
    assert "'file:///etc/passwd'" in caught.value.cause


# == 3. malformed ssh keys and known-hosts lines ===================================================
def _keys() -> dict[str, str]:
    ssh, pem = serialization.PrivateFormat.OpenSSH, serialization.PrivateFormat.TraditionalOpenSSL
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    enc = serialization.Encoding.PEM
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # small: loads faster
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    return {
        "ed25519": ed_key.private_bytes(enc, ssh, none).decode(),
        "ecdsa": ec_key.private_bytes(enc, ssh, none).decode(),
        "rsa": rsa_key.private_bytes(enc, ssh, none).decode(),
        "ecdsa-pem": ec_key.private_bytes(enc, pem, none).decode(),
        "rsa-pem": rsa_key.private_bytes(enc, pem, none).decode(),
        "rsa-pkcs8": rsa_key.private_bytes(enc, pkcs8, none).decode(),
    }


KEYS = _keys()


def _refused(text: str) -> InputError:
    with pytest.raises(InputError) as caught:
        _load_key(text)
    assert caught.value.input_name == "ssh-key" and caught.value.fix
    return caught.value


def _body(key: str) -> tuple[str, bytes, str]:
    lines = key.strip().splitlines()
    return lines[0], base64.b64decode("".join(lines[1:-1])), lines[-1]


def _pem(head: str, blob: bytes, tail: str) -> str:
    text = base64.b64encode(blob).decode()
    return "\n".join([head, *(text[i : i + 70] for i in range(0, len(text), 70)), tail]) + "\n"


def _input_error_or_key(text: str) -> bool:
    """True when ``text`` loads as a key; an InputError is the only other way out."""
    try:
        _load_key(text)
    except InputError as exc:
        assert exc.input_name == "ssh-key"
        return False
    return True


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa", "ecdsa-pem", "rsa-pem"])
def test_a_truncated_key_is_an_input_error(kind: str) -> None:
    key = KEYS[kind]
    head, blob, tail = _body(key)
    for cut in range(0, len(key), 9):
        loaded = _input_error_or_key(key[:cut])
        assert not loaded or cut > len(key) // 2
    for cut in range(0, len(blob), 3):
        # paramiko forgives a cut into an OpenSSH key's trailing comment and padding
        loaded = _input_error_or_key(_pem(head, blob[:cut], tail))
        assert not loaded or cut > len(blob) // 2, f"half a key loaded (cut at {cut} of {len(blob)})"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa", "rsa-pem"])
def test_a_key_with_flipped_characters_is_an_input_error_or_still_a_key(kind: str) -> None:
    head, blob, tail = _body(KEYS[kind])
    rnd = random.Random(kind)
    tries = 40 if kind.startswith("rsa") else 250  # a garbled RSA key takes cryptography ~50 ms to refuse
    for _ in range(tries):
        mutated = bytearray(blob)
        for _ in range(rnd.randint(1, 3)):
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        _input_error_or_key(_pem(head, bytes(mutated), tail))
    text = list(KEYS[kind])
    for _ in range(tries):
        flipped = text.copy()
        index = rnd.randrange(40, len(text) - 40)
        flipped[index] = rnd.choice(string.ascii_letters + string.digits + "+/=")
        _input_error_or_key("".join(flipped))


@pytest.mark.parametrize(
    "text",
    [
        KEYS["ed25519"].replace("OPENSSH PRIVATE KEY", "RSA PRIVATE KEY"),
        KEYS["rsa-pem"].replace("RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"),
        KEYS["ecdsa-pem"].replace("EC PRIVATE KEY", "DSA PRIVATE KEY"),
        KEYS["ed25519"].replace("-----BEGIN", "----BEGIN"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host",
        "",
        "\x00\xff",
    ],
)
def test_a_key_with_wrong_headers_or_no_key_is_an_input_error(text: str) -> None:
    _refused(text)


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["ed25519", "ecdsa", "rsa"]), garbage=st.binary(max_size=400), cut=st.integers(0, 600))
def test_garbage_inside_real_headers_is_an_input_error(kind: str, garbage: bytes, cut: int) -> None:
    head, blob, tail = _body(KEYS[kind])
    _input_error_or_key(_pem(head, blob[:cut] + garbage, tail))


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_as_a_key_is_an_input_error(text: str) -> None:
    _refused(text)


_HOST_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _connect(known_hosts: str) -> Exception:
    """What opening an SSH transport with these known-hosts raises (port 1: nothing listens there)."""
    try:
        SshTransport.from_url("ssh://deploy@127.0.0.1:1", key=KEYS["ed25519"], known_hosts=known_hosts)
    except Exception as exc:
        return exc
    raise AssertionError("connected to port 1?")


@pytest.mark.parametrize(
    ("known_hosts", "says"),
    [
        (f"@cert-authority *.example.com ssh-ed25519 {_HOST_KEY}", "@cert-authority"),
        (f"@revoked 127.0.0.1 ssh-ed25519 {_HOST_KEY}", "@revoked"),
        ("127.0.0.1 ssh-ed25519 AAAA!!!", "line 1"),
        ("127.0.0.1 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "line 1"),
        ("# comment\n127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "line 2"),
        (f"127.0.0.1 ssh-ed25519 {_HOST_KEY}\n@revoked * ssh-ed25519 {_HOST_KEY}", "line 2: @revoked"),
        ("@something else", "line 1: a marker line"),
        ("127.0.0.1 ssh-ed25519", "line 1"),
        ("127.0.0.1 ssh-unknown-type AAAA", "no host key"),
    ],
)
def test_a_bad_known_hosts_line_is_an_input_error(known_hosts: str, says: str) -> None:
    error = _connect(known_hosts)
    assert isinstance(error, InputError), repr(error)
    assert error.input_name == "known-hosts" and says in error.cause and error.fix


@pytest.mark.fuzz
@settings(max_examples=examples(200), deadline=None)
@given(line=st.text(alphabet=st.characters(codec="utf-8"), max_size=120))
def test_any_known_hosts_text_is_an_input_error_or_a_connection_error(line: str) -> None:
    error = _connect(f"127.0.0.1 ssh-ed25519 {_HOST_KEY}\n{line}")
    assert isinstance(error, InputError | TransportError), repr(error)


def test_an_encrypted_key_says_so() -> None:
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    assert "encrypted" in _refused(key.decode()).cause


def test_a_valid_key_still_loads() -> None:
    for kind in ("ed25519", "ecdsa", "rsa", "rsa-pem"):
        assert _input_error_or_key(KEYS[kind]), kind


def test_an_interrupt_while_loading_a_key_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(paramiko.Ed25519Key, "from_private_key", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _load_key(KEYS["ed25519"])


def test_known_hosts_lines_of_an_unknown_key_type_are_skipped_when_another_line_is_usable() -> None:
    entries = parse_known_hosts(f"# keyscan\n\nlb ssh-unknown-type AAAA\nlb,10.0.0.1 ssh-ed25519 {_HOST_KEY}\n")
    assert [(entry.hostnames, entry.key.get_name()) for entry in entries] == [(["lb", "10.0.0.1"], "ssh-ed25519")]


# == 4. a timed-out local command and its grandchildren ===========================================
def _processes_with(marker: str) -> Iterator[int]:
    """Live (not zombie) processes of this user whose environment carries ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if state != "Z" and marker.encode() in environ:
            yield int(entry.name)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_timed_out_command_leaves_no_grandchild_running(monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"BG_TEST_MARKER={uuid.uuid4().hex}"
    monkeypatch.setenv("BG_TEST_MARKER", marker.split("=", 1)[1])
    started: list[int] = []
    popen = subprocess.Popen

    class Spy(popen):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self.pid)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    try:
        begin = time.monotonic()
        with pytest.raises(CommandTimeout):
            LocalTransport().run(["sh", "-c", "sleep 30 & sleep 30 & wait"], timeout=0.5)
        assert time.monotonic() - begin < 10
        deadline = time.monotonic() + 5  # killed processes are reaped by init, not at once
        while (list(_processes_with(marker)) or _group_exists(started[0])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(_processes_with(marker)) == [], "a sleep 30 of the command is still running"
        assert not _group_exists(started[0]), "the command's process group still exists"
    finally:
        for pid in _processes_with(marker):
            os.kill(pid, 9)


def test_a_command_that_finishes_in_time_still_gives_its_output() -> None:
    result = LocalTransport().run(["sh", "-c", "cat; echo err >&2; exit 3"], stdin=b"in\n", timeout=5)
    assert (result.exit_code, result.stdout, result.stderr, result.raw_stdout) == (3, "in\n", "err\n", b"in\n")


# == 5. config-path: any file the engine could read came back in the diff, summary and report ====
# Through the action's own entry point (action.run) on the local transport: the real LB scripts
# against a temporary directory, with the stub nginx and curl of tests/unit/lbstubs (test_lbscripts).
SHADOW_HASH = "$6$Sh4dowSaltQ9$Zk3vSecretHashOfRootXw8"
SECRETS = {
    # A file like /etc/shadow: not Nginx syntax at all.
    "shadow": f"root:{SHADOW_HASH}:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n",
    # A private file that parses as an upstream file: only the preflight stands between it and a diff.
    "upstream-shaped": f"upstream app {{\n    server 10.0.0.1:8080;\n}}\n# root:{SHADOW_HASH}:19700:0:99999:7:::\n",
}
# nginx -T as Nginx prints it: the main config, then each regular file its http include loads (big
# ones left out: this stub is about which files are loaded, not their bytes).
NGINX_DUMPING = """#!/bin/sh
if [ "${1:-}" = -T ]; then
    printf 'nginx: the configuration file %s syntax is ok\\n' "$STUB_NGINX_CONF" >&2
    printf '# configuration file %s:\\n' "$STUB_NGINX_CONF"
    cat "$STUB_NGINX_CONF"
    printf '\\n'
    for f in "$STUB_INCLUDE_DIR"/*.conf; do
        [ -f "$f" ] && [ "$(wc -c < "$f")" -le 65536 ] || continue
        printf '# configuration file %s:\\n' "$f"
        cat "$f"
        printf '\\n'
    done
    exit 0
fi
exec "${0%/*}/nginx-stub" "$@"
"""
GUARD_BYTES = 8 * 1024 * 1024  # the most any one command's stdout may bring back in these tests


class GuardedLocal(LocalTransport):
    """The local transport, with each command's stdout cut at GUARD_BYTES (``| head -c``) and its
    size recorded: a regression that reads /dev/zero or a huge file whole fails these tests instead
    of filling this process's memory (2.9 GiB before MemoryError, in the finding)."""

    received: ClassVar[list[int]] = []

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        bounded = ["sh", "-c", f'"$0" "$@" | head -c {GUARD_BYTES}', *argv]
        result = super().run(bounded, timeout=min(timeout, 15.0), stdin=stdin)
        GuardedLocal.received.append(len(result.raw_stdout))
        return result


@pytest.fixture
def nginx_lb(lb: Lb, monkeypatch: pytest.MonkeyPatch) -> Lb:  # noqa: F811 - test_lbscripts' fixture
    """test_lbscripts' LB, whose Nginx includes conf.d/*.conf in its http block (nginx -T says so),
    and whose local transport is GuardedLocal."""
    conf_d = lb.managed.parent
    (lb.root / "nginx.conf").write_text(f"events {{}}\nhttp {{\n    include {conf_d}/*.conf;\n}}\n")
    (lb.root / "bin" / "nginx").rename(lb.root / "bin" / "nginx-stub")
    (lb.root / "bin" / "nginx").write_text(NGINX_DUMPING)
    (lb.root / "bin" / "nginx").chmod(0o755)
    monkeypatch.setenv("STUB_INCLUDE_DIR", str(conf_d))
    monkeypatch.setattr(local_transport, "LocalTransport", GuardedLocal)
    monkeypatch.setattr(GuardedLocal, "received", [])
    lb.host = ScriptedHost(GuardedLocal())
    return lb


def _secret_file(path: Path, kind: str) -> Path:
    path.write_text(SECRETS[kind])
    path.chmod(0o600)
    return path


def _swap(site: Lb, config_path: Path | str, *, dry_run: bool = True) -> Run:
    """The action, as a workflow step runs it, against this LB (target: local)."""
    workspace = site.root / "workspace"
    workspace.mkdir(exist_ok=True)
    environ = {
        **github_environ(workspace),
        "BG_TARGET": "local",
        "BG_CONFIG_PATH": str(config_path),
        "BG_BLUE": "10.0.0.1:8080",
        "BG_GREEN": "10.0.0.2:8080",
        "BG_TO": "green",
        "BG_DRY_RUN": "true" if dry_run else "false",
        "BG_CONFIRM_TIMEOUT": "2s",
    }
    run = Run(workspace, None)
    run.code = action.run(environ, Commands(environ, run.stream))
    return run


def _shows_none_of(run: Run, secret: str) -> None:
    faces = {
        "log": run.log,
        "summary": run.summary,
        "config-diff": run.outputs["config-diff"],
        "outputs": (run.tmp_path / "output").read_text(),
        "report": _report_text(run),
    }
    for face, text in faces.items():
        for part in (SHADOW_HASH, ":19700:0:99999:7:::"):  # in each secret's own lines
            assert part in secret and part not in text, f"{face} shows the secret:\n{text}"


def _refused_run(run: Run, says: str, error: type[SwapError] = InputError) -> None:
    assert run.code == 1, run.log
    report = json.loads(_report_text(run))
    assert report["outcome"]["error"]["type"] == error.__name__, report["outcome"]
    assert says in report["outcome"]["error"]["cause"], report["outcome"]["error"]
    assert report["outcome"]["changed"] is False and report["config_diff"] == ""


def _unchanged(path: Path, content: bytes, mode: int) -> None:
    info = path.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == mode
    assert path.read_bytes() == content


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_a_dry_run_on_a_secret_file_nginx_does_not_load_shows_none_of_it(nginx_lb: Lb, kind: str) -> None:
    secret = _secret_file(nginx_lb.root / "shadow", kind)  # stands for /etc/shadow: root's, 0600
    run = _swap(nginx_lb, secret)
    _shows_none_of(run, SECRETS[kind])
    _refused_run(run, f"the running Nginx does not include {secret} at all")
    _unchanged(secret, SECRETS[kind].encode(), 0o600)
    assert sorted(p.name for p in nginx_lb.root.iterdir() if p.name.startswith("shadow")) == ["shadow"], "no lock left"


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "swap"])
def test_a_symlink_as_the_managed_file_is_refused_and_nothing_behind_it_is_read_or_written(
    nginx_lb: Lb, dry_run: bool
) -> None:
    master = nginx_lb.start_master()  # a real swap gets as far as the preflight
    secret = _secret_file(nginx_lb.root / "shadow", "upstream-shaped")
    nginx_lb.managed.symlink_to(secret)  # where Nginx loads it (nginx -T shows it), as a link
    run = _swap(nginx_lb, nginx_lb.managed, dry_run=dry_run)
    _shows_none_of(run, SECRETS["upstream-shaped"])
    _refused_run(run, "is a symbolic link, not a regular file")
    _unchanged(secret, SECRETS["upstream-shaped"].encode(), 0o600)
    assert nginx_lb.managed.is_symlink() and os.readlink(nginx_lb.managed) == str(secret)
    assert nginx_lb.hups(master) == 0
    assert sorted(p.name for p in nginx_lb.managed.parent.iterdir()) == [nginx_lb.managed.name], (
        "nothing written beside it"
    )


def _special(site: Lb, kind: str) -> Path:
    path = site.managed
    if kind == "fifo":
        os.mkfifo(path, 0o600)  # nothing ever writes to it: a read would block for ever
    else:
        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless bytes
        except PermissionError:
            pytest.skip("no CAP_MKNOD here")
    return path


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_special_file_as_the_managed_file_is_refused_without_reading_it(nginx_lb: Lb, kind: str) -> None:
    path = _special(nginx_lb, kind)
    started = time.monotonic()
    run = _swap(nginx_lb, path)
    assert time.monotonic() - started < 10, "a read of the special file waited for its timeout"
    _refused_run(run, "is a special file, not a regular file")
    assert max(GuardedLocal.received) < 64 * 1024, "a command brought back more than its records"
    kind_now = path.lstat().st_mode
    assert stat.S_ISFIFO(kind_now) if kind == "fifo" else stat.S_ISCHR(kind_now)


def test_the_probe_of_dev_zero_reads_nothing_of_it(nginx_lb: Lb) -> None:
    started = time.monotonic()
    records = nginx_lb.call("probe", "/dev/zero")
    assert time.monotonic() - started < 10
    assert records.all("file") == ["notregular"] and records.blob_bytes("file") is None
    probe = nginx_lb.host.probe("/dev/zero")
    assert probe.file_kind == "notregular" and probe.managed_file is None
    assert max(GuardedLocal.received) < 64 * 1024


HUGE = 64 * 1024 * 1024
TAIL = b"# the tail of a huge file: " + SHADOW_HASH.encode() + b"\n"


def _huge(path: Path) -> bytes:
    """A 64 MiB sparse file: an upstream at its head, a secret at its tail, nothing in between."""
    head = SECRETS["upstream-shaped"].split("#")[0].encode()
    with path.open("wb") as handle:
        handle.write(head)
        handle.seek(HUGE - len(TAIL))
        handle.write(TAIL)
    return head


def test_the_read_cap_holds_a_huge_managed_file_is_read_only_to_the_cap(nginx_lb: Lb) -> None:
    head = _huge(nginx_lb.managed)
    blob = nginx_lb.call("probe", str(nginx_lb.managed)).blob_bytes("file")
    assert blob is not None and len(blob) == MAX_FILE_BYTES, "exactly the cap, not the file"
    assert blob.startswith(head) and TAIL not in blob
    assert max(GuardedLocal.received) < MAX_FILE_BYTES + 64 * 1024
    with pytest.raises(StateError, match=f"{MAX_FILE_BYTES} bytes or more"):
        nginx_lb.host.probe(str(nginx_lb.managed))


def test_a_dry_run_on_a_huge_file_is_refused_having_read_only_the_cap(nginx_lb: Lb) -> None:
    _huge(nginx_lb.managed)
    run = _swap(nginx_lb, nginx_lb.managed)
    _refused_run(run, f"{MAX_FILE_BYTES} bytes or more", StateError)
    assert SHADOW_HASH not in run.log + run.summary + _report_text(run)
    assert max(GuardedLocal.received) < MAX_FILE_BYTES + 64 * 1024, "more than the cap came back"
    assert nginx_lb.managed.stat().st_size == HUGE


# == 6. the marker file of reload_confirm: a predictable path in /tmp (bluegreen-swap-marker.$$) ===
class OtherUser(threading.Thread):
    """Another local user during a reload: sees every process (as ps does) and every name in the
    shared TMPDIR. At the old predictable marker path of each reload_confirm it sees
    (TMPDIR/bluegreen-swap-marker.<pid>), and in any directory of TMPDIR that others may write, it
    plants ``plant`` (a file, or a symlink to a file of its choosing), again whenever it is removed.
    It records the mode of each directory it sees in TMPDIR; ``then`` runs once it planted something."""

    def __init__(self, tmp: Path, plant: Callable[[Path], None], then: Callable[[], object] | None = None) -> None:
        super().__init__(daemon=True)
        self.tmp, self.plant, self.then = tmp, plant, then
        self.stopping = threading.Event()
        self.dir_modes: dict[str, int] = {}
        self.planted: set[Path] = set()

    def run(self) -> None:
        while not self.stopping.is_set():
            for pid in _reload_confirm_pids():
                self._plant(self.tmp / f"bluegreen-swap-marker.{pid}")
            with contextlib.suppress(OSError):
                for entry in os.scandir(self.tmp):
                    with contextlib.suppress(OSError):
                        info = entry.stat(follow_symlinks=False)
                        if stat.S_ISDIR(info.st_mode):
                            self.dir_modes[entry.name] = stat.S_IMODE(info.st_mode)
                            if info.st_mode & stat.S_IWOTH:
                                self._plant(Path(entry.path) / "ok")
            time.sleep(0.001)

    def _plant(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            if not os.path.lexists(path):
                self.plant(path)
                self.planted.add(path)
                if self.then is not None:
                    self.then()
                    self.then = None

    def __enter__(self) -> OtherUser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(5)


def _reload_confirm_pids() -> list[int]:
    """The shells running reload_confirm (ScriptedHost's argv: sh -c PROGRAM bluegreen-swap reload_confirm ...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if b"\0bluegreen-swap\0reload_confirm\0" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


def _only_private_directories(user: OtherUser) -> None:
    assert all(mode & 0o077 == 0 for mode in user.dir_modes.values()), user.dir_modes


@pytest.mark.parametrize("planted", ["file", "symlink-to-a-file"])
def test_a_planted_marker_file_cannot_confirm_a_reload_the_marker_never_confirmed(lb: Lb, planted: str) -> None:  # noqa: F811
    victim = lb.root / "victim"
    victim.write_bytes(b"root's file\n")

    def plant(path: Path) -> None:
        if planted == "file":
            path.write_bytes(b"")
        else:
            path.symlink_to(victim)

    master = lb.start_master(on_hup="reload")  # new workers start, old ones stop: only the marker is missing
    with OtherUser(lb.tmp, plant) as other:
        result = lb.host.reload_and_confirm(GENERATION, _marker(lb, None), "-", 1.0)
    assert other.planted, "the other user saw the reload and planted its file"
    assert result.result == "timeout", result
    assert (result.new_workers, result.old_left, result.marker_ok) == (1, 0, False)
    assert lb.hups(master) == 1
    assert victim.read_bytes() == b"root's file\n"
    _only_private_directories(other)
    assert [name for name in lb.leftovers() if not name.startswith("bluegreen-swap-marker.")] == []


def test_a_confirmed_reload_never_creates_a_file_through_a_planted_symlink(lb: Lb) -> None:  # noqa: F811
    victim = lb.root / "created-by-root"  # stands for /etc/ld.so.preload, or any file root must not create
    lb.start_master(on_hup="reload")
    marker = _marker(lb, None)  # the marker answers only once the other user has planted its symlink
    with OtherUser(lb.tmp, lambda path: path.symlink_to(victim), then=lambda: _marker(lb, GENERATION)) as other:
        result = lb.host.reload_and_confirm(GENERATION, marker, "-", 3.0)
    assert other.planted
    assert result.result == "confirmed", result
    assert not os.path.lexists(victim), "root created a file where the symlink pointed"
    _only_private_directories(other)
