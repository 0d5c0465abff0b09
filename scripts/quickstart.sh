#!/usr/bin/env bash
# Set up pyjail on a fresh Debian/Ubuntu host (as root) and run the main job on the
# embedded defaults: start the daemon, make the offline busybox image, run the
# quickstart notebook headless (demo-output/quickstart.html), stop the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 -m pyjail demo --notebook "$@"
