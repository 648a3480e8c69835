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
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import jinja2
import requests

from swap_action.inputs import Slots
from swap_action.upstream import marker_socket, render

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
        ssh_authorized_keys: str | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.blue_spec, self.green_spec = blue or AppSpec(), green or AppSpec()
        self.lb_image = lb_image
        self.nginx_template = nginx_template
        self.ssh_authorized_keys = ssh_authorized_keys
        self.start_timeout = start_timeout
        self.name = name or f"bgsim-{uuid.uuid4().hex[:8]}"
        self.network: Network | None = None
        self.containers: dict[str, DockerContainer] = {}
        self.addresses: dict[str, str] = {}  # "ip:port" -> slot
        self.lb_port = 0
        self.startup_s = 0.0

    @property
    def slots(self) -> Slots:
        return Slots(blue=(f"blue:{self.blue_spec.port}",), green=(f"green:{self.green_spec.port}",))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

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
        return f"ssh://root@127.0.0.1:{self.ssh_port}"

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
        site = self.site_config() if self.nginx_template is not None else None
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
            lb = (
                LocalPortContainer(self.lb_image)
                .with_name(self.lb_container_name)
                .with_network(self.network)
                .with_local_port(80)
                .with_copy_into_container(self.initial_upstream().encode(), MANAGED_FILE)
                .waiting_for(self._lb_ready())
            )
            if site is not None:
                lb = lb.with_copy_into_container(site.encode(), SITE_FILE)
            if self.ssh_authorized_keys is not None:
                lb = lb.with_local_port(22).with_env("SSH_AUTHORIZED_KEYS", self.ssh_authorized_keys)
            self.containers["lb"] = lb
            lb.start()
            self.lb_port = int(lb.get_exposed_port(80))
        except BaseException as exc:
            self.stop()
            if isinstance(exc, TimeoutError):
                raise StartupError(str(exc)) from None
            raise
        self.startup_s = time.perf_counter() - start
        return self

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
    def initial_upstream(self) -> str:
        return render(
            upstream=UPSTREAM,
            slots=self.slots,
            weights={"blue": 100, "green": 0},
            generation="g0-initial",
            previous=None,
        )

    def site_config(self) -> str:
        assert self.nginx_template is not None
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        try:
            text = env.from_string(self.nginx_template).render(
                upstream=UPSTREAM,
                listen=80,
                bluegreen_headers=HEADERS_SNIPPET,
            )
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
        result = self.lb.exec(list(argv))
        return -1 if result.exit_code is None else result.exit_code, result.output.decode(errors="replace")

    def diagnostics(self) -> dict[str, str]:
        """The LB's error log, managed file and processes: attached to failing reports."""
        out: dict[str, str] = {}
        if "lb" not in self.containers:
            return out
        for label, argv in (
            ("nginx_error_log", ["tail", "-n", "200", ERROR_LOG]),
            ("managed_file", ["cat", MANAGED_FILE]),
            ("nginx_processes", ["ps", "-eo", "pid,ppid,etimes,args"]),
        ):
            try:
                out[label] = self.lb_exec(*argv)[1]
            except Exception as exc:
                out[label] = f"(unavailable: {exc})"
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
            url = f"http://{slot}:{spec.port}{spec.health_path}"
            # -f: a 4xx/5xx is not ready; without it any HTTP answer is (a slot unhealthy on purpose).
            checks[slot] = ["curl", "-sS", "-o", "/dev/null", "--max-time", "2", *(["-f"] if spec.healthy else []), url]
        return LbProbe(
            checks,
            watch={slot: self.containers[slot] for slot in slots},
            hint="check --app-port and --health-path match the app (the slot is asked from the LB container)",
        )

    def _lb_ready(self) -> WaitStrategy:
        marker = ["curl", "-fsS", "-o", "/dev/null", "--unix-socket", marker_socket(UPSTREAM), "http://lb/generation"]
        strategies: list[WaitStrategy] = [
            # The generation marker: Nginx is up and serves the managed file (whatever the site).
            LbProbe(
                {"nginx": marker},
                watch={slot: self.containers[slot] for slot in ("blue", "green")},
                hint=f"read the LB's {ERROR_LOG} (docker logs {self.lb_container_name})",
            ),
            self._slots_answer("blue", "green"),
            # Port 80 through its published port on 127.0.0.1: any HTTP answer will do.
            HttpWaitStrategy(80, "/").for_status_code_matching(lambda _status: True),
        ]
        if self.ssh_authorized_keys is not None:
            banner = ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3 | grep -q SSH-"]
            strategies.append(LbProbe({"sshd": banner}, hint="the LB's entrypoint starts sshd: see docker logs"))
        timeout = int(self.start_timeout)
        return CompositeWaitStrategy(*strategies).with_startup_timeout(timeout).with_poll_interval(POLL_INTERVAL)
