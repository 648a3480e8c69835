"""The harness walks an LB's config as Nginx loads it (the engine's parser underneath): includes
followed (globs, relative paths, symlinks into the tree), each directive with its file and the
blocks around it, and offsets exact enough to insert a line without touching another byte."""

from __future__ import annotations

import pytest

from simulation.nginx_config import ConfigError, Tree, body_offset

MAIN = """user www-data;
http {
    include conf.d/*.conf;
    include /etc/nginx/sites-enabled/*;
}
"""
SITE = """server {
    listen 80;
    location ~ "^/a{2}$" { return 200 "x;y"; }
    location / { set $v "${host}x"; proxy_pass http://a; }
}
"""


def _tree() -> Tree:
    return Tree(
        {
            "/etc/nginx/nginx.conf": MAIN.encode(),
            "/etc/nginx/conf.d/b.conf": b"upstream b { server b:1; }",
            "/etc/nginx/conf.d/a.conf": b"upstream a { server a:1; }",
            "/etc/nginx/conf.d/sub/c.conf": b"upstream c { server c:1; }",  # '*' stops at '/'
            "/etc/nginx/conf.d/skip.txt": b"broken {",
            "/etc/nginx/sites-available/site": SITE.encode(),
        },
        links={
            "/etc/nginx/sites-enabled/site": "../sites-available/site",
            "/etc/nginx/modules-enabled/x.conf": "/usr/share/nginx/modules/x.conf",  # outside: not read
        },
    )


def test_includes_are_followed_as_nginx_loads_them() -> None:
    placed = list(_tree().walk())
    assert [p.values[0] for p in placed if p.name == "upstream"] == ["a", "b"]  # sorted, as Nginx's glob
    proxy = next(p for p in placed if p.name == "proxy_pass")
    assert proxy.context == ("http", "server", "location") and proxy.values == ["http://a"]
    assert proxy.file == "/etc/nginx/sites-enabled/site" and proxy.where() == "/etc/nginx/sites-enabled/site:4"
    location = proxy.parents[-1]
    assert location.file == proxy.file and location.values == ["/"]


def test_a_block_body_offset_is_just_after_its_brace() -> None:
    tree = _tree()
    location = next(p for p in tree.walk() if p.name == "location" and p.values == ["~", "^/a{2}$"])
    text = tree.text(location.file)
    offset = body_offset(text, location.directive)
    assert text[offset - 1] == "{" and text[offset:].startswith(' return 200 "x;y"; }')


def test_would_include_answers_for_files_that_do_not_exist_yet() -> None:
    tree = _tree()
    assert tree.would_include("/etc/nginx/conf.d/upstream.conf")
    assert not tree.would_include("/etc/nginx/bluegreen/upstream.conf")
    assert tree.included("/etc/nginx/modules-enabled/*.conf") == []


def test_a_file_that_does_not_parse_is_named() -> None:
    tree = Tree({"/etc/nginx/nginx.conf": b"http { include x.conf; }", "/etc/nginx/x.conf": b"server {"})
    with pytest.raises(ConfigError, match=r"^/etc/nginx/x\.conf: "):
        list(tree.walk())
