#!/usr/bin/env bash
# The main job on the embedded default: creates .venv/ if missing, generates a county,
# starts the four simulators on loopback, runs roster_sync with Airflow, prints a summary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec python -m include.demo "$@"
