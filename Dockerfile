# The GitHub Action's image: the swap engine on Debian's Python. Dependencies come from Debian
# packages only (no PyPI at build time): jinja2, the Docker SDK, paramiko, requests.
FROM debian:bookworm-slim

# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-jinja2 python3-docker python3-paramiko python3-requests \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONPATH=/opt/bluegreen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY swap_action /opt/bluegreen/swap_action

# No USER: GitHub runs container actions as root so they can write the workspace and file commands.
ENTRYPOINT ["python3", "-m", "swap_action.action"]
