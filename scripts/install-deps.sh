#!/usr/bin/env bash
# Install what pyjail and its tests need on a fresh Debian/Ubuntu host (as root):
# Debian packages, then the project itself with its test extras (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    busybox-static runc crun tini libseccomp2 procps iproute2 nftables tmux \
    docker-registry skopeo debootstrap apache2-utils chromium \
    >/dev/null
# node and npm build the JupyterLab sidebar during the pip install below; a host that
# already has a node keeps it
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
