"""Fixtures of the integration tests: every real-Nginx test runs in the harness's ``Environment``.

``lb_stack`` starts one (``lb_stack(green_env={"APP_HEALTHY": "false"}, green_healthy=False)``)
and wraps it as an ``LbStack`` for the CLI tests; other modules call ``start_environment``
themselves (the SSH test with sshd in the LB, the act tests with a predictable name).

When a test fails, its report gets each running LB's Nginx error log and managed file (every
container of the LB image, also those a subprocess started), and ``lb_stack`` prints its own
stack's diagnostics with the slots' logs ("Captured stdout teardown").
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import docker
import pytest
from lb_fixtures import LbStack, start_environment

from simulation.environment import ERROR_LOG, LB_IMAGE, MANAGED_FILE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Keep each phase's report on the item (``item.rep_setup``, ``item.rep_call``) for fixture
    finalizers, and attach every running LB's Nginx error log and managed file to a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.when == "call" and report.failed:
        for title, text in lb_diagnostics():
            report.sections.append((title, text))


def lb_diagnostics() -> list[tuple[str, str]]:
    """(title, text) for each running container of the LB image: error log tail and managed file."""
    sections: list[tuple[str, str]] = []
    try:
        client = docker.from_env(timeout=30)
        try:
            for container in client.containers.list(filters={"ancestor": LB_IMAGE}):
                for label, argv in (
                    ("nginx error log", ["tail", "-n", "80", ERROR_LOG]),
                    ("managed upstream file", ["cat", MANAGED_FILE]),
                ):
                    result = container.exec_run(argv)
                    sections.append((f"{container.name}: {label}", result.output.decode(errors="replace")))
        finally:
            client.close()
    except Exception as exc:  # diagnostics must never hide the real failure
        sections.append(("LB diagnostics unavailable", repr(exc)))
    return sections


def failed(node: pytest.Item) -> bool:
    return any(getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture
def lb_stack(request: pytest.FixtureRequest) -> Iterator[Callable[..., LbStack]]:
    """``lb_stack(**kwargs)`` starts a fresh stack (``start_environment``'s keywords); stopped after the test."""
    stacks: list[LbStack] = []

    def start(**kwargs: Any) -> LbStack:
        stack = LbStack(start_environment("bgcli", **kwargs))
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        if failed(request.node):
            print(f"\n===== diagnostics of {stack.env.name} (test failed) =====\n{stack.diagnostics()}")
        stack.env.stop()
