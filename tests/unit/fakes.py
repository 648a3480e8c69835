"""A fake load balancer host for unit tests: an in-memory filesystem and a toy Nginx.

``FakeHost`` implements ``swap_action.host.LbHost`` directly: each operation does what the shell
functions in ``lbscripts/`` do, at the level of their typed results (no argv, no wire format:
``tests/unit/test_wire.py`` and the integration tests cover those). Its Nginx is deliberately small
and honest about what it models:

- ``nginx -t`` refuses ``weight=0``, directives outside a small known set, unbalanced braces and
  upstream hosts it cannot "resolve" (hosts not in ``apps``), with Nginx's own messages;
- ``install`` follows ``install.sh``: the candidate takes the live file's place, the whole config
  is tested while the target is health-checked, and either both pass (the old bytes are kept as
  ``.previous``) or the old bytes are put back; a run that "died" in between leaves
  ``.before-swap``, which ``begin`` settles;
- the served config changes only on a reload of a config that passes ``nginx -t``; a reload can be
  made to be refused silently (like a listen port in use: the marker never shows the new
  generation, a timeout) or loudly (an ``[emerg]`` in the error log);
- requests through the LB (``lb_url``) go to the live server with the highest weight, not by
  weighted round robin; requests to ``host:port`` go to that app directly.

It does not model timing, workers draining, or connections: the drain always finds nothing left.
The lock has no clock: a held lock is either live or past its holder's deadline (``expired``).
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from swap_action.host import (
    Begun,
    Connections,
    Dump,
    HttpAnswer,
    Installed,
    LbHost,
    LockState,
    LockStatus,
    Planned,
    Probe,
    ReloadRequest,
    ReloadResult,
)
from swap_action.transport import CommandResult, Transport
from swap_action.upstream import STATE_PREFIX

LB_CONFIG = "/etc/nginx/bluegreen/upstream.conf"
MAIN_CONF = "/etc/nginx/nginx.conf"
ERROR_LOG = "/var/log/nginx/error.log"
NGINX_VERSION = "nginx version: nginx/1.22.1"
RELOAD_AT_MS = 1_700_000_000_000

KNOWN_DIRECTIVES = {
    "upstream",
    "server",
    "keepalive",
    "keepalive_timeout",
    "keepalive_requests",
    "least_conn",
    "ip_hash",
    "hash",
    "zone",
    "listen",
    "access_log",
    "location",
    "return",
}
_SERVER_PARAM = re.compile(r"^(down|backup|weight=\d+|max_fails=\d+|fail_timeout=\d+s?)$")
_MARKER = re.compile(r'return 200 "(?P<generation>[^" \\]*)(?: (?P<path>[^"\\]*))?\\n"')


@dataclass
class App:
    """One app server as the fake LB sees it."""

    version: str
    healthy: bool = True
    fail: bool = False


@dataclass
class Route:
    """One upstream server line of the served config."""

    address: str
    weight: int
    down: bool


@dataclass
class Lock:
    owner: str
    expired: bool = False  # its holder's deadline passed: the next run takes it over


def initial_file(generation: str = "g0-initial") -> str:
    from swap_action.inputs import Slots
    from swap_action.upstream import render

    return render(
        upstream="app",
        slots=Slots(blue=("blue:8080",), green=("green:8080",)),
        weights={"blue": 100, "green": 0},
        generation=generation,
        previous=None,
    )


def nginx_test(text: str, path: str) -> str | None:
    """The toy ``nginx -t`` of one included file: None if it passes, else Nginx's [emerg] message."""
    depth = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        for part in re.split(r"([;{}])", line):
            token = part.strip()
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth < 0:
                    return f'unexpected "}}" in {path}:{number}'
            elif token and token != ";":
                words = token.split()
                name = words[0]
                if name not in KNOWN_DIRECTIVES:
                    return f'unknown directive "{name}" in {path}:{number}'
                if name == "server" and len(words) > 1:
                    for param in words[2:]:
                        if param == "weight=0" or not _SERVER_PARAM.match(param):
                            return f'invalid parameter "{param}" in {path}:{number}'
    if depth != 0:
        return f'unexpected end of file, expecting "}}" in {path}:{len(text.splitlines()) + 1}'
    return None


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0]


def routes(text: str) -> list[Route]:
    """The ``server host:port ...;`` statements (not ``server {`` blocks)."""
    found = []
    code = "\n".join(_strip_comment(line) for line in text.splitlines())
    for statement in re.split(r"[;{}]", code):
        words = statement.split()
        if len(words) >= 2 and words[0] == "server":
            weight = next((int(w.split("=")[1]) for w in words[2:] if w.startswith("weight=")), 1)
            found.append(Route(words[1], weight, "down" in words[2:]))
    return found


def candidate_path(live: str, generation: str) -> str:
    """Where ``install.sh`` stages a candidate: a hidden file next to the live one."""
    directory, _, name = live.rpartition("/")
    return f"{directory}/.{name}.candidate-{generation}"


class FakeHost(LbHost):
    description = "fake://lb"

    def __init__(self, managed: str | None = None, *, path: str = LB_CONFIG) -> None:
        text = initial_file() if managed is None else managed
        self.files: dict[str, str] = {path: text} if text else {}
        self.include = "/etc/nginx/bluegreen/*.conf"  # what the toy main config includes in http
        self.main_extra = ""  # more of the http block (e.g. an upstream defined there)
        self.locks: dict[str, Lock] = {}  # lock directory -> its holder
        self.renewals = 0
        self.path = path  # the file the toy Nginx includes
        self.apps = {"blue:8080": App("blue"), "green:8080": App("green")}
        self.lb_url = "http://127.0.0.1/"
        self.served: str = text  # the config the fake Nginx serves (changes only on a good reload)
        self.workers = [101, 102]
        self._next_pid = 200
        self.reloads = 0
        self.gates_started = 0  # begin started the gate's checks
        self.install_gates: list[str] = []  # each install's gate id ("" = checked then, or none)
        self.refuse_reloads = 0  # refuse the next N reloads silently (like a listen port in use)
        self.emerg_on_reload: str | None = None  # refuse the next reload loudly with this [emerg]
        self.full_config_error: str | None = None  # nginx -t of the whole config fails (install)
        self.nginx_version = NGINX_VERSION
        self.http_calls: list[tuple[float, tuple[str, ...]]] = []  # (monotonic time, urls) of each http()
        self.calls: list[str] = []  # operations, in order
        self.writes: list[str] = []  # paths written (candidates, the live file, its copies)

    # -- helpers for tests --------------------------------------------------------------
    def live_text(self) -> str | None:
        return self.files.get(self.path)

    def served_slot(self) -> str | None:
        """The slot whose server answers a request through the LB now (also when it answers 500)."""
        route = self._route()
        return None if route is None else self.apps[route.address].version

    def hold_lock(self, owner: str = "another-run-1", *, expired: bool = False) -> str:
        lock = f"{self.path}.lock"
        self.locks[lock] = Lock(owner, expired)
        return lock

    def leftovers(self) -> list[str]:
        """Files a finished install must not leave behind: candidates and ``.before-swap``."""
        return [path for path in self.files if ".candidate-" in path or path.endswith(".before-swap")]

    # -- LbHost: the lock and the state ----------------------------------------------------
    def begin(
        self,
        config_path: str,
        lock_dir: str,
        owner: str,
        lease_s: int,
        gate_urls: Sequence[str] = (),
        gate_max_s: float = 5.0,
        dump: bool = False,
        proof_socket: str = "",
    ) -> Begun:
        self.calls.append("begin")
        self.gate_urls_at_begin = list(gate_urls)
        held = self.locks.get(lock_dir)
        stale_from = ""
        if held is not None:
            if not held.expired:
                return Begun(LockState(False, holder=held.owner, age_s=0, left_s=60))
            stale_from = held.owner
        self.locks[lock_dir] = Lock(owner)
        before = f"{config_path}.before-swap"
        recovered = before in self.files
        if recovered:  # a run died inside install: Nginx still serves these bytes
            self.files[config_path] = self.files.pop(before)
        for path in [p for p in self.files if ".candidate-" in p]:
            del self.files[path]
        self.gates_started += 1 if gate_urls else 0
        # A file with the state line: its own marker is asked, for install to check.
        pending = bool(proof_socket) and dump and STATE_PREFIX in self.files.get(config_path, "")
        return Begun(
            LockState(True, stale_from=stale_from),
            self._probe(config_path),
            "restored" if recovered else "",
            "1" if gate_urls else "",
            self.dump_config() if dump and not pending else None,
            pending,
        )

    def dump_config(self) -> Dump:
        """``nginx -T`` of the toy Nginx: a main config including ``INCLUDE`` in http, and the
        files it matches (the managed one, and any a test adds)."""
        self.calls.append("dump_config")
        main = f"events {{}}\nhttp {{\n    include {self.include};\n    {self.main_extra}\n}}\n"
        files = {MAIN_CONF: main} | {
            path: text for path, text in sorted(self.files.items()) if fnmatch.fnmatch(path, self.include)
        }
        return Dump(True, "".join(f"# configuration file {path}:\n{text}\n" for path, text in files.items()), "")

    def discard_file(self, path: str) -> None:
        self.calls.append("discard_file")
        self.files.pop(path, None)

    def put_back(self, config_path: str, text: str) -> None:
        self.calls.append("put_back")
        self._write(config_path, text)

    def release(self, lock_dir: str, owner: str) -> None:
        self.calls.append("release")
        held = self.locks.get(lock_dir)
        if held is not None and held.owner == owner:
            del self.locks[lock_dir]

    def renew(self, lock_dir: str, owner: str, lease_s: int) -> LockStatus:
        # Not in ``calls``: renewals come from the lease's thread, at times of their own.
        self.renewals += 1
        held = self.locks.get(lock_dir)
        if held is not None and held.owner == owner:
            return LockStatus(True, left_s=lease_s)
        return LockStatus(False, holder=held.owner if held else "")

    def lock_status(self, lock_dir: str) -> LockStatus:
        self.calls.append("lock_status")
        held = self.locks.get(lock_dir)
        return LockStatus(True, held.owner, 0, -5 if held.expired else 15) if held else LockStatus(False)

    def break_lock(self, lock_dir: str) -> LockStatus:
        self.calls.append("break_lock")
        held = self.locks.pop(lock_dir, None)
        return LockStatus(True, held.owner, 0, -5 if held.expired else 15) if held else LockStatus(False)

    def probe(self, config_path: str) -> Probe:
        self.calls.append("probe")
        return self._probe(config_path)

    def _probe(self, config_path: str) -> Probe:
        text = self.files.get(config_path)
        return Probe(self.nginx_version, True, 1, ERROR_LOG, text, "present" if text is not None else "missing")

    # -- LbHost: candidates ----------------------------------------------------------------
    def plan(self, config_path: str, text: str, generation: str, health_urls: Sequence[str], max_s: float) -> Planned:
        """``plan``: the candidate tested on its own in a throw-away main config, then removed."""
        self.calls.append("plan")
        candidate = candidate_path(config_path, generation)
        self._write(candidate, text)
        error = self._nginx_t(text, candidate)
        del self.files[candidate]
        output = "" if error is None else _failed(error, "/tmp/tmp.fake/nginx.conf")
        return Planned(error is None, output, tuple(self.http("GET", health_urls, max_s)))

    def install(
        self,
        config_path: str,
        text: str,
        generation: str,
        health_urls: Sequence[str],
        max_s: float,
        gate: str = "",
        reload: ReloadRequest | None = None,
        proof: tuple[str, str] | None = None,
    ) -> Installed:
        """``install``: the candidate in the live file's place, the whole config tested, the target
        health-checked; both good: applied (old bytes kept as ``.previous``), else put back."""
        self.calls.append("install")
        return self._installed(config_path, text, generation, health_urls, gate, reload, proof, check_only=False)

    def _installed(
        self,
        config_path: str,
        text: str,
        generation: str,
        health_urls: Sequence[str],
        gate: str,
        reload: ReloadRequest | None,
        proof: tuple[str, str] | None,
        *,
        check_only: bool,
    ) -> Installed:
        """install's work; ``check_only`` (``check``): put back whatever the verdict, never reloaded."""
        if proof:
            marker = _MARKER.search(self.served)
            if marker is None or (marker.group("generation"), marker.group("path")) != (proof[1], config_path):
                return Installed(False, False, "", (), proof_failed=True)
        self.install_gates.append(gate)
        health = tuple(self._request("GET", url) for url in health_urls)
        self._write(candidate_path(config_path, generation), text)
        before = self.files.get(config_path)
        if before is not None:
            self._write(f"{config_path}.before-swap", before)
        self._write(config_path, self.files.pop(candidate_path(config_path, generation)))
        error = self.full_config_error or self._nginx_t(text, config_path)
        healthy = all(200 <= answer.status < 300 for answer in health)
        if error is None and healthy and not check_only:
            if before is not None:
                self.files[f"{config_path}.previous"] = self.files.pop(f"{config_path}.before-swap")
            applied = True
        else:
            if before is not None:
                self.files[config_path] = self.files.pop(f"{config_path}.before-swap")
            else:
                del self.files[config_path]
            applied = False
        output = "" if error is None else _failed(error, "/etc/nginx/nginx.conf")
        done = None
        if applied and reload is not None:  # the LB reloads in the same round trip
            done = self.reload_and_confirm(reload.generation, reload.socket, reload.error_log, reload.timeout_s)
        return Installed(applied, error is None, output, health, done)

    def check(
        self,
        config_path: str,
        text: str,
        generation: str,
        health_urls: Sequence[str],
        max_s: float,
        gate: str = "",
        proof: tuple[str, str] | None = None,
    ) -> Installed:
        self.calls.append("check")
        return self._installed(config_path, text, generation, health_urls, gate, None, proof, check_only=True)

    # -- LbHost: reloading -----------------------------------------------------------------
    def reload_and_confirm(self, generation: str, socket: str, error_log: str, timeout_s: float) -> ReloadResult:
        """SIGHUP to the master, then the proof: new workers, old ones stopped accepting, the marker."""
        self.calls.append("reload_and_confirm")
        old = tuple(self.workers)
        text = self.files.get(self.path, "")
        error = self.emerg_on_reload or self._nginx_t(text, self.path)
        self.emerg_on_reload = None
        if error is not None or self.refuse_reloads:
            if error is None:
                self.refuse_reloads -= 1
            elif error_log != "-":  # the master logs the refusal; the script reads it there
                message = f"2026/11/27 15:00:00 [emerg] 1#1: {error}"
                return ReloadResult("emerg", RELOAD_AT_MS, 1, old_workers=old, message=message)
            return ReloadResult(
                "timeout", RELOAD_AT_MS, 1, old_workers=old, new_workers=0, old_left=len(old), marker_ok=False
            )
        self.reloads += 1
        self.served = text
        self.workers = [self._next_pid, self._next_pid + 1]
        self._next_pid += 2
        if socket != "-" and self._served_generation() != generation:
            return ReloadResult("timeout", RELOAD_AT_MS, 1, old_workers=old, new_workers=2, old_left=0, marker_ok=False)
        return ReloadResult(
            "confirmed",
            RELOAD_AT_MS,
            1,
            new_workers_ms=10,
            old_stopped_ms=110,
            marker_ms=30,
            confirmed_ms=110,
            old_workers=old,
        )

    # -- LbHost: requests and the drain ------------------------------------------------------
    def http(self, method: str, urls: Sequence[str], max_s: float) -> list[HttpAnswer]:
        self.calls.append("http")
        self.http_calls.append((time.monotonic(), tuple(urls)))
        return [self._request(method, url) for url in urls]

    def connections(self, servers: Sequence[str]) -> Connections:
        self.calls.append("connections")
        return Connections(0, (), from_old_workers=0)

    def stop_workers(self, pids: Sequence[int]) -> None:
        self.calls.append("stop_workers")

    def marker_generation(self, socket: str, max_s: float = 2.0) -> str | None:
        self.calls.append("marker_generation")
        return self._served_generation()

    # -- the toy Nginx and apps -------------------------------------------------------------
    def _write(self, path: str, text: str) -> None:
        self.writes.append(path)
        self.files[path] = text

    def _request(self, method: str, url: str) -> HttpAnswer:
        if url.startswith(self.lb_url):
            status, body = self._through_lb("/" + url[len(self.lb_url) :])
        else:
            match = re.match(r"^http://(?P<address>[^/]+)(?P<path>/.*)$", url)
            app = self.apps.get(match.group("address")) if match else None
            status, body = (0, "") if match is None or app is None else self._app(app, method, match.group("path"))
        return HttpAnswer(url, status, 0.002, body[:2048].rstrip("\n"))

    @staticmethod
    def _app(app: App, method: str, path: str) -> tuple[int, str]:
        if path == "/healthz":
            return (200, "ok") if app.healthy else (503, "unhealthy")
        if path.startswith("/admin/"):
            return 202, "{}"
        if path not in ("/", "/version"):
            return 404, "not found"  # like a real app: only the paths it has
        if app.fail:
            return 500, "failing (APP_FAIL)"
        return 200, f"{app.version}\n"

    def _route(self) -> Route | None:
        live = [r for r in routes(self.served) if not r.down and r.address in self.apps]
        return max(live, key=lambda r: r.weight) if live else None

    def _through_lb(self, path: str) -> tuple[int, str]:
        route = self._route()
        if route is None:
            return 502, "<html>502 Bad Gateway</html>"
        return self._app(self.apps[route.address], "GET", path)

    def _nginx_t(self, text: str, path: str) -> str | None:
        error = nginx_test(text, path)
        if error is None:
            for route in routes(text):
                if route.address.rsplit(":", 1)[0] not in {a.rsplit(":", 1)[0] for a in self.apps}:
                    return f'host not found in upstream "{route.address}" in {path}'
        return error

    def _served_generation(self) -> str | None:
        match = _MARKER.search(self.served)
        return match.group("generation") if match else None


def _failed(error: str, main_config: str) -> str:
    return f"nginx: [emerg] {error}\nnginx: configuration file {main_config} test failed\n"


class NoTransport(Transport):
    """What the CLI and the action open while ``FakeHost`` stands in for ``ScriptedHost``: never used."""

    description = "fake://lb"

    def __init__(self) -> None:
        self.closed = False

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        raise AssertionError(f"the fake host does the work; nothing runs {argv[:2]!r}")

    def write_file(self, path: str, data: bytes) -> None:
        raise AssertionError(f"the fake host does the work; nothing writes {path}")

    def close(self) -> None:
        self.closed = True
