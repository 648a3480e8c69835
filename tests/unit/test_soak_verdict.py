"""scripts/soak.py's pure parts: the LB sample, the trend and the verdict (no Docker)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from simulation.records import WebSocketRecord

ROOT = Path(__file__).resolve().parents[2]


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


soak = _soak_module()

PROC_LINES = """\
7 1700 12 nginx: master process /usr/sbin/nginx -g daemon on; master_process on;
41 4600 31 nginx: worker process
42 4700 29 nginx: worker process
30 4100 18 nginx: worker process is shutting down
"""


def test_a_sample_sums_rss_and_fds_and_counts_old_workers() -> None:
    sample = soak.parse_sample(3, PROC_LINES)
    assert sample.after_swap == 3
    assert sample.processes == 4
    assert sample.rss_kib == 1700 + 4600 + 4700 + 4100
    assert sample.fds == 12 + 31 + 29 + 18
    assert sample.shutting_down == 1


def test_a_sample_ignores_lines_that_are_not_processes() -> None:
    sample = soak.parse_sample(0, "sh: 1: cannot open /proc/9/status\n\n" + PROC_LINES.splitlines()[1] + "\n")
    assert (sample.processes, sample.rss_kib, sample.fds, sample.shutting_down) == (1, 4600, 31, 0)
    assert soak.parse_sample(0, "").processes == 0


def test_slope_is_least_squares() -> None:
    assert soak.slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert soak.slope([(0, 5.0), (10, 5.0)]) == 0.0
    assert soak.slope([(0, 5.0)]) == 0.0
    assert soak.slope([(1, 1.0), (1, 9.0)]) == 0.0  # no spread in x: no slope


def test_flat_noise_is_within_tolerance_and_a_leak_per_swap_is_not() -> None:
    noise = [(i, 65.0 + (5 if i % 3 == 0 else -4)) for i in range(101)]
    flat = soak.trend("fds", "fds", noise, soak.FDS)
    assert flat.ok
    assert abs(flat.slope_per_10_swaps) < 1
    leak = soak.trend("fds", "fds", [(i, 65.0 + i) for i in range(101)], soak.FDS)  # one fd per swap
    assert leak.slope_per_10_swaps == pytest.approx(10.0)
    assert leak.fitted_growth == pytest.approx(100.0)
    assert not leak.ok


def test_a_one_off_step_at_the_first_reload_passes_but_a_memory_leak_fails() -> None:
    step = [(0, 11_200.0)] + [(i, 13_200.0) for i in range(1, 101)]  # +2 MiB once, then flat
    assert soak.trend("memory", "KiB", step, soak.MEMORY).ok
    leak = [(i, 11_200.0 + 2000 * (i > 0) + 64 * i) for i in range(101)]  # and 64 KiB per reload
    assert not soak.trend("memory", "KiB", leak, soak.MEMORY).ok


def test_the_end_alone_beyond_tolerance_fails() -> None:
    # Flat all along, then the last sample jumps: the fitted trend is small, the end is not.
    points = [(i, 60.0) for i in range(100)] + [(100, 60.0 + soak.FDS.allowed(60.0) + 1)]
    t = soak.trend("fds", "fds", points, soak.FDS)
    assert t.fitted_growth <= t.allowed
    assert not t.ok


def test_tolerance_is_a_fraction_plus_a_constant() -> None:
    assert soak.Tolerance(0.10, 16).allowed(60) == pytest.approx(22.0)
    assert soak.trend("x", "u", [], soak.FDS).ok  # no sample: nothing grew (the verdict says what is missing)


def _figures(**changes: object) -> object:
    flat = soak.trend("fds", "fds", [(0, 60.0), (5, 61.0)], soak.FDS)
    mem = soak.trend("memory", "KiB", [(0, 11_000.0), (5, 12_000.0)], soak.MEMORY)
    base = soak.Figures(
        swaps_asked=5,
        swaps_done=5,
        failed_requests=0,
        failed_long=0,
        old_workers_after_drain=(0, 0, 0, 0, 0),
        websockets_opened=5,
        websockets_alive_at_end=5,
        failed_checks=(),
        processes_start=3,
        processes_end=3,
        memory=mem,
        fds=flat,
    )
    return dataclasses.replace(base, **changes)


def test_a_clean_soak_passes() -> None:
    assert soak.verdict(_figures()) == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"swaps_done": 4, "old_workers_after_drain": (0, 0, 0, 0)}, "4/5 swaps confirmed"),
        ({"failed_requests": 2}, "2 failed request(s)"),
        ({"failed_long": 1}, "1 failed long request(s)"),
        ({"old_workers_after_drain": (0, 2, 0, 1, 0)}, "old workers left after 2 drain(s) (at most 2)"),
        ({"old_workers_after_drain": (0, 0, 0)}, "the LB was sampled after 3 of 5 swaps"),
        ({"websockets_alive_at_end": 3}, "2 WebSocket(s) gave up"),
        ({"failed_checks": ("drain_finished",)}, "harness check(s) failed: drain_finished"),
        ({"processes_end": 4}, "Nginx processes 3 -> 4"),
    ],
)
def test_each_failure_is_named(changes: dict[str, object], reason: str) -> None:
    assert soak.verdict(_figures(**changes)) == [reason]


def test_growth_beyond_tolerance_is_named() -> None:
    grown = soak.trend("LB open fds", "fds", [(i, 60.0 + 5 * i) for i in range(11)], soak.FDS)
    [reason] = soak.verdict(_figures(fds=grown))
    assert reason.startswith("LB open fds grew beyond tolerance: 60 -> 110 fds")


def _ws(ws_id: int, attempt: int, closed_by: str, code: int) -> WebSocketRecord:
    return WebSocketRecord(ws_id, attempt, 0.0, "blue", "", closed_by=closed_by, close_code=code)


def test_a_websocket_is_alive_at_the_end_when_its_last_connection_was_closed_by_the_client() -> None:
    records = [
        _ws(1, 1, "server", 1001),
        _ws(1, 2, "client", 1000),
        _ws(2, 1, "server", 1001),
        _ws(2, 2, "network", 1006),  # its reconnection failed: it gave up
    ]
    assert soak.websockets_alive_at_end(records) == (2, 1)
