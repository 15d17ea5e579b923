"""Benchmark (not a test): reconciliation over standardised Parquet, against a bare DuckDB join.

    python bench/bench_reconcile.py                   # 1M and 5M persons
    python bench/bench_reconcile.py --copies 1        # 1M only
    python bench/bench_reconcile.py --copies 1 --before 7de2371 --rounds 2 --publish postgresql
                                   # what evidence adds to reconcile + publish (7de2371: the last commit without it)

The 1M standardised model comes from the generated 1M jurisdiction (var/bench/p1000000,
made by bench_extract.py), extracted through the simulators and standardised once, and
cached in var/bench/std-1M. The 5M model is that model five times over, each copy with
its own persons, units and budget units (a letter prefix on every key), so every join
and aggregate really is five times larger.

For each size, in fresh child processes (peak RSS = the child's VmHWM):
* ``reconcile``: resolve, every code of the catalogue and the roster, written to Parquet;
* ``before`` (``--before REV``): the same reconcile as the code stood at git revision REV
  (checked out with ``git worktree`` under var/bench/), on the same standardised model,
  run alternately with the current code (best of ``--rounds``), so a change's cost is
  measured on one machine in one run. Issue 13 (six codes more) measured against
  ``--before e7d9814``, the last commit with the seventeen codes;
* ``lower bound``: a bare DuckDB query that reads the same standardised records and
  joins the four sources on ID (FULL JOIN), nothing else; two forms, both printed:
  ``count`` reads only the ID column and counts the joined rows; ``columns`` reads every
  column the rules read and materialises the joined table (the I/O reconcile cannot avoid).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECONCILE = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from include.pipeline.reconcile import reconcile
t0 = time.perf_counter()
s = reconcile({std!r}, out={out!r}, memory_limit={mem!r})
dt = time.perf_counter() - t0
pub = None
if {publish!r}:   # publish the reconciled period into a fresh roster_db
    from include.pipeline.publish import publish
    t1 = time.perf_counter()
    publish({out!r}, {publish!r}, s["period"], json.load(open({std!r} + "/_summary.json"))["ds"])
    pub = time.perf_counter() - t1
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "publish_seconds": pub, "rss_mb": hwm / 1024, "roster": s["roster"],
                  "findings": sum(s["findings"].values())}}))
"""

LOWER_BOUND = r"""
import json, time, duckdb
con = duckdb.connect()
t0 = time.perf_counter()
if {mode!r} == "count":
    n = con.execute('''
        WITH r AS (SELECT source, id_clean FROM read_parquet({records!r})),
        s AS (SELECT id_clean FROM r WHERE source = 'staffing'), o AS (SELECT id_clean FROM r WHERE source = 'org'),
        f AS (SELECT id_clean FROM r WHERE source = 'finance'), h AS (SELECT id_clean FROM r WHERE source = 'hr')
        SELECT count(*) FROM s FULL JOIN f USING (id_clean) FULL JOIN o USING (id_clean) FULL JOIN h USING (id_clean)
    ''').fetchone()[0]
else:
    con.execute('''
        CREATE TABLE joined AS
        WITH r AS (SELECT * FROM read_parquet({records!r})),
        s AS (SELECT id_clean, unit_code AS s_unit, record_id, name AS s_name, personnel_class, quota_type,
                     non_establishment_category, post_category, position, entered_on, slip_no FROM r WHERE source = 'staffing'),
        o AS (SELECT id_clean, unit_code AS o_unit, sfld, ldlb, zwcc FROM r WHERE source = 'org'),
        f AS (SELECT id_clean, unit_code AS f_unit, name AS f_name, dwbm, rylb, yfgz, jfly FROM r WHERE source = 'finance'),
        h AS (SELECT id_clean, unit_code AS h_unit, name AS h_name, insured_status, hr_status, retired_on FROM r WHERE source = 'hr')
        SELECT * FROM s FULL JOIN f USING (id_clean) FULL JOIN o USING (id_clean) FULL JOIN h USING (id_clean)
    ''')
    n = con.execute("SELECT count(*) FROM joined").fetchone()[0]
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "rss_mb": hwm / 1024, "rows": n}}))
"""


def child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        print(out.stderr[-3000:])
        raise SystemExit(1)
    return json.loads(out.stdout.strip().splitlines()[-1])


def std_1m() -> Path:
    cache = ROOT / "var" / "bench" / "std-1M"
    if (cache / "records.parquet").exists():
        return cache
    data = ROOT / "var" / "bench" / "p1000000"
    if not (data / "manifest.json").exists():
        raise SystemExit("run bench/bench_extract.py first: it generates var/bench/p1000000")
    return stage(data, ROOT / "var" / "bench" / "lake-1M", cache, "1M")


def stage(data: Path, lake: Path, std: Path, label: str) -> Path:
    """Serve ``data`` from the simulators, extract it into ``lake`` and standardise it into ``std``."""
    from include.pipeline.local import extract_all
    from include.pipeline.standardise import standardise
    from include.simulators.cluster import Simulators

    shutil.rmtree(lake, ignore_errors=True)
    t0 = time.perf_counter()
    with Simulators(data, ports={"staffing": 0, "org": 0, "hr": 0}, finance_url=f"sqlite:///{lake}-finance.db") as sims:
        extract_all(sims.connections(), sims.finance_url, str(lake), "2026-10-31")
    t1 = time.perf_counter()
    standardise(str(lake), "2026-10-31", "2026-10", out_dir=str(std))
    print(f"{label}: extracted in {t1 - t0:.0f}s, standardised in {time.perf_counter() - t1:.0f}s -> {std}", flush=True)
    return std


def replicate(src: Path, copies: int) -> Path:
    """``copies`` disjoint copies of a std/ directory (copy 0 is the original)."""
    if copies == 1:
        return src
    dst = ROOT / "var" / "bench" / f"std-{copies}M"
    if (dst / "records.parquet").exists():
        return dst
    import duckdb
    dst.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()

    def key(col: str, k: int) -> str:   # copy 0 keeps its keys; copy k gets the letter k as first character
        return f"CASE WHEN {col} IS NULL OR {k} = 0 THEN {col} ELSE chr(64 + {k}) || substr({col}, 2) END"

    plans = {
        "records": ["id_clean", "unit_code", "dwbm", "emp_no", "record_id"],
        "units": ["unit_code", "parent_code"], "quotas": ["unit_code"], "leader_posts": ["unit_code"],
        "budget_units": ["dwbm", "credit"],
    }
    for name, cols in plans.items():
        parts = []
        for k in range(copies):
            extra = ", (rec_no + {0} * 100000000) AS rec_no".format(k) if name == "records" else ""
            replace = ", ".join(f"{key(c, k)} AS {c}" for c in cols) + extra
            parts.append(f"SELECT * REPLACE ({replace}) FROM read_parquet('{src / (name + '.parquet')}')")
        con.execute(f"COPY ({' UNION ALL '.join(parts)}) TO '{dst / (name + '.parquet')}' (FORMAT parquet)")
    meta = json.loads((src / "_summary.json").read_text())
    (dst / "_summary.json").write_text(json.dumps({**meta, "replicated": copies}))
    return dst


def checkout(rev: str) -> Path:
    """The code as it stood at ``rev``, in a git worktree under var/bench/ (made once)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    path = ROOT / "var" / "bench" / f"code-{sha}"
    if not (path / "include").exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True, capture_output=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", default="1,5", help="sizes in millions of persons (copies of the 1M model)")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit for reconcile, e.g. 3GB")
    ap.add_argument("--before", default=None, help="a git revision to time against, alternately, on the same data")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds with --before (best of each printed)")
    ap.add_argument("--publish", choices=["none", "sqlite", "postgresql"], default="none",
                    help="also publish each reconciled period into a fresh roster_db and time it (postgresql: a "
                         "throwaway cluster on loopback, as the tests start)")
    args = ap.parse_args()
    base = std_1m()
    before = checkout(args.before) if args.before else None
    cluster = None
    if args.publish == "postgresql":
        from tests.pg import Cluster

        cluster = Cluster().start()
    fresh = iter(range(1_000_000))

    def roster_db(out: Path) -> str | None:
        """A fresh, empty roster_db for one publish."""
        if args.publish == "none":
            return None
        if cluster:
            return cluster.create_database(f"bench_{next(fresh)}")
        db = out / "roster.db"
        db.unlink(missing_ok=True)
        return f"sqlite:///{db}"
    try:
        _sizes(args, base, before, roster_db)
    finally:
        if cluster:
            cluster.stop()


def _sizes(args, base: Path, before: Path | None, roster_db) -> None:
    for copies in [int(x) for x in args.copies.split(",")]:
        std = replicate(base, copies)
        out = ROOT / "var" / "bench" / f"work-{copies}M"
        out.mkdir(parents=True, exist_ok=True)
        lb_count = child(LOWER_BOUND.format(records=str(std / "records.parquet"), mode="count"))
        lb_cols = child(LOWER_BOUND.format(records=str(std / "records.parquet"), mode="columns"))
        runs, old = [], []
        for _ in range(args.rounds if before else 1):
            if before:
                Path(str(out) + "-before").mkdir(exist_ok=True)
                old.append(child(RECONCILE.format(root=str(before), std=str(std), out=str(out) + "-before", mem=args.memory_limit,
                                                  publish=roster_db(Path(str(out) + "-before")))))
            runs.append(child(RECONCILE.format(root=str(ROOT), std=str(std), out=str(out), mem=args.memory_limit,
                                               publish=roster_db(out))))
        rc = min(runs, key=lambda r: r["seconds"])
        times = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        old_times = ", ".join(f"{r['seconds']:.1f}" for r in old)
        print(f"{copies}M persons: reconcile {rc['seconds']:6.1f}s, peak RSS {rc['rss_mb']:6.0f} MB "
              f"(roster {rc['roster']:,}, {rc['findings']:,} findings)"
              + (f"; runs {times}" if len(runs) > 1 else ""), flush=True)
        if before:
            b = min(old, key=lambda r: r["seconds"])
            print(f"   before ({args.before}): {b['seconds']:6.1f}s, peak RSS {b['rss_mb']:6.0f} MB "
                  f"(roster {b['roster']:,}, {b['findings']:,} findings); runs {old_times}"
                  f" -> now {rc['seconds'] / b['seconds'] - 1:+.0%} time, {rc['rss_mb'] / b['rss_mb'] - 1:+.0%} peak RSS",
                  flush=True)
        if args.publish != "none":
            both = lambda r: r["seconds"] + r["publish_seconds"]   # noqa: E731
            now = min(runs, key=both)
            print(f"   publish ({args.publish}): {now['publish_seconds']:6.1f}s; reconcile + publish {both(now):6.1f}s; "
                  f"runs {', '.join(f'{both(r):.1f}' for r in runs)}", flush=True)
            if before:
                was = min(old, key=both)
                print(f"   before ({args.before}): publish {was['publish_seconds']:6.1f}s; reconcile + publish "
                      f"{both(was):6.1f}s; runs {', '.join(f'{both(r):.1f}' for r in old)} -> now {both(now) / both(was):.2f}x",
                      flush=True)
        print(f"   lower bound, count:   {lb_count['seconds']:6.1f}s, peak RSS {lb_count['rss_mb']:6.0f} MB -> ratio "
              f"{rc['seconds'] / lb_count['seconds']:.1f}", flush=True)
        print(f"   lower bound, columns: {lb_cols['seconds']:6.1f}s, peak RSS {lb_cols['rss_mb']:6.0f} MB -> ratio "
              f"{rc['seconds'] / lb_cols['seconds']:.1f}", flush=True)


if __name__ == "__main__":
    main()
