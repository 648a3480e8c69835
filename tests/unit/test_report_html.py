"""The HTML report, from hand-made typed report data: the timeline SVG has the bars and markers the
data calls for, hostile text is escaped, and the page renders for the runs that go wrong (no swap,
a swap without a report, no WebSockets, no long requests) and for big ones (20 swaps, 60 s)."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from simulation.assertions import Check
from simulation.html import Marker as ChartMarker
from simulation.html import (
    build_chart,
    headline,
    nice_ceiling,
    nice_step,
    place_labels,
    render_html,
    ticks,
    weight_changes,
)
from simulation.records import WebSocketRecord
from simulation.report import (
    Bucket,
    Latency,
    LongRequest,
    LongRequests,
    Requests,
    RunReport,
    Swap,
    Timings,
    WebSockets,
)
from swap_action.outcome import DrainOutcome, ErrorInfo, Outcome, Phase, Reload, Result, Step, SwapReport

T0 = 1_700_000_000.0
HOSTILE = '<script>alert("x")</script>'


def _swap(
    index: int,
    start: float,
    target: str,
    *,
    steps: tuple[int, ...] = (100,),
    error: ErrorInfo | None = None,
    with_report: bool = True,
    drain_s: float = 1.0,
) -> Swap:
    """A swap as report.build makes it, ``start`` seconds after traffic start."""
    at = T0 + start
    previous = "blue" if target == "green" else "green"
    timeline = [
        Step(Phase.LOCK, at, duration_ms=20.0),
        Step(Phase.GATE, at + 0.02, slot=target, duration_ms=30.0),
    ]
    reloads = []
    t = at + 0.05
    for percent in steps:
        timeline.append(Step(Phase.RELOAD_CONFIRM, t, slot=target, percent=percent, duration_ms=200.0))
        reloads.append(
            Reload(
                generation=f"g{index}-{percent}",
                slot=target,
                percent=percent,
                started_at=t,
                reload_at_ms=int((t + 0.01) * 1000),
                signal_ms=10,
                new_workers_ms=12,
                old_stopped_ms=150,
                marker_ms=80,
                confirmed_ms=150,
                old_workers=(10, 11),
            )
        )
        t += 0.3
    confirmed = (reloads[-1].reload_at_ms or 0) / 1000 + 0.15
    timeline.append(Step(Phase.DRAIN, t, slot=previous, duration_ms=drain_s * 1000, detail="done"))
    end = t + drain_s
    report = SwapReport(
        outcome=Outcome(
            result=Result.FAILED if error else Result.SWAPPED,
            changed=True,
            active=target,
            previous=previous,
            target=target,
        ),
        started_at=at,
        duration_ms=(end - at) * 1000,
        confirmed_at=None if error else confirmed,
        config_diff="--- a\n+++ b\n-server blue:8080;\n+server blue:8080 down;",
        steps=timeline,
        reloads=reloads,
        drain=DrainOutcome("complete", drain_s * 1000, 0, 0),
    )
    return Swap(target, error, at, end if with_report else at + 0.2, report if with_report else None)


def _buckets(seconds: float, *, errors_at: tuple[int, ...] = (), switch_at: float = 1e9) -> list[Bucket]:
    rows = []
    for i in range(int(seconds * 10) + 1):
        green = i / 10 >= switch_at
        rows.append(Bucket(0 if green else 40, 40 if green else 0, 1 if i in errors_at else 0))
    return rows


def _ws(id: int, attempt: int, opened: float, slot: str, closed: float | None) -> WebSocketRecord:
    return WebSocketRecord(id, attempt, opened, slot, f"{slot}:8080", closed_at=closed)


def _data(
    *,
    seconds: float = 6.0,
    swaps: list[Swap] | None = None,
    websockets: list[WebSocketRecord] | None = None,
    long_records: list[LongRequest] | None = None,
    passed: bool = True,
    diagnostics: dict[str, str] | None = None,
    failed: int = 0,
) -> RunReport:
    swaps = [_swap(1, 2.0, "green")] if swaps is None else swaps
    websockets = (
        [
            _ws(1, 1, T0 + 0.1, "blue", T0 + 3.6),
            _ws(1, 2, T0 + 3.61, "green", T0 + seconds),
            _ws(2, 1, T0 + 0.1, "blue", T0 + 4.0),
        ]
        if websockets is None
        else websockets
    )
    codes = {(1, 1): 1001, (1, 2): 1000, (2, 1): 1006}
    for w in websockets:
        w.close_code = codes.get((w.id, w.attempt), 1001)
        w.closed_by = "server"
        w.max_gap_s = 0.2
    long_records = [LongRequest(T0 + 1.0, T0 + 6.0, "blue", True, 5000)] if long_records is None else long_records
    return RunReport(
        passed=passed,
        assertions=[
            Check(
                "zero_failed_requests",
                "zero failed requests",
                failed == 0,
                f"{failed} failed of 2400",
                {"failed": failed},
                "Failed request: a transport error or a 5xx.",
            ),
            Check(
                "websockets_drained",
                "WebSockets drained cleanly",
                passed,
                "close codes {'1001': 1, '1006': 1}",
                {"problems": ["ws#2 ended with 1006"]},
            ),
        ],
        client_model="Keep-alive clients retry once.",
        requests=Requests(
            total=2400,
            failed=failed,
            failed_keepalive=failed,
            failed_fresh=0,
            strict_failed=3,
            by_slot={"blue": 800, "green": 1600},
            by_slot_before_switch={"blue": 800},
            by_slot_after_switch={"green": 1600},
            rate_rps=400.0,
            latency_ms=Latency(1.0, 18.0, 20.0),
        ),
        long_requests=LongRequests(
            total=len(long_records),
            completed=len([r for r in long_records if r.complete]),
            by_slot={"blue": len(long_records)},
            durations_s=[round(r.end - r.start, 2) for r in long_records],
            records=long_records,
        ),
        websockets=WebSockets(
            opened=len([w for w in websockets if w.attempt == 1]),
            reconnections=len([w for w in websockets if w.attempt > 1]),
            close_codes={"1001": 1, "1006": 1},
            held_through_swap=1,
            records=websockets,
        ),
        swaps=swaps,
        timings=Timings(1.4, 10.0, seconds),
        scenario={"rate": 400.0, "steps": [100]},
        traffic_started_at=T0,
        traffic_ended_at=T0 + seconds,
        slot_addresses={"blue": "172.29.0.2:8080", "green": "172.29.0.3:8080"},
        diagnostics=diagnostics or {},
    )


def _svg(html: str) -> str:
    match = re.search(r'<svg class="timeline".*?</svg>', html, re.S)
    assert match, "no timeline SVG"
    return match.group(0)


def _count(svg: str, cls: str) -> int:
    return len(re.findall(rf'class="{re.escape(cls)}"', svg))


class _WellFormed(HTMLParser):
    """Counts open/close tags of the elements whose nesting matters, and any <script>."""

    VOID = {"meta", "br", "rect", "line", "input", "img", "hr", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def _check_well_formed(html: str) -> _WellFormed:
    parser = _WellFormed()
    parser.feed(html)
    parser.close()
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def test_timeline_has_a_column_per_nonempty_bucket_and_the_swap_markers() -> None:
    buckets = _buckets(6.0, errors_at=(25,), switch_at=2.4)
    buckets[10] = Bucket()  # an empty bucket draws nothing
    html = render_html(_data(), buckets)
    svg = _svg(html)
    nonempty = sum(1 for b in buckets if b.total)
    assert svg.count("<g><title>") == nonempty
    assert _count(svg, "bar blue") == sum(1 for b in buckets if b.blue)
    assert _count(svg, "bar green") == sum(1 for b in buckets if b.green)
    assert _count(svg, "bar error") == 1
    assert _count(svg, "errmark") == 1  # the lone failure is marked in its own strip too
    # One swap: its start, one reload, the confirmation and the drain's end.
    for kind in ("swap", "reload", "confirm", "drain"):
        assert _count(svg, f"mk {kind}") == 1, kind
    assert "swap 1 → green" in svg
    assert _count(svg, "swapwin") == 1
    # Long request and WebSocket lifetimes, close codes labelled by kind.
    assert _count(svg, "long blue") == 1
    assert _count(svg, "ws blue") == 2 and _count(svg, "ws green") == 1
    assert _count(svg, "code ok") == 1 and _count(svg, "code cut") == 1 and _count(svg, "code done") == 1
    assert "1006 cut" in svg
    _check_well_formed(html)


def test_one_failed_request_is_visible_even_among_thousands() -> None:
    buckets = [Bucket(blue=4000) for _ in range(60)]
    buckets[30] = Bucket(blue=4000, error=1)
    chart = build_chart(_data(), buckets)
    errors = [r for col in chart.columns for r in col.rects if r.cls == "bar error"]
    assert len(errors) == 1 and errors[0].h >= 3.0
    assert any(t.cls == "errcount" and t.text == "1" for t in chart.texts)


def test_every_bar_and_marker_stays_inside_the_plot() -> None:
    data = _data(swaps=[_swap(1, 2.0, "green", steps=(10, 50, 100))])
    chart = build_chart(data, _buckets(6.0, switch_at=2.5))
    rects = [r for col in chart.columns for r in col.rects] + chart.spans
    assert all(r.x >= 0 and r.x + r.w <= chart.width + 0.01 and 0 <= r.y <= chart.height for r in rects)
    assert all(0 <= m.x1 <= chart.width and m.y1 < m.y2 <= chart.height for m in chart.markers)
    assert sum(m.cls == "mk reload" for m in chart.markers) == 3
    # The weights lane steps through the canary: blue 100, then 10/50/100% green.
    greens = sorted(r.h for r in chart.spans if r.cls == "w green")
    assert greens == pytest.approx([1.4, 7.0, 14.0], abs=0.01)


def test_hostile_text_is_escaped() -> None:
    swap = _swap(1, 2.0, "green", error=ErrorInfo("ReloadError", HOSTILE, HOSTILE, HOSTILE))
    assert swap.report
    swap.report.steps[0].detail = HOSTILE
    swap.report.outcome.error = ErrorInfo("ReloadError", HOSTILE, HOSTILE, HOSTILE)
    data = _data(swaps=[swap], passed=False, diagnostics={"nginx_error_log": HOSTILE, HOSTILE: "x"})
    data.assertions[0].summary = HOSTILE
    data.assertions[0].description = HOSTILE
    data.assertions[0].evidence["examples"] = [{"error": HOSTILE}]
    data = replace(data, client_model=HOSTILE)
    data.websockets.records[0].error = HOSTILE
    html = render_html(data, _buckets(6.0))
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert _check_well_formed(html).scripts == 0


def test_failed_run_shows_diagnostics_and_opens_failing_evidence() -> None:
    data = _data(passed=False, failed=2, diagnostics={"nginx_error_log": "worker exited", "managed_file": "upstream"})
    html = render_html(data, _buckets(6.0, errors_at=(21, 22)))
    assert "FAILED" in html and 'id="diagnostics"' in html
    assert "<pre>worker exited</pre>" in html
    assert re.search(r"<details open><summary>evidence", html)
    assert _count(_svg(html), "bar error") == 2


def test_passing_run_has_no_diagnostics_section() -> None:
    html = render_html(_data(), _buckets(6.0))
    assert "PASSED" in html and 'id="diagnostics"' not in html
    assert "<details open><summary>evidence" not in html


@pytest.mark.parametrize(
    "case",
    ["no_swap", "swap_without_report", "no_websockets", "no_long_requests", "no_buckets", "bare"],
)
def test_edge_cases_render(case: str) -> None:
    buckets = _buckets(6.0)
    if case == "no_swap":
        data = _data(swaps=[], passed=False, diagnostics={"nginx_error_log": "boom"})
    elif case == "swap_without_report":
        data = _data(
            swaps=[_swap(1, 2.0, "green", with_report=False, error=ErrorInfo("HealthCheckError", "t", "503", ""))],
            passed=False,
        )
    elif case == "no_websockets":
        data = _data(websockets=[])
    elif case == "no_long_requests":
        data = _data(long_records=[])
    elif case == "no_buckets":
        data, buckets = _data(), []
    else:  # keys missing altogether: the page still says what it can
        data = RunReport(passed=False, swaps=[Swap("green", ErrorInfo("StateError", "t", "x", ""))])
    html = render_html(data, buckets)
    svg = _svg(html)
    _check_well_formed(html)
    if case == "no_swap":
        assert "no swap ran" in html and _count(svg, "mk swap") == 0
    if case == "swap_without_report":
        assert _count(svg, "mk swap failed") == 1 and _count(svg, "mk confirm") == 0
        assert "swap 1 → green FAILED (HealthCheckError)" in html
        assert "left no report" in html
    if case == "no_websockets":
        assert 'class="ws ' not in svg and "none in this run" in svg
    if case == "no_long_requests":
        assert 'class="long ' not in svg
    if case == "no_buckets":
        assert "no steady request was recorded" in svg


def test_long_requests_without_records_fall_back_to_durations() -> None:
    data = _data()
    data = replace(data, long_requests=replace(data.long_requests, records=[]))
    svg = _svg(render_html(data, _buckets(6.0)))
    assert 'class="long ' not in svg and "timing is not in report.json" in svg


def test_twenty_swaps_over_sixty_seconds() -> None:
    swaps = [_swap(i, 2.0 + (i - 1) * 2.9, "green" if i % 2 else "blue") for i in range(1, 21)]
    ws = [_ws(n, g, T0 + 0.1 + g * 2.9, "blue", T0 + 3 + g * 2.9) for n in range(1, 6) for g in range(1, 21)]
    buckets = _buckets(60.0)
    assert len(buckets) >= 600
    html = render_html(_data(seconds=60.0, swaps=swaps, websockets=ws), buckets)
    svg = _svg(html)
    assert svg.count("<g><title>") == len(buckets)
    for kind in ("swap", "reload", "confirm", "drain"):
        assert _count(svg, f"mk {kind}") == 20, kind
    assert _count(svg, "swapwin") == 20
    assert "20 swaps, 20 confirmed live in 2" in html
    _check_well_formed(html)
    assert len(html) < 2_000_000


def test_marker_labels_never_overlap() -> None:
    markers = [ChartMarker(t / 10, "swap", (f"swap {t} → green", f"#{t}"), "") for t in range(0, 100, 3)]
    placed = [p for p in place_labels(markers, lambda t: 100 + t * 100, 1100.0, rows=3) if p]
    assert len(placed) > len(markers) / 2 and all(0 <= p.y < 3 for p in placed)
    for row in range(3):
        spans = sorted((p.x, p.x + len(p.text) * 5.9) for p in placed if p.y == row and p.anchor == "start")
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_helpers() -> None:
    assert nice_step(8.0) in (0.5, 1.0)
    assert nice_step(60.0) == 5.0
    assert ticks(6.05)[-1] == 6.0 and ticks(6.05)[0] == 0.0
    assert nice_ceiling(41) == 50 and nice_ceiling(100) == 100 and nice_ceiling(0) == 1
    canary = weight_changes(_data(swaps=[_swap(1, 2.0, "green", steps=(10, 50, 100))]))
    assert [green for _t, green in canary] == [0, 10, 50, 100]
    assert headline(_data(swaps=[]))[-1] == "no swap ran"


def test_a_swap_that_reports_no_reload_leaves_the_weights_unknown() -> None:
    swap = _swap(1, 2.0, "green")
    assert swap.report
    swap.report.reloads.clear()  # a hand-rolled swap that only claims success
    data = _data(swaps=[swap])
    assert weight_changes(data) == [(0.0, 0), (pytest.approx(2.0), None)]
    chart = build_chart(data, _buckets(6.0))
    assert [r.cls for r in chart.spans if r.cls.startswith("w ")] == ["w blue", "w unknown"]


def test_a_drain_cut_at_the_deadline_stands_out() -> None:
    swap = _swap(1, 2.0, "green")
    assert swap.report and swap.report.drain
    swap.report.drain = replace(swap.report.drain, outcome="cut")
    svg = _svg(render_html(_data(swaps=[swap]), _buckets(6.0)))
    assert _count(svg, "mk drain bad") == 1 and "drain cut at deadline" in svg


def test_non_finite_numbers_do_not_break_the_picture() -> None:
    data = _data()
    data = replace(data, traffic_ended_at=float("inf"))
    assert data.swaps[0].report
    data.swaps[0].report.steps[0].duration_ms = float("nan")
    html = render_html(data, _buckets(6.0))
    assert "nan" not in _svg(html).lower().replace("nanos", "")
