"""The README's action reference (inputs and outputs tables), generated from action.yml.

python scripts/action_reference.py            # print the markdown
python scripts/action_reference.py --write    # replace the section between the README markers
python scripts/action_reference.py --check    # exit 1 when the README's section is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- action-reference:start -->"
END = "<!-- action-reference:end -->"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(spec: dict[str, Any]) -> str:
    if spec.get("required") and "default" not in spec:
        return "*required*"
    value = str(spec.get("default", ""))
    return f"`{value}`" if value else '`""`'


def reference(action: dict[str, Any]) -> str:
    lines = ["### Inputs", "", "| name | default | description |", "|---|---|---|"]
    for name, spec in action.get("inputs", {}).items():
        lines.append(f"| `{name}` | {_default(spec)} | {_cell(spec.get('description', ''))} |")
    lines += ["", "### Outputs", "", "| name | default | description |", "|---|---|---|"]
    for name, spec in action.get("outputs", {}).items():
        lines.append(f"| `{name}` | | {_cell(spec.get('description', ''))} |")
    return "\n".join(lines) + "\n"


def load_action(path: Path = ROOT / "action.yml") -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def splice(readme: str, generated: str) -> str:
    """The README with the text between the markers replaced by ``generated``."""
    if START not in readme or END not in readme or readme.index(START) > readme.index(END):
        raise ValueError(f"README.md has no '{START}' ... '{END}' section")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{generated}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update README.md in place")
    mode.add_argument("--check", action="store_true", help="fail when README.md differs from action.yml")
    args = parser.parse_args(argv)
    generated = reference(load_action())
    if not (args.write or args.check):
        sys.stdout.write(generated)
        return 0
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    updated = splice(readme, generated)
    if args.check:
        if updated != readme:
            print("README.md's action reference is stale: run python scripts/action_reference.py --write")
            return 1
        return 0
    readme_path.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
