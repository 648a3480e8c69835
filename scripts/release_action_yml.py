"""The released action.yml: the development one with ``image: Dockerfile`` replaced by the published image.

    python scripts/release_action_yml.py --image ghcr.io/owner/repo:v1.2.3@sha256:<digest> [--action action.yml]

Rewrites the file in place (``--output -`` prints it instead). In the repository, action.yml builds
the image from the Dockerfile (the tests run what the worktree holds); a release commit names the
image the publish workflow pushed (.github/workflows/publish-image.yml), so a job that uses a
release pulls it instead of building it (README "Releasing"). Only that one line changes.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# The development line, indented under `runs:` (the only `image:` key of the file).
DEVELOPMENT_LINE = re.compile(r"^(?P<indent>[ \t]+)image:[ \t]*['\"]?Dockerfile['\"]?[ \t]*$", re.M)
# A registry reference with a tag and/or a digest: lower-case repository path (Docker's rule),
# optional host[:port], optional :tag, optional @sha256:<64 hex>.
REFERENCE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


class ReleaseError(Exception):
    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(f"{cause}\nfix: {fix}")


def check_reference(image: str) -> str:
    image = image.removeprefix("docker://")
    if not REFERENCE.match(image) or not (":" in image.rsplit("/", 1)[-1] or "@" in image):
        raise ReleaseError(
            f"'{image}' is not an image reference with a tag or a digest",
            "pass REGISTRY/OWNER/NAME:vX.Y.Z[@sha256:DIGEST], the repository part in lower case "
            "(e.g. ghcr.io/your-org/bluegreen-swap:v1.2.3)",
        )
    return image


def released(text: str, image: str) -> str:
    """``text`` (a development action.yml) with its image line naming ``docker://image``."""
    image = check_reference(image)
    matches = DEVELOPMENT_LINE.findall(text)
    if len(matches) != 1:
        found = re.findall(r"^[ \t]+image:.*$", text, re.M)
        raise ReleaseError(
            f"action.yml has {len(matches)} 'image: Dockerfile' lines (image lines: {found or 'none'}); "
            "expected exactly one under runs:",
            "run this on a development action.yml (runs: using: docker, image: Dockerfile); "
            "a release commit's action.yml already names its image",
        )
    return DEVELOPMENT_LINE.sub(lambda m: f"{m.group('indent')}image: docker://{image}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="the published image, e.g. ghcr.io/o/r:v1.2.3@sha256:...")
    parser.add_argument("--action", default="action.yml", type=Path, help="the development action.yml")
    parser.add_argument("--output", default=None, help="where to write (default: --action in place; '-' prints)")
    args = parser.parse_args(argv)
    try:
        text = released(args.action.read_text(encoding="utf-8"), args.image)
    except (ReleaseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output or args.action).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
