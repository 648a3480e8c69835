# The GitHub Action's image: the swap engine on Debian's Python. Dependencies come from Debian
# packages only (no PyPI at build time): jinja2, the Docker SDK, paramiko, requests.
#
# trixie (Debian 13), not bookworm: its packages meet the floors pyproject.toml declares and the
# tests run against (paramiko >= 3.4, with the Terrapin countermeasure of CVE-2023-48795; docker
# >= 7.1; jinja2 >= 3.1), where bookworm ships paramiko 2.12 and docker 5.0.3. Python is 3.13.
# tests/integration/test_action_image.py runs this image and checks every installed version
# against pyproject.toml, so a base that falls below a floor fails the tests, not a release.
#
# Pinned by tag only, on purpose: the base may be a local debootstrap (scripts/ensure-base-image.sh)
# that has no registry digest, so a digest pin could not be built or tested here. The published
# image (a later issue) is what gets pinned by digest: action.yml will name it as
# `image: docker://...@sha256:...` instead of building this file on each run (today's `image: Dockerfile`).
FROM debian:trixie-slim

# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-jinja2 python3-docker python3-paramiko python3-requests \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONPATH=/opt/bluegreen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY swap_action /opt/bluegreen/swap_action

# Fail the build, not the first run, when the engine does not import on this Python.
RUN python3 -c "import swap_action.action, swap_action.cli"

# No USER: GitHub runs container actions as root so they can write the workspace and file commands.
ENTRYPOINT ["python3", "-m", "swap_action.action"]
