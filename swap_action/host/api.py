"""The ``LbHost`` interface and the dataclasses its operations return."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Probe:
    nginx_version: str
    has_curl: bool
    master_pid: int | None
    error_log: str  # "-" when unknown
    managed_file: str | None  # the file's exact text; None unless it is a regular file
    file_kind: str = "present"  # present, missing, symlink or notregular (never read through)
    pid_file: str = ""  # where this Nginx writes its master's pid (main config, else the build's)
    master_problem: str = ""  # why no running master was proven from it ("" when master_pid is set)


@dataclass(frozen=True)
class Dump:
    """``nginx -T``: the configuration as Nginx reads it, every file with its path."""

    ok: bool
    text: str
    error: str  # nginx's own message when it refused (``ok`` false)


@dataclass(frozen=True)
class LockState:
    acquired: bool
    holder: str = ""  # who holds it (when not acquired), as read from the LB: display only
    age_s: int | None = None
    left_s: int | None = None
    stale_from: str = ""  # a dead holder whose lock was taken over


@dataclass(frozen=True)
class LockStatus:
    """A lock as read on the LB (``lock_status``), or kept (``renew``), or broken (``break_lock``).

    ``held``: someone holds it (for ``renew``: still this run; when false, ``holder`` is who took
    it, "" when nobody). Times are in the LB's own clock; ``holder`` is display text only.
    """

    held: bool
    holder: str = ""
    age_s: int | None = None
    left_s: int | None = None  # until its lease ends (the holder renews it while it runs)
    since: int | None = None  # when the holder took it (unix seconds)


@dataclass(frozen=True)
class HttpAnswer:
    url: str
    status: int  # 0: no answer
    seconds: float
    body: str  # the first 2 KiB


@dataclass(frozen=True)
class Begun:
    """``begin``'s answer: the lock, and with it the state."""

    lock: LockState
    probe: Probe | None = None  # None unless the lock was acquired
    # A run that died mid-install was settled first: "restored" (its old bytes put back, what Nginx
    # served) or "kept" (Nginx served its candidate already: a restart or reload came between).
    recovered: str = ""
    gate: str = ""  # where the health checks begin started for the gate URLs are collected ("": none)
    dump: Dump | None = None  # nginx -T, read beside the probe (unless the proof is pending)
    proof_pending: bool = False  # the file's own marker was asked: install checks its answer


@dataclass(frozen=True)
class Planned:
    """The candidate tested on its own, and the target's health; nothing live changed."""

    test_ok: bool
    test_output: str
    health: tuple[HttpAnswer, ...]


@dataclass(frozen=True)
class ReloadResult:
    """``result``: confirmed, signal_failed, emerg (Nginx refused the config) or timeout."""

    result: str
    reload_at_ms: int | None = None  # unix time (ms, LB clock) the signal was sent
    signal_ms: int = 0
    new_workers_ms: int | None = None
    old_stopped_ms: int | None = None
    marker_ms: int | None = None
    confirmed_ms: int | None = None
    old_workers: tuple[int, ...] = ()
    message: str = ""  # the signal's output, or the [emerg] line
    new_workers: int | None = None  # at a timeout: what was seen
    old_left: int | None = None
    marker_ok: bool | None = None
    errlog_unreadable: str = ""  # the error log this user could not read (a refusal went unseen)

    @property
    def confirmed(self) -> bool:
        return self.result == "confirmed"


@dataclass(frozen=True)
class ReloadRequest:
    """What ``reload_and_confirm`` needs, for ``install`` to reload in the same round trip."""

    generation: str
    socket: str  # where the marker answers (upstream.marker_address), or "-" to skip the marker
    error_log: str  # "-" when unknown
    timeout_s: float


@dataclass(frozen=True)
class Installed:
    """The candidate put in place of the live file and tested there, with the target's health.

    ``applied``: both passed and the candidate is the live file (not yet reloaded); otherwise the
    old bytes are back in place, byte for byte.
    """

    applied: bool
    test_ok: bool
    test_output: str
    health: tuple[HttpAnswer, ...]
    reload: ReloadResult | None = None  # when a reload was asked for and the candidate was applied
    proof_failed: bool = False  # the marker did not prove Nginx serves the file: nothing was written


@dataclass(frozen=True)
class Connections:
    to_servers: int  # established connections from the LB to the servers, whoever holds them
    draining_workers: tuple[int, ...] = field(default_factory=tuple)
    # Those of ``to_servers`` the draining (old) Nginx workers hold, from their sockets in
    # /proc/PID/fd; None when their fds could not be read (not root). New workers may keep
    # talking to the old slot (the staging upstream points at it): only these end a drain.
    from_old_workers: int | None = None


class LbHost(abc.ABC):
    """What the engine may do on a load balancer host."""

    description = "load balancer"

    @abc.abstractmethod
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
        """Take the lock and read the state; once the lock is held, ``gate_urls`` are health-checked
        in the background for ``install`` to collect (``Begun.gate``); with ``dump``, ``nginx -T``
        is read in the same trip, or, with ``proof_socket`` and a file that has the state line,
        that file's own marker is asked for ``install`` to check (``Begun.proof_pending``)."""

    @abc.abstractmethod
    def dump_config(self) -> Dump:
        """``nginx -T``, before any lock (to find the managed file): writes nothing on the LB."""

    @abc.abstractmethod
    def release(self, lock_dir: str, owner: str) -> None: ...

    @abc.abstractmethod
    def renew(self, lock_dir: str, owner: str, lease_s: int) -> LockStatus:
        """Extend ``owner``'s lease by ``lease_s`` from now; ``held`` false: the lock is not ours."""

    @abc.abstractmethod
    def lock_status(self, lock_dir: str) -> LockStatus:
        """Who holds the lock, since when, how long its lease has left (changes nothing)."""

    @abc.abstractmethod
    def break_lock(self, lock_dir: str) -> LockStatus:
        """Remove the lock whoever holds it; what was broken (``held`` false: it was free)."""

    @abc.abstractmethod
    def discard_file(self, path: str) -> None:
        """Remove a ``*.upstream`` file ``adopt`` created (when it has to put everything back)."""

    @abc.abstractmethod
    def probe(self, config_path: str) -> Probe: ...

    @abc.abstractmethod
    def plan(
        self, config_path: str, text: str, generation: str, health_urls: Sequence[str], max_s: float
    ) -> Planned: ...

    @abc.abstractmethod
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
        """``health_urls`` are checked now, or, with ``gate`` (from ``begin``), collected from the
        checks begin started (only these URLs count). With ``reload``, an applied candidate is
        reloaded and confirmed in the same round trip (``Installed.reload``). With ``proof`` (the
        lock directory and the file's generation), nothing is written unless the marker begin asked answered it and the
        file's path (``Installed.proof_failed`` otherwise)."""

    @abc.abstractmethod
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
        """What ``install`` would decide (proof, gate, ``nginx -t`` of the whole config with the
        candidate in place), then the live bytes back whatever the verdict: ``applied`` is always
        false and nothing is reloaded. A fleet's prepare: every LB says yes before any changes."""

    @abc.abstractmethod
    def put_back(self, config_path: str, text: str) -> None:
        """A restore's bytes back in the live file's place, untested and not reloaded: only for the
        bytes Nginx still runs (no reload of this run went live), where ``nginx -t`` can fail for
        what broke since outside them (a log it can no longer open) and would leave the file saying
        what Nginx does not serve. Owner and mode kept; replaced by rename."""

    @abc.abstractmethod
    def reload_and_confirm(self, generation: str, socket: str, error_log: str, timeout_s: float) -> ReloadResult: ...

    @abc.abstractmethod
    def http(self, method: str, urls: Sequence[str], max_s: float) -> list[HttpAnswer]: ...

    @abc.abstractmethod
    def connections(self, servers: Sequence[str]) -> Connections: ...

    @abc.abstractmethod
    def stop_workers(self, pids: Sequence[int]) -> None: ...

    @abc.abstractmethod
    def marker_generation(self, socket: str, max_s: float = 2.0) -> str | None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection to the host."""
