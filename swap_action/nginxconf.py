"""Nginx's configuration as ``nginx -T`` prints it: its files, their directives, and where each file
is included (main, http, server...), so the engine manages only a file the running config loads.

Why a parser of our own: crossplane (nginxinc's Python parser) is not packaged in Debian, and the
action's image takes Debian packages only. What is read here has already been accepted by
``nginx -t`` (``nginx -T`` prints only a config that parses), so this is the tokenizer of Nginx's
grammar (words, quotes, escapes, comments, ``;``, ``{``, ``}``) and a recursive descent, nothing
more; the unit tests check it against crossplane on the same configs. No regex reads a directive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from posixpath import dirname, join, normpath

FILE_HEADER = "# configuration file "
MAX_INCLUDE_DEPTH = 32


class ConfigSyntaxError(ValueError):
    """The text does not follow Nginx's grammar (unbalanced braces, an unterminated quote)."""


@dataclass(frozen=True)
class Token:
    value: str  # unquoted, escapes resolved
    start: int  # offsets of the raw token in its file's text
    end: int
    line: int
    quoted: bool = False


@dataclass
class Directive:
    name: str
    args: list[Token]
    start: int  # from the name's first character...
    end: int  # ...to just after its ';' or its block's '}'
    line: int
    block: list[Directive] | None = None

    @property
    def values(self) -> list[str]:
        return [arg.value for arg in self.args]


# The lexical units of Nginx's grammar, in the order they are tried at each position: a '#' starts a
# comment only at a token's start (inside a word it is part of the word); "${...}" keeps its braces.
_LEX = re.compile(
    r"""(?P<space>[ \t\r]+)
      | (?P<newline>\n)
      | (?P<comment>\#[^\n]*)
      | (?P<punct>[;{}])
      | (?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<word>(?:[^\s;{}"'\\$]|\\.|\$\{[^}\n]*\}|\$)+)""",
    re.VERBOSE | re.DOTALL,
)


def tokenize(text: str) -> list[Token]:
    """Words and the punctuation ``;``, ``{``, ``}`` (as tokens whose value is that character)."""
    tokens: list[Token] = []
    position, line, n = 0, 1, len(text)
    while position < n:
        match = _LEX.match(text, position)
        if match is None:
            what = "unterminated quote" if text[position] in "\"'" else f"unexpected {text[position]!r}"
            raise ConfigSyntaxError(f"line {line}: {what}")
        kind, raw = match.lastgroup, match.group()
        if kind == "newline":
            line += 1
        elif kind == "punct":
            tokens.append(Token(raw, position, match.end(), line))
        elif kind == "quoted":
            quote = raw[0]
            # \" inside "...": the quote itself; any other escape stays as written (Nginx's modules
            # read \n, \. etc. themselves).
            tokens.append(Token(raw[1:-1].replace("\\" + quote, quote), position, match.end(), line, quoted=True))
            line += raw.count("\n")
        elif kind == "word":
            tokens.append(Token(raw, position, match.end(), line))
        position = match.end()
    return tokens


def parse(text: str) -> list[Directive]:
    tokens = tokenize(text)
    position = 0

    def block(depth: int) -> list[Directive]:
        nonlocal position
        directives: list[Directive] = []
        while position < len(tokens):
            token = tokens[position]
            if not token.quoted and token.value == "}":
                if depth == 0:
                    raise ConfigSyntaxError(f"line {token.line}: unexpected '}}'")
                return directives
            if not token.quoted and token.value in ";{":
                raise ConfigSyntaxError(f"line {token.line}: unexpected '{token.value}'")
            name, args = token, []
            position += 1
            while position < len(tokens) and (tokens[position].quoted or tokens[position].value not in ";{}"):
                args.append(tokens[position])
                position += 1
            if position >= len(tokens):
                raise ConfigSyntaxError(f"line {name.line}: '{name.value}' is not terminated")
            end = tokens[position]
            position += 1
            if end.value == ";":
                directives.append(Directive(name.value, args, name.start, end.end, name.line))
            elif end.value == "{":
                inner = block(depth + 1)
                if position >= len(tokens):
                    raise ConfigSyntaxError(f"line {name.line}: the block of '{name.value}' is not closed")
                close = tokens[position]
                position += 1
                directives.append(Directive(name.value, args, name.start, close.end, name.line, inner))
            else:
                raise ConfigSyntaxError(f"line {end.line}: unexpected '}}'")
        if depth:
            raise ConfigSyntaxError("a block is not closed")
        return directives

    return block(0)


@dataclass(frozen=True)
class Upstream:
    name: str
    file: str
    directive: Directive
    context: tuple[str, ...]  # e.g. ("http",)


@dataclass
class Config:
    """The files of one ``nginx -T`` dump, main config first."""

    files: dict[str, str]
    main: str
    _parsed: dict[str, list[Directive]] = field(default_factory=dict)

    def parsed(self, path: str) -> list[Directive]:
        if path not in self._parsed:
            self._parsed[path] = parse(self.files[path])
        return self._parsed[path]

    @cached_property
    def _walk(self) -> tuple[dict[str, set[tuple[str, ...]]], list[Upstream], list[tuple[str, tuple[str, ...]]]]:
        """(contexts each file is included in, upstream definitions, include patterns by context)."""
        included: dict[str, set[tuple[str, ...]]] = {self.main: {()}}
        upstreams: list[Upstream] = []
        patterns: list[tuple[str, tuple[str, ...]]] = []
        prefix = dirname(self.main)

        def visit(path: str, directives: list[Directive], context: tuple[str, ...], depth: int) -> None:
            if depth > MAX_INCLUDE_DEPTH:
                raise ConfigSyntaxError(f"includes nested deeper than {MAX_INCLUDE_DEPTH} from {path}")
            for directive in directives:
                if directive.name == "include" and directive.args:
                    pattern = normpath(join(prefix, directive.args[0].value))
                    patterns.append((pattern, context))
                    for target in self.matching(pattern):
                        included.setdefault(target, set()).add(context)
                        visit(target, self.parsed(target), context, depth + 1)
                elif directive.block is not None:
                    if directive.name == "upstream" and directive.args:
                        upstreams.append(Upstream(directive.args[0].value, path, directive, context))
                    visit(path, directive.block, (*context, directive.name), depth)

        visit(self.main, self.parsed(self.main), (), 0)
        return included, upstreams, patterns

    def matching(self, pattern: str) -> list[str]:
        """The dumped files an ``include`` pattern loads (glob: ``*`` and ``?`` stop at ``/``)."""
        regex = re.compile(_glob_regex(pattern))
        return sorted(path for path in self.files if regex.fullmatch(path))

    def contexts(self, path: str) -> set[tuple[str, ...]]:
        """Where ``path`` is included: () is the main context, ("http",) the http block..."""
        return self._walk[0].get(path, set())

    def upstreams(self, name: str | None = None) -> list[Upstream]:
        return [u for u in self._walk[1] if name is None or u.name == name]

    def would_include(self, path: str, context: tuple[str, ...]) -> bool:
        """Whether a file created at ``path`` would be loaded in ``context`` by an include there."""
        return any(c == context and re.fullmatch(_glob_regex(p), path) for p, c in self._walk[2])

    def server_blocks(self, path: str) -> list[Directive]:
        """The ``server { }`` blocks at the top of ``path`` (a site file has some)."""
        return [d for d in self.parsed(path) if d.name == "server" and d.block is not None]


def _glob_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def split_dump(text: str) -> Config:
    """``nginx -T``'s output as files (the first is the main config)."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped.startswith(FILE_HEADER) and stripped.endswith(":"):
            path = stripped[len(FILE_HEADER) : -1]
            current = files.setdefault(path, [])
            continue
        if current is not None:
            current.append(line)
    if not files:
        raise ConfigSyntaxError("nginx -T printed no configuration file")
    # nginx -T ends each file with one blank line of its own.
    texts = {
        path: "".join(lines)[:-1] if "".join(lines).endswith("\n\n") else "".join(lines)
        for path, lines in files.items()
    }
    return Config(texts, next(iter(texts)))
