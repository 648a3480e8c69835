"""The world a simulated swap runs in: a private Docker network with the LB and two app slots,
brought up with testcontainers and removed afterwards.

Which slot served a request is found without the app's help: the harness's Nginx site adds
``X-Upstream-Addr: $upstream_addr`` and the harness maps container addresses to slots.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jinja2

from swap_action.inputs import Slots
from swap_action.upstream import marker_socket, render

# testcontainers on machines without a registry, or that look like containers themselves.
# (The harness removes its own containers, so the reaper is not needed.)
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")

import contextlib

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

LB_IMAGE = "bluegreen/lb:dev"
APP_IMAGE = "bluegreen/app:dev"
MANAGED_FILE = "/etc/nginx/bluegreen/upstream.conf"
SITE_FILE = "/etc/nginx/site/default.conf"
UPSTREAM = "app"
START_TIMEOUT = 60.0
HEADERS_SNIPPET = "add_header X-Upstream-Addr $upstream_addr always;"


class StartupError(RuntimeError):
    """The environment did not come up; the message says why and what to do."""


@dataclass
class AppSpec:
    image: str = APP_IMAGE
    port: int = 8080
    health_path: str = "/healthz"
    env: dict[str, str] = field(default_factory=dict)


class LocalPortContainer(DockerContainer):
    """A container whose published ports listen on 127.0.0.1 only."""

    def with_local_port(self, port: int) -> LocalPortContainer:
        # docker-py reads (host ip, None) as "any free port on that address".
        self.ports[f"{port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
        return self


class Environment:
    """LB + blue + green on a private network; blue live at start."""

    def __init__(
        self,
        blue: AppSpec,
        green: AppSpec,
        *,
        lb_image: str = LB_IMAGE,
        nginx_template: str | None = None,
    ) -> None:
        self.blue_spec, self.green_spec = blue, green
        self.lb_image = lb_image
        self.nginx_template = nginx_template
        self.name = f"bgsim-{uuid.uuid4().hex[:8]}"
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
        return str(self.lb.get_wrapped_container().name)

    def slot_of(self, upstream: str) -> str | None:
        return self.addresses.get(upstream)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Environment:
        start = time.perf_counter()
        try:
            self.network = Network()
            self.network.name = self.name
            self.network.create()
            for slot, spec in (("blue", self.blue_spec), ("green", self.green_spec)):
                container = (
                    DockerContainer(spec.image)
                    .with_name(f"{self.name}-{slot}")
                    .with_network(self.network)
                    .with_network_aliases(slot)
                    .with_envs(APP_VERSION=slot, APP_PORT=str(spec.port), **spec.env)
                )
                container.start()
                self.containers[slot] = container
                ip = self._ip(container)
                self.addresses[f"{ip}:{spec.port}"] = slot
            lb = (
                LocalPortContainer(self.lb_image)
                .with_local_port(80)
                .with_name(f"{self.name}-lb")
                .with_network(self.network)
                .with_copy_into_container(self.initial_upstream().encode(), MANAGED_FILE)
            )
            if self.nginx_template is not None:
                lb = lb.with_copy_into_container(self.site_config().encode(), SITE_FILE)
            lb.start()
            self.containers["lb"] = lb
            self.lb_port = int(lb.get_exposed_port(80))
            self._wait_ready()
        except BaseException:
            self.stop()
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

    def __enter__(self) -> Environment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        spec = self.blue_spec if slot == "blue" else self.green_spec
        container = self.containers[slot]
        container.get_wrapped_container().restart(timeout=5)
        self.addresses = {addr: s for addr, s in self.addresses.items() if s != slot}
        self.addresses[f"{self._ip(container)}:{spec.port}"] = slot
        deadline = time.monotonic() + START_TIMEOUT
        while self.lb_exec("curl", "-fsS", "-o", "/dev/null", f"http://{slot}:{spec.port}{spec.health_path}")[0] != 0:
            if time.monotonic() > deadline:
                raise StartupError(f"{slot} did not become healthy within {START_TIMEOUT:.0f}s after a restart")
            time.sleep(0.1)

    def lb_exec(self, *argv: str) -> tuple[int, str]:
        result = self.lb.get_wrapped_container().exec_run(list(argv))
        return int(result.exit_code), result.output.decode(errors="replace")

    def diagnostics(self) -> dict[str, str]:
        """The LB's error log, rendered config and worker list: attached to failing reports."""
        out: dict[str, str] = {}
        if "lb" not in self.containers:
            return out
        for label, argv in (
            ("nginx_error_log", ["tail", "-n", "200", "/var/log/nginx/error.log"]),
            ("managed_file", ["cat", MANAGED_FILE]),
            ("nginx_processes", ["ps", "-eo", "pid,ppid,etimes,args"]),
        ):
            try:
                out[label] = self.lb_exec(*argv)[1]
            except Exception as exc:
                out[label] = f"(unavailable: {exc})"
        return out

    def _ip(self, container: DockerContainer) -> str:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        networks: dict[str, Any] = wrapped.attrs["NetworkSettings"]["Networks"]
        return str(networks[self.name]["IPAddress"])

    def _wait_ready(self) -> None:
        """Ready when the LB answers and both slots answer their health path from the LB."""
        deadline = time.monotonic() + START_TIMEOUT
        checks = {
            # The generation marker: Nginx is up and serving the managed file (whatever the site).
            "lb": ["curl", "-fsS", "-o", "/dev/null", "--unix-socket", marker_socket(UPSTREAM), "http://lb/generation"],
            "blue": [
                "curl",
                "-fsS",
                "-o",
                "/dev/null",
                f"http://blue:{self.blue_spec.port}{self.blue_spec.health_path}",
            ],
            "green": [
                "curl",
                "-fsS",
                "-o",
                "/dev/null",
                f"http://green:{self.green_spec.port}{self.green_spec.health_path}",
            ],
        }
        pending = dict(checks)
        last = ""
        while pending:
            for name, argv in list(pending.items()):
                code, output = self.lb_exec(*argv)
                if code == 0:
                    del pending[name]
                else:
                    last = f"{name}: {output.strip() or f'exit {code}'}"
            if not pending:
                return
            for slot in ("blue", "green"):
                status = self.containers[slot].get_wrapped_container()
                status.reload()
                if status.status == "exited":
                    logs = status.logs(tail=20).decode(errors="replace")
                    raise StartupError(f"the {slot} container exited at start:\n{logs}")
            if time.monotonic() > deadline:
                raise StartupError(
                    f"not ready after {START_TIMEOUT:.0f}s ({', '.join(pending)}): {last}. "
                    "Check --app-port and --health-path match the app, and that the images are built (make images)."
                )
            time.sleep(0.2)
