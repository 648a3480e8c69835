"""The load balancer host as the engine sees it: Nginx, its managed file and its workers.

Every operation is one round trip through the transport: fixed shell scripts shipped in
``lbscripts/`` run with user values as positional arguments, never spliced into shell text.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from importlib import resources

from .errors import ConfigTestError, ReloadError, StateError, TransportError
from .transport import CommandResult, Transport

_HINTS = (
    (
        re.compile(r'invalid parameter "weight=0"'),
        "Nginx rejects weight=0: a server that must get no traffic is written 'down' (or left out).",
    ),
    (
        re.compile(r"proxy_set_forwarded_for"),
        "$proxy_set_forwarded_for does not exist; the variable is $proxy_add_x_forwarded_for.",
    ),
    (
        re.compile(r"host not found in upstream"),
        "an upstream host does not resolve from the LB: Nginx resolves names only at (re)load; check the name or use an IP.",
    ),
    (
        re.compile(r"duplicate upstream"),
        "another file already defines this upstream name: pick another 'upstream' or remove the old definition.",
    ),
    (
        re.compile(r"unknown directive"),
        "the template renders a directive this Nginx does not know: check the template.",
    ),
    (
        re.compile(r"is not allowed here|directive is not allowed"),
        "the managed file is included in the http context; the template must render only upstream-level text.",
    ),
)


def hint_for(nginx_output: str) -> str:
    for pattern, hint in _HINTS:
        if pattern.search(nginx_output):
            return hint
    return "fix the template or the inputs; the live config was not changed."


def _script(name: str) -> str:
    return resources.files("swap_action").joinpath(f"lbscripts/{name}").read_text()


@dataclass(frozen=True)
class Probe:
    nginx_version: str
    has_curl: bool
    master_pid: int | None
    error_log: str
    managed_file: str | None


@dataclass
class ReloadResult:
    reload_ms: int = 0
    reload_at_ms: int | None = None  # unix time (ms, LB clock) the reload signal was sent
    new_workers_ms: int | None = None
    old_stopped_ms: int | None = None
    marker_ms: int | None = None
    confirmed_ms: int | None = None
    old_workers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class HttpAnswer:
    url: str
    status: int
    seconds: float
    body: str


@dataclass(frozen=True)
class Prepared:
    """The candidate staged and tested on its own, and the target's health, from one round trip."""

    test_ok: bool
    test_output: str
    health: list[HttpAnswer]


@dataclass(frozen=True)
class Connections:
    to_servers: int
    draining_workers: tuple[int, ...]


class LoadBalancer:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def script(self, name: str, *args: str, timeout: float = 60.0) -> CommandResult:
        return self.transport.run(["sh", "-c", _script(name), name, *args], timeout=timeout)

    # -- reading --------------------------------------------------------------------------
    def probe(self, managed_file: str) -> Probe:
        result = self.script("probe.sh", managed_file, timeout=30)
        return self.parse_probe(result.stdout, result.ok)

    def begin(self, managed_file: str, lock_dir: str, owner: str, ttl_seconds: int) -> tuple[CommandResult, str | None]:
        """Take the lock and read the state in one round trip.

        Returns the lock's answer and, when the lock was taken, the probe's output for
        ``parse_probe`` (parsed by the caller once it knows it holds the lock).
        """
        result = self.transport.run(
            ["sh", "-c", _script("begin.sh"), "begin.sh", _script("lock.sh"), _script("probe.sh"),
             lock_dir, owner, str(ttl_seconds), managed_file],
            timeout=30,
        )  # fmt: skip
        lock_answer, marker, rest = result.stdout.partition("--- probe\n")
        if not marker:
            return result, None
        return CommandResult(result.argv, 0, lock_answer, result.stderr), rest

    def parse_probe(self, stdout: str, ok: bool = True) -> Probe:
        head, marker, file_text = stdout.partition("--- file\n")
        sections: dict[str, list[str]] = {}
        current = ""
        for line in head.splitlines():
            if line.startswith("--- ") and line[4:] in ("nginx", "curl", "master", "error_log"):
                current = line[4:]
                sections[current] = []
            elif current:
                sections[current].append(line)
        version = " ".join(sections.get("nginx", ["missing"])).strip()
        if (not ok and not sections) or version == "missing":
            raise TransportError(
                f"nginx is not installed or not on PATH on {self.transport.description}",
                "point 'target' at the host or container that runs Nginx",
            )
        master = sections.get("master", [])
        logs = [line.strip() for line in sections.get("error_log", []) if line.strip()]
        error_log = next((path for path in logs if path.startswith("/")), "-")
        # The file's exact text (cat's output), so a rollback can put back the very same bytes.
        managed = None if not marker or file_text == "__missing__\n" else file_text
        return Probe(
            nginx_version=version,
            has_curl=sections.get("curl") == ["present"],
            master_pid=int(master[0]) if master and master[0].isdigit() else None,
            error_log=error_log,
            managed_file=managed,
        )

    # -- testing and applying -------------------------------------------------------------
    def _candidate_path(self, live: str, generation: str) -> str:
        return posixpath.join(posixpath.dirname(live), f".{posixpath.basename(live)}.candidate-{generation}")

    def apply(self, live: str, text: str, generation: str, *, staged: bool = False) -> str:
        """Atomically replace the live file, tested with ``nginx -t``; restored byte for byte on failure.

        ``staged``: the candidate was already written by ``prepare``.
        """
        candidate = self._candidate_path(live, generation)
        if not staged:
            self.transport.write_file(candidate, text.encode())
        result = self.script("apply.sh", live, candidate)
        if result.exit_code == 10:
            raise ConfigTestError(
                "nginx -t refused the config with the new upstream file: " + _emerg_line(result.output),
                hint_for(result.output) + " The live file was put back unchanged.",
                detail=result.output,
            )
        if not result.ok:
            self.transport.run(["rm", "-f", candidate])
            raise StateError(
                f"cannot replace {live} (step exit {result.exit_code}): {result.output}",
                "check the directory is writable by the transport's user",
            )
        return result.output

    # -- reloading ------------------------------------------------------------------------
    def reload_and_confirm(self, generation: str, socket: str, error_log: str, timeout: float) -> ReloadResult:
        result = self.script(
            "reload_confirm.sh",
            generation,
            socket,
            str(int(timeout * 1000)),
            error_log,
            timeout=timeout + 30,
        )
        values = _key_values(result.stdout)
        outcome = ReloadResult(
            reload_ms=int(values.get("reload_ms", "0") or 0),
            old_workers=[int(p) for p in values.get("old_workers", "").split() if p.isdigit()],
        )
        for name in ("reload_at_ms", "new_workers_ms", "old_stopped_ms", "marker_ms", "confirmed_ms"):
            if values.get(name, "").isdigit():
                setattr(outcome, name, int(values[name]))
        if result.exit_code == 0:
            return outcome
        if result.exit_code == 2:
            raise ReloadError(
                "nginx -s reload failed: "
                + "\n".join(
                    line.removeprefix("reload_output=")
                    for line in result.stdout.splitlines()
                    if line.startswith("reload_output=")
                ),
                "check that the Nginx master runs and its pid file is where nginx.conf says",
            )
        if result.exit_code == 3:
            raise ReloadError(
                "Nginx refused the new config after the reload signal: " + values.get("emerg", ""),
                hint_for(values.get("emerg", "")) + " Nginx kept serving the old config.",
            )
        raise ReloadError(
            f"the new config was not live after {timeout:.1f}s (new workers: {values.get('new_workers', '?')}, "
            f"old workers still accepting: {values.get('old_left', '?')}, marker answering: {values.get('marker_ok', '?')})",
            "Nginx may have refused the reload silently (e.g. a listen port in use): read its error log",
        )

    # -- draining -------------------------------------------------------------------------
    def connections(self, servers: tuple[str, ...]) -> Connections:
        result = self.script("connections.sh", *servers, timeout=30)
        targets: set[str] = set()
        tcp: list[str] = []
        draining: list[int] = []
        section = ""
        for line in result.stdout.splitlines():
            if line.startswith("--- "):
                section = line[4:]
            elif section == "" and line.startswith("target "):
                _, _server, ip, port = line.split()
                targets.add(_proc_address(ip, int(port)))
            elif section == "tcp":
                tcp.append(line.strip().upper())
            elif section == "draining" and line.strip().isdigit():
                draining.append(int(line))
        return Connections(sum(1 for remote in tcp if remote in targets), tuple(draining))

    def stop_workers(self, pids: tuple[int, ...]) -> None:
        if pids:
            self.transport.run(["kill", "-TERM", *(str(pid) for pid in pids)])

    def http(self, method: str, urls: list[str], max_seconds: float) -> list[HttpAnswer]:
        result = self.script("http.sh", method, f"{max_seconds:g}", *urls, timeout=max_seconds * len(urls) + 30)
        return _parse_http(result.stdout, urls)

    def prepare(self, live: str, text: str, generation: str, health_urls: list[str], max_seconds: float) -> Prepared:
        """Stage the candidate, ``nginx -t`` it on its own and health-check ``health_urls`` at the
        same time, in one round trip. Nothing live changes; ``discard`` removes the candidate."""
        candidate = self._candidate_path(live, generation)
        result = self.transport.run(
            ["sh", "-c", _script("prepare.sh"), "prepare.sh", _script("test_isolated.sh"), _script("http.sh"),
             candidate, f"{max_seconds:g}", *health_urls],
            timeout=max_seconds * max(len(health_urls), 1) + 60,
            stdin=text.encode(),
        )  # fmt: skip
        head, _, health = result.stdout.partition("--- health\n")
        status_line, _, test_output = head.partition("\n")
        code = status_line.removeprefix("--- test ").strip()
        if not result.ok or not code.isdigit():
            self.discard(live, generation)
            raise StateError(
                f"cannot stage the candidate next to {live}: {result.output}",
                "check the directory exists and the transport's user may write it",
            )
        return Prepared(int(code) == 0, test_output, _parse_http(health, health_urls))

    def discard(self, live: str, generation: str) -> None:
        self.transport.run(["rm", "-f", self._candidate_path(live, generation)])

    def marker_generation(self, socket: str, max_seconds: float = 2.0) -> str | None:
        """What the generation marker on ``socket`` answers now (the config Nginx serves); None if silent."""
        result = self.transport.run(
            [
                "curl",
                "-s",
                "--fail",
                "--max-time",
                f"{max_seconds:g}",
                "--unix-socket",
                socket,
                "http://bluegreen-swap/generation",
            ],
            timeout=max_seconds + 10,
        )
        answer = result.stdout.strip()
        return answer if result.ok and answer else None


def _parse_http(stdout: str, urls: list[str]) -> list[HttpAnswer]:
    answers: list[HttpAnswer] = []
    chunks = stdout.split("__bluegreen_status__ ")
    body = chunks[0]
    for url, chunk in zip(urls, chunks[1:], strict=False):
        status_line, _, rest = chunk.partition("\n")
        code, _, seconds = status_line.partition(" ")
        answers.append(HttpAnswer(url, int(code) if code.isdigit() else 0, float(seconds or 0), body.rstrip("\n")))
        body = rest
    return answers


def candidate_error(output: str) -> ConfigTestError:
    """``nginx -t`` refused the candidate on its own: the live file was never touched."""
    return ConfigTestError(
        "nginx -t refused the new upstream config: " + _emerg_line(output), hint_for(output), detail=output
    )


def _emerg_line(output: str) -> str:
    for line in output.splitlines():
        if "[emerg]" in line:
            return line.split("[emerg]", 1)[1].strip()
    return output.strip().splitlines()[0] if output.strip() else "(no output)"


def _key_values(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key not in values:
            values[key] = value.strip()
    return values


def _proc_address(ip: str, port: int) -> str:
    """An address as /proc/net/tcp{,6} writes it: little-endian hex words, then the port."""
    import ipaddress
    import socket as socket_module

    address = ipaddress.ip_address(ip)
    packed = address.packed
    if address.version == 4:
        text = socket_module.inet_aton(ip)[::-1].hex().upper()
    else:
        text = "".join(packed[i : i + 4][::-1].hex().upper() for i in range(0, 16, 4))
    return f"{text}:{port:04X}"
