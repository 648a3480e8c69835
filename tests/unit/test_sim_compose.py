"""The compose run's pure pieces, without Docker: the override file the harness generates (the only
place its changes to a team's stack go), the LB service's config as Nginx will load it (image files
with the file's bind mounts laid over them), and how a stack's state is judged and told."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from simulation.cli import build_parser, scenario_from
from simulation.compose import (
    ComposeError,
    Mount,
    ServiceState,
    failing_services,
    lb_service_override,
    overlay_mounts,
    read_mount,
    render_override,
    service_state,
    shared_network,
    split_mounts,
    write_tree,
)
from simulation.lb_setup import plan_lb
from simulation.nginx_config import Tree
from swap_action.errors import InputError

TEAM_CONF = b"""events {}
http {
    upstream app { server blue:8080; server green:8080 down; }
    server {
        listen 80;
        location / { proxy_pass http://app; }
    }
}
"""


def parse_override(text: str) -> dict[str, dict[str, tuple[bool, Any]]]:
    """The override's services -> key -> (replaces the team's value, value). Each value is one
    line of JSON (valid YAML flow style), so the file is read back without a YAML library."""
    services: dict[str, dict[str, tuple[bool, Any]]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("#") or line.startswith("services:"):
            continue
        if line.startswith("  ") and not line.startswith("    "):
            current = json.loads(line.strip().removesuffix(" {}").removesuffix(":"))
            services[current] = {}
            continue
        key_text, _, rest = line.strip().partition(": ")
        replaced = rest.startswith("!override ")
        services[current][json.loads(key_text.removesuffix(":"))] = (
            replaced,
            json.loads(rest.removeprefix("!override ")),
        )
    return services


def test_the_override_replaces_the_lb_services_ports_and_volumes_and_adds_the_slots_environment() -> None:
    team_volumes = [
        {"type": "bind", "source": "/team/nginx.conf", "target": "/etc/nginx/nginx.conf", "read_only": True},
        {"type": "volume", "source": "cache", "target": "/var/cache/nginx"},
    ]
    nginx, others = split_mounts(team_volumes)
    lb, added = lb_service_override(
        port=80, etc_dir="/tmp/x/lb-etc-nginx", other_mounts=others, replaced_mounts=nginx, ports=["8080:80"]
    )
    text = render_override({"lb": lb, "blue": {"environment": {"FEATURE": "on"}}})
    services = parse_override(text)
    assert services["lb"]["ports"] == (True, ["127.0.0.1::80"])
    replaced, volumes = services["lb"]["volumes"]
    assert replaced
    assert volumes == [
        {"type": "volume", "source": "cache", "target": "/var/cache/nginx"},  # kept as the file has it
        {"type": "bind", "source": "/tmp/x/lb-etc-nginx", "target": "/etc/nginx"},
    ]
    assert services["blue"]["environment"] == (False, {"FEATURE": "on"})  # merged, not replacing
    assert "published on 127.0.0.1" in added[0] and "8080:80" in added[0]
    assert "/team/nginx.conf:/etc/nginx/nginx.conf" in added[1] and "not modified" in added[1]


def test_an_override_with_nothing_to_change_is_still_a_valid_compose_file() -> None:
    assert render_override({}).splitlines()[-1] == "services: {}"


def test_service_names_and_values_are_quoted_so_nothing_in_them_changes_the_yaml() -> None:
    text = render_override({"we: ird #name": {"environment": {"K": "a: b # c\nd"}}})
    assert parse_override(text) == {"we: ird #name": {"environment": (False, {"K": "a: b # c\nd"})}}


@pytest.mark.parametrize(
    ("entry", "under"),
    [
        ({"type": "bind", "source": "/a", "target": "/etc/nginx"}, True),
        ({"type": "bind", "source": "/a", "target": "/etc/nginx/conf.d/"}, True),
        ({"type": "bind", "source": "/a", "target": "/etc/nginx-extra"}, False),
        ({"type": "volume", "source": "logs", "target": "/var/log/nginx"}, False),
        ("./site:/etc/nginx/site:ro", True),
        ("/srv/data:/data", False),
    ],
)
def test_which_mounts_hold_nginx_config(entry: dict[str, str] | str, under: bool) -> None:
    assert Mount.of(entry).under_nginx() is under


def test_a_directory_mount_hides_what_the_image_had_below_it_and_a_file_mount_replaces_one_file() -> None:
    image = {
        "/etc/nginx/nginx.conf": b"image main",
        "/etc/nginx/nginx.conf.bak": b"kept",
        "/etc/nginx/conf.d/default.conf": b"image site",
        "/etc/nginx/mime.types": b"types",
    }
    links = {"/etc/nginx/conf.d/link.conf": "/etc/nginx/mime.types", "/etc/nginx/modules": "/usr/lib/nginx/modules"}
    files, out_links = overlay_mounts(
        image,
        links,
        [
            ("/etc/nginx/conf.d/site.conf", {"/etc/nginx/conf.d/site.conf": b"team site over the dir"}),
            ("/etc/nginx/conf.d", {"/etc/nginx/conf.d/app.conf": b"team dir"}),
            ("/etc/nginx/nginx.conf", {"/etc/nginx/nginx.conf": b"team main"}),
        ],
    )
    assert files == {
        "/etc/nginx/nginx.conf": b"team main",
        "/etc/nginx/nginx.conf.bak": b"kept",
        "/etc/nginx/mime.types": b"types",
        "/etc/nginx/conf.d/app.conf": b"team dir",
        "/etc/nginx/conf.d/site.conf": b"team site over the dir",  # the deeper mount is laid last
    }
    assert out_links == {"/etc/nginx/modules": "/usr/lib/nginx/modules"}


def test_mounted_files_are_read_from_the_host_and_a_named_volume_is_refused(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_bytes(b"a")
    (tmp_path / "nginx.conf").write_bytes(b"main")
    assert read_mount(
        Mount.of({"type": "bind", "source": str(tmp_path / "conf.d"), "target": "/etc/nginx/conf.d"})
    ) == {"/etc/nginx/conf.d/a.conf": b"a"}
    assert read_mount(Mount.of("./nginx.conf:/etc/nginx/nginx.conf:ro"), tmp_path) == {"/etc/nginx/nginx.conf": b"main"}
    with pytest.raises(ComposeError, match=r"volume at /etc/nginx/conf\.d.*bind mount"):
        read_mount(Mount.of({"type": "volume", "source": "conf", "target": "/etc/nginx/conf.d"}))
    with pytest.raises(ComposeError, match="no such file"):
        read_mount(Mount.of({"type": "bind", "source": str(tmp_path / "missing"), "target": "/etc/nginx/x"}))


def test_the_team_lb_config_is_planned_like_any_user_lb_and_written_as_a_copy(tmp_path: Path) -> None:
    """The image's files + the team's mounted nginx.conf, planned; the copy holds the plan, the
    team's file on the host is left as it was."""
    team = tmp_path / "team" / "nginx.conf"
    team.parent.mkdir()
    team.write_bytes(TEAM_CONF)
    nginx, _others = split_mounts([{"type": "bind", "source": str(team), "target": "/etc/nginx/nginx.conf"}])
    image = {"/etc/nginx/nginx.conf": b"events {}\nhttp {}\n", "/etc/nginx/mime.types": b"types {}\n"}
    files, links = overlay_mounts(image, {"/etc/nginx/modules": "/usr/lib/nginx/modules"}, [
        (m.target, read_mount(m)) for m in nginx
    ])  # fmt: skip
    plan = plan_lb(Tree(files, links), upstream="app", managed="upstream app { server blue:8080; }\n")
    assert plan.port == 80
    assert any("X-Upstream-Addr" in line for line in plan.added)
    copy = tmp_path / "copy"
    write_tree(copy, {**files, **plan.files}, links)
    assert b"X-Upstream-Addr" in (copy / "nginx.conf").read_bytes()
    assert (copy / plan.managed_file.removeprefix("/etc/nginx/")).read_bytes().startswith(b"upstream app")
    assert (copy / "mime.types").read_bytes() == b"types {}\n"
    assert (copy / "modules").readlink() == Path("/usr/lib/nginx/modules")
    assert team.read_bytes() == TEAM_CONF  # the team's file: not modified


def test_the_lb_joins_the_network_both_slots_share_the_projects_default_first() -> None:
    assert shared_network([["p_default", "p_back"], ["p_back", "p_default"]], "p") == "p_default"
    assert shared_network([["p_front", "p_back"], ["p_back"]], "p") == "p_back"
    assert shared_network([["p_front"], ["p_back"]], "p") is None


def _container(service: str, status: str, health: str | None = None, exit_code: int = 0, output: str = "") -> Any:
    state: dict[str, Any] = {"Status": status, "ExitCode": exit_code}
    if health is not None:
        state["Health"] = {"Status": health, "Log": [{"ExitCode": 1, "Output": output}] if output else []}
    return SimpleNamespace(
        attrs={
            "Name": f"/p-{service}-1",
            "State": state,
            "Config": {"Image": "img", "Labels": {"com.docker.compose.service": service}},
        }
    )


def test_a_stack_fails_on_an_unhealthy_service_or_an_exited_slot_not_on_a_finished_one_shot() -> None:
    roles = {"blue": "blue slot", "green": "green slot"}
    states = [
        service_state(_container("blue", "running", "unhealthy", output="Traceback ...\nHTTPError: 503"), roles),
        service_state(_container("green", "exited", exit_code=0), roles),
        service_state(_container("migrate", "exited", exit_code=0), roles),
        service_state(_container("db", "running", "healthy"), roles),
        service_state(_container("cache", "running"), roles),
    ]
    assert [s.service for s in failing_services(states)] == ["blue", "green"]
    assert states[0].last_check == "exit 1: HTTPError: 503"  # the output's last line
    assert states[0].line() == "blue [blue slot]: container p-blue-1, running, health unhealthy"
    assert states[1].line() == "green [green slot]: container p-green-1, exited (exit 0), no healthcheck"
    assert ServiceState("db", "c", "i", "running", "healthy", 0).to_dict()["role"] == ""


def test_the_cli_turns_compose_flags_into_the_scenario() -> None:
    args = build_parser().parse_args(
        ["run", "--compose", "a.yaml", "--compose", "b.yaml", "--blue-service", "web-blue", "--green-service",
         "web-green", "--lb-service", "proxy", "--app-env", "FEATURE=on", "--compose-timeout", "90s"]
    )  # fmt: skip
    scenario = scenario_from(args)
    assert scenario.compose == (Path("a.yaml"), Path("b.yaml"))
    assert (scenario.blue_service, scenario.green_service, scenario.lb_service) == ("web-blue", "web-green", "proxy")
    assert scenario.app_env == {"FEATURE": "on"}
    assert scenario.compose_timeout == 90
    assert scenario.drain_hook is None  # the team's app, not the demo's: no demo hook assumed
    assert scenario.blue.image == "compose service web-blue"


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (["--blue-image", "x:1"], "--blue-image"),
        (["--lb-service", "lb", "--nginx-conf", "nginx.conf"], "--nginx-conf"),
        (["--lb-service", "lb", "--nginx-image", "nginx:1"], "--nginx-image"),
    ],
)
def test_flags_that_mean_nothing_with_compose_are_refused(flags: list[str], flag: str) -> None:
    with pytest.raises(InputError) as raised:
        scenario_from(build_parser().parse_args(["run", "--compose", "a.yaml", *flags]))
    assert raised.value.input_name == flag
