#!/usr/bin/env bash
# Create .venv/ from the lock file if it is missing or stale. Sourced by demo.sh and test.sh.
# Needs only python3.11 with pip on PATH and the package index.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi
cd "$ROOT"
# uv sync is a no-op when .venv/ already matches uv.lock.
uv sync --frozen --quiet
export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
