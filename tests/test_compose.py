"""docker-compose.yml: valid for compose (checked by `docker-compose config`, which needs
no engine), the services of the official Airflow 3 layout plus ours, secrets only from
the environment, and an image built from the lock file."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {"POSTGRES_PASSWORD": "pg-s3cret", "REDIS_PASSWORD": "redis-s3cret", "ROSTER_DB_PASSWORD": "roster-s3cret",
           "AIRFLOW__CORE__FERNET_KEY": "fernet-s3cret", "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-s3cret"}
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker"}


def compose(*args, env=None):
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (.ci/run and the README's setup install Debian's docker-compose)"
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("AIRFLOW_CONN_")}
    return subprocess.run([exe, "-f", str(ROOT / "docker-compose.yml"), *args], cwd=ROOT, capture_output=True,
                          text=True, env={**clean, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def config():
    r = compose("config", env=SECRETS)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def test_the_services_of_the_official_layout_are_there(config):
    services = config["services"]
    assert {"postgres", "redis", "airflow-init"} | AIRFLOW_SERVICES <= set(services)
    assert services["roster-sim"]["profiles"] == ["sandbox"], "the simulators run only in the sandbox profile"
    assert [n for n, s in services.items() if s.get("profiles")] == ["roster-sim"]
    assert "--host 0.0.0.0" in " ".join(services["roster-sim"]["command"])


def test_every_long_running_service_has_a_health_check(config):
    for name, svc in config["services"].items():
        if name != "airflow-init":
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_airflow_runs_celery_on_postgres_and_redis_from_an_image_built_here(config):
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        svc = config["services"][name]
        assert svc["build"]["dockerfile"] == "docker/Dockerfile", name
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:pg-s3cret@postgres/airflow")
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:redis-s3cret@redis:6379/0"
        assert '"schema": "roster"' in env["AIRFLOW_CONN_ROSTER_DB"] and '"login": "roster"' in env["AIRFLOW_CONN_ROSTER_DB"]
        assert "pip install" not in str(svc.get("command", "")) + str(svc.get("entrypoint", ""))
    assert config["services"]["airflow-worker"]["command"] in ("celery worker", ["celery", "worker"])


def test_workers_can_be_scaled_and_share_the_data_root(config):
    worker = config["services"]["airflow-worker"]
    assert "container_name" not in worker and not worker.get("ports"), "a fixed name or host port stops --scale"
    for name in AIRFLOW_SERVICES:
        svc = config["services"][name]
        root = svc["environment"]["ROSTER_SYNC_DATA_ROOT"]
        mounts = {(v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2]) for v in svc["volumes"]}
        assert ("roster-lake", root) in mounts, f"{name} does not mount the shared lake at {root}"
    assert "roster-lake" in config["volumes"]


def test_metadata_and_roster_are_separate_databases(config):
    pg = config["services"]["postgres"]
    assert pg["environment"]["POSTGRES_DB"] == "airflow"
    mounts = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in pg["volumes"]]
    assert "/docker-entrypoint-initdb.d" in mounts
    init = (ROOT / "docker" / "postgres-init" / "01-databases.sh").read_text()
    assert "CREATE DATABASE roster OWNER roster" in init and "CREATE USER roster" in init


def test_secrets_come_only_from_the_environment():
    r = compose("config")
    assert r.returncode != 0 and "POSTGRES_PASSWORD" in r.stderr, "compose must refuse to start without its secrets"
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        m = re.match(r"\s*([A-Z0-9_]*(PASSWORD|SECRET|FERNET_KEY)[A-Z0-9_]*):\s*(.+)", line)
        if m:
            assert m.group(3).startswith("${"), f"a secret written in the file: {line.strip()}"
    for value in SECRETS.values():
        assert value not in text


def test_the_image_installs_the_lock_file_at_build_time():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    pinned = re.search(r'"apache-airflow==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"FROM apache/airflow:{pinned}-python3.11" in dockerfile
    assert "pip install --no-cache-dir --require-hashes -r /opt/roster-sync/requirements.txt" in dockerfile
    uv = shutil.which("uv")
    assert uv, "uv is installed by scripts/bootstrap.sh"
    exported = subprocess.run([uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--quiet"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    body = lambda t: [ln for ln in t.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert body(exported) == body((ROOT / "docker" / "requirements.txt").read_text()), \
        "docker/requirements.txt is stale: uv export --frozen --no-dev --no-emit-project -o docker/requirements.txt"


def test_the_local_stack_reads_the_settings_compose_resolves(config):
    """scripts/stack.py (include/localstack.py) runs the compose file's own Airflow settings:
    its reading of the file, interpolation included, equals compose's, service by service."""
    from include.localstack import compose_settings

    variables = {**{k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("AIRFLOW_CONN_")},
                 **SECRETS}
    for service in AIRFLOW_SERVICES | {"airflow-init"}:
        resolved = {k: str(v) for k, v in (config["services"][service].get("environment") or {}).items()
                    if v not in ("", None)}
        ours = {k: v for k, v in compose_settings(variables, service).items() if v != ""}
        assert ours == resolved, service


def test_compose_interpolation_refuses_a_missing_secret():
    from include.localstack import interpolate

    assert interpolate("a${X:-b}c$$d", {}) == "abc$d"
    assert interpolate("${X:-b}", {"X": ""}) == "b" and interpolate("${X-b}", {"X": ""}) == ""
    with pytest.raises(KeyError, match="set X"):
        interpolate("${X:?set X}", {"X": ""})
