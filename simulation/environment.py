"""The one test world: a private Docker network with the LB and two app slots (blue live at
start), brought up with testcontainers and removed afterwards.

The simulation runs in it, and so does every integration test that needs a real Nginx (the CLI
tests, the SSH transport, the action under act): names are predictable (``<name>-lb``,
``<name>-blue``, ``<name>-green`` on the network ``<name>``), each slot gets its own
environment, the LB's port 80 (and 22 when it runs sshd) is published on 127.0.0.1 only.

Readiness is testcontainers' wait strategies on the LB: Nginx serves the managed file, each
slot answers from the LB, port 80 answers through the published port (and sshd sends its
banner). Only transient errors are retried; a slot that exits fails the start at once; a timeout
says what was still pending and what to check.

Which slot served a request is found without the app's help: the harness's Nginx site adds
``X-Upstream-Addr: $upstream_addr`` and the harness maps container addresses to slots.

The LB is any image with Nginx (``lb_image``) and any configuration (``nginx_conf``: a team's
nginx.conf or directory of config); ``lb_setup.plan_lb`` adds only what the harness needs (the
managed upstream file and its include, the header) and says what it added (``lb_plan.added``).

A fleet (``lbs``): LB 1 is ``<name>-lb`` as ever, the others ``<name>-lb2``, ``<name>-lb3``...,
each with the same files, in front of the same two slots. ``staging_host`` adds the staging route:
the initial managed file gets the second upstream ``<upstream>_staging`` (the idle slot) and a
server for that host name proxies to it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import jinja2
import requests

from swap_action.inputs import Slots
from swap_action.upstream import marker_address, render

from .lb_image import REQUIRED_TOOLS, TOOLS_SCRIPT, ImageError, lb_tree, missing_tools, missing_tools_message
from .lb_setup import LbPlan, SetupError, StagingSite, plan_lb

# testcontainers on machines without a registry, or that look like containers themselves.
# (The harness removes its own containers, so the reaper is not needed.)
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import CompositeWaitStrategy, HttpWaitStrategy, WaitStrategy
from testcontainers.core.waiting_utils import WaitStrategyTarget

LB_IMAGE = "bluegreen/lb:dev"
APP_IMAGE = "bluegreen/app:dev"
MANAGED_FILE = "/etc/nginx/bluegreen/upstream.conf"
SITE_FILE = "/etc/nginx/site/default.conf"
ERROR_LOG = "/var/log/nginx/error.log"
SSH_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"
UPSTREAM = "app"
START_TIMEOUT = 60.0
POLL_INTERVAL = 0.1
HEADERS_SNIPPET = "add_header X-Upstream-Addr $upstream_addr always;"
HARNESS_SITE = Path(__file__).parent / "templates" / "site.conf.j2"
STAGING_SITE = Path(__file__).parent / "templates" / "staging.conf.j2"
# Nginx's processes from /proc (the LB may have no ps): "PID TITLE" per line.
NGINX_PROCESSES = (
    'for d in /proc/[0-9]*; do t=; read -r t < "$d/cmdline" 2>/dev/null; '
    'case "$t" in "nginx: "*) echo "${d#/proc/} $t" ;; esac; done'
)
# The error log's tail when it is a regular file (a link to /dev/stderr would block tail).
ERROR_LOG_TAIL = '[ -f "$1" ] && exec tail -n 200 "$1"; echo "($1 is not a regular file: see the container\'s log)"'


class StartupError(RuntimeError):
    """The environment did not come up; the message says why and what to do."""


class DockerUnavailable(StartupError):
    """No Docker engine answers (tests skip rather than fail)."""


@dataclass
class AppSpec:
    image: str = APP_IMAGE
    port: int = 8080
    health_path: str = "/healthz"
    env: dict[str, str] = field(default_factory=dict)
    # False: the slot is unhealthy on purpose (a test of the health gate); it is ready once it
    # answers HTTP at all, whatever the status.
    healthy: bool = True


class LocalPortContainer(DockerContainer):
    """A container whose published ports listen on 127.0.0.1 only.

    (``with_bind_ports`` takes no host address; docker-py reads ``(address, None)`` as "any free
    port on that address".)"""

    def with_local_port(self, port: int) -> LocalPortContainer:
        self.ports[f"{port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
        return self


class LbTools(WaitStrategy):
    """Fails at once, naming what to install, when the LB lacks a program the harness or the
    engine runs there (or a POSIX sh). An LB that already exited is left to the next strategy."""

    def __init__(self, image: str) -> None:
        super().__init__()
        self._image = image

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        assert isinstance(container, DockerContainer)
        try:
            result = container.exec(["sh", "-c", TOOLS_SCRIPT, "sh", *REQUIRED_TOOLS])
        except docker.errors.APIError:
            return  # not running (any more): the LB probe reports the exit with its log
        output = result.output.decode(errors="replace")
        if result.exit_code in (126, 127) or "executable file not found" in output:
            raise StartupError(
                f"the LB image {self._image} has no POSIX sh: the swap engine runs sh scripts on the LB "
                "(a distroless image cannot be swapped); use an image with sh, coreutils, awk, getent and curl"
            )
        missing = missing_tools(output)
        if missing:
            raise StartupError(missing_tools_message(self._image, missing))


class LbProbe(WaitStrategy):
    """Ready when each named command, run inside the LB container, exits 0.

    A command that fails is "not ready yet" and is asked again; so is a Docker call that timed
    out or lost its connection. Anything else fails at once, and so does the LB or a watched
    container (a slot) that exited. At the timeout the error names what is still pending, its last answer,
    and the hint.
    """

    def __init__(
        self, checks: Mapping[str, Sequence[str]], *, hint: str, watch: Mapping[str, DockerContainer] | None = None
    ) -> None:
        super().__init__()
        self._checks = {name: list(argv) for name, argv in checks.items()}
        self._hint = hint
        self._watch = dict(watch or {})
        self.with_transient_exceptions(requests.exceptions.ConnectionError, requests.exceptions.Timeout)

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        assert isinstance(container, DockerContainer)
        pending = dict(self._checks)
        last: dict[str, str] = {}

        def check() -> bool:
            # The slots first: an LB whose upstream host is gone exits too, and the slot is the cause.
            for name, watched in [*self._watch.items(), ("LB", container)]:
                wrapped = watched.get_wrapped_container()
                wrapped.reload()
                if wrapped.status in ("exited", "dead"):
                    logs = wrapped.logs(tail=20).decode(errors="replace")
                    raise StartupError(f"the {name} container exited at start:\n{logs}")
            for name, argv in list(pending.items()):
                result = container.exec(argv)
                if result.exit_code == 0:
                    del pending[name]
                else:
                    last[name] = result.output.decode(errors="replace").strip() or f"exit {result.exit_code}"
            return not pending

        try:
            ready = self._poll(check)
        except RuntimeError as exc:  # _poll wraps what is not transient
            if isinstance(exc.__cause__, StartupError):
                raise exc.__cause__ from None
            raise
        if not ready:
            waiting = "; ".join(f"{name}: {last.get(name, 'no answer')}" for name in pending)
            raise TimeoutError(f"not ready after {self._startup_timeout:.0f}s ({waiting}). Hint: {self._hint}")


def check_images(*images: str) -> None:
    """Raise ``DockerUnavailable`` without an engine, ``StartupError`` naming a missing image."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        raise DockerUnavailable(f"no Docker engine answers: {exc}") from None
    try:
        missing = []
        for image in images:
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
    finally:
        client.close()
    if missing:
        raise StartupError(f"image(s) {', '.join(missing)} missing: build them with 'make images'")


class Environment:
    """LB + blue + green on a private network; blue live at start.

    ``name`` prefixes every container (default ``bgsim-<random>``); ``ssh_authorized_keys``
    starts sshd in the LB (root login with those keys) and publishes port 22 on 127.0.0.1.
    """

    def __init__(
        self,
        blue: AppSpec | None = None,
        green: AppSpec | None = None,
        *,
        name: str | None = None,
        lb_image: str = LB_IMAGE,
        nginx_template: str | None = None,
        nginx_conf: Path | None = None,
        upstream: str = UPSTREAM,
        ssh_authorized_keys: str | None = None,
        ssh_user: str = "root",
        start_timeout: float = START_TIMEOUT,
        lb_tmpfs: dict[str, str] | None = None,
        lb_binds: dict[str, str] | None = None,
        lbs: int = 1,
        staging_host: str | None = None,
    ) -> None:
        self.blue_spec, self.green_spec = blue or AppSpec(), green or AppSpec()
        self.lb_image = lb_image
        self.nginx_template = nginx_template
        self.nginx_conf = nginx_conf
        self.upstream = upstream
        self.lb_plan: LbPlan | None = None  # what the harness put on the LB (set by start)
        self.ssh_authorized_keys = ssh_authorized_keys
        self.ssh_user = ssh_user  # who logs in with those keys; not root: no root login at all
        self.start_timeout = start_timeout
        # Extra mounts in the LB (the fault suite's full disk and read-only directory):
        # container path -> tmpfs size, and host directory -> container path (read-only).
        self.lb_tmpfs = dict(lb_tmpfs or {})
        self.lb_binds = dict(lb_binds or {})
        self.name = name or f"bgsim-{uuid.uuid4().hex[:8]}"
        self.network: Network | None = None
        self.containers: dict[str, DockerContainer] = {}
        self.addresses: dict[str, str] = {}  # "ip:port" -> slot
        self.lb_port = 0
        self._traffic_url: str | None = None
        self.startup_s = 0.0
        self.lbs = max(1, lbs)  # a fleet: this many LBs, each with the same files, in front of the slots
        self._lb_ports: dict[int, int] = {}  # the other LBs' published ports (LB 1's is lb_port)
        self._lb_urls: dict[int, str] = {}
        # The staging route: the host name routed to '<upstream>_staging' (None: no staging route).
        self.staging_host = staging_host

    @property
    def slots(self) -> Slots:
        return Slots(
            blue=(f"{self.slot_host('blue')}:{self.blue_spec.port}",),
            green=(f"{self.slot_host('green')}:{self.green_spec.port}",),
        )

    def slot_host(self, slot: str) -> str:
        """The slot's host name as the LB resolves it (a compose stack: its service's name)."""
        return slot

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def traffic_url(self) -> str:
        """Where the harness's own clients reach the LB's site: its address on the project's network
        when this machine routes there (Linux), else the published port. Behind a published port
        Docker's userland proxy adds latency of its own at every burst of reconnections (a reload
        closes idle keep-alive connections): measured here, p99 during swaps 161-226 ms through it
        against 51-63 ms direct, in one run. What is measured is then Nginx, not the proxy."""
        if self._traffic_url is None:
            self._traffic_url = self._direct_url() or self.base_url
        return self._traffic_url

    def _direct_url(self, container: DockerContainer | None = None) -> str | None:
        try:
            address = self._ip(container or self.lb)
            with socket.create_connection((address, self.http_port), timeout=0.5):
                pass
        except (OSError, KeyError, docker.errors.DockerException):
            return None
        return f"http://{address}:{self.http_port}"

    @property
    def traffic_urls(self) -> list[str]:
        """Each LB's site as the harness's clients reach it, in order (LB 1's is ``traffic_url``)."""
        urls = [self.traffic_url]
        for index in range(1, self.lbs):
            if index not in self._lb_urls:
                direct = self._direct_url(self.lb_container(index))
                self._lb_urls[index] = direct or f"http://127.0.0.1:{self._lb_ports[index]}"
            urls.append(self._lb_urls[index])
        return urls

    @property
    def lb_names(self) -> list[str]:
        """Every LB's container name, in order: LB 1 is ``lb_container_name``, then ``<name>-lb2``..."""
        return [self.lb_container_name, *(f"{self.name}-lb{number}" for number in range(2, self.lbs + 1))]

    def lb_container(self, index: int) -> DockerContainer:
        """LB ``index`` (0: the first)."""
        return self.containers["lb" if index == 0 else f"lb{index + 1}"]

    @property
    def staging_upstream(self) -> str | None:
        """The staging route's upstream in the managed file (None: no staging route)."""
        return f"{self.upstream}_staging" if self.staging_host else None

    @property
    def managed_file(self) -> str:
        """The managed upstream file on the LB: the engine's config-path."""
        return self.lb_plan.managed_file if self.lb_plan else MANAGED_FILE

    @property
    def error_log(self) -> str:
        return self.lb_plan.error_log if self.lb_plan else ERROR_LOG

    @property
    def http_port(self) -> int:
        """The port the LB's site listens on inside the container (published as ``lb_port``)."""
        return self.lb_plan.port if self.lb_plan else 80

    @property
    def lb(self) -> DockerContainer:
        return self.containers["lb"]

    @property
    def lb_container_name(self) -> str:
        return f"{self.name}-lb"

    @property
    def ssh_port(self) -> int:
        return int(self.lb.get_exposed_port(22))

    @property
    def ssh_url(self) -> str:
        return f"ssh://{self.ssh_user}@127.0.0.1:{self.ssh_port}"

    def known_hosts(self) -> str:
        """A known-hosts line for the LB's sshd as reached through its published port."""
        code, key = self.lb_exec("cat", SSH_HOST_KEY)
        if code != 0:
            raise StartupError(f"the LB has no SSH host key ({key.strip()}): start it with ssh_authorized_keys")
        return f"[127.0.0.1]:{self.ssh_port} {' '.join(key.split()[:2])}\n"

    def spec(self, slot: str) -> AppSpec:
        return self.blue_spec if slot == "blue" else self.green_spec

    def slot_of(self, upstream: str) -> str | None:
        return self.addresses.get(upstream)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Environment:
        start = time.perf_counter()
        check_images(self.lb_image, self.blue_spec.image, self.green_spec.image)
        self.lb_plan = plan = self.plan()
        try:
            self.network = Network()
            self.network.name = self.name
            self.network.create()
            for slot in ("blue", "green"):
                spec = self.spec(slot)
                container = (
                    DockerContainer(spec.image)
                    .with_name(f"{self.name}-{slot}")
                    .with_network(self.network)
                    .with_network_aliases(slot)
                    .with_envs(**{"APP_VERSION": slot, "APP_PORT": str(spec.port), **spec.env})
                )
                self.containers[slot] = container
                container.start()
                self.addresses[f"{self._ip(container)}:{spec.port}"] = slot
            self._start_lb(plan)
        except BaseException as exc:
            self.stop()
            if isinstance(exc, TimeoutError):
                raise StartupError(str(exc)) from None
            raise
        self.startup_s = time.perf_counter() - start
        return self

    def _start_lb(self, plan: LbPlan) -> None:
        """The harness's LB (each LB of a fleet) on ``self.network``, with the plan's files; waits
        until each is ready."""
        for index in range(self.lbs):
            self._start_one_lb(plan, index)

    def _start_one_lb(self, plan: LbPlan, index: int) -> None:
        assert self.network is not None
        lb = (
            LocalPortContainer(self.lb_image)
            .with_name(self.lb_names[index])
            .with_network(self.network)
            .with_local_port(plan.port)
            .waiting_for(self._lb_ready())
        )
        for path, data in plan.files.items():
            lb = lb.with_copy_into_container(data, path)
        for path, size in self.lb_tmpfs.items():
            lb = lb.with_tmpfs_mount(path, size)
        for host_dir, path in self.lb_binds.items():
            lb = lb.with_volume_mapping(host_dir, path, "ro")
        if self.ssh_authorized_keys is not None:
            lb = (
                lb.with_local_port(22)
                .with_env("SSH_AUTHORIZED_KEYS", self.ssh_authorized_keys)
                .with_env("SSH_USER", self.ssh_user)
            )
        self.containers["lb" if index == 0 else f"lb{index + 1}"] = lb
        lb.start()
        if index:
            self._lb_urls.pop(index, None)
            self._lb_ports[index] = int(lb.get_exposed_port(plan.port))
            return
        self._traffic_url = None  # the LB's address may have changed
        self.lb_port = int(lb.get_exposed_port(plan.port))

    def stop(self) -> None:
        for container in self.containers.values():
            with contextlib.suppress(Exception):
                container.stop()
        self.containers.clear()
        if self.network is not None:
            with contextlib.suppress(Exception):
                self.network.remove()
            self.network = None

    # -- helpers --------------------------------------------------------------------------
    def plan(self) -> LbPlan:
        """What goes on the LB: the image's config (or ``nginx_conf``) with the harness's additions."""
        try:
            tree, user_files = lb_tree(self.lb_image, self.nginx_conf)
            managed = self.initial_upstream()
            return plan_lb(
                tree,
                upstream=self.upstream,
                managed=managed,
                template_site=self.site_config() if self.nginx_template is not None else None,
                harness_site=self._render_site(HARNESS_SITE.read_text()),
                user_files=user_files,
                staging_site=self.staging_site(managed),
            )
        except (ImageError, SetupError) as exc:
            raise StartupError(str(exc)) from None

    def initial_upstream(self) -> str:
        """The managed file the LB starts with: blue live; with the staging route, its upstream on green."""
        staging: dict[str, Any] = {}
        if self.staging_upstream:
            if "staging_upstream" not in inspect.signature(render).parameters:
                raise StartupError(
                    "the staging route needs swap_action.upstream.render(staging_upstream=..., staging_slot=...), "
                    "which this engine does not have: run without the staging check"
                )
            staging = {"staging_upstream": self.staging_upstream, "staging_slot": "green"}
        return render(
            upstream=self.upstream,
            slots=self.slots,
            weights={"blue": 100, "green": 0},
            generation="g0-initial",
            previous=None,
            **staging,
        )

    def staging_site(self, managed: str) -> StagingSite | None:
        """The staging route's server block, only when the managed file defines the staging upstream."""
        name, host = self.staging_upstream, self.staging_host
        if not name or not host or not re.search(rf"^\s*upstream\s+{re.escape(name)}\s*\{{", managed, re.M):
            return None
        template = STAGING_SITE.read_text()
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

        def text(port: int) -> str:
            return env.from_string(template).render(
                host=host, staging_upstream=name, listen=port, bluegreen_headers=HEADERS_SNIPPET
            )

        return StagingSite(host, name, text)

    def site_config(self) -> str:
        assert self.nginx_template is not None
        try:
            text = self._render_site(self.nginx_template)
        except jinja2.TemplateError as exc:
            raise StartupError(
                f"--nginx-template does not render: {exc}. Available variables: upstream, listen, bluegreen_headers"
            ) from None
        if "$upstream_addr" not in text:
            raise StartupError(
                "--nginx-template must put {{ bluegreen_headers }} in the location that proxies to "
                "{{ upstream }}: the harness tells slots apart by $upstream_addr"
            )
        return text

    def _render_site(self, template: str) -> str:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        return env.from_string(template).render(upstream=self.upstream, listen=80, bluegreen_headers=HEADERS_SNIPPET)

    def restart_lb(self) -> None:
        """Restart the LB's container (the fault suite's "LB restarted mid-swap"): Nginx starts again
        from the files on disk; the published port may change, so it is read again."""
        lb = self.containers["lb"]
        lb.get_wrapped_container().restart(timeout=5)
        assert self.lb_plan is not None
        self._traffic_url = None  # the LB's address may have changed
        self.lb_port = int(lb.get_exposed_port(self.lb_plan.port))

    def redeploy(self, slot: str) -> None:
        """Restart a slot's container (a fresh deploy of the idle slot) and wait until it is healthy."""
        container = self.containers[slot]
        container.get_wrapped_container().restart(timeout=5)
        self.addresses = {addr: s for addr, s in self.addresses.items() if s != slot}
        self.addresses[f"{self._ip(container)}:{self.spec(slot).port}"] = slot
        probe = self._slots_answer(slot).with_startup_timeout(int(self.start_timeout))
        try:
            probe.with_poll_interval(POLL_INTERVAL).wait_until_ready(self.lb)
        except TimeoutError as exc:
            raise StartupError(f"{slot} after a restart: {exc}") from None

    def lb_exec(self, *argv: str) -> tuple[int, str]:
        return self.lb_exec_on(0, *argv)

    def lb_exec_on(self, index: int, *argv: str) -> tuple[int, str]:
        """A command in LB ``index`` (0: the first): its exit code and output."""
        result = self.lb_container(index).exec(list(argv))
        return -1 if result.exit_code is None else result.exit_code, result.output.decode(errors="replace")

    def nginx_processes(self, index: int = 0) -> list[str]:
        """'PID TITLE' of each Nginx process on LB ``index``, read from /proc (no ps needed)."""
        output = self.lb_exec_on(index, "sh", "-c", NGINX_PROCESSES)[1]
        return [line.strip() for line in output.splitlines() if line.strip()]

    def diagnostics(self) -> dict[str, str]:
        """The LB's error log, managed file and processes: attached to failing reports."""
        out: dict[str, str] = {}
        if "lb" not in self.containers:
            return out
        for label, argv in (
            ("nginx_error_log", ["sh", "-c", ERROR_LOG_TAIL, "sh", self.error_log]),
            ("managed_file", ["cat", self.managed_file]),
            ("nginx_processes", ["sh", "-c", NGINX_PROCESSES]),
        ):
            try:
                out[label] = self.lb_exec(*argv)[1]
            except Exception as exc:
                out[label] = f"(unavailable: {exc})"
        if out.get("nginx_error_log", "").startswith("("):
            out["lb_container_log"] = self.slot_logs("lb", tail=200)
        for index in range(1, self.lbs):  # a fleet: the other LBs' error logs and managed files
            for label, argv in (
                ("nginx_error_log", ["sh", "-c", ERROR_LOG_TAIL, "sh", self.error_log]),
                ("managed_file", ["cat", self.managed_file]),
            ):
                try:
                    out[f"lb{index + 1}_{label}"] = self.lb_exec_on(index, *argv)[1]
                except Exception as exc:
                    out[f"lb{index + 1}_{label}"] = f"(unavailable: {exc})"
        return out

    def slot_logs(self, slot: str, tail: int = 30) -> str:
        try:
            return str(self.containers[slot].get_wrapped_container().logs(tail=tail).decode(errors="replace"))
        except Exception as exc:  # diagnostics must never hide the real failure
            return f"(unavailable: {exc})"

    def _ip(self, container: DockerContainer) -> str:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        networks: dict[str, Any] = wrapped.attrs["NetworkSettings"]["Networks"]
        return str(networks[self.name]["IPAddress"])

    def _slots_answer(self, *slots: str) -> LbProbe:
        checks = {}
        for slot in slots:
            spec = self.spec(slot)
            url = f"http://{self.slot_host(slot)}:{spec.port}{spec.health_path}"
            # -f: a 4xx/5xx is not ready; without it any HTTP answer is (a slot unhealthy on purpose).
            checks[slot] = ["curl", "-sS", "-o", "/dev/null", "--max-time", "2", *(["-f"] if spec.healthy else []), url]
        return LbProbe(
            checks,
            watch={slot: self.containers[slot] for slot in slots},
            hint="check --app-port and --health-path match the app (the slot is asked from the LB container)",
        )

    def _lb_ready(self) -> WaitStrategy:
        marker = [
            "curl",
            "-fsS",
            "-o",
            "/dev/null",
            "--noproxy",
            "*",
            f"http://{marker_address(self.upstream)}/generation",
        ]
        strategies: list[WaitStrategy] = [
            LbTools(self.lb_image),
            # The generation marker: Nginx is up and serves the managed file (whatever the site).
            LbProbe(
                {"nginx": marker},
                watch={slot: self.containers[slot] for slot in ("blue", "green")},
                hint=f"read the LB's {self.error_log} (docker logs {self.lb_container_name})",
            ),
            self._slots_answer("blue", "green"),
            # Port 80 through its published port on 127.0.0.1: any HTTP answer will do.
            HttpWaitStrategy(self.http_port, "/").for_status_code_matching(lambda _status: True),
        ]
        if self.ssh_authorized_keys is not None:
            banner = ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3 | grep -q SSH-"]
            strategies.append(LbProbe({"sshd": banner}, hint="the LB's entrypoint starts sshd: see docker logs"))
        timeout = int(self.start_timeout)
        return CompositeWaitStrategy(*strategies).with_startup_timeout(timeout).with_poll_interval(POLL_INTERVAL)
