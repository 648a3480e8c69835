"""Before anything is written: which file Nginx loads for the upstream, and whether the one given
is it. Read from ``nginx -T`` (every file Nginx loads, with its path), never guessed.

- ``discover``: no config-path given: the file carrying our state line, else the one file that
  defines the upstream in the http block; ambiguous or absent: stop, naming what Nginx loads.
- ``check``: a given config-path is a regular file the running config includes in its http block
  (or, not there yet, one an include in the http block would load), holds no server blocks of its
  own, and no other file defines the same upstream.
"""

from __future__ import annotations

from . import adopt
from .errors import InputError, PrivilegeError, StateError
from .host import Dump
from .nginx import emerg_line
from .nginxconf import Config, ConfigSyntaxError, Directive, split_dump
from .upstream import STATE_PREFIX, is_marker_listen

HTTP = ("http",)


def config_of(dump: Dump) -> Config:
    if not dump.ok:
        if "(13: Permission denied)" in dump.error:  # a user that is not root, without sudo
            raise PrivilegeError(
                f"nginx -T cannot read what it needs as this user: {emerg_line(dump.error)}",
                "run as root, or as this user with sudo: true (--sudo) and the four sudoers lines of the "
                "README's 'Least privilege' section; nothing was changed",
            )
        raise StateError(
            f"nginx -T fails on the LB: {emerg_line(dump.error)}",
            "the running config must pass nginx -t before a swap: fix it (or the DNS of its upstream hosts) first",
        )
    try:
        return split_dump(dump.text)
    except ConfigSyntaxError as exc:
        raise StateError(f"cannot read nginx -T's output: {exc}", "report this with the LB's nginx -T output") from None


def discover(config: Config, upstream: str) -> str:
    defining = [u for u in config.upstreams(upstream) if u.context == HTTP]
    managed = [u for u in defining if STATE_PREFIX in config.files.get(u.file, "")]
    chosen = managed or defining
    if len(chosen) == 1:
        return chosen[0].file
    found = upstream_list(config)
    if chosen:
        cause = f"'upstream {upstream}' is defined in {len(chosen)} files Nginx loads: " + ", ".join(
            u.file for u in chosen
        )
    else:
        cause = f"no file Nginx loads defines 'upstream {upstream}'" + (f" (upstreams found: {found})" if found else "")
    raise InputError(
        "config-path",
        cause,
        "set config-path to the file that holds the upstream (or to a new file in a directory Nginx includes "
        f"in its http block, e.g. {suggest(config)}), or set 'upstream' to the name in use",
    )


def check(config: Config | None, path: str, file_kind: str, upstream: str) -> None:
    if file_kind in ("symlink", "notregular"):
        raise InputError(
            "config-path",
            f"{path} is a {'symbolic link' if file_kind == 'symlink' else 'special file'}, "
            "not a regular file: the swap never writes through it",
            "point config-path at the regular file itself",
        )
    if config is None:
        return
    if file_kind == "present":
        contexts = config.contexts(path)
        if HTTP not in contexts:
            where = (
                f"in its http block (only in: {', '.join(' > '.join(c) or 'main' for c in contexts)})"
                if contexts
                else "at all"
            )
            raise InputError(
                "config-path",
                f"the running Nginx does not include {path} {where}, so a swap there would change nothing "
                f"for traffic; files Nginx loads with upstreams: {upstream_list(config) or 'none'}",
                fix_for(config, upstream),
            )
        if any(not is_marker(server) for server in config.server_blocks(path)):
            raise adopt.refuse_site_file(path, upstream)
    elif not config.would_include(path, HTTP):
        raise InputError(
            "config-path",
            f"{path} does not exist and Nginx would not load a file created there (no include in its http "
            f"block matches it); upstreams Nginx loads: {upstream_list(config) or 'none'}",
            fix_for(config, upstream),
        )
    elsewhere = [u for u in config.upstreams(upstream) if u.file != path]
    if elsewhere:
        first = elsewhere[0]
        raise InputError(
            "config-path",
            f"'upstream {upstream}' is already defined in {first.file} (line {first.directive.line}), not in "
            f"{path}: two definitions would make nginx -t fail",
            f"set config-path to {first.file} (a hand-written upstream is adopted as it is)",
        )


def is_marker(server: Directive) -> bool:
    """Our generation marker's server block (it listens only on the marker's address)."""
    listens = [d.values for d in server.block or [] if d.name == "listen"]
    return bool(listens) and all(v[:1] and is_marker_listen(v[0]) for v in listens)


def fix_for(config: Config, upstream: str) -> str:
    defined = [u.file for u in config.upstreams(upstream) if u.context == HTTP]
    if len(defined) == 1:
        return f"set config-path to {defined[0]} (it defines 'upstream {upstream}'), or leave it empty to find it"
    return f"set config-path to a file Nginx includes in its http block, e.g. {suggest(config)}"


def upstream_list(config: Config) -> str:
    return ", ".join(f"'{u.name}' in {u.file}" for u in config.upstreams())


def suggest(config: Config) -> str:
    conf_d = f"{config.main.rsplit('/', 1)[0]}/conf.d/upstream.conf"
    return conf_d if config.would_include(conf_d, HTTP) else "a file named by an include in the http block"
