"""Production on one machine without Docker: PostgreSQL, Redis and Airflow's own processes on loopback.

``docker-compose.yml`` is how roster-sync runs in production: the CeleryExecutor, a Redis
broker, PostgreSQL holding Airflow's metadata (database ``airflow``) and the published
roster (database ``roster``, its own user) apart, and Airflow's processes (api-server,
scheduler, dag-processor, triggerer, Celery workers). :class:`Stack` runs the same thing
from the binaries on this machine, for a trial, a test or an operator without a container
engine:

* a throwaway PostgreSQL cluster (:class:`Postgres`), initialised by the compose file's own
  init script (``docker/postgres-init``);
* ``redis-server`` with a password, on loopback (:class:`Redis`);
* the Airflow settings of the compose file's ``x-airflow-common`` environment, read from the
  file itself (:func:`compose_settings`), with only the addresses changed: service names
  become ``127.0.0.1`` and free ports;
* each process in its own process group, logging to ``<home>/logs/<name>.log``; stopped
  with SIGTERM (SIGKILL after a grace period), in the reverse order of starting.

``scripts/stack.py`` is the command; docs/OPERATIONS.md §13 tells an operator how to use it
and tests/test_stack.py runs a province through it, killing a worker halfway.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POSTGRES_INIT = ROOT / "docker" / "postgres-init"
WORKER_NAME_VARIABLE = "ROSTER_SYNC_WORKER_NAME"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list:
    """``pid`` and every process it started (psutil processes), as far as they still exist."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def hostname() -> str:
    """Airflow's ``[core] hostname_callable`` for a worker of the local stack: its name
    (``worker-a``, ``worker-b``) from ``ROSTER_SYNC_WORKER_NAME``, so that two workers on one
    machine are told apart in the task instances (and the UI); the machine's name otherwise."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


# --- PostgreSQL ----------------------------------------------------------------------------

def _pg_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    path = shutil.which("initdb")
    if path:
        return os.path.dirname(path)
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql (apt-get install postgresql)")


class Postgres:
    """A throwaway PostgreSQL cluster on loopback, from the server binaries on this machine.

    PostgreSQL refuses to run as root, so as root the cluster is owned and run by the
    ``postgres`` user (``runuser -u postgres --``) in a directory that user owns.
    ``superuser`` is the cluster's first role (``airflow`` in compose's image, ``postgres``
    by default), with ``password`` (generated when not given).
    """

    def __init__(self, superuser: str = "postgres", password: str | None = None, port: int | None = None):
        self.bindir = _pg_bindir()
        self.superuser, self.password = superuser, password or secrets.token_urlsafe(18)
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="roster-pg-")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")

    def _run(self, *args, **kw):
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

    def start(self) -> "Postgres":
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as fh:
            fh.write(self.password)
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", self.data, "-U", self.superuser, "--auth-host=scram-sha-256", "--auth-local=trust",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C")
        os.remove(pwfile)
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off", "start")
        return self

    def url(self, database: str = "postgres", password: str | None = None, user: str | None = None) -> str:
        return (f"postgresql+psycopg2://{user or self.superuser}:{password or self.password}"
                f"@127.0.0.1:{self.port}/{database}")

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def psql_env(self, database: str) -> dict:
        """The environment ``psql`` needs to reach ``database`` as the superuser."""
        return {"PATH": f"{self.bindir}:{os.environ.get('PATH', '')}", "PGHOST": "127.0.0.1", "PGPORT": str(self.port),
                "PGUSER": self.superuser, "PGPASSWORD": self.password, "PGDATABASE": database}

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Redis ---------------------------------------------------------------------------------

class Redis:
    """``redis-server`` on loopback with a password, nothing saved to disk (a broker's queue)."""

    def __init__(self, password: str, port: int | None = None, log: Path | None = None):
        self.password, self.port = password, port or free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Redis":
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found: install it (apt-get install redis-server)")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        # the password on stdin's config, not the command line: `ps` shows a command line to everyone
        self.proc = subprocess.Popen([binary, "-"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.proc.stdin.write((f"port {self.port}\nbind 127.0.0.1\nrequirepass {self.password}\nsave \"\"\n"
                               "appendonly no\nprotected-mode yes\n").encode())
        self.proc.stdin.close()
        import redis

        deadline = time.monotonic() + timeout
        while True:
            try:
                if redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1).ping():
                    return self
            except redis.exceptions.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}" +
                                   (f" (see {self.log})" if self.log else ""))
            time.sleep(0.2)

    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the compose file's settings -----------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, variables: dict) -> str:
    """Compose's variable substitution: ``${X}``, ``${X:-default}``, ``${X-default}``,
    ``${X:?message}`` (an error when X is unset or empty), ``$$`` for a dollar."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = variables.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is None:
            if op and op.endswith("?"):
                raise KeyError(f"{name}: {arg or 'required'}")
            return arg if op else ""
        return value
    return _INTERPOLATION.sub(one, value)


def compose_settings(variables: dict, service: str | None = None) -> dict:
    """The Airflow environment compose gives its containers (``x-airflow-common``, and a
    service's own ``environment`` on top when named), interpolated with ``variables``."""
    import yaml

    spec = yaml.safe_load(COMPOSE_FILE.read_text())
    env = dict(spec["x-airflow-common"]["environment"])
    if service:
        env.update(spec["services"][service].get("environment") or {})
    return {k: interpolate(str(v), variables) for k, v in env.items()}


# --- Airflow -------------------------------------------------------------------------------

@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict
    log: Path
    proc: subprocess.Popen | None = None

    def start(self, cwd: Path) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)   # its own process group: stopped or killed whole
        out.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace: float) -> None:
        if not self.alive():
            self.signal_group(signal.SIGKILL)    # children left behind by a leader that is gone
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait()
        self.signal_group(signal.SIGKILL)


class Airflow:
    """Airflow's own processes over one environment (``env``: AIRFLOW_HOME, the metadata
    database, the executor, connections): ``airflow db migrate``, then ``processes`` and the
    Celery ``workers``, each in its own process group, logging to ``logs/<name>.log``.
    The compose stack (:class:`Stack`) and the demo (``include/demo.py``, LocalExecutor on
    SQLite) both run Airflow through this."""

    def __init__(self, env: dict, logs: Path, api_port: int, processes=("api-server", "scheduler", "dag-processor"),
                 workers: tuple[str, ...] = (), worker_env: dict | None = None, broker: str | None = None,
                 python: str = sys.executable):
        self.env, self.logs, self.api_port = env, Path(logs), api_port
        self.names, self.workers, self.worker_env = tuple(processes), tuple(workers), worker_env or {}
        self.broker = broker
        self.airflow = str(Path(python).with_name("airflow"))
        self.processes: dict[str, Process] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 240, service_env=None, progress=print) -> "Airflow":
        """``service_env(name)``: a process's environment when it differs from ``env`` (compose's per-service settings)."""
        service_env = service_env or (lambda name: self.env)
        self.logs.mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run([self.airflow, "db", "migrate"], env=service_env("airflow-init"),
                                 capture_output=True, text=True)
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}")
        progress("airflow db migrate: done")
        for name in self.names:
            argv = [self.airflow, name] + (["--host", "127.0.0.1", "--port", str(self.api_port)]
                                           if name == "api-server" else [])
            self._spawn(name, argv, service_env(f"airflow-{name.replace('api-server', 'apiserver')}"))
        for name in self.workers:
            self.start_worker(name, service_env("airflow-worker"))
        self.wait_healthy(timeout)
        return self

    def start_worker(self, name: str, env: dict | None = None) -> None:
        env = dict(env or self.env)
        env.update({WORKER_NAME_VARIABLE: name, "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.localstack.hostname",
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})
        env.update(self.worker_env.get(name, {}))
        self._spawn(name, [self.airflow, "celery", "worker", "--celery-hostname", f"{name}@%h"], env)

    def _spawn(self, name: str, argv: list[str], env: dict) -> None:
        p = Process(name, argv, env, self.logs / f"{name}.log")
        home = Path(env.get("AIRFLOW_HOME", "."))
        home.mkdir(parents=True, exist_ok=True)
        p.start(home)
        self.processes[name] = p

    def health(self) -> dict:
        """The api-server's view of the metadata database, scheduler, triggerer and dag-processor,
        plus which Celery workers answer a ping."""
        import requests

        out = {}
        try:
            h = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
            out.update({k: (v or {}).get("status") for k, v in h.items()})
        except (requests.RequestException, ValueError):
            out["api-server"] = "down"
        else:
            out["api-server"] = "healthy"
        out["workers"] = self.ping_workers() if self.workers else []
        return out

    def ping_workers(self, timeout: float = 1.0) -> list[str]:
        from celery import Celery

        app = Celery(broker=self.broker)
        try:
            replies = app.control.ping(timeout=timeout) or []
        finally:
            app.close()
        return sorted(name.split("@", 1)[0] for r in replies for name in r)

    def wait_healthy(self, timeout: float) -> dict:
        expected = {"metadatabase"} | {n.replace("-", "_") for n in self.names if n != "api-server"}
        deadline = time.monotonic() + timeout
        while True:
            dead = [n for n, p in self.processes.items() if not p.alive()]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while starting: see " +
                                   ", ".join(str(self.processes[n].log) for n in dead))
            h = self.health()
            if (h.get("api-server") == "healthy" and all(h.get(k) == "healthy" for k in expected)
                    and h["workers"] == sorted(self.workers)):
                return h
            if time.monotonic() > deadline:
                raise TimeoutError(f"Airflow is not healthy after {timeout:.0f}s: {h}; logs in {self.logs}")
            time.sleep(1)

    def alive(self) -> bool:
        return all(p.alive() for p in self.processes.values())

    def kill(self, name: str) -> list[int]:
        """``kill -9`` a process and everything it started, as when its machine is lost: its
        process group and any descendant that left the group. Returns the pids killed."""
        import psutil

        p = self.processes[name]
        family = process_tree(p.proc.pid)
        p.signal_group(signal.SIGKILL)
        for proc in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        p.proc.wait()
        psutil.wait_procs(family, timeout=10)
        return [proc.pid for proc in family]

    def stop(self, grace: float = 30) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].stop(grace)

    def api(self, username: str, password: str) -> "Api":
        return Api(self.api_url, username, password)


@dataclass
class Stack:
    """Airflow as compose runs it, on loopback. ``home`` holds AIRFLOW_HOME, the data root,
    logs and the generated secrets; ``worker_env`` adds variables to one worker
    (``{"worker-a": {...}}``); ``settings`` adds or overrides Airflow/roster-sync settings
    for every process (e.g. the source connections, a shorter heartbeat timeout);
    ``schedule=False`` runs only what is triggered (a sandbox serves one fixed period: the
    daily schedule's run of today would find nothing of today to reconcile)."""

    home: Path
    workers: tuple[str, ...] = ("worker-a", "worker-b")
    api_port: int = 0
    settings: dict = field(default_factory=dict)
    worker_env: dict = field(default_factory=dict)
    admin_password: str = "admin"
    schedule: bool = True
    python: str = sys.executable

    def __post_init__(self):
        self.home = Path(self.home).resolve()
        self.api_port = self.api_port or free_port()
        self.postgres: Postgres | None = None
        self.redis: Redis | None = None
        self.airflow: Airflow | None = None
        self.secrets = {name: secrets.token_urlsafe(18) for name in
                        ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "ROSTER_DB_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET")}
        from cryptography.fernet import Fernet

        self.secrets["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

    # addresses
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def data_root(self) -> Path:
        return self.home / "lake"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def processes(self) -> dict[str, Process]:
        return self.airflow.processes if self.airflow else {}

    def roster_url(self) -> str:
        return self.postgres.url("roster", self.secrets["ROSTER_DB_PASSWORD"], user="roster")

    def metadata_url(self) -> str:
        return self.postgres.url("airflow", self.secrets["POSTGRES_PASSWORD"], user="airflow")

    # settings
    def env(self, service: str | None = None) -> dict:
        """A process's environment: compose's settings, the addresses of this machine, ``settings``."""
        pg, redis_ = self.postgres, self.redis
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "ROSTER_SYNC_"))}
        env.update(compose_settings({**os.environ, **self.secrets}, service))
        env.update({
            "AIRFLOW_HOME": str(self.home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "airflow" / "logs"),
            "PYTHONPATH": str(ROOT),
            # compose's service names are this machine's loopback and free ports
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.metadata_url().replace("+psycopg2", ""),
            "AIRFLOW__CELERY__BROKER_URL": redis_.url(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self._ports["scheduler_health"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._ports["triggerer_logs"]),
            "AIRFLOW_CONN_ROSTER_DB": json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": pg.port,
                                                  "login": "roster", "password": self.secrets["ROSTER_DB_PASSWORD"],
                                                  "schema": "roster"}),
            "ROSTER_SYNC_DATA_ROOT": str(self.data_root),
            # the api-server's logins: compose leaves SimpleAuthManager's generated password; here it is known
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
        })
        if not self.schedule:
            env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
        env.update(self.settings)
        return {k: v for k, v in env.items() if v != ""}

    # life cycle
    def start(self, timeout: float = 240, progress=print) -> "Stack":
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.data_root.mkdir(exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({"admin": self.admin_password}))
        self._ports = {"scheduler_health": free_port(), "triggerer_logs": free_port()}
        t0 = time.monotonic()
        try:
            self._start(timeout, progress)
        except BaseException:
            self.stop(progress=lambda m: None)
            raise
        progress(f"stack up in {time.monotonic() - t0:.0f}s: Airflow {self.api_url}/ (admin / {self.admin_password}), "
                 f"logs in {self.logs}")
        return self

    def _start(self, timeout: float, progress) -> None:
        self.postgres = Postgres("airflow", self.secrets["POSTGRES_PASSWORD"]).start()
        self.postgres.create_database("airflow")               # what the image does for POSTGRES_DB
        for script in sorted(POSTGRES_INIT.glob("*.sh")):   # compose's init: the roster database and its user
            init = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                                  env={**self.postgres.psql_env("airflow"), "POSTGRES_USER": "airflow",
                                       "POSTGRES_DB": "airflow", "ROSTER_DB_PASSWORD": self.secrets["ROSTER_DB_PASSWORD"]})
            if init.returncode:
                raise RuntimeError(f"{script.name} failed: {init.stderr.strip()[-2000:]}")
        progress(f"postgresql on 127.0.0.1:{self.postgres.port} (databases airflow and roster)")
        self.redis = Redis(self.secrets["REDIS_PASSWORD"], log=self.logs / "redis.log").start()
        progress(f"redis on 127.0.0.1:{self.redis.port}")
        self.airflow = Airflow(self.env(), self.logs, self.api_port,
                               processes=("api-server", "scheduler", "dag-processor", "triggerer"),
                               workers=self.workers, worker_env=self.worker_env, broker=self.redis.url(),
                               python=self.python)
        self.airflow.start(timeout, service_env=self.env, progress=progress)

    def kill(self, name: str) -> list[int]:
        """``kill -9`` one of the stack's Airflow processes with everything it started (:meth:`Airflow.kill`)."""
        return self.airflow.kill(name)

    def stop(self, grace: float = 30, progress=print) -> None:
        if self.airflow:
            self.airflow.stop(grace)
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()
        progress("stack stopped")

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # the REST API, as an operator's script uses it
    def api(self) -> "Api":
        return Api(self.api_url, "admin", self.admin_password)


class Api:
    """Airflow's REST API (``/api/v2``) with a token from ``/auth/token``."""

    def __init__(self, url: str, username: str, password: str):
        import requests

        self.url, self.session = url, requests.Session()
        r = self.session.post(f"{url}/auth/token", json={"username": username, "password": password}, timeout=30)
        r.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        r = self.session.get(f"{self.url}/api/v2{path}", params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def call(self, method: str, path: str, body: dict) -> dict:
        r = self.session.request(method, f"{self.url}/api/v2{path}", json=body, timeout=30)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        import requests

        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.get(f"/dags/{dag_id}")
            except requests.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"DAG {dag_id} not parsed after {timeout:.0f}s") from None
                time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str, conf: dict | None = None, run_id: str | None = None) -> dict:
        """Unpause ``dag_id`` and start a run for ``logical_date`` (YYYY-MM-DD, midnight UTC)."""
        self.unpause(dag_id)
        body = {"logical_date": f"{logical_date}T00:00:00Z", "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.call("POST", f"/dags/{dag_id}/dagRuns", body)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries")["task_instances"]

    def run(self, dag_id: str, logical_date: str, run_id: str, conf: dict | None = None) -> dict:
        """Start ``run_id`` for ``logical_date``; when that run exists already, clear it so that it
        runs again (what an operator's "Clear" does: its earlier tries stay in its history)."""
        import requests

        try:
            existing = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        except requests.HTTPError as exc:
            if exc.response is None or exc.response.status_code != 404:
                raise
            return self.trigger(dag_id, logical_date, conf, run_id)
        self.unpause(dag_id)
        self.call("POST", f"/dags/{dag_id}/clearTaskInstances",
                  {"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True})
        return existing

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, progress=None, poll: float = 2) -> dict:
        """Poll until the run ends; ``progress(run, task_instances)`` after every poll."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if progress:
                progress(run, self.task_instances(dag_id, run_id))
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['state']} after {timeout:.0f}s")
            time.sleep(poll)


def state_counts(run: dict, task_instances: list[dict]) -> str:
    """``running: success 3, running 2, none 10``: a run's tasks by state, one line."""
    counts: dict[str, int] = {}
    for ti in task_instances:
        counts[ti["state"] or "none"] = counts.get(ti["state"] or "none", 0) + 1
    return f"{run['state']}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
