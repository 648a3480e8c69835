"""Fixtures of the integration tests.

``lb_stack`` (from ``lb_fixtures``) starts blue, green and the LB in containers; when a test that
used it fails, the LB's Nginx error log and the managed upstream file are printed in its report
("Captured stdout teardown").
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from lb_fixtures import LbStack, docker_client, start_stack


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
        client = docker_client()
        for container in client.containers.list(filters={"ancestor": "bluegreen/lb:dev"}):
            for label, argv in (
                ("nginx error log", ["tail", "-n", "80", "/var/log/nginx/error.log"]),
                ("managed upstream file", ["cat", "/etc/nginx/bluegreen/upstream.conf"]),
            ):
                result = container.exec_run(argv)
                sections.append((f"{container.name}: {label}", result.output.decode(errors="replace")))
        client.close()
    except Exception as exc:  # diagnostics must never hide the real failure
        sections.append(("LB diagnostics unavailable", repr(exc)))
    return sections


def _failed(node: pytest.Item) -> bool:
    return any(getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture
def lb_stack(request: pytest.FixtureRequest) -> Iterator[Callable[..., LbStack]]:
    """``lb_stack(green_env={"APP_HEALTHY": "false"})`` starts a fresh stack; removed after the test."""
    client = docker_client()
    stacks: list[LbStack] = []

    def start(**env: Any) -> LbStack:
        stack = start_stack(client, **env)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        if _failed(request.node):
            print(f"\n===== diagnostics of {stack.prefix} (test failed) =====\n{stack.diagnostics()}")
        stack.close()
    client.close()
