"""adopt: moving an upstream out of a site file is all or nothing."""

from __future__ import annotations

import pytest
from fakes import FakeHost

from swap_action import adopt_site
from swap_action.adopt import split_site
from swap_action.errors import ConfigTestError, InputError

SITE_PATH = "/etc/nginx/bluegreen/site.conf"
SITE = "upstream app {\n    server blue:8080;\n    keepalive 16;\n}\nserver {\n    listen 80;\n}\n"


def test_split_keeps_every_other_byte() -> None:
    site, moved = split_site(SITE, "app", "/x/app.upstream")
    assert site == "include /x/app.upstream;\nserver {\n    listen 80;\n}\n"
    assert moved == "upstream app {\n    server blue:8080;\n    keepalive 16;\n}\n"


def test_a_refused_move_puts_everything_back() -> None:
    fake = FakeHost(managed=SITE, path=SITE_PATH)  # the toy nginx -t does not know 'include': it refuses
    with pytest.raises(ConfigTestError) as caught:
        adopt_site.move_out(fake, SITE_PATH, "app")
    assert "Everything was put back" in caught.value.fix
    assert fake.files[SITE_PATH] == SITE and "/etc/nginx/bluegreen/app.upstream" not in fake.files
    assert fake.calls.count("discard_file") == 1


def test_a_file_without_the_upstream_is_refused() -> None:
    fake = FakeHost(managed="server {\n    listen 80;\n}\n", path=SITE_PATH)
    with pytest.raises(InputError):
        adopt_site.move_out(fake, SITE_PATH, "app")
    assert fake.calls.count("install") == 0
