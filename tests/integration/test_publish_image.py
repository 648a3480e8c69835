"""The release path, offline: the publish workflow pushes the image on a version tag, a release job pulls it.

A local registry (Debian's docker-registry on 127.0.0.1, storage in a temporary directory) stands
in for ghcr.io. act runs .github/workflows/publish-image.yml on a push of the tag v1.2.3 in a copy
of the repository whose origin is github.com/BlueGreen-Org/Bluegreen-Swap (so the image name is
lower-cased), with the runner image tests/images/act-runner (git, the Docker CLI, Python). Then a
release job (.github/workflows/example-release.yml, ``uses: ./bluegreen-swap``: the tagged release
commit's files, as ``uses: owner/repo@v1.2.3`` would fetch them) swaps blue -> green on an engine
that has never seen the image, so the runner pulls it from the registry; and, for comparison, the
same job with the development action (``image: Dockerfile``) builds it without a layer cache, as a
fresh GitHub runner does. Both cold starts (act started -> swap confirmed live) and the image's
gzipped size are printed (``pytest -s`` or ``-rP`` shows them).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from lb_fixtures import ROOT, LbStack, start_environment
from test_action_act import ACT_LOCK, RUNNER_IMAGE, WORKFLOW, ActRun, act_binary, remove_act_leftovers, require_images

pytestmark = pytest.mark.docker

PUBLISH_RUNNER = "bluegreen/act-runner:dev"
PUBLISH_WORKFLOW = ".github/workflows/publish-image.yml"
REPOSITORY = "BlueGreen-Org/Bluegreen-Swap"  # as GitHub spells it; the image name is lower case
VERSION, MAJOR = "v1.2.3", "v1"
ACTION_FILES = ("action.yml", "Dockerfile", ".dockerignore", "swap_action")
PUBLISH_FILES = (*ACTION_FILES, ".github", "scripts/release_action_yml.py")
GIT = ["git", "-c", "user.name=bgpub", "-c", "user.email=bgpub@example.invalid"]


def _figures_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("action_image_figures", ROOT / "scripts" / "action_image_figures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


figures = _figures_module()


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def copy_files(dest: Path, names: tuple[str, ...]) -> None:
    for name in names:
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)


def rename_workflow(path: Path, name: str) -> None:
    """act names the job's container and volumes after the workflow: a unique name per test run."""
    text, count = re.subn(r"^name: .*$", f"name: {name}", path.read_text(), count=1, flags=re.M)
    assert count == 1, f"{path} has no top-level name"
    path.write_text(text)


def run_act(repo: Path, argv: list[str]) -> tuple[ActRun, float]:
    """act in ``repo`` (one act run at a time per machine, as in test_action_act); also when it started."""
    with open(ACT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.time()
        done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=900, check=False)
        seconds = time.time() - started
    print(f"act {argv[1]} in {repo.name}: exit {done.returncode} in {seconds:.1f} s")
    return ActRun(done.returncode, done.stdout + done.stderr, seconds), started


def image_present(reference: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", reference], capture_output=True).returncode == 0


def dangling_images() -> set[str]:
    listing = ["docker", "images", "-a", "-q", "--no-trunc", "--filter", "dangling=true"]
    return set(subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split())


def remove_build_stages(before: set[str]) -> None:
    """The untagged images a cache-less build of the Dockerfile left (its first stage), and only those."""
    for image in sorted(dangling_images() - before):
        history = ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image]
        top = subprocess.run(history, capture_output=True, text=True, check=False).stdout.splitlines()[:1]
        if top and "/rootfs/etc/bluegreen-packages" in top[0]:
            subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)


@dataclass
class Published:
    registry: Any  # action_image_figures.LocalRegistry
    repo: Path  # the publish workflow's repository copy, with the release commit and tags
    source_commit: str  # the commit the maintainer tagged
    image: str  # 127.0.0.1:<port>/bluegreen-org/bluegreen-swap
    digest: str
    log: str

    @property
    def reference(self) -> str:
        return f"{self.image}:{VERSION}@{self.digest}"

    def forget_locally(self) -> None:
        """The engine has never seen the image: every local name of it removed (its layers with it)."""
        for name in (f"{self.image}:{VERSION}", f"{self.image}:{MAJOR}", f"{self.image}@{self.digest}"):
            subprocess.run(["docker", "image", "rm", name], capture_output=True, check=False)
        assert not image_present(self.reference), f"{self.reference} is still on the engine"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """The publish workflow run once by act on the tag v1.2.3, against a local registry."""
    require_images(PUBLISH_RUNNER, "debian:trixie-slim")
    act = act_binary()
    try:
        figures.registry_binary()
    except figures.FiguresError as exc:
        pytest.skip(str(exc))
    name = f"bgpub-{uuid.uuid4().hex[:8]}"
    repo = tmp_path_factory.mktemp("bgpub-publish")
    copy_files(repo, PUBLISH_FILES)
    rename_workflow(repo / PUBLISH_WORKFLOW, name)
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", f"https://github.com/{REPOSITORY}.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "development")
    git(repo, "tag", VERSION)
    source_commit = git(repo, "rev-parse", "HEAD")
    event = repo.parent / f"{name}-event.json"
    event.write_text(json.dumps({"ref": f"refs/tags/{VERSION}", "ref_type": "tag", "after": source_commit}))
    before = dangling_images()
    with figures.local_registry() as registry:
        image = f"{registry.host}/{REPOSITORY.lower()}"
        argv = [
            act, "push", "-W", PUBLISH_WORKFLOW, "-e", str(event),
            "-P", f"ubuntu-latest={PUBLISH_RUNNER}", "--pull=false", "--rm",
            "--bind",  # the job commits and tags in this very copy: the test reads the release from it
            "--container-daemon-socket", "unix:///var/run/docker.sock",
            "--env", f"ACTION_IMAGE_REGISTRY={registry.host}",
            "--env", "ACTION_IMAGE_REGISTRY_LOGIN=false",
            "--env", "ACTION_RELEASE_PUSH_TAGS=false",
        ]  # fmt: skip
        run, _ = run_act(repo, argv)
        try:
            assert run.code == 0, run.log[-6000:]
            match = re.search(rf"pushed {re.escape(image)}:{VERSION}@(sha256:[0-9a-f]{{64}})", run.log)
            assert match, f"no 'pushed {image}:{VERSION}@sha256:...' line in act's log:\n{run.log[-4000:]}"
            result = Published(registry, repo, source_commit, image, match.group(1), run.log)
            result.forget_locally()
            yield result
        finally:
            for tag in (VERSION, MAJOR):
                subprocess.run(["docker", "image", "rm", f"{image}:{tag}"], capture_output=True, check=False)
            remove_build_stages(before)
            remove_act_leftovers(name)


def test_the_publish_workflow_pushes_the_version_and_major_tags_and_moves_the_tags_to_a_release_commit(
    published: Published,
) -> None:
    registry = published.registry
    repository = REPOSITORY.lower()
    assert registry.tags(repository) == [MAJOR, VERSION]
    assert registry.digest(repository, VERSION) == registry.digest(repository, MAJOR) == published.digest
    repo = published.repo
    release = git(repo, "rev-parse", f"{VERSION}^{{commit}}")
    assert git(repo, "rev-parse", f"{MAJOR}^{{commit}}") == release
    assert git(repo, "rev-parse", f"{release}^") == published.source_commit, (
        "the release commit's parent is the tagged one"
    )
    assert git(repo, "diff", "--name-only", published.source_commit, release) == "action.yml"
    released = git(repo, "show", f"{VERSION}:action.yml")
    assert f"  image: docker://{published.reference}\n" in released + "\n"
    assert "image: Dockerfile" not in released
    assert "Check that the image starts" in published.log and "input 'target'" in published.log


@dataclass
class Consumer:
    """A repository whose release job uses the action from ./bluegreen-swap."""

    repo: Path
    name: str

    def run(self, act: str, lb_container: str, *, to: str, verify_expect: str) -> tuple[ActRun, float]:
        argv = [
            act, "workflow_dispatch", "-W", WORKFLOW,
            "-P", f"ubuntu-latest={RUNNER_IMAGE}", "--pull=false", "--rm",
            "--container-daemon-socket", "unix:///var/run/docker.sock",
            "--input", f"lb-container={lb_container}", "--input", f"to={to}", "--input", f"verify-expect={verify_expect}",
        ]  # fmt: skip
        return run_act(self.repo, argv)


def make_consumer(dest: Path, action: Path) -> Consumer:
    name = f"bgpub-{uuid.uuid4().hex[:8]}"
    workflow = dest / WORKFLOW
    workflow.parent.mkdir(parents=True)
    text, count = re.subn(r"^(\s+)uses: \./$", r"\1uses: ./bluegreen-swap", (ROOT / WORKFLOW).read_text(), flags=re.M)
    assert count == 1, f"{WORKFLOW} no longer uses the action as 'uses: ./'"
    workflow.write_text(text)
    rename_workflow(workflow, name)
    shutil.copytree(action, dest / "bluegreen-swap")
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "consumer")
    return Consumer(dest, name)


def cold_start_ms(run: ActRun, started: float) -> int:
    """act started (the job's set-up, where GitHub pulls or builds the image) -> swap confirmed live."""
    confirmed = run.report()["confirmed_at"]
    assert isinstance(confirmed, float), run.report()
    return round((confirmed - started) * 1000)


def test_a_release_job_pulls_the_published_image_and_swaps_faster_than_one_that_builds_it(
    published: Published, tmp_path: Path
) -> None:
    require_images(RUNNER_IMAGE)
    act = act_binary()
    released = tmp_path / "released"
    archive = tmp_path / "release.tar"  # what `uses: owner/repo@v1.2.3` fetches: the tag's tree
    git(published.repo, "archive", "-o", str(archive), VERSION)
    with tarfile.open(archive) as files:
        files.extractall(released, filter="data")
    pulling = make_consumer(tmp_path / "pulls", released)
    development = tmp_path / "development"
    copy_files(development, ACTION_FILES)
    dockerfile = development / "Dockerfile"  # a layer cache miss from the first step on: a fresh runner's build
    text, count = re.subn(
        r"^(FROM \S+ AS packages)$", rf"\1\nENV BGPUB_COLD={uuid.uuid4().hex}", dockerfile.read_text(), flags=re.M
    )
    assert count == 1
    dockerfile.write_text(text)
    building = make_consumer(tmp_path / "builds", development)

    published.forget_locally()
    env = start_environment("bgpub")
    before = dangling_images()
    try:
        stack = LbStack(env)
        assert stack.bodies() == {"blue"}
        pulled_run, pulled_start = pulling.run(act, stack.lb_name, to="green", verify_expect="green")
        assert pulled_run.code == 0, pulled_run.log[-4000:]
        assert image_present(published.reference), "the release job ran without pulling the published image"
        outputs = pulled_run.outputs()
        assert (outputs["active-slot"], outputs["previous-slot"], outputs["changed"]) == ("green", "blue", "true")
        assert stack.bodies() == {"green"}
        prebuilt_ms = cold_start_ms(pulled_run, pulled_start)

        built_run, built_start = building.run(act, stack.lb_name, to="auto", verify_expect="blue")
        assert built_run.code == 0, built_run.log[-4000:]
        assert (built_run.outputs()["active-slot"], built_run.outputs()["changed"]) == ("blue", "true")
        assert stack.bodies() == {"blue"}
        build_ms = cold_start_ms(built_run, built_start)

        size = figures.image_gz_bytes(published.reference)
        print(
            f"action cold start (act started -> swap confirmed): prebuilt image pulled {prebuilt_ms} ms, "
            f"built from the Dockerfile without cache {build_ms} ms; image {size / 1e6:.1f} MB gzipped"
        )
        print(
            "action-figures "
            + json.dumps(
                {
                    "action_cold_start_ms": prebuilt_ms,
                    "action_build_cold_start_ms": build_ms,
                    "action_image_mb": round(size / 1e6, 1),
                }
            )
        )
        assert prebuilt_ms < build_ms, "pulling the published image should start the swap sooner than building it"
        assert size <= 60e6, f"the action image is {size / 1e6:.1f} MB gzipped, over the 60 MB budget"
    finally:
        env.stop()
        published.forget_locally()
        for consumer in (pulling, building):
            remove_act_leftovers(consumer.name)
        listing = ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]
        for image in subprocess.run(listing, capture_output=True, text=True, check=False).stdout.split():
            if "bluegreen-swap" in image and image.startswith("act-"):
                subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)
        remove_build_stages(before)
