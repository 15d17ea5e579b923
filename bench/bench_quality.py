"""Benchmark (not a test): how long the quality gates add to a run.

    python bench/bench_quality.py --lake var/bench/lake-1M --ds 2026-10-31 --period 2026-10

Runs standardise on an existing raw layer twice, without and with the input suites
(one per raw source and one for the standardised model), then reconcile, then the
audit of the staged roster and findings, and prints the time of each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", default=str(ROOT / "var" / "bench" / "lake-1M"))
    ap.add_argument("--ds", default="2026-10-31")
    ap.add_argument("--period", default="2026-10")
    args = ap.parse_args()
    import great_expectations  # noqa: F401  (import once, outside the timings: it takes seconds)

    from include.pipeline.reconcile import reconcile
    from include.pipeline.standardise import standardise
    from include.quality.gates import audit_period, gx_root

    t0 = time.perf_counter()
    standardise(args.lake, args.ds, args.period, validate_inputs=False)
    t1 = time.perf_counter()
    checked = standardise(args.lake, args.ds, args.period, validate_inputs=True)
    t2 = time.perf_counter()
    rec = reconcile(checked["dir"], as_of=args.ds)
    t3 = time.perf_counter()
    audit = audit_period(rec["dir"], gx_root(args.lake))
    t4 = time.perf_counter()
    rows = sum(a["rows_in"] for a in checked["accounting"].values())
    print(f"records: {rows:,} in, roster {rec['roster']:,}")
    print(f"standardise without input suites {t1 - t0:6.1f}s, with {t2 - t1:6.1f}s: the input suites add {t2 - t1 - (t1 - t0):.1f}s")
    for name, q in checked["quality"].items():
        print(f"   {name:26s} {q['seconds']:5.1f}s  {q['summary'][:110]}")
    print(f"reconcile {t3 - t2:.1f}s; audit of roster and findings {t4 - t3:.1f}s "
          f"({'; '.join(a['summary'][:60] for a in audit.values())})")


if __name__ == "__main__":
    main()
