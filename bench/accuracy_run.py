"""Accuracy at scale (a script, not a test): generate, run the pipeline with every fault on, compare.

    python bench/accuracy_run.py --persons 200000

Generates a jurisdiction (two periods), serves it with every fault on at 5%, runs the
whole pipeline for each period (extract, standardise, reconcile, publish to SQLite) and
prints the accuracy table of each period against the generator's ground truth, and checks
the evidence: every finding has some, every key names a real record.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from include import periods as P  # noqa: E402
from include.generator import oracle  # noqa: E402
from include.generator.generate import generate  # noqa: E402
from include.generator.world import WorldParams  # noqa: E402
from include.pipeline.accuracy import compare, render  # noqa: E402
from include.pipeline.local import run_local  # noqa: E402
from include.pipeline.received import received_records  # noqa: E402
from include.simulators.base import Faults  # noqa: E402
from include.simulators.cluster import Simulators  # noqa: E402


def evidence_ok(found: pd.DataFrame, evidence: pd.DataFrame, std: str) -> bool:
    """Every finding has evidence, and every evidence key names a real record of the sources."""
    records = pd.read_parquet(f"{std}/records.parquet", columns=["source", "rec_no"])   # each one's key, from its row as received
    received = json.load(open(f"{std}/_summary.json"))["received"]
    keys = {(s, key) for s, entry in received.items() for _, key, _ in received_records(s, entry, records.rec_no[records.source == s])}
    units = pd.read_parquet(f"{std}/units.parquet", columns=["unit_code"])
    quotas = pd.read_parquet(f"{std}/quotas.parquet", columns=["unit_code", "quota_type"])
    posts = pd.read_parquet(f"{std}/leader_posts.parquet", columns=["unit_code", "level"])
    real = (keys | {("staffing", "units|" + u) for u in units.unit_code}
            | {("staffing", f"quotas|{u}|{t}") for u, t in zip(quotas.unit_code, quotas.quota_type)}
            | {("staffing", f"leader_posts|{u}|{lv}") for u, lv in zip(posts.unit_code, posts.level)})
    bare = set(found.alert_key) - set(evidence.alert_key)
    unreal = set(zip(evidence.source, evidence.record_key)) - real
    print(f"evidence: {len(evidence):,} records for {evidence.alert_key.nunique():,} of {len(found):,} findings; "
          f"{len(bare)} findings without evidence, {len(unreal)} keys naming no record, "
          f"{int(evidence.facts.isna().sum())} without facts", flush=True)
    return not bare and not unreal and evidence.facts.notna().all()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=200_000)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-accuracy-"))
    try:
        t0 = time.perf_counter()
        manifest = generate(WorldParams(persons=args.persons, periods=2, findings_per_code=3), work / "data",
                            progress=lambda m: print("   ", m, flush=True))
        print(f"generated {args.persons:,} persons in {time.perf_counter() - t0:.0f}s")
        url = f"sqlite:///{work / 'roster.db'}"
        perfect = True
        with Simulators(work / "data", faults=Faults.all_on(args.fault_rate, token_ttl=2.0), ports={"staffing": 0, "org": 0, "hr": 0},
                        finance_url=f"sqlite:///{work / 'finance.db'}") as sims:
            for period in manifest["periods"]:
                sims.advance(period)
                t1 = time.perf_counter()
                run = run_local(sims.connections(), sims.finance_url, url, str(work / "lake"), str(P.last_day(period)))
                engine = sa.create_engine(url)
                with engine.connect() as c:
                    found = pd.read_sql(sa.text("SELECT * FROM reconciliation_finding WHERE period = :p"), c, params={"p": period})
                    roster = pd.read_sql(sa.text("SELECT id_number FROM roster WHERE period = :p"), c, params={"p": period})
                    evidence = pd.read_sql(sa.text("SELECT alert_key, source, record_key, facts FROM alert_evidence WHERE period = :p"),
                                           c, params={"p": period})
                engine.dispose()
                truth = oracle.load(work / "data", period)
                table = compare(found, truth["findings"], roster.id_number, truth["roster"])
                perfect &= bool((table.recall == 1).all() and (table.precision == 1).all())
                perfect &= evidence_ok(found, evidence, run["standardise"]["dir"])
                print(f"== {period}: pipeline ran in {time.perf_counter() - t1:.0f}s with faults at {args.fault_rate:.0%}; "
                      f"simulator counters {sims.counters()}")
                print(render(table), flush=True)
        print("all 1.00" if perfect else "NOT all 1.00")
        return 0 if perfect else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
