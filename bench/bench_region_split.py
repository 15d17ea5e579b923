"""Benchmark (not a test): reconcile split by region at province scale, and a national estimate.

    python bench/bench_region_split.py                 # 2M persons, 10 cities (+ the province's own level)
    python bench/bench_region_split.py --persons 500000 --cities 4

Generates the province once (var/bench/p<N>-c<C>), serves it from the simulators,
extracts and standardises it once (cached in var/bench/std-<N>-c<C>), then times, each
step in a fresh child process (peak RSS = the child's VmHWM):

* the whole reconcile, for reference;
* plan_parts: links and the partitioned records (one task, the whole province);
* reconcile_part for every region (the mapped tasks, one per Celery worker slot);
* combine_parts: the checks that cross regions, on the summed partials;

checks that the split result equals the whole one, and estimates a national run
(about 70 million budget-funded persons with retirees, domain.md) on N workers from
these measurements; the assumptions are printed with the estimate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEP = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from include.pipeline import reconcile as R
t0 = time.perf_counter()
result = {call}
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "rss_mb": hwm / 1024, "result": result}}, default=str))
"""


def child(call: str) -> dict:
    out = subprocess.run([sys.executable, "-c", STEP.format(root=str(ROOT), call=call)], capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode:
        print(out.stderr[-3000:])
        raise SystemExit(1)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_std(persons: int, cities: int) -> Path:
    from include.generator.generate import generate
    from include.generator.world import WorldParams

    tag = f"{persons // 1000}k-c{cities}" if persons < 1_000_000 else f"{persons // 1_000_000}M-c{cities}"
    data, std = ROOT / "var" / "bench" / f"p-{tag}", ROOT / "var" / "bench" / f"std-{tag}"
    if (std / "records.parquet").exists():
        return std
    if not (data / "manifest.json").exists():
        t0 = time.perf_counter()
        generate(WorldParams(persons=persons, periods=1, findings_per_code=3, cities=cities), data,
                 progress=lambda m: print("   ", m, flush=True))
        print(f"generated {persons:,} persons in {time.perf_counter() - t0:.0f}s", flush=True)
    from bench.bench_reconcile import stage

    return stage(data, ROOT / "var" / "bench" / f"lake-{tag}", std, tag)


def digest(path: Path) -> str:
    import pandas as pd

    df = pd.read_parquet(path)
    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=2_000_000)
    ap.add_argument("--cities", type=int, default=10)
    ap.add_argument("--level", default="city")
    ap.add_argument("--national", type=int, default=70_000_000, help="persons in the national estimate")
    args = ap.parse_args()
    std = ensure_std(args.persons, args.cities)
    tmp = ROOT / "var" / "bench" / "split-run"
    shutil.rmtree(tmp, ignore_errors=True)
    for name in ("whole", "split"):
        (tmp / name).mkdir(parents=True)
        (tmp / name / "std").symlink_to(std)
    whole = child(f"R.reconcile({str(tmp / 'whole' / 'std')!r}, out={str(tmp / 'whole')!r})")
    print(f"whole reconcile            {whole['seconds']:7.1f} s  {whole['rss_mb']:7.0f} MB   "
          f"roster {whole['result']['roster']:,}", flush=True)
    s, out = str(tmp / "split" / "std"), str(tmp / "split")
    plan = child(f"R.plan_parts({s!r}, out={out!r}, level={args.level!r})")
    parts = plan["result"]["parts"]
    print(f"plan_parts ({args.level})        {plan['seconds']:7.1f} s  {plan['rss_mb']:7.0f} MB   "
          f"{len(parts)} regions", flush=True)
    timings = {}
    for p in parts:
        r = child(f"R.reconcile_part({s!r}, {out!r}, {p!r})")
        timings[p] = r
        print(f"  reconcile_part {p:8s} {r['seconds']:7.1f} s  {r['rss_mb']:7.0f} MB   "
              f"{plan['result']['persons'][p]:>9,} persons", flush=True)
    comb = child(f"R.combine_parts({s!r}, {out!r}, {parts!r})")
    print(f"combine_parts (cross)      {comb['seconds']:7.1f} s  {comb['rss_mb']:7.0f} MB", flush=True)
    same = all(digest(tmp / "whole" / f"{n}.parquet") == digest(tmp / "split" / f"{n}.parquet")
               for n in ("findings", "roster", "unit_stats"))
    print(f"split result identical to whole: {same}")

    part_sum = sum(t["seconds"] for t in timings.values())
    part_max = max(t["seconds"] for t in timings.values())
    serial = plan["seconds"] + comb["seconds"]
    print(f"\nregions: sum {part_sum:.1f} s, largest {part_max:.1f} s; plan + combine {serial:.1f} s; "
          f"whole {whole['seconds']:.1f} s")
    for workers in (1, 2, 4, len(parts)):
        # longest-processing-time-first over `workers` slots
        slots = [0.0] * workers
        for t in sorted((t["seconds"] for t in timings.values()), reverse=True):
            slots[slots.index(min(slots))] += t
        print(f"  this province on {workers:2d} worker(s): {serial + max(slots):7.1f} s reconcile wall time")

    scale = args.national / args.persons
    per_million = (plan["seconds"] + part_sum + comb["seconds"]) / (args.persons / 1e6)
    provinces = 31
    print(f"\nNational estimate ({args.national / 1e6:.0f}M persons = {scale:.0f} x this province), assumptions:")
    print("  * work grows linearly with persons (bench_reconcile.py compares 1M with 5M);")
    print(f"  * {provinces} provinces run as independent DAG runs, each split by city like this one; a province's")
    print("    plan and combine are its serial part, its regions its parallel part;")
    print("  * a worker is this machine (2 cores, 24 GB) running one region at a time;")
    print("  * the checks that cross provinces (DUPLICATE_PAY, MULTIPLE_ESTABLISHMENT across provinces) read only")
    print("    (ID, province, unit) keys: estimated at the combine step's cost per person, once, nationally.")
    print(f"  measured cost: {per_million:.1f} worker-seconds per million persons (plan + regions + combine)")
    total_work = per_million * args.national / 1e6
    prov_serial = serial * (args.national / provinces) / args.persons
    national_cross = comb["seconds"] * scale
    for n in (1, 10, 31, 100, 300):
        wall = max(total_work / n, prov_serial + part_max * (args.national / provinces) / args.persons)
        print(f"  {n:4d} workers: ~{(wall + national_cross) / 60:6.1f} min "
              f"(reconcile {wall / 60:.1f} min + national cross-province step {national_cross / 60:.1f} min)")
    (tmp / "result.json").write_text(json.dumps({"whole": whole, "plan": plan, "parts": timings, "combine": comb,
                                                 "identical": same}, default=str, indent=1))


if __name__ == "__main__":
    main()
