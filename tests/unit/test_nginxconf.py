"""The nginx -T reader against crossplane (nginxinc's parser) on the same files, and its include and
context resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import crossplane  # type: ignore[import-untyped]
import pytest

from swap_action.nginxconf import ConfigSyntaxError, Directive, parse, split_dump

CONFIGS = {
    "stock": """user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
events { worker_connections 768; }
http {
    sendfile on;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer"';
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    include /etc/nginx/conf.d/*.conf;
}
""",
    "quotes-escapes-comments": r"""http {
    # a comment with { braces } and ; semicolons
    add_header X-Test "a \"quoted\" value; with {braces}" always;
    add_header X-Single 'it''s' always;
    set $x a#b;  # '#' inside a word is not a comment
    location ~ ^/(foo|bar)\.txt$ { return 200 "ok\n"; }
    location ~* "\.(?:css|js){1,2}$" { expires 1d; }
    rewrite ^/old/(.*)$ /new/$1 last;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    if ($request_method = POST) { return 405; }
    set ${var}x 1;
}
""",
    "upstream": """upstream app {
    zone app 64k;
    least_conn;
    server blue:8080 max_fails=3 fail_timeout=10s;
    server green:8080 down;
    server 10.0.0.1:8080 backup;
    keepalive 16;
}
""",
}


def _crossplane(path: Path) -> list[dict[str, Any]]:
    payload = crossplane.parse(str(path), single=True, comments=False, check_ctx=False, check_args=False)
    assert payload["status"] == "ok", payload["errors"]
    parsed: list[dict[str, Any]] = payload["config"][0]["parsed"]
    return parsed


def _ours(directives: list[Directive]) -> list[dict[str, Any]]:
    out = []
    for d in directives:
        args = d.values
        if d.name == "if" and args:  # crossplane drops if's parentheses (Nginx's if handler does too)
            args = [args[0].removeprefix("("), *args[1:-1], args[-1].removesuffix(")")] if len(args) > 1 else args
        item: dict[str, Any] = {"directive": d.name, "args": args}
        if d.block is not None:
            item["block"] = _ours(d.block)
        out.append(item)
    return out


def _strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"directive": i["directive"], "args": i["args"], **({"block": _strip(i["block"])} if "block" in i else {})}
        for i in items
    ]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_it_reads_what_crossplane_reads(tmp_path: Path, name: str) -> None:
    path = tmp_path / "nginx.conf"
    path.write_text(CONFIGS[name])
    assert _ours(parse(CONFIGS[name])) == _strip(_crossplane(path))


def test_spans_cover_each_directive_exactly() -> None:
    text = CONFIGS["upstream"]
    upstream = parse(text)[0]
    assert upstream.block is not None
    server = upstream.block[2]
    assert text[server.start : server.end] == "server blue:8080 max_fails=3 fail_timeout=10s;"
    assert text[upstream.start : upstream.end].startswith("upstream app {") and text[upstream.end - 1] == "}"


@pytest.mark.parametrize("bad", ["http {", "}", "server x", 'add_header "x;', "a { b; } }"])
def test_broken_text_is_a_syntax_error(bad: str) -> None:
    with pytest.raises(ConfigSyntaxError):
        parse(bad)


DUMP = """# configuration file /etc/nginx/nginx.conf:
events {}
http {
    include mime.types;
    include /etc/nginx/conf.d/*.conf;
    server {
        listen 80;
        include snippets/*.conf;
    }
}

# configuration file /etc/nginx/mime.types:
types { text/html html; }

# configuration file /etc/nginx/conf.d/upstream.conf:
upstream app {
    server blue:8080;
}

# configuration file /etc/nginx/conf.d/site.conf:
server {
    listen 8080;
    location / { proxy_pass http://app; }
}

# configuration file /etc/nginx/snippets/extra.conf:
location /x { return 204; }

"""


def test_a_dump_knows_where_each_file_is_included() -> None:
    config = split_dump(DUMP)
    assert config.main == "/etc/nginx/nginx.conf"
    assert config.contexts("/etc/nginx/mime.types") == {("http",)}, "relative includes resolve from the conf dir"
    assert config.contexts("/etc/nginx/conf.d/upstream.conf") == {("http",)}
    assert config.contexts("/etc/nginx/snippets/extra.conf") == {("http", "server")}
    assert [(u.name, u.file, u.context) for u in config.upstreams()] == [
        ("app", "/etc/nginx/conf.d/upstream.conf", ("http",))
    ]
    assert config.would_include("/etc/nginx/conf.d/new.conf", ("http",))
    assert not config.would_include("/etc/nginx/conf.d/sub/new.conf", ("http",)), "'*' stops at '/'"
    assert not config.would_include("/etc/nginx/conf.d/new.conf.lock", ("http",))
    assert [d.name for d in config.server_blocks("/etc/nginx/conf.d/site.conf")] == ["server"]
    assert config.files["/etc/nginx/conf.d/upstream.conf"] == "upstream app {\n    server blue:8080;\n}\n"


def test_an_empty_dump_is_refused() -> None:
    with pytest.raises(ConfigSyntaxError):
        split_dump("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n")
