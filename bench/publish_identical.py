"""Same data in, same tables out (a script, not a test): the published tables of two code revisions.

    python bench/publish_identical.py --before bc8ae1a --persons 200000

Generates a jurisdiction (two periods, cached under var/bench/ident-<N>), then, for the
code as it stood at ``--before`` (a git worktree) and as it stands now, each in its own
child process with its own simulators (every fault on at 5%, same seed), its own lake and
its own SQLite roster_db, runs both periods through the whole pipeline (``run_local``) and
hashes the published tables: ``roster``, ``reconciliation_finding``, ``alert_evidence``,
``roster_change`` (rows sorted by key; times of day left out, they differ by design).
Prints each table's rows and hash for both and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_reconcile import checkout, child  # noqa: E402

RUN = r"""
import hashlib, json, sys
sys.path.insert(0, {code!r})
import pandas as pd, sqlalchemy as sa
from include import periods as P
from include.pipeline.local import run_local
from include.simulators.base import Faults
from include.simulators.cluster import Simulators
work = {work!r}
url = f"sqlite:///{{work}}/roster.db"
with Simulators({data!r}, faults=Faults.all_on(0.05, token_ttl=2.0, seed=17), ports={{"staffing": 0, "org": 0, "hr": 0}},
                finance_url=f"sqlite:///{{work}}/finance.db") as sims:
    for period in {periods!r}:
        sims.advance(period)
        run_local(sims.connections(), sims.finance_url, url, f"{{work}}/lake", str(P.last_day(period)))
KEYS = {{"roster": ["period", "id_number"], "reconciliation_finding": ["period", "alert_key"],
        "alert_evidence": ["period", "alert_key", "source", "record_key"], "roster_change": ["period", "id_number"]}}
engine = sa.create_engine(url)
out = {{}}
with engine.connect() as c:
    for table, key in KEYS.items():
        df = pd.read_sql(sa.text(f"SELECT * FROM {{table}}"), c)
        df = df.drop(columns=[x for x in df.columns if x in ("updated_at", "at", "published_at", "generated_at")])
        df = df.sort_values(key, ignore_index=True)[sorted(df.columns)].astype(str)
        out[table] = {{"rows": len(df), "sha256": hashlib.sha256(
            pd.util.hash_pandas_object(df, index=False).values.tobytes()).hexdigest()}}
print(json.dumps(out))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--persons", type=int, default=200_000)
    a = ap.parse_args()
    from include.generator.generate import generate
    from include.generator.world import WorldParams

    data = ROOT / "var" / "bench" / f"ident-{a.persons}"
    if not (data / "manifest.json").exists():
        generate(WorldParams(persons=a.persons, periods=2, findings_per_code=3), data,
                 progress=lambda m: print("   ", m, flush=True))
    periods = json.loads((data / "manifest.json").read_text())["periods"]
    results = {}
    for label, code in (("before", checkout(a.before)), ("now", ROOT)):
        work = tempfile.mkdtemp(prefix=f"ident-{label}-", dir=ROOT / "var" / "bench")
        results[label] = child(RUN.format(code=str(code), work=work, data=str(data), periods=periods))
        print(f"{label} ({a.before if label == 'before' else 'working tree'}): done", flush=True)
    same = True
    for table in results["now"]:
        b, n = results["before"][table], results["now"][table]
        ok = b == n
        same &= ok
        print(f"  {table:24s} before {b['rows']:>9,} rows {b['sha256'][:16]}  now {n['rows']:>9,} rows {n['sha256'][:16]}  "
              f"{'identical' if ok else 'DIFFERENT'}")
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
