"""docker-compose.test.yml really brings up a swappable stack, and the CLI swaps it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from compose_stack import IMAGES, LB_CONFIG, ROOT, ComposeStack, require_docker

pytestmark = pytest.mark.docker


@pytest.fixture
def stack() -> Iterator[ComposeStack]:
    require_docker(*IMAGES)
    stack = ComposeStack()
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


def test_compose_stack_starts_blue_and_the_cli_swaps_it_to_green(stack: ComposeStack) -> None:
    assert stack.bodies() == {"blue"}
    name = stack.container_name("lb")
    assert name in (f"{stack.project}_lb_1", f"{stack.project}-lb-1")  # v1 / v2 naming
    done = subprocess.run(
        [
            sys.executable, "-m", "swap_action", "swap",
            "--target", f"docker://{name}",
            "--config-path", LB_CONFIG,
            "--blue", "blue:8080", "--green", "green:8080",
            "--to", "green",
            "--verify-url", "http://127.0.0.1/", "--verify-expect", "green",
            "--json",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["active_slot"], report["previous_slot"], report["changed"]) == ("green", "blue", True)
    assert stack.bodies() == {"green"}
