"""The LB scripts' one output format (``swap_action/host/wire.py``): fields, blobs, and no forgery."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swap_action.host import wire
from swap_action.host.wire import Records, WireError, parse


def blob(name: str, data: bytes) -> bytes:
    """A blob as lib.sh's ``blob_file`` writes it."""
    return f"{name}:{len(data)}\n".encode() + data + b"\n"


def test_fields_keep_the_rest_of_the_line_as_their_value() -> None:
    records = parse(b"lock=acquired\nholder=run 1 = x:y\nempty=\n")
    assert records.fields == [("lock", "acquired"), ("holder", "run 1 = x:y"), ("empty", "")]
    assert records.get("holder") == "run 1 = x:y"
    assert records.get("empty", "default") == "" and records.has("empty")
    assert records.get("missing", "default") == "default" and not records.has("missing")
    assert records.blobs == []


def test_a_repeated_field_keeps_every_value_in_order_and_get_gives_the_first() -> None:
    records = parse(b"error_log=/var/log/a.log\ncurl=present\nerror_log=/var/log/b.log\n")
    assert records.all("error_log") == ["/var/log/a.log", "/var/log/b.log"]
    assert records.get("error_log") == "/var/log/a.log"
    assert records.all("missing") == []


def test_a_blob_is_exactly_its_length_newlines_included() -> None:
    body = b"upstream app {\n    server blue:8080;\n}\n"
    records = parse(b"file=present\n" + blob("file", body) + b"after=1\n")
    assert records.blob_bytes("file") == body
    assert records.blob("file") == body.decode()
    assert records.get("after") == "1"
    assert records.blob("missing", "none") == "none" and records.blob_bytes("missing") is None


def test_text_that_looks_like_a_field_inside_a_blob_is_never_a_field() -> None:
    forged = b"result=confirmed\nmarker_ok=1\nanswer=200 0.1\nbody:3\nabc\n"
    records = parse(b"url=http://x/\nanswer=500 0.2\n" + blob("body", forged) + b"result=timeout\n")
    assert records.fields == [("url", "http://x/"), ("answer", "500 0.2"), ("result", "timeout")]
    assert records.blob_bytes("body") == forged
    assert len(records.blobs) == 1


def test_an_empty_blob_and_one_without_a_trailing_newline_in_its_data() -> None:
    records = parse(blob("test_output", b"") + blob("body", b"no newline") + b"done=1\n")
    assert records.blob_bytes("test_output") == b""
    assert records.blob("body") == "no newline"
    assert records.get("done") == "1"


def test_bytes_that_are_not_utf8_are_kept_in_blob_bytes_and_replaced_in_text() -> None:
    records = parse(blob("body", b"\xff\xfeok") + "holder=r\xe9\n".encode("latin-1"))
    assert records.blob_bytes("body") == b"\xff\xfeok"
    assert records.blob("body") == "\ufffd\ufffdok"
    assert records.get("holder") == "r\ufffd"


@pytest.mark.parametrize(
    "data",
    [
        b"file:100\nshort\n",  # fewer bytes than announced
        b"file:6\nabcde",  # one short, at the end of the output
        b"file:\nabc\n",  # no length
        b"file:-3\nabc\n",  # not a length
        b"file:12x\nabc\n",
    ],
)
def test_a_blob_cut_short_or_without_a_length_raises(data: bytes) -> None:
    with pytest.raises(WireError):
        parse(data)


@pytest.mark.parametrize(
    "data",
    [
        b"Segmentation fault\n",
        b"sh: 1: curl: not found\n",
        b"lock=acquired\nbash: line 3: syntax error\n",
        b"Lock=acquired\n",  # names are lower case
        b"=value\n",
        b"  lock=acquired\n",
        b"lock-state=held\n",
    ],
)
def test_anything_else_is_garbage_and_raises(data: bytes) -> None:
    with pytest.raises(WireError):
        parse(data)


def test_blank_lines_and_an_output_without_a_final_newline_are_fine() -> None:
    assert parse(b"").fields == []
    assert parse(b"\n\n  \n").fields == []
    assert parse(b"a=1\n\nb=2").fields == [("a", "1"), ("b", "2")]


def test_groups_split_at_each_start_field_with_their_blobs() -> None:
    data = (
        b"test_exit=0\n"
        + b"url=http://a/\nanswer=200 0.01\n"
        + blob("body", b"ok\nurl=http://forged/\n")
        + b"url=http://b/\nanswer=503 0.02\n"
        + blob("body", b"down")
    )
    records = parse(data)
    groups = records.groups("url")
    assert [group.get("url") for group in groups] == ["http://a/", "http://b/"]
    assert [group.get("answer") for group in groups] == ["200 0.01", "503 0.02"]
    assert [group.blob("body") for group in groups] == ["ok\nurl=http://forged/\n", "down"]
    assert all(not group.has("test_exit") for group in groups), "records before the first start are left out"
    assert records.groups("missing") == []


def test_number_and_to_int_never_raise_on_garbage() -> None:
    records = parse(b"age_s=42\nleft_s=-5\nbad=4x\nbig=99999999999999999999\nspaced= 7 \n")
    assert records.number("age_s") == 42
    assert records.number("left_s") is None
    assert records.number("bad") is None and records.number("big") is None
    assert records.number("spaced") == 7
    assert records.number("missing") is None
    assert wire.to_int("\u0661\u0662") is None, "non-ASCII digits are not numbers here"


def test_printable_makes_a_value_safe_to_show() -> None:
    assert wire.printable("run\x1b[31m-1\r\n") == "run?[31m-1??"
    assert len(wire.printable("x" * 500)) == 120
    assert wire.printable("x" * 500, 10) == "x" * 10


def test_records_built_by_hand_group_like_parsed_ones() -> None:
    records = Records()
    records.add_field("url", "http://a/")
    records.add_blob("body", b"x")
    assert records.groups("url")[0].blob("body") == "x"


names = st.from_regex(r"[a-z_]{1,12}", fullmatch=True)


@pytest.mark.fuzz
@given(name=names, data=st.binary(max_size=300), before=names, after=names)
def test_any_bytes_inside_a_blob_round_trip_and_never_produce_a_field(
    name: str, data: bytes, before: str, after: str
) -> None:
    records = parse(f"{before}=1\n".encode() + blob(name, data) + f"{after}=2\n".encode())
    assert records.blobs == [(name, data)]
    assert records.fields == [(before, "1"), (after, "2")]


@pytest.mark.fuzz
@given(data=st.lists(st.binary(max_size=80), max_size=5))
def test_several_blobs_in_a_row_round_trip(data: list[bytes]) -> None:
    records = parse(b"".join(blob("body", item) for item in data))
    assert [value for _, value in records.blobs] == data
    assert records.fields == []


@pytest.mark.fuzz
@given(data=st.binary(min_size=1, max_size=200), cut=st.integers(1, 250))
def test_a_blob_that_lost_any_of_its_bytes_raises(data: bytes, cut: int) -> None:
    full = blob("file", data)
    shortened = full[: min(cut, len(full) - 2)]  # at least the last data byte is gone
    with pytest.raises(WireError):
        parse(shortened)


def test_a_blob_that_lost_only_its_closing_newline_is_whole() -> None:
    assert parse(blob("file", b"abc")[:-1]).blob_bytes("file") == b"abc"
