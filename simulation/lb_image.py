"""The LB image as the harness finds it: its Nginx configuration (``/etc/nginx``, read from the
image without running it), a team's own configuration laid over it (``--nginx-conf``), and the
programs the harness and the swap engine run on the LB.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from pathlib import Path

import docker
import docker.errors

from .nginx_config import CONF_DIR, MAIN_CONF, Tree

# What runs on the LB: the harness's probes (curl) and the engine's scripts (POSIX sh with these).
REQUIRED_TOOLS = (
    "curl", "awk", "getent", "grep", "cat", "cp", "mv", "rm", "mkdir", "head", "tail", "wc", "mktemp", "date", "sort",
    "stat", "sleep",
)  # fmt: skip
INSTALL_HINT = {
    "curl": "curl",
    "awk": "mawk or gawk",
    "getent": "libc-bin (glibc) or musl-utils",
    "grep": "grep",
}
# One line: the missing programs, space separated ("" when all are there).
TOOLS_SCRIPT = 'm=; for t in "$@"; do command -v "$t" >/dev/null 2>&1 || m="$m $t"; done; echo "missing:$m"'

_trees: dict[str, tuple[dict[str, bytes], dict[str, str]]] = {}


class ImageError(RuntimeError):
    """The LB image cannot be used; the message says what to change."""


def missing_tools_message(image: str, missing: list[str]) -> str:
    packages = sorted({INSTALL_HINT.get(tool, "coreutils") for tool in missing})
    return (
        f"the LB image {image} lacks {', '.join(missing)}: the harness checks the slots and the generation "
        f"marker with curl on the LB, and the swap engine runs POSIX sh scripts there that use curl, awk, "
        f"getent and coreutils. Install {', '.join(packages)} in the image "
        f"(Debian/Ubuntu: apt-get install {' '.join(p.split(' ')[0] for p in packages)}; Alpine: apk add curl)"
    )


def missing_tools(output: str) -> list[str]:
    """The programs TOOLS_SCRIPT reported missing."""
    for line in output.splitlines():
        if line.startswith("missing:"):
            return line.removeprefix("missing:").split()
    return []


def image_config(image: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """The image's files under /etc/nginx and its symlinks there (path -> target), read from a
    created (never started) container; cached per image id."""
    client = docker.from_env(timeout=60)
    try:
        image_id = str(client.images.get(image).id)
        if image_id in _trees:
            return _trees[image_id]
        container = client.containers.create(image_id)
        try:
            try:
                stream, _stat = container.get_archive(CONF_DIR)
            except docker.errors.NotFound:
                raise ImageError(
                    f"the LB image {image} has no {CONF_DIR}: the harness expects Nginx's configuration there "
                    f"(nginx -V: --conf-path={MAIN_CONF})"
                ) from None
            data = b"".join(stream)
        finally:
            container.remove(force=True)
    finally:
        client.close()
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    parent = posixpath.dirname(CONF_DIR)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            path = posixpath.join(parent, member.name)
            if member.issym():
                links[path] = member.linkname
            elif member.isfile():
                extracted = tar.extractfile(member)
                files[path] = extracted.read() if extracted else b""
    _trees[image_id] = (files, links)
    return files, links


def user_config(nginx_conf: Path) -> dict[str, bytes]:
    """``--nginx-conf``: a file is the main nginx.conf; a directory is laid over /etc/nginx and
    must hold nginx.conf."""
    if nginx_conf.is_file():
        return {MAIN_CONF: nginx_conf.read_bytes()}
    if nginx_conf.is_dir():
        if not (nginx_conf / "nginx.conf").is_file():
            raise ImageError(
                f"--nginx-conf {nginx_conf}: a directory of config is laid over {CONF_DIR} and must hold nginx.conf"
            )
        return {
            f"{CONF_DIR}/{path.relative_to(nginx_conf).as_posix()}": path.read_bytes()
            for path in sorted(nginx_conf.rglob("*"))
            if path.is_file()
        }
    raise ImageError(f"--nginx-conf {nginx_conf}: no such file or directory")


def lb_tree(image: str, nginx_conf: Path | None) -> tuple[Tree, dict[str, bytes]]:
    """The configuration Nginx will load on the LB, and the user's files to copy there."""
    files, links = image_config(image)
    user = user_config(nginx_conf) if nginx_conf is not None else {}
    merged = {**files, **user}
    links = {path: target for path, target in links.items() if path not in user}
    if MAIN_CONF not in merged and MAIN_CONF not in links:
        raise ImageError(f"the LB image {image} has no {MAIN_CONF}: give your nginx.conf with --nginx-conf")
    return Tree(merged, links), user
