"""Errors raised by the swap engine.

Every error carries a ``cause`` (what went wrong, in the user's terms) and a ``fix`` (what to do
about it). Lower-level errors (Docker SDK, paramiko, subprocess, jinja2) are mapped into this
hierarchy at the boundary where they occur, so callers only ever handle these::

    SwapError
    ├── InputError            bad input; refused before anything on the LB is touched
    ├── TransportError        the LB host cannot be reached or a command on it failed to run
    │   └── CommandTimeout    a command on the LB host did not finish in time
    ├── LockError             another swap holds the lock on this LB
    ├── PrivilegeError        the LB user may not do what a swap needs (sudo rule, directory)
    ├── StateError            the managed file cannot be read or understood
    ├── HealthCheckError      a server of the target slot is unhealthy (nothing was changed)
    ├── ConfigTestError       ``nginx -t`` refused the candidate (the live file is unchanged)
    ├── ReloadError           the reload was refused or could not be confirmed live
    ├── VerificationError     a check through the LB failed after a step
    ├── HookError             a pre-switch, post-switch or post-drain command failed or timed out
    └── RestoreError          putting the previous config back failed too (needs a human)
"""

from __future__ import annotations


class SwapError(Exception):
    """Base class: ``cause`` says what went wrong, ``fix`` what to do about it."""

    title = "swap failed"

    def __init__(self, cause: str, fix: str = "", *, detail: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix
        self.detail = detail

    def __str__(self) -> str:
        text = self.cause
        if self.fix:
            text += f"\nFix: {self.fix}"
        return text


class InputError(SwapError):
    title = "invalid input"

    def __init__(self, name: str, cause: str, fix: str) -> None:
        super().__init__(f"input '{name}': {cause}", fix)
        self.input_name = name


class TransportError(SwapError):
    title = "cannot reach the load balancer"
    # False when the command was refused before anything reached the LB (a container that is not
    # running, a connection that never opened): nothing of it can have run there.
    sent = True

    @classmethod
    def unsent(cls, cause: str, fix: str = "") -> TransportError:
        error = cls(cause, fix)
        error.sent = False
        return error


class CommandTimeout(TransportError):
    title = "command on the load balancer timed out"


class LockError(SwapError):
    title = "another swap is running"


class PrivilegeError(SwapError):
    title = "missing permission on the load balancer"


class StateError(SwapError):
    title = "cannot read the live state"


class HealthCheckError(SwapError):
    title = "target slot is unhealthy"


class ConfigTestError(SwapError):
    title = "nginx -t refused the new config"


class ReloadError(SwapError):
    title = "reload not confirmed"


class VerificationError(SwapError):
    title = "verification through the load balancer failed"


class HookError(SwapError):
    """A hook (swap_action/hooks.py) failed: ``hook`` names it, ``detail`` holds its last lines of output."""

    title = "hook failed"

    def __init__(self, cause: str, fix: str = "", *, detail: str = "", hook: str = "") -> None:
        super().__init__(cause, fix, detail=detail)
        self.hook = hook
        if hook:
            self.title = f"{hook} hook failed"


class RestoreError(SwapError):
    title = "restoring the previous config failed"
