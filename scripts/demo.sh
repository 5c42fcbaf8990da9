#!/usr/bin/env bash
# Sets up a fresh machine and starts the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/hy2fa demo "$@"
