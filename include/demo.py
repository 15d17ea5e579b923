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
    args = ap.parse_args(argv)
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
    period = manifest["periods"][0]
    print(f"== generated periods {', '.join(manifest['periods'])}; injected findings (truth) for {period}:")
    for code, n in manifest["summary"][period]["findings"].items():
        print(f"   {code:28s} {n}")
    print(f"   roster expected: {manifest['summary'][period]['roster']:,} persons")
    with Simulators(data, period, ports={"staffing": 0, "org": 0, "hr": 0},
                    finance_url=f"sqlite:///{(var / 'finance.db').resolve()}") as sims:
        print("== simulators serving on loopback:")
        for name in ("staffing", "org", "hr"):
            print(f"   {name:9s} {sims.url(name)}")
        print(f"   finance   {sims.finance_url}")
        env = airflow_env(var, sims)
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        logical = str(P.last_day(period))
        print(f"== airflow dags test roster_sync {logical}")
        log_path = var / "roster_sync.log"
        with open(log_path, "w") as log:
            rc = subprocess.run([airflow, "dags", "test", "roster_sync", logical], env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        lines = log_path.read_text(errors="replace").splitlines()
        for line in lines:
            if line.startswith("roster_sync ") or "DagRun Finished" in line:
                print("   " + (line if len(line) < 240 else line[:240] + " ..."))
        print(f"== run {'succeeded' if rc == 0 else 'FAILED'}; full log: {log_path}")
        from include.pipeline.store import latest_manifest
        print("== raw layer (what each source said, kept as received):")
        for source in ("staffing", "org", "finance", "hr"):
            m = latest_manifest(str(var / "lake"), source, at=logical)
            if m:
                rows = sum(f["rows"] for name, f in m["files"].items() if not name.endswith("__state.parquet") and name != "pages.parquet")
                print(f"   {source:9s} {len(m['files'])} files, {rows:,} rows  {m['dir']}")
            else:
                print(f"   {source:9s} no complete extract for {logical}")
    print(f"== where to look: data {data} (truth in periods/*/truth), lake {var / 'lake'}, roster DB {var / 'roster.db'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
