#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine for hy2fa-lab: system packages, a virtual
# environment in .venv and the package itself (its JupyterLab frontend is built by pip).
# Usage: bash scripts/setup.sh [test]     ("test" adds what the test suite needs)
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=${1:-}
packages=(openssh-client python3-venv)
if [ "$want_tests" = "test" ]; then
  packages+=(openssh-server libpam-google-authenticator)
  # The browser tests use Debian's Chromium, unless HY2FA_CHROMIUM names another installed
  # one (a CI runner's Google Chrome: Ubuntu's chromium package is only a snap stub).
  [ -n "${HY2FA_CHROMIUM:-}" ] || packages+=(chromium)
fi
command -v node >/dev/null 2>&1 || packages+=(nodejs)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The frontend build (rspack) needs Node >= 20.19; Debian 12's own nodejs is 18.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
              process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "Node.js $(node --version) is too old to build the JupyterLab frontend: it needs" \
       ">= 20.19 (e.g. from NodeSource or nodejs.org)." >&2
  exit 1
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
extras="[demo]"
[ "$want_tests" = "test" ] && extras="[test]"  # test includes demo
echo "==> installing hy2fa_lab${extras} into .venv (builds the JupyterLab frontend)"
.venv/bin/python -m pip install -q -e ".${extras}"
