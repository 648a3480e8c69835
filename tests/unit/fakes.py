"""A fake load balancer host for unit tests: an in-memory filesystem and a toy Nginx.

``FakeTransport`` answers the engine the way the real ``lbscripts/*.sh`` would, at the level of
their outputs: it recognises the script by ``argv[3]`` (the ``$0`` name passed after
``sh -c SCRIPT``) and emulates it. Its Nginx is deliberately small and honest about what it
models:

- ``nginx -t`` refuses ``weight=0``, directives outside a small known set, unbalanced braces and
  upstream hosts it cannot "resolve" (hosts not in ``apps``), with Nginx's own messages;
- the served config changes only on a reload of a config that passes ``nginx -t``; a reload can be
  made to be refused silently (like a listen port in use), so the marker never shows the new
  generation;
- requests through the LB (``lb_url``) go to the live server with the highest weight, not by
  weighted round robin; requests to ``host:port`` go to that app directly.

It does not model timing, workers draining, or connections: the drain always finds nothing left.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from swap_action.transport import CommandResult, Transport
from swap_action.upstream import STATE_PREFIX

LB_CONFIG = "/etc/nginx/bluegreen/upstream.conf"
ERROR_LOG = "/var/log/nginx/error.log"
NGINX_VERSION = "nginx version: nginx/1.22.1"

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
_MARKER = re.compile(r'return 200 "(?P<generation>[^"\\]*)\\n"')


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


class FakeTransport(Transport):
    description = "fake://lb"

    def __init__(self, managed: str | None = None, *, path: str = LB_CONFIG) -> None:
        text = initial_file() if managed is None else managed
        self.files: dict[str, bytes] = {path: text.encode()} if text else {}
        self.dirs: set[str] = set()
        self.path = path
        self.apps = {"blue:8080": App("blue"), "green:8080": App("green")}
        self.lb_url = "http://127.0.0.1/"
        self.served: str = text  # the config the fake Nginx serves (changes only on a good reload)
        self.workers = [101, 102]
        self._next_pid = 200
        self.reloads = 0
        self.refuse_reloads = 0  # refuse the next N reloads silently (like a listen port in use)
        self.full_config_error: str | None = None  # nginx -t of the whole config fails (apply.sh)
        self.stdin: bytes | None = None  # what the last command was fed
        self.calls: list[str] = []  # script names and commands, in order
        self.writes: list[str] = []  # paths written with write_file

    # -- helpers for tests --------------------------------------------------------------
    def live_text(self) -> str | None:
        data = self.files.get(self.path)
        return None if data is None else data.decode()

    def served_slot(self) -> str:
        """The slot that answers a request through the LB now."""
        return self._through_lb("/")[1].strip()

    def hold_lock(self, owner: str = "another-run-1") -> str:
        lock = f"{self.path}.lock"
        self.dirs.add(lock)
        self.files[f"{lock}/owner"] = f"{owner}\n".encode()
        return lock

    # -- Transport ------------------------------------------------------------------------
    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        argv = tuple(argv)
        self.stdin = stdin
        if argv[:2] == ("sh", "-c"):
            name, args = argv[3], list(argv[4:])
            self.calls.append(name)
            handler = {
                "begin.sh": self._begin,
                "prepare.sh": self._prepare,
                "probe.sh": self._probe,
                "lock.sh": self._lock,
                "http.sh": self._http,
                "test_isolated.sh": self._test_isolated,
                "apply.sh": self._apply,
                "reload_confirm.sh": self._reload_confirm,
                "connections.sh": self._connections,
                "restore": self._restore,
            }.get(name)
            if handler is None:
                raise AssertionError(f"the fake does not know the script {name!r}")
            code, out = handler(args)
            return CommandResult(argv, code, out, "")
        self.calls.append(argv[0])
        if argv[0] == "rm":
            for path in argv[1:]:
                if not path.startswith("-"):
                    self.files.pop(path, None)
            return CommandResult(argv, 0, "", "")
        if argv[0] == "kill":
            return CommandResult(argv, 0, "", "")
        if argv[0] == "curl" and "--unix-socket" in argv:
            generation = self._served_generation()
            return CommandResult(argv, 0 if generation else 7, f"{generation}\n" if generation else "", "")
        raise AssertionError(f"the fake does not know the command {argv!r}")

    def write_file(self, path: str, data: bytes) -> None:
        self.writes.append(path)
        self.files[path] = data

    # -- the scripts ----------------------------------------------------------------------
    def _probe(self, args: list[str]) -> tuple[int, str]:
        data = self.files.get(args[0])
        body = data.decode().rstrip("\n") if data is not None else "__missing__"
        text = (
            f"--- nginx\n{NGINX_VERSION}\n--- curl\npresent\n--- master\n1\n"
            f"--- error_log\n{ERROR_LOG}\n/var/log/nginx/error.log\n--- file\n{body}\n"
        )
        return 0, text

    def _begin(self, args: list[str]) -> tuple[int, str]:
        """lock.sh acquire, then (with the lock) probe.sh: the engine's first round trip."""
        lock_dir, owner, ttl, managed = args[2:6]
        self.calls.append("lock.sh")
        code, out = self._lock(["acquire", lock_dir, owner, ttl])
        if code != 0:
            return code, out
        before = f"{managed}.before-swap"
        if before in self.files:  # a run died inside apply.sh: put the served bytes back
            self.files[managed] = self.files.pop(before)
            out += "recovered=restored\n"
        for path in [p for p in self.files if ".candidate-" in p]:
            del self.files[path]
        self.calls.append("probe.sh")
        return 0, out + "--- probe\n" + self._probe([managed])[1]

    def _prepare(self, args: list[str]) -> tuple[int, str]:
        """Stage the candidate from stdin, test_isolated.sh on it and http.sh on the health URLs."""
        candidate, max_seconds, urls = args[2], args[3], args[4:]
        assert self.stdin is not None, "prepare.sh reads the candidate from stdin"
        self.write_file(candidate, self.stdin)
        self.calls.append("test_isolated.sh")
        code, out = self._test_isolated([candidate])
        text = f"--- test {code}\n{out}--- health\n"
        if urls:
            self.calls.append("http.sh")
            text += self._http(["GET", max_seconds, *urls])[1]
        return 0, text

    def _lock(self, args: list[str]) -> tuple[int, str]:
        action, lock, owner = args[0], args[1], args[2]
        if action == "acquire":
            if lock in self.dirs:
                holder = self.files.get(f"{lock}/owner", b"unknown\n").decode().strip()
                return 1, f"held_by={holder} age=0\n"
            self.dirs.add(lock)
            self.files[f"{lock}/owner"] = f"{owner}\n".encode()
            return 0, "acquired\n"
        if self.files.get(f"{lock}/owner", b"").decode().strip() == owner:
            self.dirs.discard(lock)
            self.files.pop(f"{lock}/owner", None)
        return 0, ""

    def _http(self, args: list[str]) -> tuple[int, str]:
        method, _max, urls = args[0], args[1], args[2:]
        out = []
        for url in urls:
            status, body = self._request(method, url)
            out.append(f"{body}\n__bluegreen_status__ {status:03d} 0.002\n")
        return 0, "".join(out)

    def _request(self, method: str, url: str) -> tuple[int, str]:
        if url.startswith(self.lb_url):
            return self._through_lb("/" + url[len(self.lb_url) :])
        match = re.match(r"^http://(?P<address>[^/]+)(?P<path>/.*)$", url)
        app = self.apps.get(match.group("address")) if match else None
        if match is None or app is None:
            return 0, ""
        return self._app(app, method, match.group("path"))

    @staticmethod
    def _app(app: App, method: str, path: str) -> tuple[int, str]:
        if path == "/healthz":
            return (200, "ok") if app.healthy else (503, "unhealthy")
        if path.startswith("/admin/"):
            return 202, "{}"
        if app.fail:
            return 500, "failing (APP_FAIL)"
        return 200, f"{app.version}\n"

    def _through_lb(self, path: str) -> tuple[int, str]:
        live = [r for r in routes(self.served) if not r.down and r.address in self.apps]
        if not live:
            return 502, "<html>502 Bad Gateway</html>"
        route = max(live, key=lambda r: r.weight)
        return self._app(self.apps[route.address], "GET", path)

    def _nginx_t(self, text: str, path: str) -> str | None:
        error = nginx_test(text, path)
        if error is None:
            for route in routes(text):
                if route.address.rsplit(":", 1)[0] not in {a.rsplit(":", 1)[0] for a in self.apps}:
                    return f'host not found in upstream "{route.address}" in {path}'
        return error

    def _test_isolated(self, args: list[str]) -> tuple[int, str]:
        candidate = args[0]
        error = self._nginx_t(self.files[candidate].decode(), candidate)
        if error:
            return 1, f"nginx: [emerg] {error}\nnginx: configuration file /tmp/fake/nginx.conf test failed\n"
        return 0, ""

    def _apply(self, args: list[str]) -> tuple[int, str]:
        live, candidate = args
        before = self.files.get(live)
        self.files[live] = self.files.pop(candidate)
        error = self.full_config_error or self._nginx_t(self.files[live].decode(), live)
        if error is None:
            if before is not None:
                self.files[f"{live}.previous"] = before
            return 0, "nginx: configuration file /etc/nginx/nginx.conf test is successful\n"
        if before is not None:
            self.files[live] = before
        else:
            del self.files[live]
        return 10, f"nginx: [emerg] {error}\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"

    def _reload_confirm(self, args: list[str]) -> tuple[int, str]:
        generation, socket = args[0], args[1]
        old = self.workers
        head = f"old_workers= {' '.join(map(str, old))} \nreload_at_ms=1700000000000\n"
        text = self.files[self.path].decode()
        error = self._nginx_t(text, self.path)
        if error:  # nginx -s reload tests the config first and never signals
            return 2, head + f"reload_exit=1\nreload_ms=5\nreload_output=nginx: [emerg] {error}\n"
        head += "reload_exit=0\nreload_ms=5\n"
        if self.refuse_reloads:
            self.refuse_reloads -= 1
            return 4, head + f"new_workers=0\nold_left={len(old)}\nmarker_ok=0\n"
        self.reloads += 1
        self.served = text
        self.workers = [self._next_pid, self._next_pid + 1]
        self._next_pid += 2
        if socket != "-" and self._served_generation() != generation:
            return 4, head + "new_workers=2\nold_left=0\nmarker_ok=0\n"
        return 0, head + "new_workers_ms=10\nold_stopped_ms=110\nmarker_ms=30\nconfirmed_ms=110\n"

    def _connections(self, args: list[str]) -> tuple[int, str]:
        return 0, "--- tcp\n--- draining\n"

    def _restore(self, args: list[str]) -> tuple[int, str]:
        live = args[0]
        previous = self.files.get(f"{live}.previous")
        if previous is None:
            return 1, f"cp: cannot stat '{live}.previous': No such file or directory\n"
        self.files[live] = previous
        return 0, ""

    def _served_generation(self) -> str | None:
        match = _MARKER.search(self.served)
        return match.group("generation") if match else None


def state_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(STATE_PREFIX))
