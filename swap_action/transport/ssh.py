"""SSH to the load balancer host with paramiko.

The host key is checked against ``known-hosts`` and never accepted blindly. Commands are sent as
one shell-quoted argument vector (``shlex.join``), so no user input is ever parsed by the shell.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Sequence

import paramiko

from ..errors import CommandTimeout, InputError, TransportError
from . import CommandResult, Transport, describe

_URL = re.compile(
    r"^ssh://(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?/?$"
)


_MARKERS = ("@cert-authority", "@revoked")


def _load_key(text: str) -> paramiko.PKey:
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text.strip() + "\n"))
        except paramiko.PasswordRequiredException:
            raise InputError(
                "ssh-key",
                "the private key is encrypted (it has a passphrase)",
                "store a key without a passphrase (ssh-keygen -p -N '' -f KEYFILE on a copy) in the secret",
            ) from None
        except Exception:
            # A malformed key makes paramiko and cryptography raise SSHException and ValueError,
            # but also AssertionError, IndexError, struct.error...: each means "not this kind of
            # key". KeyboardInterrupt and SystemExit are not Exceptions: they still stop the run.
            continue
    raise InputError(
        "ssh-key",
        "not an unencrypted OpenSSH private key (ed25519, ecdsa or rsa)",
        "store the private key (the whole '-----BEGIN ... PRIVATE KEY-----' block) in a secret",
    )


def parse_known_hosts(text: str) -> list[paramiko.hostkeys.HostKeyEntry]:
    """The host keys of a known-hosts text; a line that is not a plain host key line is refused.

    Marker lines are refused, not skipped: ``@cert-authority`` (trust any key a CA signed) is not
    supported here, and skipping ``@revoked`` would let another line trust the key it revokes.
    A line whose key type paramiko does not know is skipped: ssh-keyscan lists every type the
    host has, and one usable line is enough.
    """
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            marker = line.split(maxsplit=1)[0]
            raise InputError(
                "known-hosts",
                f"line {number}: {marker if marker in _MARKERS else 'a marker'} line is not supported",
                "give the host's own key lines (ssh-keyscan HOST, checked out of band), "
                "without @cert-authority or @revoked lines",
            )
        entry = _host_key_entry(number, line)
        if entry is not None:
            entries.append(entry)
    if not entries:
        raise InputError(
            "known-hosts",
            "no host key of a supported type (ed25519, ecdsa or rsa) in it",
            "pass the output of 'ssh-keyscan HOST' (checked out of band) as known-hosts",
        )
    return entries


def _host_key_entry(number: int, line: str) -> paramiko.hostkeys.HostKeyEntry | None:
    """One ``hosts keytype base64`` line; None for a key type paramiko does not know."""
    problem = f"line {number} is not a 'hosts keytype base64-key' line"
    if len(line.split()) < 3:
        raise InputError("known-hosts", problem, "copy the lines ssh-keyscan prints, each whole")
    try:
        return paramiko.hostkeys.HostKeyEntry.from_line(line, lineno=number)
    except Exception:
        # InvalidHostKey (bad base64), SSHException, and on a garbled key also ValueError,
        # IndexError, AssertionError...: all mean the line is not a usable host key.
        raise InputError(
            "known-hosts", f"{problem}: its key does not decode", "copy the lines ssh-keyscan prints, each whole"
        ) from None


class SshTransport(Transport):
    def __init__(self, host: str, port: int, user: str, key: paramiko.PKey, known_hosts: str) -> None:
        self.description = f"ssh://{user}@{host}:{port}"
        self._client = paramiko.SSHClient()
        host_keys = self._client.get_host_keys()
        for entry in parse_known_hosts(known_hosts):
            for name in entry.hostnames:
                host_keys.add(name, entry.key.get_name(), entry.key)
        # Unknown or changed host keys are refused, never added.
        self._client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self._client.connect(
                host.strip("[]"),
                port=port,
                username=user,
                pkey=key,
                timeout=15,
                allow_agent=False,
                look_for_keys=False,
                banner_timeout=15,
                auth_timeout=15,
            )
        except paramiko.BadHostKeyException as exc:
            raise TransportError(
                f"the host key of {host}:{port} does not match known-hosts ({exc.key.get_name()})",
                "check you are talking to the right host; update known-hosts only if its key really changed",
            ) from None
        except paramiko.SSHException as exc:
            message = str(exc)
            if "not found in known_hosts" in message:
                raise TransportError(
                    f"{host}:{port} is not in known-hosts",
                    f"add its key: ssh-keyscan -p {port} {host} (and check it out of band) into the known-hosts secret",
                ) from None
            raise TransportError(
                f"SSH to {host}:{port} failed: {message}", "check the user, the key and sshd"
            ) from None
        except (TimeoutError, OSError) as exc:
            raise TransportError(
                f"cannot connect to {host}:{port}: {exc}", "check the host, the port and the firewall"
            ) from None

    @classmethod
    def from_url(cls, url: str, *, key: str | None, known_hosts: str | None) -> SshTransport:
        match = _URL.match(url.strip())
        if not match:
            raise InputError("target", f"'{url}' is not an SSH target", "write ssh://user@host or ssh://user@host:port")
        if not key:
            raise InputError("ssh-key", "an SSH target needs a private key", "pass secrets.YOUR_KEY as ssh-key")
        if not known_hosts or not known_hosts.strip():
            raise InputError(
                "known-hosts",
                "an SSH target needs the host's public key (host keys are never accepted blindly)",
                "pass the output of 'ssh-keyscan HOST' (checked out of band) as known-hosts",
            )
        port = int(match.group("port") or 22)
        return cls(match.group("host"), port, match.group("user"), _load_key(key), known_hosts)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        command = shlex.join(argv)
        try:
            channel_in, stdout, stderr = self._client.exec_command(command, timeout=timeout)
            if stdin:
                channel_in.write(stdin)
            channel_in.channel.shutdown_write()
            out = stdout.read()
            err = stderr.read()
            code = stdout.channel.recv_exit_status()
        except TimeoutError:
            raise CommandTimeout(
                f"'{describe(argv)}' did not finish within {timeout:.0f}s", "check the LB host"
            ) from None
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(
                f"SSH command '{describe(argv)}' failed: {exc}", "check the connection to the LB host"
            ) from None
        if code == 127:
            raise TransportError(
                f"'{argv[0]}' is not installed on {self.description}", f"install {argv[0]} on the LB host"
            )
        return CommandResult(tuple(argv), code, out.decode(errors="replace"), err.decode(errors="replace"), out)

    def write_file(self, path: str, data: bytes) -> None:
        try:
            with self._client.open_sftp() as sftp:
                sftp.putfo(io.BytesIO(data), path)
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(
                f"cannot write {path} over SFTP: {exc}", "check the SSH user may write the config directory"
            ) from None

    def close(self) -> None:
        self._client.close()
