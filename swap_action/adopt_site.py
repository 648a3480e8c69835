"""``python -m swap_action adopt``: move an upstream out of a site file into a file of its own,
included where the block was, so a swap can manage it. Checked with ``nginx -t``; the site's old
bytes stay as ``<site>.previous``; on any failure everything is put back as it was."""

from __future__ import annotations

from posixpath import dirname

from . import preflight
from .adopt import split_site
from .errors import ConfigTestError, InputError, StateError
from .host import LbHost
from .nginx import emerg_line, hint_for
from .upstream import new_generation


def move_out(host: LbHost, site: str, upstream: str) -> str:
    """Returns the new file's path (Nginx serves the same config; the next reload reads it)."""
    config = preflight.config_of(host.dump_config())
    defined = [u for u in config.upstreams(upstream) if u.file == site]
    if not defined or defined[0].context != preflight.HTTP:
        raise InputError(
            "config-path",
            f"{site} defines no 'upstream {upstream}' in the http block (upstreams Nginx loads: "
            f"{preflight.upstream_list(config) or 'none'})",
            "pass the site file that holds the upstream, and its name with --upstream",
        )
    new_path = f"{dirname(site)}/{upstream}.upstream"
    if new_path in config.files or any(config.would_include(new_path, c) for c in ((), preflight.HTTP)):
        raise InputError("config-path", f"{new_path} exists or is matched by an include", "move it away first")
    if host.probe(new_path).file_kind != "missing":
        raise InputError("config-path", f"{new_path} already exists", "move it away first")
    site_text = host.probe(site).managed_file
    if site_text is None:
        raise StateError(f"cannot read {site}", "check the path and the transport user's rights")
    new_site, moved = split_site(site_text, upstream, new_path)
    created = host.install(new_path, moved, new_generation(), [], 0)  # not included yet: nginx -t as before
    if not created.applied:
        raise StateError(f"cannot create {new_path}: {emerg_line(created.test_output)}", "check the directory")
    changed = host.install(site, new_site, new_generation(), [], 0)
    if not changed.applied:
        host.discard_file(new_path)
        raise ConfigTestError(
            f"nginx -t refused the site with the upstream moved out: {emerg_line(changed.test_output)}",
            hint_for(changed.test_output) + f" Everything was put back: {site} is as it was, {new_path} is gone.",
            detail=changed.test_output,
        )
    return new_path
