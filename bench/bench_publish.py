"""Benchmark (not a test): publishing a province-size period into roster_db (issue 17).

    python bench/bench_publish.py --before 7213894          # SQLite and PostgreSQL, now against 7213894

On the 1M jurisdiction's reconciled period (var/bench/work-1M: about 1.07M roster rows,
its findings and their evidence), in fresh child processes, each into a fresh roster_db
(PostgreSQL: a throwaway cluster on loopback, as the tests start):

* ``now`` / ``before``: :func:`include.pipeline.publish.publish` without exports, first
  into the empty database, then again (a republish: the period's rows deleted and written
  again in one transaction), as the code stands now and at ``--before``;
* ``floor``: the same roster, findings and evidence rows written in one transaction into
  the same tables with nothing else: PostgreSQL ``COPY`` from CSV made by pyarrow;
  SQLite the driver's ``executemany`` over tuples.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_reconcile import checkout, child  # noqa: E402

PUBLISH = r"""
import json, logging, sys, time
sys.path.insert(0, {code!r})
from include.pipeline.publish import publish
t0 = time.perf_counter()
first = publish({work!r}, {url!r}, "2026-10", "2026-10-31")
t1 = time.perf_counter()
publish({work!r}, {url!r}, "2026-10", "2026-10-31")
t2 = time.perf_counter()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"first": t1 - t0, "again": t2 - t1, "rows": first["roster_rows"], "rss_mb": hwm / 1024}}))
"""

FLOOR = r"""
import io, json, sys, time
sys.path.insert(0, {code!r})
import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
import sqlalchemy as sa
from include.pipeline import database
from include.pipeline.publish import ALERT_COLUMNS, evidence_table, finding_table, metadata, roster_table
from include.pipeline.reconcile import ROSTER_COLUMNS
from include.pipeline.publish import _evidence, alert_keys
import fsspec, pandas as pd
findings = pd.read_parquet({work!r} + "/findings.parquet")
findings["alert_key"] = alert_keys(findings)
ev = _evidence({work!r}, fsspec.filesystem("file"), findings)
tables = {{
    roster_table: pq.read_table({work!r} + "/roster.parquet").select(ROSTER_COLUMNS).set_column(
        0, "period", pa.array(["2026-10"] * pq.read_metadata({work!r} + "/roster.parquet").num_rows)),
    finding_table: pa.Table.from_pandas(findings[ALERT_COLUMNS].assign(period="2026-10"), preserve_index=False),
    evidence_table: pa.Table.from_pandas(ev.assign(period="2026-10"), preserve_index=False),
}}
engine = database.engine({url!r})
metadata.create_all(engine, tables=list(tables))
t0 = time.perf_counter()
rows = 0
with engine.begin() as conn:
    raw = conn.connection.dbapi_connection
    for table, data in tables.items():
        rows += data.num_rows
        cols = data.column_names
        if engine.dialect.name == "postgresql":
            buf = io.BytesIO()
            pacsv.write_csv(data, buf, pacsv.WriteOptions(include_header=False))
            buf.seek(0)
            with raw.cursor() as cur:
                cur.copy_expert(f"COPY {{table.name}} ({{', '.join(cols)}}) FROM STDIN WITH (FORMAT csv)", buf)
        else:
            cur = raw.cursor()
            cur.executemany(f"INSERT INTO {{table.name}} ({{', '.join(cols)}}) VALUES ({{', '.join('?' * len(cols))}})",
                            zip(*[data.column(c).to_pylist() for c in cols]))
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "rows": rows, "rss_mb": hwm / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=None, help="a git revision to time against")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--work", default=str(ROOT / "var" / "bench" / "work-1M"))
    a = ap.parse_args()
    if not Path(a.work, "roster.parquet").exists():
        from bench_reconcile import std_1m

        from include.pipeline.reconcile import reconcile
        reconcile(str(std_1m()), out=a.work)
    old = checkout(a.before) if a.before else None
    cluster = None
    fresh = iter(range(1_000_000))
    results = {}
    try:
        for db in a.databases.split(","):
            if db == "postgresql" and cluster is None:
                from tests.pg import Cluster
                cluster = Cluster().start()

            def url() -> str:
                n = next(fresh)
                if db == "postgresql":
                    return cluster.create_database(f"bench_publish_{n}")
                path = ROOT / "var" / "bench" / f"publish-{n}.db"
                path.unlink(missing_ok=True)
                return f"sqlite:///{path}"
            floor = child(FLOOR.format(code=str(ROOT), work=a.work, url=url()))
            print(f"{db:10s} floor              {floor['seconds']:6.1f}s  ({floor['rows']:,} rows)  peak {floor['rss_mb']:,.0f} MB",
                  flush=True)
            results[(db, "floor")] = floor
            for label, code in (("now", ROOT), *((("before", old),) if old else ())):
                r = child(PUBLISH.format(code=str(code), work=a.work, url=url()))
                results[(db, label)] = r
                print(f"{db:10s} {label:6s} publish     {r['first']:6.1f}s  republish {r['again']:6.1f}s  "
                      f"({r['rows']:,} roster rows)  peak {r['rss_mb']:,.0f} MB  "
                      f"= {r['first'] / floor['seconds']:.1f}x the floor", flush=True)
    finally:
        if cluster:
            cluster.stop()
    print(json.dumps({f"{k[0]}/{k[1]}": {m: round(v, 1) for m, v in r.items() if m != "rows"} for k, r in results.items()}))


if __name__ == "__main__":
    main()
