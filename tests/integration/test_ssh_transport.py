"""The SSH transport against a real sshd in the LB container, host keys checked.

The LB is the harness's ``Environment`` started with an authorized key: sshd runs in it and its
port 22 is published on 127.0.0.1 beside port 80.
"""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import paramiko
import pytest
from lb_fixtures import MANAGED, start_environment

from swap_action.engine import Engine
from swap_action.errors import TransportError
from swap_action.host import ScriptedHost
from swap_action.inputs import Slots, SwapOptions
from swap_action.transport import open_transport

pytestmark = pytest.mark.docker


@dataclass
class SshLb:
    url: str
    key: str
    known_hosts: str
    http_port: int


@pytest.fixture
def ssh_lb() -> Iterator[SshLb]:
    key = paramiko.ECDSAKey.generate()
    buffer = io.StringIO()
    key.write_private_key(buffer)
    env = start_environment("bgssh", ssh_authorized_keys=f"{key.get_name()} {key.get_base64()}")
    try:
        yield SshLb(env.ssh_url, buffer.getvalue(), env.known_hosts(), env.lb_port)
    finally:
        env.stop()


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
        report = Engine(ScriptedHost(transport)).swap(options)
    assert report.outcome.changed and report.outcome.active == "green" and report.outcome.error is None
    assert report.drain and report.drain.outcome == "complete"
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
