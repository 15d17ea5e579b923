"""What the monthly reports and the digests cost at province scale.

Reconciles the 1M-person standardised period that bench_reconcile.py leaves in
var/bench/std-1M (run that first), publishes it to a throwaway SQLite roster_db, then
times, separately: the monthly reports of every jurisdiction (per jurisdiction and in
total; charts apart from tables), and the digests of every office (file outbox; one
office per city plus the province, counties falling back to their city).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from include.alerts import digest, mail, routing
from include.pipeline.publish import publish
from include.pipeline.reconcile import reconcile
from include.report import monthly

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--std", default=str(ROOT / "var" / "bench" / "std-1M"))
    args = ap.parse_args(argv)
    std = Path(args.std)
    if not (std / "_summary.json").exists():
        raise SystemExit(f"{std} has no standardised period: run bench/bench_reconcile.py first")
    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    try:
        shutil.copytree(std, tmp / "work" / "std")
        work = tmp / "work"
        t = time.perf_counter()
        rec = reconcile(str(work / "std"), out=str(work))
        print(f"reconcile (with unit_stats)      {time.perf_counter() - t:7.1f} s  roster {rec['roster']:,}, "
              f"findings {sum(rec['findings'].values()):,}")
        url = f"sqlite:///{tmp / 'roster.db'}"
        t = time.perf_counter()
        publish(str(work), url, rec["period"], "2026-10-31")
        print(f"publish to SQLite                 {time.perf_counter() - t:7.1f} s")
        stats = pd.read_parquet(work / "unit_stats.parquet")
        regions = sorted(stats.region_code.dropna().unique())
        offices = {r: {"name": f"{r} 编办", "to": [f"bb{r}@example.gov.cn"]} for r in regions
                   if r.endswith("00")}   # the province and its cities; counties fall back to their city
        routes = routing.parse({"offices": offices})
        t = time.perf_counter()
        reports = monthly.build(str(work), url, rec["period"], str(tmp), routes)
        took = time.perf_counter() - t
        print(f"monthly reports                   {took:7.1f} s  {len(reports)} jurisdictions, "
              f"{took / len(reports):.2f} s each")
        t = time.perf_counter()
        one = monthly.build(str(work), url, rec["period"], str(tmp), routes, only=[regions[-1]])
        print(f"  one county alone                {time.perf_counter() - t:7.1f} s  (reading the period's files included)")
        size = sum(p.stat().st_size for p in (tmp / "reports").rglob("*") if p.is_file())
        print(f"  written                         {size / 1e6:7.1f} MB")
        del one
        t = time.perf_counter()
        sent = digest.send_digests(url, rec["period"], routes, mail.FileOutbox(tmp / "outbox"), str(work))
        took = time.perf_counter() - t
        print(f"digests                           {took:7.1f} s  {len(sent)} offices, "
              f"{sum(d['new'] for d in sent.values()):,} findings told")
        t = time.perf_counter()
        again = digest.send_digests(url, rec["period"], routes, mail.FileOutbox(tmp / "outbox"), str(work))
        print(f"digests again (nothing new)       {time.perf_counter() - t:7.1f} s  {len(again)} sent")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
