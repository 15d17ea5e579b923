"""Benchmark (not a test): standardise at 1M persons against reading the raw layer (issue 17).

    python bench/bench_standardise.py --before 5a1b2c3

On the 1M jurisdiction's raw layer (var/bench/lake-1M, made by bench_reconcile.py's
model), in fresh child processes (peak RSS = the child's VmHWM), best of ``--rounds``:

* ``now`` / ``before``: :func:`include.pipeline.standardise.standardise` (with the Great
  Expectations input suites, as the DAG runs it), as the code stands now and at ``--before``;
* ``now, no GX``: the same without the input suites, to show what validation costs;
* ``floor``: every raw Parquet file of the run read into Arrow and its text columns cast
  to pandas strings: the read-and-cast of the raw layer (issue 17's floor);
* ``floor, used``: the same for only the files the period is built from
  (:func:`include.pipeline.standardise.locate`: the merged staffing state, the cadre list,
  ``ys_dw``, the period's payroll month and HR export), a stricter floor, printed beside.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_reconcile import checkout, child  # noqa: E402

STANDARDISE = r"""
import json, sys, time
sys.path.insert(0, {code!r})
import great_expectations  # noqa: F401  imported before the clock: every task pays it once, at start
from include.pipeline.standardise import standardise
t0 = time.perf_counter()
s = standardise({lake!r}, "2026-10-31", "2026-10", out_dir={out!r}, validate_inputs={gx!r})
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "rss_mb": hwm / 1024}}))
"""

FLOOR = r"""
import glob, json, sys, time
import pyarrow.parquet as pq
paths = sorted(glob.glob({lake!r} + "/raw/**/*.parquet", recursive=True))
if {used!r}:   # only the files standardise reads
    sys.path.insert(0, {root!r})
    from include.pipeline.standardise import locate
    i = locate({lake!r}, "2026-10-31", "2026-10")
    paths = [f"{{i.staffing_dir}}/{{c}}__state.parquet" for c in ("units", "quotas", "leader_posts", "persons")]
    paths += [p for p in (i.org_file, i.ys_dw_file, i.gz_ff_file, i.hr_persons_file, i.hr_employers_file) if p]
t0 = time.perf_counter()
rows = 0
for path in paths:
    frame = pq.read_table(path).to_pandas()
    rows += len(frame)
    for c in frame.columns:
        if frame[c].dtype == object:
            frame[c] = frame[c].astype("string")
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "rows": rows, "rss_mb": hwm / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default=None)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--lake", default=str(ROOT / "var" / "bench" / "lake-1M"))
    a = ap.parse_args()
    if not Path(a.lake, "raw").exists():
        from bench_reconcile import std_1m
        std_1m()
    runs = [("floor", None, False), ("floor, used", None, True), ("now", ROOT, True), ("now, no GX", ROOT, False)]
    if a.before:
        runs.append(("before", checkout(a.before), True))
    best: dict[str, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-std-"))
    try:
        for _ in range(a.rounds):
            for label, code, gx in runs:
                if code is None:
                    r = child(FLOOR.format(lake=a.lake, used=gx, root=str(ROOT)))
                else:
                    out = tmp / label.replace(" ", "_").replace(",", "")
                    shutil.rmtree(out, ignore_errors=True)
                    r = child(STANDARDISE.format(code=str(code), lake=a.lake, out=str(out), gx=gx))
                print(f"{label:12s} {r['seconds']:6.1f}s  peak {r['rss_mb']:,.0f} MB"
                      + (f"  ({r['rows']:,} raw rows)" if "rows" in r else ""), flush=True)
                if label not in best or r["seconds"] < best[label]["seconds"]:
                    best[label] = r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    floor = best["floor"]["seconds"]
    print(f"\nbest of {a.rounds}:")
    for label, r in best.items():
        print(f"  {label:12s} {r['seconds']:6.1f}s  {r['seconds'] / floor:4.1f}x the floor  peak {r['rss_mb']:,.0f} MB")
    print(json.dumps({k: round(v["seconds"], 1) for k, v in best.items()}))


if __name__ == "__main__":
    main()
