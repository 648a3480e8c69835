"""The SSH transport against a real sshd in the LB container, host keys checked."""

from __future__ import annotations

import io
import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import paramiko
import pytest

from swap_action import Engine, LoadBalancer, Slots, SwapOptions
from swap_action.errors import TransportError
from swap_action.transport import open_transport

pytestmark = pytest.mark.docker

MANAGED = "/etc/nginx/bluegreen/upstream.conf"


@dataclass
class SshLb:
    url: str
    key: str
    known_hosts: str
    http_port: int


def _published(container: Any, port: str) -> int:
    for _ in range(100):
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port)
        if bindings:
            return int(bindings[0]["HostPort"])
        time.sleep(0.1)
    raise RuntimeError(f"{port} was not published")


@pytest.fixture
def ssh_lb() -> Iterator[SshLb]:
    client = docker.from_env()
    prefix = f"bgssh-{secrets.token_hex(3)}"
    key = paramiko.ECDSAKey.generate()
    buffer = io.StringIO()
    key.write_private_key(buffer)
    private, public = buffer.getvalue(), f"{key.get_name()} {key.get_base64()}"
    network = client.networks.create(f"{prefix}-net")
    containers = []
    try:
        for slot in ("blue", "green"):
            containers.append(client.containers.run(
                "bluegreen/app:dev", name=f"{prefix}-{slot}", detach=True, environment={"APP_VERSION": slot},
                network=network.name, networking_config={network.name: client.api.create_endpoint_config(aliases=[slot])},
            ))  # fmt: skip
        lb = client.containers.run(
            "bluegreen/lb:dev", name=f"{prefix}-lb", detach=True, network=network.name,
            environment={"SSH_AUTHORIZED_KEYS": public},
            ports={"22/tcp": ("127.0.0.1", None), "80/tcp": ("127.0.0.1", None)},
        )  # fmt: skip
        containers.append(lb)
        ssh_port, http_port = _published(lb, "22/tcp"), _published(lb, "80/tcp")
        for _ in range(100):
            code, out = lb.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
            if code == 0 and lb.exec_run(["pgrep", "-x", "sshd"]).exit_code == 0:
                break
            time.sleep(0.1)
        host_key = " ".join(out.decode().split()[:2])
        yield SshLb(f"ssh://root@127.0.0.1:{ssh_port}", private, f"[127.0.0.1]:{ssh_port} {host_key}\n", http_port)
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
        client.close()


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.read().decode().strip()


def test_swap_over_ssh_with_a_checked_host_key(ssh_lb: SshLb) -> None:
    assert _get(ssh_lb.http_port) == "blue"
    with open_transport(ssh_lb.url, ssh_key=ssh_lb.key, known_hosts=ssh_lb.known_hosts) as transport:
        options = SwapOptions(
            config_path=MANAGED, upstream="app", slots=Slots(("blue:8080",), ("green:8080",)), to="green",
            verify_url="http://127.0.0.1/", verify_expect="green", drain_timeout=5,
        )  # fmt: skip
        report = Engine(LoadBalancer(transport)).swap(options)
    assert report.changed and report.active_slot == "green" and report.drain and report.drain.outcome == "complete"
    assert {_get(ssh_lb.http_port) for _ in range(20)} == {"green"}


def test_unknown_host_key_is_refused_not_accepted(ssh_lb: SshLb) -> None:
    other_key = paramiko.RSAKey.generate(2048)
    wrong = ssh_lb.known_hosts.split()[0] + f" ssh-rsa {other_key.get_base64()}\n"
    with pytest.raises(TransportError) as refused:
        open_transport(ssh_lb.url, ssh_key=ssh_lb.key, known_hosts=wrong)
    assert "known-hosts" in str(refused.value) or "does not match" in str(refused.value)
    unrelated = f"[127.0.0.1]:1 {' '.join(ssh_lb.known_hosts.split()[1:])}\n"
    with pytest.raises(TransportError) as unknown:
        open_transport(ssh_lb.url, ssh_key=ssh_lb.key, known_hosts=unrelated)
    assert "not in known-hosts" in unknown.value.cause and "ssh-keyscan" in unknown.value.fix
    assert _get(ssh_lb.http_port) == "blue"


def test_wrong_client_key_is_reported_as_an_authentication_failure(ssh_lb: SshLb) -> None:
    stranger = io.StringIO()
    paramiko.RSAKey.generate(2048).write_private_key(stranger)
    with pytest.raises(TransportError) as failed:
        open_transport(ssh_lb.url, ssh_key=stranger.getvalue(), known_hosts=ssh_lb.known_hosts)
    assert "SSH to 127.0.0.1" in failed.value.cause
