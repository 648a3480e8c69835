"""The action's image (``Dockerfile``, built as ``bluegreen/action:dev``) runs what the project declares.

The image takes its Python libraries from Debian packages, not from PyPI, so nothing but this test
ties them to the floors ``pyproject.toml`` declares and the rest of the suite runs against (e.g.
paramiko >= 3.4, the Terrapin fix of CVE-2023-48795, and docker >= 7.1). The floors are read from
pyproject.toml itself, so raising one there is checked here without touching this file. Also: every
module of the engine imports on the image's Python, and the entrypoint runs.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from typing import Any

import pytest
from lb_fixtures import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

pytestmark = pytest.mark.docker

IMAGE = "bluegreen/action:dev"
# The engine's own dependencies, and requests (swap_action/transport/docker.py imports it; the
# project declares it under the simulation extra, and the Docker SDK depends on it).
CHECKED = ("paramiko", "docker", "jinja2", "requests")

# Run inside the image: the installed versions, the Python version, and an import of every module.
PROBE = """
import importlib, importlib.metadata, json, pkgutil, platform, sys
import swap_action
versions = {}
for name in sys.argv[1:]:
    try:
        versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        versions[name] = None
modules = sorted(n for _, n, _ in pkgutil.walk_packages(swap_action.__path__, "swap_action.") if not n.endswith(".__main__"))
errors = {}
for module in modules:
    try:
        importlib.import_module(module)
    except Exception as exc:
        errors[module] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"python": platform.python_version(), "versions": versions, "modules": modules, "errors": errors}))
"""


def pyproject() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def declared() -> dict[str, Requirement]:
    """Each checked distribution's requirement, from the dependencies and the optional extras."""
    project = pyproject()["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    found: dict[str, Requirement] = {}
    for line in lines:
        requirement = Requirement(line)
        if requirement.name.lower() in CHECKED:
            found.setdefault(requirement.name.lower(), requirement)
    return found


def run_image(*args: str, entrypoint: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    argv = ["docker", "run", "--rm", *(["--entrypoint", entrypoint] if entrypoint else []), IMAGE, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    try:
        inspected = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=60).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Docker engine answers ({exc})")
    if inspected:
        pytest.skip(f"image missing: {IMAGE} (run scripts/build-images.sh)")
    done = run_image("-c", PROBE, *CHECKED, entrypoint="python3")
    assert done.returncode == 0, f"the probe failed in {IMAGE}:\n{done.stdout}\n{done.stderr}"
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{IMAGE}: Python {data['python']}, " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()))
    return data


def test_every_checked_distribution_is_declared_with_a_floor() -> None:
    requirements = declared()
    assert sorted(requirements) == sorted(CHECKED), "pyproject.toml no longer declares one of them"
    for name, requirement in requirements.items():
        assert any(spec.operator in (">=", "==", "~=", ">") for spec in requirement.specifier), (
            f"{name} has no lower bound in pyproject.toml"
        )


@pytest.mark.parametrize("name", CHECKED)
def test_the_installed_version_meets_the_floor_pyproject_declares(probe: dict[str, Any], name: str) -> None:
    requirement = declared()[name]
    installed = probe["versions"][name]
    assert installed is not None, f"{name} is not installed in {IMAGE}"
    assert requirement.specifier.contains(Version(installed), prereleases=True), (
        f"{IMAGE} has {name} {installed}, but pyproject.toml declares {requirement}: "
        "the Dockerfile's base (Debian suite) or packages fall below what the project is tested with"
    )


def test_the_images_python_is_one_the_project_supports(probe: dict[str, Any]) -> None:
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert requires.contains(Version(probe["python"])), f"{IMAGE} runs Python {probe['python']}, not {requires}"


def test_every_module_of_the_engine_imports_in_the_image(probe: dict[str, Any]) -> None:
    assert "swap_action.action" in probe["modules"]
    assert "swap_action.transport.ssh" in probe["modules"] and "swap_action.transport.docker" in probe["modules"]
    assert probe["errors"] == {}


def test_the_entrypoint_runs_and_refuses_a_missing_target(probe: dict[str, Any]) -> None:
    """``python3 -m swap_action.action`` with no inputs: exit 1, outputs written, the input named."""
    done = run_image()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "changed=false" in done.stdout
    assert "input 'target': no load balancer given" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
