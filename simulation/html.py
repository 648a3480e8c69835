"""The self-contained HTML report: a timeline picture (SVG) and the assertions with evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2


def render_html(data: dict[str, Any], buckets: list[dict[str, int]]) -> str:
    template = (Path(__file__).parent / "templates" / "report.html.j2").read_text()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(
        data=data, buckets=buckets, data_json=json.dumps(data, default=str)[:2_000_000]
    )
