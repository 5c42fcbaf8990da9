#!/usr/bin/env bash
# Sets up a fresh machine and runs every check: lint, types and the whole test suite
# (real OpenSSH client and sshd, real Jupyter server and kernels, real Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test

export PATH="$PWD/.venv/bin:$PATH"
echo "==> ruff"
ruff check hy2fa_lab tests bench
ruff format --check hy2fa_lab tests bench
echo "==> mypy"
mypy
echo "==> frontend: prettier, eslint, jest"
jlpm install --immutable >/dev/null
jlpm lint:check
jlpm test --ci
echo "==> pytest"
mkdir -p test-artifacts
set +e
pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
