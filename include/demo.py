"""The main job on the embedded default: generate a county, serve it, run roster_sync.

Run by ``scripts/demo.sh``. Everything lives under ``var/`` (data, Airflow home, the
SQLite databases), so a second run reuses the generated county unless ``--fresh``.
roster_sync runs through Airflow's scheduler (LocalExecutor on SQLite, api-server and
dag-processor beside it), triggered through the REST API, so the runs, their task logs,
durations and Assets are in the UI; ``--ui`` keeps it all running afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from include import periods as P
from include.generator.generate import generate, load_manifest
from include.generator.world import WorldParams
from include.localstack import Airflow, free_port
from include.simulators.cluster import Simulators

ROOT = Path(__file__).resolve().parents[1]


# The demo's logins: an admin, and each office's users of config/recipients.json (read-only
# in Airflow; what they see in the workspace is their office's region).
DEMO_PASSWORD = "demo"
DAG = "roster_sync"


def airflow_env(var: Path, sims: Simulators, port: int) -> dict:
    """Airflow over the demo's state: LocalExecutor on SQLite under ``var/airflow``, the
    workspace plugin, the demo's logins, the simulators' connections."""
    from include.alerts.routing import load

    users = {"admin": "admin", **{u: "viewer" for o in load().offices.values() for u in o.users}}
    passwords = var / "workspace_passwords.json"
    passwords.write_text(json.dumps({u: DEMO_PASSWORD for u in users}))
    # the shell's Airflow configuration is not the demo's; its connections (alerts_smtp, say) are kept
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
    env.update({
        "AIRFLOW_HOME": str(var / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),     # shared by the demo's processes
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        # the county serves fixed periods: runs are the demo's (or the operator's), never today's schedule
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "PYTHONPATH": str(ROOT),
        "ROSTER_SYNC_DATA_ROOT": str(var / "lake"),
        "AIRFLOW_CONN_ROSTER_DB": json.dumps({"conn_type": "sqlite", "host": str(var / "roster.db")}),
        **sims.env(),
    })
    return env


def _port(wanted: int) -> int:
    """``wanted`` when it is free on 127.0.0.1, else (or for 0) any free port."""
    if not wanted:
        return free_port()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the api-server binds: a port in TIME_WAIT is free
        try:
            s.bind(("127.0.0.1", wanted))
            return wanted
        except OSError:
            port = free_port()
            print(f"   port {wanted} is taken: using {port}")
            return port


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--var", default=str(ROOT / "var" / "demo"))
    ap.add_argument("--persons", type=int, default=7000)
    ap.add_argument("--fresh", action="store_true", help="regenerate the county")
    ap.add_argument("--ui", "--workspace", dest="ui", action="store_true",
                    help="then keep Airflow (api-server, scheduler) and the simulators running until Ctrl-C: the runs, "
                         "their logs, the Assets and the offices' workspace; the runs are skipped when the demo's "
                         "roster_db already has its periods")
    ap.add_argument("--port", type=int, default=8080, help="the api-server's port on 127.0.0.1")
    args = ap.parse_args(argv)
    # SIGTERM stops it as Ctrl-C does: Airflow's processes and the simulators are stopped, not left behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    var = Path(args.var)
    data = var / "data"
    if args.fresh and var.exists():
        shutil.rmtree(var)
    var.mkdir(parents=True, exist_ok=True)
    if not (data / "manifest.json").exists():
        print(f"== generating a county of {args.persons:,} persons into {data}")
        shutil.rmtree(data, ignore_errors=True)
        generate(WorldParams(persons=args.persons, periods=2), data, progress=lambda m: print("   " + m, flush=True))
    manifest = load_manifest(data)
    periods = manifest["periods"]
    skip_runs = args.ui and _published(var)
    if not skip_runs:
        print(f"== generated periods {', '.join(periods)}; injected findings (truth) for {periods[0]}:")
        for code, n in manifest["summary"][periods[0]]["findings"].items():
            print(f"   {code:28s} {n}")
        print(f"   roster expected: {manifest['summary'][periods[0]]['roster']:,} persons")
    with Simulators(data, periods[-1] if skip_runs else periods[0], ports={"staffing": 0, "org": 0, "hr": 0},
                    finance_url=f"sqlite:///{(var / 'finance.db').resolve()}") as sims:
        print("== simulators serving on loopback:")
        for name in ("staffing", "org", "hr"):
            print(f"   {name:9s} {sims.url(name)}")
        print(f"   finance   {sims.finance_url}")
        port = _port(args.port)
        airflow = Airflow(airflow_env(var, sims, port), var / "airflow" / "processes", port,
                          processes=("api-server", "scheduler", "dag-processor"))
        print(f"== Airflow: api-server on 127.0.0.1:{port}, scheduler (LocalExecutor), dag-processor; "
              f"their logs in {airflow.logs}", flush=True)
        try:
            airflow.start(progress=lambda m: print("   " + m, flush=True))
            api = airflow.api("admin", DEMO_PASSWORD)
            api.wait_for_dag(DAG)
            if not skip_runs:
                for p in periods:
                    sims.advance(p)
                    if not run_period(api, var, p):
                        return 1
                summarise(var, data, periods)
            if args.ui:
                return serve(airflow, port)
        finally:
            airflow.stop()
    return 0


def run_period(api, var: Path, period: str) -> bool:
    """One run of roster_sync through the scheduler, as the UI shows it: its tasks as they end,
    then its summary lines (``roster_sync ...``) from the task logs."""
    logical = str(P.last_day(period))
    run_id = f"demo__{logical}"
    print(f"== period {period}: simulators advanced; roster_sync run {run_id} (logical date {logical})", flush=True)
    api.run(DAG, logical, run_id)
    told: set = set()

    def progress(run, tis):
        for ti in sorted(tis, key=lambda t: t["end_date"] or ""):
            key = (ti["task_id"], ti["map_index"])
            if ti["state"] in ("success", "failed", "upstream_failed", "skipped") and key not in told:
                told.add(key)
                label = ti["task_id"] + (f" [{ti['rendered_map_index'] or ti['map_index']}]" if ti["map_index"] >= 0 else "")
                print(f"   {ti['state']:8s} {label} ({ti['duration'] or 0:.1f} s)", flush=True)

    time.sleep(1)
    end = api.wait_for_run(DAG, run_id, timeout=1800, progress=progress)
    for line in summary_lines(var / "airflow" / "logs", run_id):
        print("   " + line)
    print(f"   run {'succeeded' if end['state'] == 'success' else 'FAILED'}; task logs: "
          f"{var / 'airflow' / 'logs' / f'dag_id={DAG}' / f'run_id={run_id}'}")
    return end["state"] == "success"


def summary_lines(logs: Path, run_id: str) -> list[str]:
    """The tasks' ``roster_sync ...`` lines of a run's latest tries, in the order they were logged."""
    def attempt(f: Path) -> int:
        return int(f.stem.split("=")[1])

    latest: dict[Path, Path] = {}          # a task's folder -> its latest try's log
    for f in (logs / f"dag_id={DAG}" / f"run_id={run_id}").rglob("attempt=*.log"):
        latest[f.parent] = max(latest.get(f.parent, f), f, key=attempt)
    events = []
    for f in latest.values():
        for line in f.read_text(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and str(e.get("event", "")).startswith("roster_sync "):
                events.append((e.get("timestamp", ""), e["event"]))
    return [text for _, text in sorted(events)]


def _published(var: Path) -> bool:
    import sqlalchemy as sa

    db = var / "roster.db"
    if not db.exists():
        return False
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as c:
            return bool(c.execute(sa.text("SELECT count(*) FROM publish_log")).scalar())
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def serve(airflow: Airflow, port: int) -> int:
    """Keep Airflow and the simulators running until Ctrl-C."""
    from include.alerts.routing import load

    users = ["admin", *[u for o in load().offices.values() for u in o.users]]
    print(f"== Airflow: http://127.0.0.1:{port}/  (the runs, their logs, Assets; trigger another run from there)")
    print(f"   the offices' workspace: http://127.0.0.1:{port}/roster-sync/")
    print(f"   logins (password {DEMO_PASSWORD!r} for each): " + ", ".join(
        f"{u} ({'admin: everything' if u == 'admin' else 'its office region'})" for u in users))
    print("   Ctrl-C stops it.", flush=True)
    try:
        while airflow.alive():
            time.sleep(1)
        print("== an Airflow process exited: see " + ", ".join(str(p.log) for p in airflow.processes.values()
                                                              if not p.alive()))
        return 1
    except KeyboardInterrupt:
        return 0


def summarise(var: Path, data: Path, periods: list[str]) -> None:
    import pandas as pd
    import sqlalchemy as sa

    from include.generator import oracle
    from include.pipeline.accuracy import compare, render

    engine = sa.create_engine(f"sqlite:///{var / 'roster.db'}")
    with engine.connect() as c:
        by_class = pd.read_sql(sa.text("SELECT period, personnel_class, count(*) AS persons FROM roster GROUP BY 1, 2"), c)
        codes = pd.read_sql(sa.text("SELECT period, code, count(*) AS n FROM reconciliation_finding GROUP BY 1, 2"), c)
        alerts = pd.read_sql(sa.text("SELECT status, count(*) AS n FROM reconciliation_alert GROUP BY 1"), c)
    print("== the roster (table roster) by personnel class:")
    print("   " + by_class.pivot(index="personnel_class", columns="period", values="persons").fillna(0).astype(int)
          .to_string().replace("\n", "\n   "))
    print("== findings by code (table reconciliation_finding):")
    print("   " + codes.pivot(index="code", columns="period", values="n").fillna(0).astype(int).to_string().replace("\n", "\n   "))
    print("== alerts (table reconciliation_alert): " + ", ".join(f"{r.status} {r.n}" for r in alerts.itertuples()))
    with engine.connect() as c:
        digests = pd.read_sql(sa.text("SELECT period, office_code, new, still_open, resolved, location FROM digest_log "
                                      "ORDER BY sent_at"), c)
    print("== digests to the staffing offices (table digest_log; no alerts_smtp configured, so written as .eml):")
    for r in digests.itertuples():
        print(f"   {r.period} office {r.office_code}: {r.new} new, {r.still_open} still open, {r.resolved} resolved -> {r.location}")
    last = periods[-1]
    truth = oracle.load(data, last)
    with engine.connect() as c:
        found = pd.read_sql(sa.text("SELECT * FROM reconciliation_finding WHERE period = :p"), c, params={"p": last})
        roster = pd.read_sql(sa.text("SELECT id_number FROM roster WHERE period = :p"), c, params={"p": last})
    engine.dispose()
    print(f"== accuracy of {last} against the generator's ground truth:")
    print("   " + render(compare(found, truth["findings"], roster.id_number, truth["roster"])).replace("\n", "\n   "))
    print("== where to look:")
    print(f"   roster_db        sqlite:///{var / 'roster.db'} (tables roster, reconciliation_alert, reconciliation_finding, alert_event)")
    for p in periods:
        print(f"   exports {p}  {var / 'lake' / 'published' / p}/roster_{p}.{{parquet,csv,xlsx}}")
    print(f"   raw layer        {var / 'lake' / 'raw'}")
    for p in periods:
        for html in sorted((var / "lake" / "reports" / p).glob("*/monthly_report_*.html")):
            print(f"   数据月报 {p}   {html} (and .xlsx, charts/*.png)")
    print(f"   Data Docs        file://{var / 'lake' / 'quality' / 'gx' / 'gx' / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}")
    print(f"   generated data   {data} (truth in periods/*/truth)")


if __name__ == "__main__":
    sys.exit(main())
