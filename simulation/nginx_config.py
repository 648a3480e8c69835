"""An LB's Nginx configuration as files on the LB, walked as Nginx loads it, so the harness can add
a line or cut a block and leave every other byte of a team's config as it was.

Parsing is the engine's own (``swap_action.nginxconf``: Nginx's grammar, directives with their
offsets, includes as Nginx's glob reads them); this adds what the harness needs on top: the files
taken from an image (bytes, symlinks) and each directive with its file and the blocks around it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from swap_action.nginxconf import Config, ConfigSyntaxError, Directive

CONF_DIR = "/etc/nginx"
MAIN_CONF = f"{CONF_DIR}/nginx.conf"
MAX_INCLUDE_DEPTH = 32
MAX_LINKS = 16


class ConfigError(ValueError):
    """The configuration cannot be read (unbalanced braces, unterminated quote): file and line."""


@dataclass(frozen=True)
class Placed:
    """A directive as Nginx loads it: its file and the blocks around it (outermost first)."""

    directive: Directive
    file: str
    parents: tuple[Placed, ...]

    @property
    def name(self) -> str:
        return self.directive.name

    @property
    def values(self) -> list[str]:
        return self.directive.values

    @property
    def context(self) -> tuple[str, ...]:
        return tuple(parent.name for parent in self.parents)

    def where(self) -> str:
        return f"{self.file}:{self.directive.line}"


def body_offset(text: str, block: Directive) -> int:
    """The offset just after a block's ``{``."""
    after = block.args[-1].end if block.args else block.start + len(block.name)
    return text.index("{", after) + 1


class Tree:
    """Config files by their absolute path on the LB; ``links`` maps a symlink to its target (a
    link to a file in the tree reads as that file, as Nginx opens it; others are not read)."""

    def __init__(self, files: dict[str, bytes], links: dict[str, str] | None = None, main: str = MAIN_CONF) -> None:
        texts = {path: data.decode("utf-8", "surrogateescape") for path, data in files.items()}
        for link in links or {}:
            target = self._resolve(link, links or {})
            if target in texts:
                texts.setdefault(link, texts[target])
        self.main = main
        self.config = Config(texts, main)

    @staticmethod
    def _resolve(path: str, links: dict[str, str]) -> str:
        for _ in range(MAX_LINKS):
            if path not in links:
                break
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), links[path]))
        return path

    @property
    def files(self) -> dict[str, str]:
        return self.config.files

    def text(self, path: str) -> str:
        return self.config.files[path]

    def directives(self, path: str) -> list[Directive]:
        try:
            return self.config.parsed(path)
        except ConfigSyntaxError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def included(self, pattern: str) -> list[str]:
        """The files an ``include`` argument loads (relative to the config's directory)."""
        return self.config.matching(posixpath.normpath(posixpath.join(posixpath.dirname(self.main), pattern)))

    def would_include(self, path: str) -> bool:
        """Whether a file created at ``path`` would be loaded in the http block."""
        try:
            return self.config.would_include(path, ("http",))
        except ConfigSyntaxError as exc:
            raise ConfigError(str(exc)) from None

    def walk(self) -> Iterator[Placed]:
        """Every directive Nginx loads from the main file, depth first, includes followed."""
        yield from self._walk(self.main, self.directives(self.main), (), 0)

    def _walk(
        self, file: str, directives: list[Directive], parents: tuple[Placed, ...], depth: int
    ) -> Iterator[Placed]:
        for directive in directives:
            placed = Placed(directive, file, parents)
            yield placed
            if directive.name == "include" and directive.args and depth < MAX_INCLUDE_DEPTH:
                for path in self.included(directive.args[0].value):
                    yield from self._walk(path, self.directives(path), parents, depth + 1)
            elif directive.block is not None:
                yield from self._walk(file, directive.block, (*parents, placed), depth)
