#!/usr/bin/env bash
# The main job on the embedded default: creates .venv/ if missing, generates a county,
# starts the four simulators on loopback, runs roster_sync with Airflow, prints a summary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
# The monthly report's charts are labelled in Chinese when a CJK font is installed; on a
# fresh Debian machine run as root, install a small one (best effort: English otherwise).
if ! (command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .) \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing a CJK font for the report charts (fonts-wqy-microhei)"
  { apt-get install -y -qq fonts-wqy-microhei || { apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei; }; } \
    >/dev/null 2>&1 || echo "   could not install it: the charts are labelled in English"
fi
exec python -m include.demo "$@"
