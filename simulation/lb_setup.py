"""What the harness changes in an LB's Nginx configuration, and nothing else.

The harness needs three things from the LB it validates: the upstream the site proxies to is the
managed upstream file (the slots' servers, and the generation marker that proves which config is
served), that file is included in the http context, and every location proxying to the upstream
answers ``X-Upstream-Addr: $upstream_addr`` (how the harness tells the slots apart). ``plan_lb``
reads the configuration Nginx would load and returns the files to put on the LB, each change
said in words (``LbPlan.added``); every other byte of the team's config is left as it was.

Where the managed file goes: the file that defined the upstream when it held nothing else
(replaced), else ``conf.d/upstream.conf`` when the http block already includes ``conf.d/*.conf``
(the action's default ``config-path``), else ``bluegreen/upstream.conf`` with an include added.
An upstream defined next to other blocks is cut out of its file (a comment says where it went).

The site: with ``--nginx-template``, or when no server proxies to the upstream (a stock image),
the template (or the harness's own server block) replaces the server blocks on port 80.

The staging route (``staging_site``, only when the managed file defines the staging upstream): a
server block of its own for the staging host name on the site's port, in ``bluegreen-site/staging.conf``
with an include. ``LbPlan.include_dir`` names a directory whose new ``*.conf`` files the http block
loads (a conf.d): where a seeded bad swap drops a file Nginx refuses.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from swap_action.nginxconf import Directive
from swap_action.upstream import STATE_PREFIX, is_marker_listen

from .nginx_config import CONF_DIR, ConfigError, Placed, Tree, body_offset

HEADER = "X-Upstream-Addr"
HEADER_LINE = f"add_header {HEADER} $upstream_addr always;"
CONF_D_UPSTREAM = f"{CONF_DIR}/conf.d/upstream.conf"
OWN_UPSTREAM = f"{CONF_DIR}/bluegreen/upstream.conf"
OWN_SITE = f"{CONF_DIR}/bluegreen-site/site.conf"
OWN_STAGING = f"{CONF_DIR}/bluegreen-site/staging.conf"
DEFAULT_ERROR_LOG = "/var/log/nginx/error.log"
MARK = "added by the simulation harness"


class SetupError(ValueError):
    """The LB's configuration cannot be used as is; the message says why and what to change."""


@dataclass
class LbPlan:
    files: dict[str, bytes]  # path on the LB -> bytes to put there before Nginx starts
    managed_file: str  # the engine's config-path
    port: int  # the port the site listens on (published on 127.0.0.1)
    error_log: str  # the main config's error_log (or the default)
    added: list[str] = field(default_factory=list)  # each change, for people
    include_dir: str | None = None  # a directory whose new *.conf files the http block loads (None: none)


@dataclass(frozen=True)
class StagingSite:
    """The staging route: requests for ``host`` go to ``upstream`` (the idle slot); ``text`` renders
    its server block for the site's port."""

    host: str
    upstream: str
    text: Callable[[int], str]


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def _indent(text: str, offset: int) -> str:
    """The whitespace that starts the line holding ``offset``."""
    line = text[text.rfind("\n", 0, offset) + 1 : offset]
    return line[: len(line) - len(line.lstrip())]


def _children(directive: Directive) -> list[Directive]:
    return directive.block or []


def _settings(upstream: Directive) -> str:
    """The user's upstream settings the managed file does not carry, for the message."""
    own = [" ".join([d.name, *d.values]) for d in _children(upstream) if d.name != "server"]
    params = sorted(
        {
            arg
            for d in _children(upstream)
            if d.name == "server"
            for arg in d.values[1:]
            if arg != "down" and not arg.startswith("weight=")  # what a swap sets
        }
    )
    parts = own + ([f"server parameters {' '.join(params)}"] if params else [])
    return f"; its own settings are not carried over: {'; '.join(parts)}" if parts else ""


def listen_port(server: Directive) -> int | None:
    """The plain-HTTP TCP port a server block listens on (80 when it has no listen); None: only
    unix sockets or TLS."""
    listens = [child.values for child in _children(server) if child.name == "listen" and child.args]
    if not listens:
        return 80
    for address, *options in listens:
        if address.startswith("unix:") or is_marker_listen(address) or "ssl" in options or "quic" in options:
            continue
        match = re.search(r"(?:^|:)(\d+)$", address)
        if match:
            return int(match.group(1))
        if not re.search(r":\d+$", address):  # a host without a port: 80
            return 80
    return None


def proxies_to(directive: Directive, upstream: str) -> bool:
    if directive.name != "proxy_pass" or not directive.args:
        return False
    return re.fullmatch(rf"https?://{re.escape(upstream)}(/.*)?", directive.values[0]) is not None


class _Planner:
    def __init__(self, tree: Tree, upstream: str) -> None:
        self.tree = tree
        self.upstream = upstream
        self.placed = list(tree.walk())
        self.edits: dict[str, list[_Edit]] = {}
        self.new_files: dict[str, str] = {}
        self.added: list[str] = []
        https = [p for p in self.placed if p.name == "http" and not p.parents]
        if not https:
            raise SetupError(f"{tree.main} has no http block: give the LB's whole nginx.conf (--nginx-conf)")
        self.http = https[0]

    # -- the pieces -----------------------------------------------------------------------
    def in_http(self, name: str) -> list[Placed]:
        return [p for p in self.placed if p.name == name and p.context[:1] == ("http",)]

    def servers(self) -> list[Placed]:
        return [p for p in self.in_http("server") if p.context == ("http",)]

    def edit(self, file: str, start: int, end: int, text: str) -> None:
        self.edits.setdefault(file, []).append(_Edit(start, end, text))

    def include(self, path: str, why: str) -> None:
        """Load ``path`` in the http block, unless an include there already does."""
        if self.tree.would_include(path):
            return
        end = self.http.directive.end - 1
        self.edit(self.http.file, end, end, f"    include {path};  # {MARK}\n")
        self.added.append(f"'include {path};' added to the http block of {self.http.file} ({why})")

    def owns_only(self, file: str, keep: list[Placed]) -> bool:
        """True when ``file`` holds nothing but ``keep`` (and servers on no plain port: a marker)."""
        if file == self.tree.main:
            return False
        kept = [p.directive for p in keep]
        for directive in self.tree.directives(file):
            if any(directive is k for k in kept):
                continue
            if directive.name == "server" and listen_port(directive) is None:
                continue
            return False
        return True

    def cut(self, placed: Placed, note: str) -> None:
        self.edit(placed.file, placed.directive.start, placed.directive.end, f"# {note} ({MARK})")

    # -- the plan -------------------------------------------------------------------------
    def managed_file(self, content: str) -> str:
        u = self.upstream
        defined = [p for p in self.in_http("upstream") if p.values[:1] == [u]]
        if len(defined) > 1:
            places = ", ".join(d.where() for d in defined)
            raise SetupError(f"upstream '{u}' is defined more than once ({places}): keep one")
        managed_already = bool(defined) and STATE_PREFIX in self.tree.text(defined[0].file)
        settings = _settings(defined[0].directive) if defined and not managed_already else ""
        if defined and self.owns_only(defined[0].file, defined):
            path = defined[0].file
            self.added.append(
                f"managed upstream file {path} reset: blue live, green idle, and the generation marker"
                if managed_already
                else f"upstream '{u}' in {path} replaced by the managed upstream file (blue live, green idle, "
                f"and the generation marker){settings}"
            )
        else:
            if defined:
                self.cut(defined[0], f"upstream '{u}' moved to the managed upstream file")
                self.added.append(f"upstream '{u}' cut out of {defined[0].where()} (it shares its file){settings}")
            conf_d = CONF_D_UPSTREAM not in self.tree.files and self.tree.would_include(CONF_D_UPSTREAM)
            path = CONF_D_UPSTREAM if conf_d else OWN_UPSTREAM
            self.added.append(
                f"managed upstream file {path} written: upstream '{u}' (blue live, green idle) and the generation marker"
            )
            self.include(path, "the managed upstream file")
        self.new_files[path] = content
        return path

    def proxy_blocks(self) -> list[tuple[Placed, Placed | None]]:
        """(block to carry the header, its server) for each proxy_pass to the upstream."""
        found: list[tuple[Placed, Placed | None]] = []
        for placed in self.placed:
            if placed.context[:1] != ("http",) or not proxies_to(placed.directive, self.upstream):
                continue
            holder = next((p for p in reversed(placed.parents) if p.name in ("location", "if")), None)
            server = next((p for p in placed.parents if p.name == "server"), None)
            if holder is not None and all(holder.directive is not seen.directive for seen, _ in found):
                found.append((holder, server))
        return found

    def headers(self, blocks: list[tuple[Placed, Placed | None]]) -> None:
        for block, _server in blocks:
            children = _children(block.directive)
            if any(c.name == "add_header" and c.args and c.values[0].lower() == HEADER.lower() for c in children):
                continue
            text = self.tree.text(block.file)
            indent = _indent(text, children[0].start) if children else _indent(text, block.directive.start) + "    "
            body = body_offset(text, block.directive)
            self.edit(block.file, body, body, f"\n{indent}{HEADER_LINE}  # {MARK}")
            label = " ".join([block.name, *block.values])
            self.added.append(f"'{HEADER_LINE}' added to '{label}' in {block.where()} (tells the slots apart)")

    def site(self, text: str, why: str) -> int:
        """Put the site ``text`` in place of the server blocks on port 80; its port (80)."""
        on_80 = [server for server in self.servers() if listen_port(server.directive) == 80]
        files = {server.file for server in on_80}
        if len(files) == 1 and self.owns_only(next(iter(files)), on_80):
            path = next(iter(files))
            self.new_files[path] = text
            self.added.append(f"{why} written to {path}, in place of its server block(s) on port 80")
            return 80
        for server in on_80:
            self.cut(server, "server block on port 80 replaced by the harness's site")
            self.added.append(f"server block on port 80 at {server.where()} cut out (the site below replaces it)")
        self.new_files[OWN_SITE] = text
        self.added.append(f"{why} written to {OWN_SITE}")
        self.include(OWN_SITE, "the site")
        return 80

    def staging(self, site: StagingSite, port: int) -> None:
        """The staging route's server block in a file of its own, loaded in the http block."""
        self.new_files[OWN_STAGING] = site.text(port)
        self.added.append(
            f"the staging route written to {OWN_STAGING}: a server for Host {site.host} on port {port} proxying to "
            f"upstream '{site.upstream}' (the idle slot)"
        )
        self.include(OWN_STAGING, "the staging route")

    def include_dir(self, managed_file: str) -> str | None:
        """The first of the managed file's directory, conf.d and site whose new *.conf files Nginx loads."""
        for directory in (posixpath.dirname(managed_file), f"{CONF_DIR}/conf.d", f"{CONF_DIR}/site"):
            if self.tree.would_include(f"{directory}/zz-bluegreen-probe.conf"):
                return directory
        return None

    def error_log(self) -> str:
        for placed in self.placed:
            if not placed.parents and placed.name == "error_log" and placed.directive.args:
                return placed.values[0]
        return DEFAULT_ERROR_LOG

    def files(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for path, edits in self.edits.items():
            text = self.tree.text(path)
            for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
                text = text[: edit.start] + edit.text + text[edit.end :]
            out[path] = text.encode("utf-8", "surrogateescape")
        for path, text in self.new_files.items():
            out[path] = text.encode("utf-8", "surrogateescape")
        return out


def plan_lb(
    tree: Tree,
    *,
    upstream: str,
    managed: str,
    template_site: str | None = None,
    harness_site: str = "",
    user_files: dict[str, bytes] | None = None,
    staging_site: StagingSite | None = None,
) -> LbPlan:
    """The files to put on the LB: the user's (``user_files``, already in ``tree``), with the
    harness's changes. ``managed`` is the managed upstream file's initial content;
    ``template_site`` the rendered ``--nginx-template``; ``harness_site`` the harness's own
    server block, used when no server proxies to the upstream; ``staging_site`` the staging
    route's server block (given only when ``managed`` defines its upstream)."""
    try:
        planner = _Planner(tree, upstream)
        blocks = planner.proxy_blocks()
        if template_site is not None:
            port = planner.site(template_site, "your server block (--nginx-template)")
        elif not blocks:
            why = f"the harness's site (no server block proxies to upstream '{upstream}'): a server on port 80"
            port = planner.site(harness_site, why)
        else:
            servers = [server.directive for _block, server in blocks if server is not None]
            ports = [p for p in (listen_port(server) for server in servers) if p is not None]
            if not ports:
                raise SetupError(
                    f"no server block proxying to upstream '{upstream}' listens on a plain-HTTP port "
                    "(the harness sends HTTP): give one a 'listen 80;' or use --nginx-template"
                )
            port = ports[0]
            planner.headers(blocks)
        managed_file = planner.managed_file(managed)
        if staging_site is not None:
            planner.staging(staging_site, port)
        files = dict(user_files or {})
        files.update(planner.files())
        return LbPlan(files, managed_file, port, planner.error_log(), planner.added, planner.include_dir(managed_file))
    except ConfigError as exc:
        raise SetupError(f"the LB's Nginx configuration does not parse: {exc}") from None
