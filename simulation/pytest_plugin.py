"""pytest fixtures so a swap regression test is a few lines::

    def test_canary_swap_drains_cleanly(swap_simulation):
        result = swap_simulation(steps=(10, 50, 100), rate=300)
        assert_swap_correct(result)

``swap_simulation`` runs a scenario (keyword arguments override ``Scenario`` fields) and returns a
``SimulationOutcome`` (the records, the checks and the typed report; ``data`` is report.json's
dict). ``assert_swap_correct`` fails with every failing assertion, its evidence, the LB's error
log and the rendered upstream file.

A team's compose stack is the same call with the ``Scenario`` fields of ``--compose``::

    swap_simulation(compose=(Path("compose.yaml"),), blue_service="blue", green_service="green",
                    lb_service="lb", ws_path=None, websockets=0, drain_hook=None)

A fleet (``--lbs``, ``--max-skew``), a seeded bad swap (``--bad-swap``) and the staging route
(``--staging-check``) are ``Scenario`` fields too::

    swap_simulation(lbs=2, max_skew=0.25)  # two LBs, clients dealt out in turn, one engine run
    swap_simulation(lbs=2, swapper=bad_swaps.fleet_refused)  # must fail, every LB back on blue
    swap_simulation(swaps=3, staging_check=True)  # staging_idle
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from .assertions import Check, evaluate
from .report import RunReport, build, write
from .scenario import RunResult, Scenario, run


@dataclass
class SimulationOutcome:
    result: RunResult
    checks: list[Check]
    report: RunReport

    @property
    def data(self) -> dict[str, Any]:
        """The report as report.json has it."""
        return self.report.to_dict()

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]


def simulate(scenario: Scenario, report_dir: Path | None = None) -> SimulationOutcome:
    result = run(scenario, progress=lambda _line: None)
    checks = evaluate(result)
    report = write(report_dir, result, checks) if report_dir else build(result, checks)
    return SimulationOutcome(result, checks, report)


def explain(outcome: SimulationOutcome, names: Iterable[str] | None = None) -> str:
    wanted = set(names) if names is not None else {c.name for c in outcome.checks}
    lines = []
    for check in outcome.checks:
        if check.name in wanted and not check.passed:
            lines.append(f"FAILED {check.name}: {check.summary}")
            lines.append(json.dumps(check.evidence, indent=2, default=str)[:4000])
    for label, text in outcome.result.diagnostics.items():
        lines.append(f"--- {label} ---\n{text[-4000:]}")
    return "\n".join(lines)


def assert_swap_correct(outcome: SimulationOutcome) -> None:
    if outcome.failed_checks:
        raise AssertionError(explain(outcome))


@pytest.fixture
def swap_simulation(tmp_path: Path) -> Callable[..., SimulationOutcome]:
    """Run a simulated swap; the report is written under the test's tmp_path/report."""

    def _run(scenario: Scenario | None = None, **overrides: Any) -> SimulationOutcome:
        # replace() refuses unknown fields and leaves the caller's scenario as it was.
        return simulate(replace(scenario or Scenario(), **overrides), tmp_path / "report")

    return _run
