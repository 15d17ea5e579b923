#!/usr/bin/env bash
# The test command: creates .venv/ if missing, then runs the whole suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
# tests/test_compose.py validates docker-compose.yml with `docker-compose config`, which
# needs no Docker engine: Debian's docker-compose package. Installed here when missing.
if ! command -v docker-compose >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing docker-compose (to validate docker-compose.yml; no engine needed)"
  { apt-get install -y -qq docker-compose || { apt-get update -qq && apt-get install -y -qq docker-compose; }; } >/dev/null 2>&1 \
    || echo "could not install docker-compose: tests/test_compose.py will fail"
fi
# tests/test_workspace_pages.py drives Debian's chromium with Playwright (no browser download is
# possible here), and fonts-wqy-microhei draws the Chinese of the screenshots.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium and a CJK font (the workspace's browser tests)"
  { apt-get install -y -qq chromium fonts-wqy-microhei || { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei; }; } \
    >/dev/null 2>&1 || echo "could not install chromium: tests/test_workspace_pages.py will fail"
fi
# tests/test_stack.py runs the production stack here: Redis is Celery's broker.
if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing redis-server (the Celery broker of tests/test_stack.py)"
  { apt-get install -y -qq redis-server || { apt-get update -qq && apt-get install -y -qq redis-server; }; } \
    >/dev/null 2>&1 || echo "could not install redis-server: tests/test_stack.py will fail"
fi
# Test files run in parallel, one worker per core (pytest-xdist); a file stays on one worker,
# so its module fixtures (a published month, an Airflow run) are made once. `-n 0` runs serially.
exec python -m pytest -n auto --dist loadfile "$@"
