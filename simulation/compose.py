"""A team's whole stack as the simulation's world: their compose file(s), their services, their
dependencies, brought up with testcontainers' Compose support (``docker compose``, v2).

``python -m simulation run --compose FILE --blue-service NAME --green-service NAME`` runs the
stack as the team wrote it (a database shared by both slots is normal), waits for health (each
service's Compose healthcheck where it has one, running otherwise; then each slot's health path,
asked from the LB), and runs the same scenario and assertions as the harness's own world:

- without ``--lb-service`` the harness's LB (``bluegreen/lb:dev``, or ``--nginx-image``/``--nginx-conf``)
  joins the network the two slot services share, in front of them by their service names;
- with ``--lb-service NAME`` the team's own Nginx service is the LB, reached through the Docker
  transport. Its configuration is read as Nginx will load it (the image's ``/etc/nginx`` with the
  file's bind mounts laid over it) and planned like any user LB (``lb_setup.plan_lb``).

Nothing of the team's files is modified. What the harness changes in the stack goes in a generated
override file (``bluegreen-override.yaml`` in a temporary directory, passed as the last ``-f``):
the LB service's ports replaced by one port published on 127.0.0.1, its ``/etc/nginx`` mounted
from a generated copy holding the harness's additions (the managed upstream file, the
``X-Upstream-Addr`` header), and ``--app-env`` for the slots. Each change is listed under
"harness added" in the report, and the override's text is in ``report.json`` (``lb.compose``).

A stack that does not come up is a startup failure (exit 2, no swap): which service, its state and
health (the last health check's output) and its own last log lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import docker
import docker.errors

from .environment import HARNESS_SITE, AppSpec, Environment, StartupError, check_images
from .lb_image import ImageError, image_config
from .lb_setup import LbPlan, SetupError, plan_lb
from .nginx_config import CONF_DIR, MAIN_CONF, Tree

# isort: split
# (after .environment, which sets testcontainers' environment before it is first imported)
from testcontainers.compose import DockerCompose
from testcontainers.core.container import DockerContainer

COMPOSE_TIMEOUT = 120.0  # from `up` to every service healthy (or running, without a healthcheck)
LOG_LINES = 20
OVERRIDE_NAME = "bluegreen-override.yaml"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_FIX = "bash scripts/ensure-compose.sh (or make docker): installs Compose v2 as the docker CLI plugin"
# compose's own progress lines ("Container p-db-1  Started"): left out of a failure's message.
PROGRESS = re.compile(
    r"^\s*(Network|Container|Volume|Image)\s+\S+\s+(Creating|Created|Starting|Started|Waiting|Healthy|Running|"
    r"Recreate|Recreated|Stopping|Stopped|Removing|Removed|Pulling|Built|Error)\s*$"
)
# testcontainers logs a failed compose command's whole output; the harness says what failed itself.
logging.getLogger("testcontainers.compose.compose").addHandler(logging.NullHandler())
# States a container of the stack can be in that will not get better by waiting.
DEAD_STATES = ("exited", "dead")


class ComposeError(StartupError):
    """The team's stack could not be brought up or used; the message says which service and why."""


# -- pure pieces (unit-tested without Docker) ------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One of a service's volumes, as ``docker compose config`` gives it (long syntax)."""

    type: str
    source: str
    target: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, entry: Mapping[str, Any] | str) -> Mount:
        if isinstance(entry, str):  # short syntax (only when not normalized): SOURCE:TARGET[:MODE]
            parts = entry.split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            return cls(kind, source, target, {"type": kind, "source": source, "target": target})
        return cls(str(entry.get("type", "volume")), str(entry.get("source", "")), str(entry["target"]), dict(entry))

    def under_nginx(self) -> bool:
        target = posixpath.normpath(self.target)
        return target == CONF_DIR or target.startswith(CONF_DIR + "/")


def split_mounts(volumes: Iterable[Mapping[str, Any] | str]) -> tuple[list[Mount], list[Mount]]:
    """(the mounts at or under /etc/nginx, the others)."""
    mounts = [Mount.of(entry) for entry in volumes]
    return [m for m in mounts if m.under_nginx()], [m for m in mounts if not m.under_nginx()]


def read_mount(mount: Mount, base: Path | None = None) -> dict[str, bytes]:
    """The files a bind mount puts under /etc/nginx (path on the LB -> bytes)."""
    if mount.type != "bind":
        raise ComposeError(
            f"the LB service mounts a {mount.type} at {mount.target}: the harness reads the LB's Nginx "
            "configuration before the stack starts, so it must come from the image or a bind mount of a file "
            "or directory (e.g. ./nginx.conf:/etc/nginx/nginx.conf:ro)"
        )
    source = Path(mount.source)
    if not source.is_absolute() and base is not None:
        source = base / source
    target = posixpath.normpath(mount.target)
    if source.is_file():
        return {target: source.read_bytes()}
    if source.is_dir():
        return {
            posixpath.join(target, path.relative_to(source).as_posix()): path.read_bytes()
            for path in sorted(source.rglob("*"))
            if path.is_file()
        }
    raise ComposeError(f"the LB service mounts {source} at {mount.target}: no such file or directory")


def overlay_mounts(
    files: Mapping[str, bytes], links: Mapping[str, str], mounts: Sequence[tuple[str, dict[str, bytes]]]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The image's /etc/nginx with bind mounts laid over it, as the container sees it: a directory
    mount hides what the image had below its target; a file mount replaces one file. ``mounts`` is
    (target, files) per mount; a parent mount is applied before a mount below it."""
    out_files, out_links = dict(files), dict(links)
    for target, mounted in sorted(mounts, key=lambda item: posixpath.normpath(item[0]).count("/")):
        target = posixpath.normpath(target)
        is_file = list(mounted) == [target]
        # a file mount hides that file; a directory mount everything below it ("\0" matches no path)
        prefix = "\0" if is_file else target + "/"
        out_files = {p: d for p, d in out_files.items() if p != target and not p.startswith(prefix)}
        out_links = {p: t for p, t in out_links.items() if p != target and not p.startswith(prefix)}
        out_files.update(mounted)
    return out_files, out_links


def _flow(value: Any) -> str:
    """A value in YAML flow style (JSON is valid YAML)."""
    return json.dumps(value, sort_keys=False)


def render_override(services: Mapping[str, Mapping[str, Any]], replaced: Iterable[str] = ("ports", "volumes")) -> str:
    """The override compose file: per service, keys merged over the team's file; the keys in
    ``replaced`` replace the team's list instead of adding to it (Compose's ``!override`` tag)."""
    replace = set(replaced)
    lines = [
        "# Generated by the simulation harness (python -m simulation run --compose); passed as the last -f.",
        "# The team's compose files are not modified: every change the harness makes to the stack is here.",
        "services:",
    ]
    if not services:
        lines[-1] = "services: {}"
    for name, keys in services.items():
        lines.append(f"  {_flow(name)}:")
        if not keys:
            lines[-1] += " {}"
        for key, value in keys.items():
            tag = " !override" if key in replace else ""
            lines.append(f"    {_flow(key)}:{tag} {_flow(value)}")
    return "\n".join(lines) + "\n"


def lb_service_override(
    *, port: int, etc_dir: str, other_mounts: Sequence[Mount], replaced_mounts: Sequence[Mount], ports: Sequence[Any]
) -> tuple[dict[str, Any], list[str]]:
    """The LB service's override (its ports and volumes) and each change, said for people."""
    volumes = [dict(m.raw) or {"type": m.type, "source": m.source, "target": m.target} for m in other_mounts]
    volumes.append({"type": "bind", "source": etc_dir, "target": CONF_DIR})
    added = [
        f"port {port} of the LB service published on 127.0.0.1 (a free port)"
        + (f", in place of the file's ports {', '.join(_port_text(p) for p in ports)}" if ports else ""),
        f"{CONF_DIR} of the LB service mounted from a generated copy (the image's config"
        + (
            f", the file's mounts {', '.join(f'{m.source}:{m.target}' for m in replaced_mounts)}"
            if replaced_mounts
            else ""
        )
        + ", and the changes below); the team's files are not modified",
    ]
    return {"ports": [f"127.0.0.1::{port}"], "volumes": volumes}, added


def _port_text(port: Any) -> str:
    if isinstance(port, Mapping):
        published = port.get("published")
        host = port.get("host_ip")
        target = port.get("target")
        left = ":".join(str(p) for p in (host, published) if p)
        return f"{left}:{target}" if left else str(target)
    return str(port)


def write_tree(root: Path, files: Mapping[str, bytes], links: Mapping[str, str]) -> None:
    """Files (absolute paths under /etc/nginx) and symlinks written under ``root`` (which stands for /etc/nginx)."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for path, data in files.items():
        local = root / posixpath.relpath(path, CONF_DIR)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        local.chmod(0o644)
    for path, target in links.items():
        local = root / posixpath.relpath(path, CONF_DIR)
        if local.exists() or local.is_symlink():
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        local.symlink_to(target)
    for directory in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        directory.chmod(0o755)


def shared_network(networks: Sequence[Sequence[str]], project: str) -> str | None:
    """A network every one of the containers is on: the project's default one when it is shared."""
    if not networks:
        return None
    common = set(networks[0]).intersection(*map(set, networks[1:]))
    if not common:
        return None
    default = f"{project}_default"
    return default if default in common else sorted(common)[0]


# -- the stack --------------------------------------------------------------------------------------


def compose_v2_version() -> str | None:
    """``docker compose version --short`` (None when Compose v2 is not installed)."""
    try:
        done = subprocess.run(
            ["docker", "compose", "version", "--short"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = done.stdout.strip().lstrip("v")
    return version if done.returncode == 0 and version[:2] == "2." else None


@dataclass
class ProjectCompose(DockerCompose):
    """testcontainers' DockerCompose, with a project name of ours (``-p``)."""

    project: str = ""

    @cached_property
    def compose_command_property(self) -> list[str]:
        command = [self.docker_command_path or "docker", "compose", "-p", self.project]
        for file in self.compose_file_name or []:
            command += ["-f", file]
        for profile in self.profiles or []:
            command += ["--profile", profile]
        for env_file in self.env_file or []:
            command += ["--env-file", env_file]
        return command


@dataclass
class ServiceState:
    """A container of the stack as the harness saw it."""

    service: str
    container: str
    image: str
    state: str
    health: str  # "healthy", "unhealthy", "starting", or "" (no healthcheck)
    exit_code: int
    role: str = ""  # "blue slot", "green slot", "LB", "" (a dependency)
    last_check: str = ""  # the last health check's exit code and output

    def line(self) -> str:
        health = f", health {self.health}" if self.health else ", no healthcheck"
        if self.state == "created":
            health = ", never started (compose waits for its dependencies first)"
        state = f"{self.state} (exit {self.exit_code})" if self.state in DEAD_STATES else self.state
        role = f" [{self.role}]" if self.role else ""
        return f"{self.service}{role}: container {self.container}, {state}{health}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "role": self.role,
            "container": self.container,
            "image": self.image,
            "state": self.state,
            "health": self.health,
        }


def service_state(container: Any, roles: Mapping[str, str]) -> ServiceState:
    attrs = container.attrs
    state = attrs.get("State", {})
    health = state.get("Health") or {}
    checks = health.get("Log") or []
    last = ""
    if checks:
        # the output's last line says why (an exception's message, curl's error)
        output = [line.strip() for line in str(checks[-1].get("Output", "")).splitlines() if line.strip()]
        last = f"exit {checks[-1].get('ExitCode')}: {output[-1][-400:] if output else '(no output)'}"
    service = attrs.get("Config", {}).get("Labels", {}).get(SERVICE_LABEL, "?")
    return ServiceState(
        service=service,
        container=attrs.get("Name", "").lstrip("/"),
        image=str(attrs.get("Config", {}).get("Image", "")),
        state=str(state.get("Status", "?")),
        health=str(health.get("Status", "")),
        exit_code=int(state.get("ExitCode") or 0),
        role=roles.get(service, ""),
        last_check=last,
    )


def failing_services(states: Sequence[ServiceState]) -> list[ServiceState]:
    """Services that will not get better by waiting: unhealthy, or exited (a one-shot dependency
    that exited 0, a migration say, is done, not failed; a slot or the LB must keep running)."""
    return [
        s for s in states if s.health == "unhealthy" or (s.state in DEAD_STATES and (s.exit_code != 0 or bool(s.role)))
    ]


def failure_text(failing: Sequence[ServiceState]) -> str:
    return " and ".join(
        f"service '{s.service}' is unhealthy"
        if s.health == "unhealthy"
        else f"service '{s.service}' exited (code {s.exit_code})"
        for s in failing
    )


class ComposeEnvironment(Environment):
    """The team's compose stack, blue live at start, behind the harness's LB or their own (``lb_service``).

    The containers are the compose project's (``<name>-<service>-1``); ``containers`` holds
    testcontainers handles on the slots and the LB so the rest of the harness (probes, the Docker
    transport, diagnostics, redeploys) works as in the harness's own world.
    """

    def __init__(
        self,
        files: Sequence[Path],
        blue: AppSpec | None = None,
        green: AppSpec | None = None,
        *,
        blue_service: str = "blue",
        green_service: str = "green",
        lb_service: str | None = None,
        app_env: Mapping[str, str] | None = None,
        compose_timeout: float = COMPOSE_TIMEOUT,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(blue, green, name=name or f"bgcompose-{uuid.uuid4().hex[:8]}", **kwargs)
        self.files = [Path(f).resolve() for f in files]
        self.services = {"blue": blue_service, "green": green_service}
        self.lb_service = lb_service
        self.app_env = dict(app_env or {})
        self.compose_timeout = compose_timeout
        self.compose: ProjectCompose | None = None
        self.workdir: Path | None = None
        self.override = ""  # the override file's text
        self.stack_added: list[str] = []  # what the harness added to the stack (besides the LB's config)
        self.network_name = ""
        self.service_states: list[ServiceState] = []
        self._lb_name = ""
        self._docker: Any = None

    # -- names ----------------------------------------------------------------------------
    def slot_host(self, slot: str) -> str:
        return self.services[slot]

    @property
    def lb_container_name(self) -> str:
        return self._lb_name or f"{self.name}-lb"

    @property
    def roles(self) -> dict[str, str]:
        roles = {self.services["blue"]: "blue slot", self.services["green"]: "green slot"}
        if self.lb_service:
            roles[self.lb_service] = "LB"
        return roles

    def to_dict(self) -> dict[str, Any]:
        """For the report (``lb.compose``): the project, files, services and the override."""
        return {
            "project": self.name,
            "files": [str(f) for f in self.files],
            "blue_service": self.services["blue"],
            "green_service": self.services["green"],
            "lb_service": self.lb_service,
            "network": self.network_name,
            "services": [s.to_dict() for s in self.service_states],
            "override": self.override,
        }

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ComposeEnvironment:
        begun = time.perf_counter()
        for file in self.files:
            if not file.is_file():
                raise ComposeError(f"--compose {file}: no such file")
        if compose_v2_version() is None:
            raise ComposeError(
                f"--compose needs Compose v2 ('docker compose'), which is not installed. Fix: {COMPOSE_FIX}"
            )
        if self.lb_service is None:
            check_images(self.lb_image)
        else:
            check_images()  # the engine answers
        self._docker = docker.from_env(timeout=60)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        try:
            config = self._config(self.files)
            self._check_services(config)
            overrides: dict[str, dict[str, Any]] = {}
            if self.app_env:
                for slot in ("blue", "green"):
                    overrides[self.services[slot]] = {"environment": dict(self.app_env)}
                keys = ", ".join(sorted(self.app_env))
                self.stack_added.append(
                    f"environment {keys} (--app-env) set on services {', '.join(self.services.values())}"
                )
            if self.lb_service is not None:
                self.lb_plan = self._plan_team_lb(config, overrides)
            else:
                self.lb_plan = self.plan()
            self.override = render_override(overrides)
            override_file = self.workdir / OVERRIDE_NAME
            override_file.write_text(self.override)
            self.compose = ProjectCompose(
                context=str(self.files[0].parent),
                compose_file_name=[*map(str, self.files), str(override_file)],
                wait=False,
                project=self.name,
            )
            self._up()
            self._wait_healthy()
            self._attach()
            if self.lb_service is None:
                self._start_harness_lb()
            else:
                self._wait_team_lb()
            self.service_states = self._states()
        except BaseException as exc:
            summary = self._stack_summary() if isinstance(exc, StartupError | TimeoutError) else ""
            self.stop()
            if isinstance(exc, ComposeError):
                raise
            if isinstance(exc, StartupError | TimeoutError):
                raise ComposeError(f"{exc}\n{summary}".rstrip()) from None
            raise
        self.startup_s = time.perf_counter() - begun
        return self

    def stop(self) -> None:
        lb = self.containers.get("lb")
        if self.lb_service is None and lb is not None:
            with contextlib.suppress(Exception):
                lb.stop()  # the harness's LB leaves the stack's network before compose removes it
        self.containers.clear()
        if self.compose is not None:
            with contextlib.suppress(Exception):
                self.compose._run_command([*self.compose.docker_compose_command(), "down", "-v", "--remove-orphans"])
            self.compose = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self._docker is not None:
            with contextlib.suppress(Exception):
                self._docker.close()
            self._docker = None

    # -- steps ----------------------------------------------------------------------------
    def _base_command(self, files: Sequence[Path]) -> list[str]:
        command = ["docker", "compose", "-p", self.name]
        for file in files:
            command += ["-f", str(file)]
        return command

    def _config(self, files: Sequence[Path]) -> dict[str, Any]:
        done = subprocess.run(
            [*self._base_command(files), "config", "--format", "json"],
            cwd=files[0].parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise ComposeError(f"docker compose cannot read {', '.join(map(str, files))}:\n{done.stderr.strip()}")
        config: dict[str, Any] = json.loads(done.stdout)
        return config

    def _check_services(self, config: Mapping[str, Any]) -> None:
        services = config.get("services", {})
        wanted = {"--blue-service": self.services["blue"], "--green-service": self.services["green"]}
        if self.lb_service is not None:
            wanted["--lb-service"] = self.lb_service
        for flag, service in wanted.items():
            if service not in services:
                raise ComposeError(
                    f"{flag} {service}: no such service in {', '.join(map(str, self.files))} "
                    f"(services: {', '.join(sorted(services)) or 'none'})"
                )
        if self.services["blue"] == self.services["green"]:
            raise ComposeError("--blue-service and --green-service name the same service: the slots are two services")

    def _plan_team_lb(self, config: Mapping[str, Any], overrides: dict[str, dict[str, Any]]) -> LbPlan:
        """The team's LB service: its config as Nginx will load it, the harness's additions, and the
        override that puts them in place (a generated copy of /etc/nginx, one published port)."""
        assert self.lb_service is not None and self.workdir is not None
        service = config["services"][self.lb_service]
        image = service.get("image") or f"{self.name}-{self.lb_service}"
        if service.get("build"):
            self._compose_build(self.lb_service)
        self.lb_image = image
        try:
            files, links = image_config(image)
        except (ImageError, docker.errors.ImageNotFound) as exc:
            raise ComposeError(f"--lb-service {self.lb_service}: image {image}: {exc}") from None
        nginx_mounts, other_mounts = split_mounts(service.get("volumes") or [])
        mounted = [(m.target, read_mount(m, self.files[0].parent)) for m in nginx_mounts]
        merged, merged_links = overlay_mounts(files, links, mounted)
        if MAIN_CONF not in merged and MAIN_CONF not in merged_links:
            raise ComposeError(f"--lb-service {self.lb_service}: the image {image} and its mounts have no {MAIN_CONF}")
        try:
            plan = plan_lb(
                Tree(merged, merged_links),
                upstream=self.upstream,
                managed=self.initial_upstream(),
                template_site=self.site_config() if self.nginx_template is not None else None,
                harness_site=self._render_site(HARNESS_SITE.read_text()),
            )
        except SetupError as exc:
            raise ComposeError(f"--lb-service {self.lb_service}: {exc}") from None
        etc_dir = self.workdir / "lb-etc-nginx"
        write_tree(etc_dir, {**merged, **plan.files}, merged_links)
        lb_override, added = lb_service_override(
            port=plan.port,
            etc_dir=str(etc_dir),
            other_mounts=other_mounts,
            replaced_mounts=nginx_mounts,
            ports=service.get("ports") or [],
        )
        overrides.setdefault(self.lb_service, {}).update(lb_override)
        self.stack_added.extend(added)
        return plan

    def _compose_build(self, service: str) -> None:
        done = subprocess.run(
            [*self._base_command(self.files), "build", service],
            cwd=self.files[0].parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-LOG_LINES:])
            raise ComposeError(f"building the LB service {service} failed:\n{tail}")

    def _up(self) -> None:
        assert self.compose is not None
        try:
            self.compose.start()
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or b"").decode(errors="replace") + (exc.stdout or b"").decode(errors="replace")
            said = [line.strip() for line in output.splitlines() if line.strip() and not PROGRESS.match(line)]
            said = [line for line in said if not line.startswith("#")]  # the image builds' progress
            tail = "\n".join("  " + line for line in said[-LOG_LINES:])
            failing = failing_services(self._states())
            lead = failure_text(failing) if failing else "docker compose up failed"
            raise ComposeError(
                f"the compose stack did not come up: {lead} (nothing was swapped).\n"
                f"docker compose up said:\n{tail}\n{self._stack_summary(failing)}".rstrip()
            ) from None

    def _project_containers(self) -> list[Any]:
        return list(self._docker.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.name}"}))

    def _states(self) -> list[ServiceState]:
        try:
            states = [service_state(c, self.roles) for c in self._project_containers()]
        except Exception:
            return []
        return sorted(states, key=lambda s: (s.role == "", s.service))

    def _wait_healthy(self) -> None:
        """Every service healthy (its healthcheck) or running (none); a service that failed stops the wait at once."""
        deadline = time.monotonic() + self.compose_timeout
        while True:
            states = self._states()
            failing = failing_services(states)
            if failing:
                raise ComposeError(
                    f"the compose stack did not come up: {failure_text(failing)} (nothing was swapped).\n"
                    f"{self._stack_summary(failing)}"
                )
            present = {s.service for s in states}
            missing = [svc for svc in self.roles if svc not in present]
            pending = [
                s for s in states if s.health == "starting" or (s.state not in DEAD_STATES and s.state != "running")
            ]
            if not pending and not missing:
                return
            if time.monotonic() > deadline:
                names = ", ".join([*(f"'{s.service}' ({s.health or s.state})" for s in pending), *missing])
                raise ComposeError(
                    f"the compose stack did not become healthy within {self.compose_timeout:.0f}s: {names} still "
                    f"pending (nothing was swapped).\n{self._stack_summary(pending)}"
                )
            time.sleep(0.5)

    def _attach(self) -> None:
        """Handles on the slots' (and the team LB's) containers, the shared network, the slots' addresses."""
        by_service = {c.labels.get(SERVICE_LABEL): c for c in self._project_containers()}
        for slot in ("blue", "green"):
            self.containers[slot] = _handle(by_service[self.services[slot]])
        members = [self.services["blue"], self.services["green"]]
        if self.lb_service is not None:
            self.containers["lb"] = _handle(by_service[self.lb_service])
            self._lb_name = str(by_service[self.lb_service].name)
            members.append(self.lb_service)
        networks = [list(by_service[m].attrs["NetworkSettings"]["Networks"]) for m in members]
        network = shared_network(networks, self.name)
        if network is None:
            raise ComposeError(
                f"services {', '.join(members)} share no network: the LB must reach both slots by their service names"
            )
        self.network_name = network
        for slot in ("blue", "green"):
            self.addresses[f"{self._ip(self.containers[slot])}:{self.spec(slot).port}"] = slot

    def _start_harness_lb(self) -> None:
        from testcontainers.core.network import Network

        assert self.lb_plan is not None
        network = Network()
        network.name = self.network_name  # the stack's own network: joined, not created
        self.network = network
        try:
            self._start_lb(self.lb_plan)
        finally:
            self.network = None  # compose removes it, not the harness
        self.stack_added.append(
            f"the harness's LB ({self.lb_image}, container {self.lb_container_name}) on the stack's network "
            f"{self.network_name}, in front of services {self.services['blue']} and {self.services['green']}; its port "
            f"{self.lb_plan.port} published on 127.0.0.1:{self.lb_port}"
        )

    def _wait_team_lb(self) -> None:
        assert self.lb_plan is not None
        lb = self.containers["lb"]
        try:
            self._lb_ready().wait_until_ready(lb)
        except TimeoutError as exc:
            raise StartupError(str(exc)) from None
        self._traffic_url = None  # the LB's address may have changed
        self.lb_port = int(lb.get_exposed_port(self.lb_plan.port))

    def _ip(self, container: DockerContainer) -> str:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        networks: dict[str, Any] = wrapped.attrs["NetworkSettings"]["Networks"]
        return str(networks[self.network_name]["IPAddress"])

    def _stack_summary(self, focus: Sequence[ServiceState] | None = None) -> str:
        """Each service's state and health; for the ones in ``focus`` (default: the failing ones),
        the last health check and the service's own last log lines."""
        states = self._states()
        focus_names = {s.service for s in (focus if focus is not None else failing_services(states))}
        lines = ["services:"]
        for s in states:
            lines.append(f"  {s.line()}")
            if s.service not in focus_names:
                continue
            if s.last_check:
                lines.append(f"    last health check: {s.last_check}")
            logs = self._logs(s.container)
            lines.append(
                f"    last {LOG_LINES} log lines of {s.service}:" if logs else f"    {s.service} logged nothing"
            )
            lines += [f"      {line}" for line in logs]
        if len(lines) == 1:
            return ""
        lines.append(
            "fix: bring the stack up alone (docker compose -f FILE up) and make every service healthy; "
            "the harness swaps only a stack that starts"
        )
        return "\n".join(lines)

    def _logs(self, container: str) -> list[str]:
        try:
            text = self._docker.containers.get(container).logs(tail=LOG_LINES).decode(errors="replace")
        except Exception as exc:
            return [f"(logs unavailable: {exc})"]
        return [line.rstrip() for line in text.splitlines() if line.strip()]

    def restart_lb(self) -> None:
        if self.lb_service is None:
            super().restart_lb()
            return
        lb = self.containers["lb"]
        lb.get_wrapped_container().restart(timeout=5)
        assert self.lb_plan is not None
        self._traffic_url = None  # the LB's address may have changed
        self.lb_port = int(lb.get_exposed_port(self.lb_plan.port))


def _handle(container: Any) -> DockerContainer:
    """A testcontainers handle on a container compose started (exec, ports, logs, restart)."""
    handle = DockerContainer(str(container.attrs.get("Config", {}).get("Image", "")))
    handle._container = container
    return handle
