# The GitHub Action's image: the swap engine on Debian's Python. Dependencies come from Debian
# packages only (no PyPI at build time): jinja2, the Docker SDK, paramiko, requests; and dash
# (/bin/sh) with coreutils, for the hooks (pre-switch, post-switch, post-drain run with sh -c).
#
# trixie (Debian 13), not bookworm: its packages meet the floors pyproject.toml declares and the
# tests run against (paramiko >= 3.4, with the Terrapin countermeasure of CVE-2023-48795; docker
# >= 7.1; jinja2 >= 3.1), where bookworm ships paramiko 2.12 and docker 5.0.3. Python is 3.13.
# tests/integration/test_action_image.py runs this image and checks every installed version
# against pyproject.toml, so a base that falls below a floor fails the tests, not a release.
#
# Two stages, so the image is small (a release's image is pulled at the start of every job that
# uses it): the first installs the packages with apt as usual; the second is FROM scratch and gets
# only the files of those packages and of what they depend on (dpkg's own lists): no apt, dpkg,
# bash, package lists or documentation. The byte-compiled modules are kept: imports start faster.
#
# Pinned by tag only, on purpose: the base may be a local debootstrap (scripts/ensure-base-image.sh)
# that has no registry digest, so a digest pin could not be built or tested here. Releases pin the
# published image instead: the released action.yml names it by tag and digest (README "Releasing").
FROM debian:trixie-slim AS packages

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Also lists, while apt knows the archive, the packages the engine needs: these and what they depend
# on (virtual dependencies through their installed providers), less the tools that only install
# packages (dpkg, tar, debconf).
# hadolint ignore=DL3008,SC2086
RUN roots="python3 python3-jinja2 python3-docker python3-paramiko python3-requests dash coreutils" \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $roots \
 && candidates=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
                   --no-replaces --no-enhances $roots | sed -nE 's/^ *([a-z0-9][^ ]*)$/\1/p' | sort -u) \
 && { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $candidates 2>/dev/null || true; } \
    | awk '$1 == "ii" {print $2}' | grep -vxE 'dpkg|tar|debconf' | sort -u > /packages \
 && rm -rf /var/lib/apt/lists/*

# /rootfs: the files of those packages, merged-/usr like the base, plus the byte-compiled modules,
# the CA bundle update-ca-certificates made, and the few files of /etc a process expects.
RUN mkdir -p /rootfs/usr/bin /rootfs/usr/sbin /rootfs/usr/lib /rootfs/usr/lib64 /rootfs/etc/ssl/certs /rootfs/tmp \
 && chmod 1777 /rootfs/tmp \
 && for dir in bin sbin lib lib64; do ln -s "usr/$dir" "/rootfs/$dir"; done \
 && { xargs -n1 dpkg -L < /packages; find /usr/lib/python3* -name '*.pyc'; } \
    | grep -vE '^/usr/share/(doc|man|info|locale|lintian|bug)(/|$)' | sort -u > /tmp/files \
 && while read -r path; do \
      if [ -d "$path" ] && [ ! -L "$path" ]; then continue; fi; \
      [ -e "$path" ] || [ -L "$path" ] || continue; \
      dir=$(realpath "$(dirname "$path")"); \
      mkdir -p "/rootfs$dir" && cp -a "$path" "/rootfs$dir/"; \
    done < /tmp/files \
 && { [ -e /rootfs/usr/bin/sh ] || ln -s dash /rootfs/usr/bin/sh; } \
 && cp -a /etc/passwd /etc/group /etc/nsswitch.conf /rootfs/etc/ \
 && cp -aL /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && cp /packages /rootfs/etc/bluegreen-packages

FROM scratch

COPY --from=packages /rootfs /

ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONPATH=/opt/bluegreen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY swap_action /opt/bluegreen/swap_action

# Exec-form RUN: the image's only shell is dash, for the hooks. Byte-compile the engine (a faster first import), and
# fail the build, not the first run, when it or a library it loads late does not import here.
RUN ["python3", "-c", "import compileall, sys; compiled = compileall.compile_dir('/opt/bluegreen/swap_action', quiet=1); import swap_action.action, swap_action.cli, paramiko, docker, requests, jinja2.sandbox, subprocess; subprocess.run(['sh', '-c', 'command -v cat mv >/dev/null'], check=True); sys.exit(not compiled)"]

# No USER: GitHub runs container actions as root so they can write the workspace and file commands.
ENTRYPOINT ["python3", "-m", "swap_action.action"]
