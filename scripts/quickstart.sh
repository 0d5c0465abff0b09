#!/usr/bin/env bash
# Set up pyjail on a fresh Debian/Ubuntu host (as root) and run the main job on the
# embedded defaults: make the offline busybox image and run a demo container.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v busybox >/dev/null || ! [ -x /usr/bin/tini-static ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends busybox-static tini libseccomp2 runc >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m pyjail demo --notebook "$@"
