"""The main job on the embedded default: generate a county, serve it, run roster_sync.

Run by ``scripts/demo.sh``. Everything lives under ``var/`` (data, Airflow home, the
SQLite databases), so a second run reuses the generated county unless ``--fresh``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from include import periods as P
from include.generator.generate import generate, load_manifest
from include.generator.world import WorldParams
from include.simulators.cluster import Simulators

ROOT = Path(__file__).resolve().parents[1]


def airflow_env(var: Path, sims: Simulators) -> dict:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(var / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(ROOT),
        "ROSTER_SYNC_DATA_ROOT": str(var / "lake"),
        "AIRFLOW_CONN_ROSTER_DB": json.dumps({"conn_type": "sqlite", "host": str(var / "roster.db")}),
        **sims.env(),
    })
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--var", default=str(ROOT / "var" / "demo"))
    ap.add_argument("--persons", type=int, default=7000)
    ap.add_argument("--fresh", action="store_true", help="regenerate the county")
    ap.add_argument("--workspace", action="store_true",
                    help="then serve the offices' workspace (Airflow's api-server) until Ctrl-C; the runs are skipped "
                         "when the demo's roster_db already has its periods")
    ap.add_argument("--port", type=int, default=8080, help="the workspace's port on 127.0.0.1")
    args = ap.parse_args(argv)
    var = Path(args.var)
    if args.workspace and not args.fresh and _published(var):
        return serve_workspace(var, args.port)
    data = var / "data"
    if args.fresh and var.exists():
        shutil.rmtree(var)
    var.mkdir(parents=True, exist_ok=True)
    if not (data / "manifest.json").exists():
        print(f"== generating a county of {args.persons:,} persons into {data}")
        shutil.rmtree(data, ignore_errors=True)
        generate(WorldParams(persons=args.persons, periods=2), data, progress=lambda m: print("   " + m, flush=True))
    manifest = load_manifest(data)
    period = manifest["periods"][0]
    print(f"== generated periods {', '.join(manifest['periods'])}; injected findings (truth) for {period}:")
    for code, n in manifest["summary"][period]["findings"].items():
        print(f"   {code:28s} {n}")
    print(f"   roster expected: {manifest['summary'][period]['roster']:,} persons")
    rc = 0
    with Simulators(data, period, ports={"staffing": 0, "org": 0, "hr": 0},
                    finance_url=f"sqlite:///{(var / 'finance.db').resolve()}") as sims:
        print("== simulators serving on loopback:")
        for name in ("staffing", "org", "hr"):
            print(f"   {name:9s} {sims.url(name)}")
        print(f"   finance   {sims.finance_url}")
        env = airflow_env(var, sims)
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for p in manifest["periods"]:
            sims.advance(p)
            logical = str(P.last_day(p))
            print(f"== period {p}: simulators advanced; airflow dags test roster_sync {logical}")
            log_path = var / f"roster_sync_{logical}.log"
            with open(log_path, "w") as log:
                rc = subprocess.run([airflow, "dags", "test", "roster_sync", logical], env=env, stdout=log,
                                    stderr=subprocess.STDOUT).returncode
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("roster_sync "):
                    print("   " + line)
            print(f"   run {'succeeded' if rc == 0 else 'FAILED'}; log: {log_path}")
            if rc:
                return rc
    summarise(var, data, manifest["periods"])
    if args.workspace:
        return serve_workspace(var, args.port)
    return rc


# The demo's logins: an admin, and each office's users of config/recipients.json (read-only
# in Airflow; what they see in the workspace is their office's region).
DEMO_PASSWORD = "demo"


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


def serve_workspace(var: Path, port: int) -> int:
    """Airflow's api-server on 127.0.0.1:``port`` with the workspace plugin, over the demo's roster_db."""
    from include.alerts.routing import load

    users = {"admin": "admin", **{u: "viewer" for o in load().offices.values() for u in o.users}}
    passwords = var / "workspace_passwords.json"
    passwords.write_text(json.dumps({u: DEMO_PASSWORD for u in users}))
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(var / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(ROOT),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW_CONN_ROSTER_DB": json.dumps({"conn_type": "sqlite", "host": str(var / "roster.db")}),
    })
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    print(f"== the offices' workspace: http://127.0.0.1:{port}/roster-sync/  (Airflow: http://127.0.0.1:{port}/)")
    print(f"   logins (password {DEMO_PASSWORD!r} for each): " + ", ".join(
        f"{u} ({'admin: everything' if r == 'admin' else 'its office region'})" for u, r in users.items()))
    print("   Ctrl-C stops it.", flush=True)
    try:
        return subprocess.run([airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)], env=env).returncode
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
