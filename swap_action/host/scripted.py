"""``LbHost`` over a ``Transport``: the shell functions in ``lbscripts/``, one program a round trip.

Each program is ``lib.sh``, the files defining the functions it needs, and a call; user values
travel as positional arguments (or stdin), never spliced into shell text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import resources

from ..errors import InputError, PrivilegeError, StateError, TransportError
from ..transport import CommandResult, Transport
from . import wire
from .api import (
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

# The files each function needs (lib.sh always comes first).
_NEEDS: dict[str, tuple[str, ...]] = {
    "begin": ("lock.sh", "nginx_build.sh", "probe.sh", "http.sh"),  # http.sh: the gate it starts
    "lock_release": ("lock.sh",),
    "lock_renew": ("lock.sh",),
    "lock_status": ("lock.sh",),
    "lock_break": ("lock.sh",),
    "probe": ("nginx_build.sh", "probe.sh"),
    "dump_config": ("probe.sh",),
    "plan": ("http.sh", "install.sh"),
    "install": ("http.sh", "install.sh", "nginx_build.sh", "reload_confirm.sh"),
    "check": ("http.sh", "install.sh", "nginx_build.sh", "reload_confirm.sh"),
    "reload_confirm": ("nginx_build.sh", "reload_confirm.sh"),
    "discard_file": ("install.sh",),
    "put_back": ("install.sh",),
    "http_get": ("http.sh",),
    "connections": ("nginx_build.sh", "connections.sh"),
    "stop_workers": ("nginx_build.sh", "connections.sh"),
    "marker": ("connections.sh",),
}
MAX_FILE_BYTES = 1024 * 1024  # lib.sh's MAX_BLOB: a managed file larger than this is refused


@functools.cache
def program(function: str) -> str:
    """The shell program that runs ``function`` with the call's arguments."""
    files = ("lib.sh", *_NEEDS[function])
    parts = [resources.files("swap_action").joinpath(f"lbscripts/{name}").read_text() for name in files]
    return "\n".join(parts) + '\n"$@"\n'


class ScriptedHost(LbHost):
    def __init__(self, transport: Transport, *, sudo: bool = False) -> None:
        self.transport = transport
        self.description = transport.description
        # The root commands through 'sudo -n' (lbscripts/lib.sh, README "Least privilege").
        self.sudo = sudo
        # The pid file the last probe read (the Nginx it proved runs): reloads, the drain's view of
        # old workers and its cut act on that master and its children only. "-": not probed yet,
        # the LB reads it from nginx -V and nginx.conf itself.
        self.pid_file = "-"

    def call(self, function: str, *args: str, timeout: float = 60.0, stdin: bytes | None = None) -> wire.Records:
        """Run one function on the LB; its records, or ``TransportError`` when it did not run."""
        text = ("BG_SUDO=1\n" if self.sudo else "") + program(function)
        result = self.transport.run(["sh", "-c", text, "bluegreen-swap", function, *args], timeout=timeout, stdin=stdin)
        return _records(function, result, self.description)

    # -- the lock and the state -----------------------------------------------------------------
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
        mode = (f"marker:{proof_socket}" if proof_socket else "1") if dump else "0"
        records = self.call(
            "begin", lock_dir, owner, str(lease_s), config_path, mode, f"{gate_max_s:g}", *gate_urls,
            timeout=30 + gate_max_s * len(gate_urls),
        )  # fmt: skip
        _refuse_privileges(records, config_path, self.description)
        lock = LockState(
            acquired=records.get("lock") == "acquired",
            holder=wire.printable(records.get("holder"), 200),
            age_s=records.number("age_s"),
            left_s=_signed(records.get("left_s")),
            stale_from=wire.printable(records.get("stale_from"), 200),
        )
        if not lock.acquired:
            if records.get("lock") != "held":
                raise StateError(
                    f"cannot create the lock {lock_dir}: {records.get('error') or 'no answer'}",
                    "check the config directory exists, is writable by the transport's user and its disk has room",
                )
            return Begun(lock)
        gate = records.get("gate")
        return Begun(
            lock,
            self._probe(records),
            recovered=records.get("recovered"),
            gate=f"{lock_dir}/gate.{gate}" if wire.to_int(gate) is not None else "",
            dump=_dump(records) if records.has("dump_exit") else None,
            proof_pending=records.get("proof") == "pending",
        )

    def dump_config(self) -> Dump:
        return _dump(self.call("dump_config", timeout=60))

    def discard_file(self, path: str) -> None:
        records = self.call("discard_file", path, timeout=30)
        if records.has("error"):
            raise StateError(f"cannot remove {path}: {records.get('error')}", "remove it by hand")

    def put_back(self, config_path: str, text: str) -> None:
        records = self.call("put_back", config_path, timeout=30, stdin=text.encode())
        if records.has("error") or records.get("applied") != "1":
            raise StateError(
                f"cannot put the previous bytes back in {config_path}: {records.get('error') or 'no answer'}",
                "check the directory exists and the transport's user may write it",
            )

    def release(self, lock_dir: str, owner: str) -> None:
        self.call("lock_release", lock_dir, owner, timeout=30)

    def renew(self, lock_dir: str, owner: str, lease_s: int) -> LockStatus:
        records = self.call("lock_renew", lock_dir, owner, str(lease_s), timeout=max(5.0, lease_s / 2))
        if records.get("lock") == "held":
            return LockStatus(True, left_s=_signed(records.get("left_s")))
        return LockStatus(False, holder=wire.printable(records.get("holder"), 200))

    def lock_status(self, lock_dir: str) -> LockStatus:
        return _lock_status(self.call("lock_status", lock_dir, timeout=30), "lock")

    def break_lock(self, lock_dir: str) -> LockStatus:
        return _lock_status(self.call("lock_break", lock_dir, timeout=30), "broken")

    def probe(self, config_path: str) -> Probe:
        return self._probe(self.call("probe", config_path, timeout=30))

    def _probe(self, records: wire.Records) -> Probe:
        version = records.get("nginx_version", "missing")
        if version == "missing":
            raise TransportError(
                f"nginx is not installed or not on PATH on {self.description}",
                "point 'target' at the host or container that runs Nginx",
            )
        kind = records.get("file", "missing")
        managed = records.blob_bytes("file") if kind == "present" else None
        if managed is not None and len(managed) >= MAX_FILE_BYTES:
            raise StateError(
                f"the managed file is {MAX_FILE_BYTES} bytes or more: not an upstream file",
                "check 'config-path' names the upstream file Nginx includes",
            )
        logs = [path for path in records.all("error_log") if path.startswith("/")]
        pid_file = records.get("pid_file")
        if pid_file.startswith("/"):
            self.pid_file = pid_file
        return Probe(
            nginx_version=wire.printable(version),
            has_curl=records.get("curl") == "present",
            master_pid=records.number("master_pid"),
            error_log=logs[0] if logs else "-",
            managed_file=None if managed is None else managed.decode(errors="replace"),
            file_kind=kind if kind in ("present", "missing", "symlink", "notregular") else "notregular",
            pid_file=wire.printable(pid_file, 300),
            master_problem=wire.printable(records.get("master_problem"), 300),
        )

    # -- candidates -------------------------------------------------------------------------------
    def plan(self, config_path: str, text: str, generation: str, health_urls: Sequence[str], max_s: float) -> Planned:
        records = self.call(
            "plan", config_path, generation, f"{max_s:g}", *health_urls,
            timeout=max_s * max(len(health_urls), 1) + 60, stdin=text.encode(),
        )  # fmt: skip
        _staged(records, config_path)
        return Planned(records.get("test_exit") == "0", records.blob("test_output"), _answers(records))

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
        then = (
            (reload.socket, str(int(reload.timeout_s * 1000)), reload.error_log, self.pid_file)
            if reload
            else ("-", "-", "-", "-")
        )
        return self._installed("install", config_path, text, generation, health_urls, max_s, gate, proof, then, reload)

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
        return self._installed("check", config_path, text, generation, health_urls, max_s, gate, proof, (), None)

    def _installed(
        self,
        function: str,
        config_path: str,
        text: str,
        generation: str,
        health_urls: Sequence[str],
        max_s: float,
        gate: str,
        proof: tuple[str, str] | None,
        then: tuple[str, ...],
        reload: ReloadRequest | None,
    ) -> Installed:
        mode = gate or ("new" if health_urls else "-")
        records = self.call(
            function, config_path, generation, " ".join(proof) if proof else "-", mode, f"{max_s:g}", *then, *health_urls,
            timeout=max_s * max(len(health_urls), 1) + 60 + (reload.timeout_s if reload else 0),
            stdin=text.encode(),
        )  # fmt: skip
        if records.get("proof") == "failed":
            return Installed(False, False, "", (), proof_failed=True)
        _staged(records, config_path)
        applied = records.get("applied") == "1"
        return Installed(
            applied=applied,
            test_ok=records.get("test_exit") == "0",
            test_output=records.blob("test_output"),
            health=_answers(records),
            reload=_reload_result(records) if applied and reload else None,
        )

    # -- reloading --------------------------------------------------------------------------------
    def reload_and_confirm(self, generation: str, socket: str, error_log: str, timeout_s: float) -> ReloadResult:
        records = self.call(
            "reload_confirm",
            generation,
            socket,
            str(int(timeout_s * 1000)),
            error_log,
            self.pid_file,
            timeout=timeout_s + 30,
        )
        return _reload_result(records)

    # -- requests and the drain ---------------------------------------------------------------------
    def http(self, method: str, urls: Sequence[str], max_s: float) -> list[HttpAnswer]:
        records = self.call("http_get", method, f"{max_s:g}", *urls, timeout=max_s * len(urls) + 30)
        return list(_answers(records))

    def connections(self, servers: Sequence[str]) -> Connections:
        records = self.call("connections", self.pid_file, *servers, timeout=30)
        targets: set[str] = set()
        for line in records.all("target"):
            parts = line.split()
            if len(parts) == 3 and wire.to_int(parts[2]) is not None:
                try:
                    targets.add(proc_address(parts[1], int(parts[2])))
                except ValueError:
                    continue
        tcp = [remote.strip().upper() for remote in records.all("tcp")]
        old = [remote.strip().upper() for remote in records.all("old_tcp")]
        draining = tuple(pid for pid in (wire.to_int(p) for p in records.all("draining")) if pid is not None)
        # old_known=1: every draining worker's sockets were read (none draining: none to read).
        known = records.get("old_known").strip() == "1"
        return Connections(
            sum(1 for remote in tcp if remote in targets),
            draining,
            sum(1 for remote in old if remote in targets) if known else None,
        )

    def stop_workers(self, pids: Sequence[int]) -> None:
        if pids:
            self.call("stop_workers", self.pid_file, *(str(pid) for pid in pids), timeout=30)

    def marker_generation(self, socket: str, max_s: float = 2.0) -> str | None:
        answer = self.call("marker", socket, f"{max_s:g}", timeout=max_s + 10).get("generation").strip()
        return wire.printable(answer, 100) or None

    def close(self) -> None:
        self.transport.close()


def _records(function: str, result: CommandResult, where: str) -> wire.Records:
    try:
        records = wire.parse(result.raw_stdout or result.stdout.encode())
    except wire.WireError as exc:
        raise TransportError(
            f"'{function}' on {where} answered in an unexpected form ({exc}); stderr: {result.stderr.strip()[:300]}",
            "the LB host needs a POSIX sh with coreutils (head, wc, mktemp, date), awk and curl",
        ) from None
    if not result.ok and not records.fields:
        raise TransportError(
            f"'{function}' failed on {where} (exit {result.exit_code}): {result.output[:300]}",
            "the LB host needs a POSIX sh with coreutils (head, wc, mktemp, date), awk and curl",
        )
    return records


def _reload_result(records: wire.Records) -> ReloadResult:
    marker = records.get("marker_ok")
    return ReloadResult(
        result=records.get("result") or "unknown",
        reload_at_ms=records.number("reload_at_ms"),
        signal_ms=records.number("signal_ms") or 0,
        new_workers_ms=records.number("new_workers_ms"),
        old_stopped_ms=records.number("old_stopped_ms"),
        marker_ms=records.number("marker_ms"),
        confirmed_ms=records.number("confirmed_ms"),
        old_workers=tuple(int(p) for p in records.get("old_workers").split() if wire.to_int(p) is not None),
        message=records.blob("signal_output") or records.blob("emerg"),
        new_workers=records.number("new_workers"),
        old_left=records.number("old_left"),
        marker_ok=None if not marker else marker == "1",
        errlog_unreadable=wire.printable(records.get("errlog_unreadable"), 300),
    )


def _dump(records: wire.Records) -> Dump:
    if records.has("error"):
        return Dump(False, "", records.get("error"))
    return Dump(records.get("dump_exit") == "0", records.blob("dump"), records.blob("dump_err").strip())


def _staged(records: wire.Records, config_path: str) -> None:
    if records.has("error") or not records.has("test_exit"):
        raise StateError(
            f"cannot stage the candidate next to {config_path}: {records.get('error') or 'no answer'}",
            "check the directory exists and the transport's user may write it",
        )


def _answers(records: wire.Records) -> tuple[HttpAnswer, ...]:
    answers = []
    for group in records.groups("url"):
        code, _, seconds = group.get("answer", "000 0").partition(" ")
        try:
            took = float(seconds)
        except ValueError:
            took = 0.0
        answers.append(HttpAnswer(group.get("url"), wire.to_int(code) or 0, took, group.blob("body").rstrip("\n")))
    return tuple(answers)


def _signed(text: str) -> int | None:
    text = text.strip()
    return -value if text.startswith("-") and (value := wire.to_int(text[1:])) is not None else wire.to_int(text)


def proc_address(ip: str, port: int) -> str:
    """An address as /proc/net/tcp{,6} writes it: little-endian hex words, then the port."""
    import ipaddress

    address = ipaddress.ip_address(ip)
    packed = address.packed
    if address.version == 4:
        text = packed[::-1].hex().upper()
    else:
        text = "".join(packed[i : i + 4][::-1].hex().upper() for i in range(0, 16, 4))
    return f"{text}:{port:04X}"


def _lock_status(records: wire.Records, key: str) -> LockStatus:
    if records.get(key) not in ("held", "1"):
        return LockStatus(False)
    return LockStatus(
        True,
        holder=wire.printable(records.get("holder"), 200),
        age_s=records.number("age_s"),
        left_s=_signed(records.get("left_s")),
        since=records.number("since"),  # digits only (to_int), else unknown
    )


SUDOERS_FILE = "/etc/sudoers.d/bluegreen-swap"
CUT_HELPER = "/usr/local/sbin/bluegreen-swap-cut"
_HELPER_FILES = ("lib.sh", "nginx_build.sh", "connections.sh")
DEFAULT_NGINX = "/usr/sbin/nginx"
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+-]*")
_SAFE_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


def cut_helper(nginx: str = DEFAULT_NGINX) -> str:
    """The drain's cut as root, for ``sudo: true``: a fixed script that stops the old workers of the
    master its pid file names (lbscripts' ``cut_old_workers``), and refuses any argument. Installed
    at ``CUT_HELPER``, root-owned 0755 (``python -m swap_action sudo-setup --helper``).

    Nothing the caller controls reaches it: sudo's env_reset drops most of the environment, and the
    helper does not rely on it: PATH, the nginx binary (run as root for ``nginx -V``) and the
    scripts' knobs are fixed in the file, so a deploy user's ``PATH=~/evil:$PATH`` (sudoers without
    ``secure_path``) runs nothing of theirs."""
    nginx = checked_nginx_path(nginx)
    parts = [resources.files("swap_action").joinpath(f"lbscripts/{name}").read_text() for name in _HELPER_FILES]
    return (
        "#!/bin/sh\n# bluegreen-swap-cut: stop the old Nginx workers ('shutting down') of the master its pid\n"
        "# file names, and nothing else; no arguments. Generated by 'python -m swap_action sudo-setup\n"
        f"# --helper': install it root-owned, mode 0755, as {CUT_HELPER}.\n"
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\n"
        '[ "$#" -eq 0 ] || { echo "bluegreen-swap-cut takes no arguments" >&2; exit 2; }\n'
        + "\n".join(parts)
        + f"\n# Fixed here, whatever the environment said.\nBG_SUDO=0\nBG_PROC=/proc\n_nginx={nginx}\ncut_old_workers\n"
    )


def checked_nginx_path(nginx: str) -> str:
    """An absolute path of plain characters: it goes into a sudoers line and a root-run script."""
    if not _SAFE_PATH.fullmatch(nginx) or "/../" in nginx + "/" or nginx.endswith("/"):
        raise InputError(
            "nginx",
            f"{nginx!r} is not a plain absolute path to the nginx binary",
            "give its path, e.g. --nginx /usr/sbin/nginx (letters, digits, / _ . + - only)",
        )
    return nginx


def sudoers_line(user: str, command: str) -> str:
    """One sudoers line. A command with arguments allows exactly those; one without any would allow
    every argument, so the helper's line says ``""``: no arguments at all."""
    return f"{user} ALL=(root) NOPASSWD: {command}" + (' ""' if " " not in command else "")


def sudoers_lines(user: str, nginx: str = DEFAULT_NGINX) -> list[str]:
    """The sudoers lines a swap needs with ``sudo: true``: each command with fixed arguments."""
    if not _SAFE_USER.fullmatch(user):
        raise InputError(
            "user",
            f"{user!r} is not a user name sudoers can take as it is",
            "give the login name, e.g. --user deploy (lower-case letters, digits, _ . -)",
        )
    nginx = checked_nginx_path(nginx)
    commands = (f"{nginx} -t -q", f"{nginx} -T", f"{nginx} -s reload", CUT_HELPER)
    return [sudoers_line(user, command) for command in commands]


def _refuse_privileges(records: wire.Records, config_path: str, where: str) -> None:
    """Before anything changed: the LB user may not do what a swap needs. Names what to add."""
    user = wire.printable(records.get("sudo_user")) or "this user"
    directory = records.get("dir_unwritable")
    if directory:
        raise PrivilegeError(
            f"{user} on {where} cannot write {wire.printable(directory, 300)}, where the managed file, "
            "its candidate and the lock live",
            f"make it writable for {user} (mounted read-only, or another owner: chown {user} "
            f"{wire.printable(directory, 300)}), with {config_path} included from nginx.conf; nothing was changed",
        )
    missing = [wire.printable(rule, 300) for rule in records.all("sudo_missing")]
    if missing:
        lines = [sudoers_line(user, rule) for rule in missing if rule.startswith("/")]
        raise PrivilegeError(
            f"sudo -n refuses {', '.join(repr(rule) for rule in missing)} for {user} on {where}: "
            "a swap with sudo needs it",
            f"add to {SUDOERS_FILE} (visudo -f {SUDOERS_FILE}): " + "; ".join(lines) + "; nothing was changed"
            if lines
            else "install sudo on the LB host; nothing was changed",
        )
