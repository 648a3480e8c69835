"""What the harness adds to a team's Nginx config: the managed upstream file (where the upstream
was, or included), the X-Upstream-Addr header where the site proxies to the upstream, a site when
none proxies there; every change said in words, every other byte left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulation.lb_setup import CONF_D_UPSTREAM, HEADER_LINE, MARK, OWN_SITE, OWN_UPSTREAM, LbPlan, SetupError, plan_lb
from simulation.nginx_config import MAIN_CONF, Tree

ROOT = Path(__file__).resolve().parents[2]
MANAGED = "upstream app { server blue:8080; server green:8080 down; }\n"
SITE = "server { listen 80 default_server; location / { proxy_pass http://app; add_header X-Upstream-Addr $upstream_addr always; } }\n"


def _plan(files: dict[str, str], template_site: str | None = None) -> LbPlan:
    tree = Tree({path: text.encode() for path, text in files.items()})
    return plan_lb(tree, upstream="app", managed=MANAGED, harness_site=SITE, template_site=template_site)


def _text(plan: LbPlan, path: str) -> str:
    return plan.files[path].decode()


def test_the_projects_own_layout_needs_only_its_managed_file() -> None:
    files = {
        MAIN_CONF: (ROOT / "images/lb/nginx.conf").read_text(),
        "/etc/nginx/site/default.conf": (ROOT / "images/lb/site.conf").read_text(),
        OWN_UPSTREAM: (ROOT / "images/lb/upstream.conf").read_text(),
    }
    plan = _plan(files)
    assert plan.managed_file == OWN_UPSTREAM and plan.port == 80
    assert set(plan.files) == {OWN_UPSTREAM} and _text(plan, OWN_UPSTREAM) == MANAGED
    assert plan.added == [
        f"managed upstream file {OWN_UPSTREAM} reset: blue live, green idle, and the generation marker"
    ]


def test_the_official_image_layout_gets_a_site_and_the_managed_file_in_conf_d() -> None:
    files = {
        MAIN_CONF: (ROOT / "images/lb-official/nginx.conf").read_text(),
        "/etc/nginx/conf.d/default.conf": (ROOT / "images/lb-official/default.conf").read_text(),
    }
    plan = _plan(files)
    assert plan.managed_file == CONF_D_UPSTREAM
    # conf.d/*.conf already loads both: nothing is added to nginx.conf.
    assert set(plan.files) == {CONF_D_UPSTREAM, "/etc/nginx/conf.d/default.conf"}
    assert _text(plan, "/etc/nginx/conf.d/default.conf") == SITE
    assert any("no server block proxies to upstream 'app'" in line for line in plan.added)


def test_a_teams_full_nginx_conf_gets_the_header_and_the_include_and_keeps_every_other_byte() -> None:
    original = (ROOT / "tests/integration/data/team-nginx.conf").read_text()
    plan = _plan({MAIN_CONF: original})
    assert plan.port == 8080 and plan.managed_file == OWN_UPSTREAM
    new = _text(plan, MAIN_CONF)
    assert f"{HEADER_LINE}  # {MARK}" in new and f"include {OWN_UPSTREAM};  # {MARK}" in new
    kept = [line for line in new.splitlines() if MARK not in line]
    lines = original.splitlines()
    first = lines.index("    upstream app {")
    last = lines.index("    }", first)
    assert kept == lines[:first] + lines[last + 1 :]  # the upstream block's lines became one comment
    added = "\n".join(plan.added)
    assert "'location /' in /etc/nginx/nginx.conf:41" in added
    assert (
        "its own settings are not carried over: keepalive 16; server parameters fail_timeout=10s max_fails=3" in added
    )


def test_the_header_goes_where_the_proxy_pass_is_and_never_twice() -> None:
    conf = """http {
    upstream app { server x:1; }
    server {
        listen 8000;
        location /a { if ($arg_x) { proxy_pass http://app; } }
        location /b { proxy_pass http://app/b/; add_header x-upstream-addr $upstream_addr; }
        location /c { proxy_pass http://other; }
    }
}
"""
    plan = _plan({MAIN_CONF: conf})
    new = _text(plan, MAIN_CONF)
    assert new.count(HEADER_LINE) == 1
    assert "if ($arg_x) {\n" in new and plan.port == 8000
    assert any("'if ($arg_x)'" in line for line in plan.added)


def test_a_template_replaces_the_port_80_server_it_shares_a_file_with() -> None:
    conf = "http {\n    server { listen 80; location / { root /srv; } }\n    server { listen 9000; }\n}\n"
    plan = _plan({MAIN_CONF: conf}, template_site="server { listen 80; }\n")
    new = _text(plan, MAIN_CONF)
    assert "listen 9000" in new and "root /srv" not in new
    assert _text(plan, OWN_SITE) == "server { listen 80; }\n" and f"include {OWN_SITE};" in new


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({MAIN_CONF: "events {}\n"}, "has no http block"),
        (
            {
                MAIN_CONF: "http { upstream app {} include conf.d/*.conf; }",
                "/etc/nginx/conf.d/u.conf": "upstream app {}",
            },
            r"upstream 'app' is defined more than once \(/etc/nginx/nginx.conf:1, /etc/nginx/conf.d/u.conf:1\)",
        ),
        (
            {MAIN_CONF: "http { server { listen 443 ssl; location / { proxy_pass http://app; } } }"},
            "listens on a plain-HTTP port",
        ),
        ({MAIN_CONF: "http { server { "}, "does not parse: /etc/nginx/nginx.conf: a block is not closed"),
    ],
    ids=["no-http", "two-upstreams", "tls-only", "unbalanced"],
)
def test_a_config_the_harness_cannot_use_is_refused_with_what_to_change(files: dict[str, str], message: str) -> None:
    with pytest.raises(SetupError, match=message):
        _plan(files)


def test_an_upstream_sharing_its_file_with_another_is_cut_not_replaced() -> None:
    files = {
        MAIN_CONF: "http { include conf.d/*.conf; server { listen 80; location / { proxy_pass http://app; } } }",
        "/etc/nginx/conf.d/upstreams.conf": "upstream auth { server a:1; }\nupstream app { server b:1; }\n",
    }
    plan = _plan(files)
    assert plan.managed_file == CONF_D_UPSTREAM
    kept = _text(plan, "/etc/nginx/conf.d/upstreams.conf")
    assert kept.startswith("upstream auth { server a:1; }\n# upstream 'app' moved")
