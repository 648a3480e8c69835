"""scripts/release_action_yml.py: a release's action.yml differs from the development one by its image line only."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[2]


def load(text: str) -> Any:
    return YAML(typ="safe").load(text)


IMAGE = "ghcr.io/your-org/bluegreen-swap:v1.2.3@sha256:" + "ab" * 32


release = load_script("release_action_yml")


def test_the_development_action_builds_from_the_dockerfile() -> None:
    """The repository's own tests (act's ``uses: ./``) build what the worktree holds."""
    runs = load((ROOT / "action.yml").read_text())["runs"]
    assert (runs["using"], runs["image"]) == ("docker", "Dockerfile")


def test_the_released_action_runs_the_published_image_and_nothing_else_changes() -> None:
    development = (ROOT / "action.yml").read_text()
    released = release.released(development, IMAGE)
    runs = load(released)["runs"]
    assert runs["image"] == f"docker://{IMAGE}"
    assert runs["env"] == load(development)["runs"]["env"]
    changed = [
        line
        for line in difflib.unified_diff(development.splitlines(), released.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-  image: Dockerfile", f"+  image: docker://{IMAGE}"]


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/your-org/bluegreen-swap:v1.2.3",
        "docker://ghcr.io/your-org/bluegreen-swap:v1",
        "127.0.0.1:5000/bluegreen-org/bluegreen-swap:v0.1.0@sha256:" + "0" * 64,
    ],
)
def test_tags_digests_and_a_local_registry_are_accepted(image: str) -> None:
    text = release.released("runs:\n  using: docker\n  image: Dockerfile\n", image)
    assert text == f"runs:\n  using: docker\n  image: docker://{image.removeprefix('docker://')}\n"


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/Your-Org/bluegreen-swap:v1.2.3",  # GitHub's owner as typed: registries want lower case
        "ghcr.io/your-org/bluegreen-swap",  # no tag, no digest: whatever 'latest' is at pull time
        "ghcr.io/your-org/bluegreen-swap:v1.2.3@sha256:abc",
        "ghcr.io/your-org/bluegreen swap:v1",
    ],
)
def test_a_reference_that_would_not_pin_or_not_pull_is_refused_with_a_fix(image: str) -> None:
    with pytest.raises(release.ReleaseError, match=r"not an image reference(.|\n)*fix: pass REGISTRY/OWNER/NAME"):
        release.released("runs:\n  image: Dockerfile\n", image)


def test_a_released_action_yml_is_refused_not_rewritten_twice() -> None:
    once = release.released((ROOT / "action.yml").read_text(), IMAGE)
    with pytest.raises(release.ReleaseError, match="has 0 'image: Dockerfile' lines") as info:
        release.released(once, IMAGE)
    assert "already names its image" in str(info.value)


def test_the_command_rewrites_in_place_or_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    action = tmp_path / "action.yml"
    action.write_text((ROOT / "action.yml").read_text())
    assert release.main(["--image", IMAGE, "--action", str(action), "--output", "-"]) == 0
    assert f"image: docker://{IMAGE}" in capsys.readouterr().out
    assert "image: Dockerfile" in action.read_text()
    assert release.main(["--image", IMAGE, "--action", str(action)]) == 0
    assert f"image: docker://{IMAGE}" in action.read_text()
    assert release.main(["--image", IMAGE, "--action", str(action)]) == 1
    assert "error: action.yml has 0 'image: Dockerfile' lines" in capsys.readouterr().err
