"""Exec into the load balancer's container through the Docker API (the socket GitHub mounts)."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Sequence
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ..errors import CommandTimeout, TransportError
from . import CommandResult, Transport, describe


class DockerTransport(Transport):
    def __init__(self, container: str, client: Any | None = None) -> None:
        self.description = f"docker://{container}"
        try:
            self._client = client or docker.from_env(timeout=120)
            self._container = self._client.containers.get(container)
        except docker.errors.NotFound:
            raise TransportError(
                f"no container named '{container}' on this Docker engine",
                "check the name with 'docker ps' (compose names containers <project>-<service>-1)",
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise TransportError(
                f"cannot talk to the Docker engine: {exc}",
                "mount the Docker socket (/var/run/docker.sock) or set DOCKER_HOST",
            ) from None
        if self._container.status != "running":
            raise TransportError(f"container '{container}' is {self._container.status}", "start it first")

    def run(self, argv: Sequence[str], *, timeout: float = 60.0) -> CommandResult:
        # The Docker API has no exec timeout; 'timeout' (coreutils) bounds the command itself.
        command = ["timeout", f"{timeout:.0f}", *argv] if timeout else list(argv)
        try:
            exit_code, (out, err) = self._container.exec_run(command, demux=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise TransportError(
                f"docker exec '{describe(argv)}' failed: {exc}", "check the container is running"
            ) from None
        if exit_code == 124:
            raise CommandTimeout(f"'{describe(argv)}' did not finish within {timeout:.0f}s", "check the LB container")
        if exit_code in (126, 127):
            raise TransportError(
                f"'{argv[0]}' cannot be run in {self.description}: {(err or b'').decode(errors='replace').strip()}",
                f"install {argv[0]} in the load balancer image",
            )
        return CommandResult(
            tuple(argv), exit_code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
        )

    def write_file(self, path: str, data: bytes) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(path))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        try:
            ok = self._container.put_archive(posixpath.dirname(path) or "/", buffer.getvalue())
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise TransportError(
                f"cannot write {path} in {self.description}: {exc}", "check the directory exists"
            ) from None
        if not ok:
            raise TransportError(f"cannot write {path} in {self.description}", "check the directory exists")

    def close(self) -> None:
        self._client.close()
