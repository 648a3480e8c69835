"""The action image's figures for the benchmark: its gzipped size, and a cold start from a registry.

    python scripts/action_image_figures.py [--image bluegreen/action:dev]

prints one JSON line: ``action_image_mb`` (``docker save | gzip``, MB = 10^6 bytes, what a job
downloads, roughly) and ``action_cold_start_ms``: from the start of a pull on an engine that has
never seen the image (from a local registry, Debian's docker-registry on 127.0.0.1) to the swap
confirmed live by the action's container, run as GitHub runs it (Docker socket mounted, inputs as
BG_* variables) against a stack of its own (blue -> green). Its parts come too: ``action_pull_ms``
and ``action_run_ms`` (container start -> swap confirmed). A job that builds the image from the
Dockerfile instead spends the build's time where the pull is (tests/integration/test_publish_image.py
measures both through act).

The engine "has never seen" the image because a copy with a layer of its own is pushed (the
image's files, exported and imported as one layer) and removed locally before the pull.
``LocalRegistry`` is also what the publish test uses.
"""

from __future__ import annotations

import argparse
import gzip
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "bluegreen/action:dev"


class FiguresError(Exception):
    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(f"{cause}\nfix: {fix}")


def docker(*args: str, timeout: float = 300, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=timeout, check=False)
    if done.returncode:
        raise FiguresError(
            f"'docker {' '.join(args[:3])}' failed: {done.stderr.decode(errors='replace').strip()[-500:]}",
            "check that the Docker engine answers (docker info) and the image exists (scripts/build-images.sh)",
        )
    return done.stdout.decode(errors="replace")


def image_gz_bytes(image: str = IMAGE) -> int:
    """``docker save IMAGE | gzip -c | wc -c``, streamed."""
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as save:
        assert save.stdout is not None
        counter = _Counter()
        with gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6, mtime=0) as packed:
            shutil.copyfileobj(save.stdout, packed, 1 << 20)
        _, err = save.communicate()
    if save.returncode:
        raise FiguresError(
            f"docker save {image} failed: {err.decode(errors='replace').strip()}", "build the image first"
        )
    return counter.size


class _Counter:
    size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LocalRegistry:
    """A registry on 127.0.0.1 (plain HTTP: Docker engines allow 127.0.0.0/8 without TLS)."""

    host: str  # 127.0.0.1:<port>
    process: subprocess.Popen[bytes]

    def tags(self, repository: str) -> list[str]:
        with urllib.request.urlopen(f"http://{self.host}/v2/{repository}/tags/list", timeout=10) as answer:
            data = json.load(answer)
        return sorted(data.get("tags") or [])

    def digest(self, repository: str, tag: str) -> str:
        accept = ", ".join(
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.index.v1+json",
            )
        )
        request = urllib.request.Request(
            f"http://{self.host}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": accept}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(answer.headers["Docker-Content-Digest"])


def registry_binary() -> str:
    found = shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )
    if not found:
        raise FiguresError(
            "the docker-registry program is not installed (the local registry that stands in for ghcr.io)",
            "run 'make docker' (scripts/ensure-docker.sh installs it on Debian), or apt-get install docker-registry",
        )
    return found


@contextmanager
def local_registry() -> Iterator[LocalRegistry]:
    """Debian's docker-registry on a free port of 127.0.0.1, its storage in a temporary directory."""
    binary = registry_binary()
    with tempfile.TemporaryDirectory(prefix="bgpub-registry-") as root:
        host = f"127.0.0.1:{free_port()}"
        config = Path(root) / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {host}\n"
        )
        log = (Path(root) / "registry.log").open("wb")
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"http://{host}/v2/", timeout=2):
                        break
                except OSError as exc:
                    if process.poll() is not None or time.monotonic() > deadline:
                        text = (Path(root) / "registry.log").read_text(errors="replace")[-2000:]
                        raise FiguresError(
                            f"the local registry did not answer on {host} ({exc}); its log:\n{text}",
                            "check that docker-registry runs (docker-registry serve CONFIG) and the port is free",
                        ) from None
                    time.sleep(0.1)
            yield LocalRegistry(host, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def push_unseen_copy(image: str, registry: LocalRegistry) -> str:
    """A copy of ``image`` with a layer of its own, pushed to ``registry`` and removed locally."""
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image))
    name = f"{registry.host}/bgpub-figures/action:{secrets.token_hex(4)}"
    container = docker("create", image).strip()
    try:
        changes = [f"ENV {item}" for item in config.get("Env") or []]
        changes.append(f"ENTRYPOINT {json.dumps(config['Entrypoint'])}")
        with subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE) as export:
            argv = ["docker", "import", *(arg for c in changes for arg in ("--change", c)), "-", name]
            subprocess.run(argv, stdin=export.stdout, capture_output=True, check=True, timeout=300)
    finally:
        docker("rm", "-f", container)
    docker("push", "--quiet", name)
    docker("image", "rm", name)
    return name


def swap_with_action_container(image: str, target: str, workspace: Path) -> float:
    """Run the action's container as GitHub does (one step); the unix time the swap was confirmed."""
    inputs = {"TARGET": target, "BLUE": "blue:8080", "GREEN": "green:8080", "TO": "green"}
    inputs |= {"VERIFY_URL": "http://127.0.0.1/", "VERIFY_EXPECT": "green"}
    argv = [
        "docker",
        "run",
        "--rm",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        f"{workspace}:/github/workspace",
    ]
    for key, value in inputs.items():
        argv += ["-e", f"BG_{key}={value}"]
    argv += ["-e", "GITHUB_WORKSPACE=/github/workspace", "-e", "GITHUB_OUTPUT=/github/workspace/output"]
    argv += [
        "-e",
        "GITHUB_STEP_SUMMARY=/github/workspace/summary",
        "-e",
        "GITHUB_ACTION=swap",
        "-e",
        "GITHUB_ACTIONS=true",
        image,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    reports = sorted(workspace.glob("bluegreen-swap-report-*.json"))
    if done.returncode or not reports:
        raise FiguresError(
            f"the action's container failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
            "run the action image by hand and read its output",
        )
    confirmed = json.loads(reports[-1].read_text())["confirmed_at"]
    return float(confirmed)


def cold_start(image: str = IMAGE) -> dict[str, float]:
    """Pull (never seen) -> swap confirmed by the action's container, on a stack of its own."""
    sys.path.insert(0, str(ROOT))
    from simulation.environment import AppSpec, Environment

    env = Environment(AppSpec(), AppSpec(), name=f"bgpub-fig-{secrets.token_hex(4)}").start()
    workspace = Path(tempfile.mkdtemp(prefix="bgpub-workspace-"))
    try:
        with local_registry() as registry:
            name = push_unseen_copy(image, registry)
            try:
                start = time.time()
                docker("pull", "--quiet", name)
                pulled = time.time()
                confirmed = swap_with_action_container(name, f"docker://{env.lb_container_name}", workspace)
            finally:
                subprocess.run(["docker", "image", "rm", "-f", name], capture_output=True, check=False)
    finally:
        env.stop()
        shutil.rmtree(workspace, ignore_errors=True)
    return {
        "action_cold_start_ms": round((confirmed - start) * 1000),
        "action_pull_ms": round((pulled - start) * 1000),
        "action_run_ms": round((confirmed - pulled) * 1000),
    }


def figures(image: str = IMAGE, *, with_cold_start: bool = True) -> dict[str, float]:
    result: dict[str, float] = {"action_image_mb": round(image_gz_bytes(image) / 1e6, 1)}
    if with_cold_start:
        result |= cold_start(image)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--size-only", action="store_true", help="only action_image_mb (no registry, no stack)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(figures(args.image, with_cold_start=not args.size_only)))
    except FiguresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
