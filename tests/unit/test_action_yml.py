"""action.yml, the entrypoint and the README agree: every input reaches the container, defaults match."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from scripts_loader import load_script

from swap_action import action
from swap_action.inputs import INPUTS, Input

ROOT = Path(__file__).resolve().parents[2]


reference = load_script("action_reference")


@pytest.fixture(scope="module")
def action_yml() -> dict[str, Any]:
    data: dict[str, Any] = reference.load_action(ROOT / "action.yml")
    return data


def test_it_is_a_docker_action_built_from_the_repository_dockerfile(action_yml: dict[str, Any]) -> None:
    assert action_yml["runs"]["using"] == "docker"
    assert action_yml["runs"]["image"] == "Dockerfile"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["python3", "-m", "swap_action\.action"\]$', dockerfile, re.M)
    assert action_yml["branding"]["icon"] and action_yml["branding"]["color"]


def test_the_inputs_are_the_table_in_its_order(action_yml: dict[str, Any]) -> None:
    assert list(action_yml["inputs"]) == [spec.name for spec in INPUTS]


def test_every_input_is_mapped_explicitly_into_the_container(action_yml: dict[str, Any]) -> None:
    env = action_yml["runs"]["env"]
    assert env == {spec.env: f"${{{{ inputs.{spec.name} }}}}" for spec in INPUTS}
    assert list(env) == [spec.env for spec in INPUTS]
    assert all(re.fullmatch(r"BG_[A-Z_]+", spec.env) for spec in INPUTS)


@pytest.mark.parametrize("spec", INPUTS, ids=[spec.name for spec in INPUTS])
def test_each_input_is_described_and_defaulted_as_the_table_says(action_yml: dict[str, Any], spec: Input) -> None:
    declared = action_yml["inputs"][spec.name]
    assert declared["description"] == spec.help
    assert declared.get("required", False) is spec.required
    if spec.required:
        assert "default" not in declared, "a required input has no default"
    else:
        assert isinstance(declared["default"], str), "quoted in YAML: 100, true and false stay text"
        assert declared["default"] == spec.default
    assert set(declared) <= {"description", "required", "default"}


def test_the_table_describes_every_input_well_enough_for_a_reference() -> None:
    for spec in INPUTS:
        assert len(spec.help) > 20 and spec.help.endswith("."), spec.name
        assert "\n" not in spec.help and "|" not in spec.help, spec.name


def test_outputs_are_the_ones_the_entrypoint_writes(action_yml: dict[str, Any]) -> None:
    assert list(action_yml["outputs"]) == list(action.OUTPUTS)
    assert all(len(spec["description"]) > 10 for spec in action_yml["outputs"].values())


def test_readme_reference_matches_action_yml(action_yml: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    generated = reference.reference(action_yml)
    assert reference.splice(readme, generated) == readme, (
        "README.md's action reference is stale: run 'python scripts/action_reference.py --write'"
    )


def test_reference_lists_every_input_and_output_with_its_default(action_yml: dict[str, Any]) -> None:
    text = reference.reference(action_yml)
    assert "| `target` | *required* |" in text
    assert "| `steps` | `100` |" in text
    assert "| `health-path` | `/healthz` |" in text
    for name in [*action_yml["inputs"], *action_yml["outputs"]]:
        assert f"| `{name}` |" in text


def test_splice_replaces_only_the_marked_section() -> None:
    readme = f"# t\n\nbefore\n{reference.START}\nold\n{reference.END}\nafter\n"
    assert reference.splice(readme, "new\n") == f"# t\n\nbefore\n{reference.START}\nnew\n{reference.END}\nafter\n"
    with pytest.raises(ValueError):
        reference.splice("# no markers\n", "new\n")
