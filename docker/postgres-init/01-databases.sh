#!/usr/bin/env bash
# Runs once, when the PostgreSQL volume is first created: the roster's database beside
# Airflow's metadata database, with its own user; and, when SANDBOX_FINANCE_DB_PASSWORD is
# set, the sandbox's simulated finance database. Passwords come from the environment
# (docker-compose.yml passes them through), never from a file.
set -euo pipefail
: "${ROSTER_DB_PASSWORD:?set ROSTER_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v pw="$ROSTER_DB_PASSWORD" <<'SQL'
CREATE USER roster WITH PASSWORD :'pw';
CREATE DATABASE roster OWNER roster;
SQL
if [ -n "${SANDBOX_FINANCE_DB_PASSWORD:-}" ]; then
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v pw="$SANDBOX_FINANCE_DB_PASSWORD" <<'SQL'
CREATE USER finance_sandbox WITH PASSWORD :'pw';
CREATE DATABASE finance_sandbox OWNER finance_sandbox;
SQL
fi
