"""Benchmark (not a test): generation time and size, and each simulator's serving rate.

    python bench/bench_generate_serve.py                 # 10k, 100k, 1M persons
    python bench/bench_generate_serve.py --sizes 10000   # quicker

Prints one line per size with the generation time and the data directory's size, then
for the largest size each office's serving rate (records/s over loopback, one client,
largest page size the contract allows). Figures vary with the machine: compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.generator.generate import generate  # noqa: E402
from include.generator.world import WorldParams  # noqa: E402


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def serve_rates(data: Path) -> None:
    import json
    proc = subprocess.Popen([sys.executable, "-m", "include.simulators.cli", "serve", "--data", str(data),
                             "--staffing-port", "0", "--org-port", "0", "--hr-port", "0"],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        t0 = time.perf_counter()
        while not (data / "sim.json").exists():
            time.sleep(0.2)
        print(f"simulators up in {time.perf_counter() - t0:.1f}s (finance tables written)")
        state = json.loads((data / "sim.json").read_text())
        urls = state["urls"]
        s = requests.Session()
        tok = s.post(urls["staffing"] + "/api/v1/auth/token", json={"client_id": "roster-sync", "client_secret": "staffing-secret"}).json()
        s.headers["Authorization"] = "Bearer " + tok["access_token"]
        t0, n, cursor = time.perf_counter(), 0, None
        while True:
            params = {"cursor": cursor} if cursor else {"page_size": 1000}
            body = s.get(urls["staffing"] + "/api/v1/persons", params=params).json()
            n += len(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        dt = time.perf_counter() - t0
        print(f"staffing persons: {n:,} records in {dt:.1f}s = {n / dt:,.0f} records/s")
        o = requests.Session()
        o.auth = ("roster", "org-secret")
        t0, n, page = time.perf_counter(), 0, 1
        while True:
            rows = o.get(urls["org"] + "/gbxx/list", params={"page": page, "size": 500}).json()["rows"]
            if not rows:
                break
            n += len(rows)
            page += 1
        dt = time.perf_counter() - t0
        print(f"org gbxx: {n:,} rows in {dt:.1f}s = {n / dt:,.0f} records/s")
        h = requests.Session()
        h.headers["X-Api-Key"] = "hr-secret-key"
        index = h.get(urls["hr"] + "/exports/index.json").json()
        big = max((e for e in index if e["kind"] == "persons"), key=lambda e: e["period"])
        t0 = time.perf_counter()
        data_bytes = h.get(urls["hr"] + "/exports/" + big["name"]).content
        dt = time.perf_counter() - t0
        print(f"hr {big['name']}: {big['rows']:,} rows, {len(data_bytes) / 1e6:.1f} MB in {dt:.2f}s = {big['rows'] / dt:,.0f} records/s")
        import sqlalchemy as sa
        eng = sa.create_engine(state["finance_url"])
        t0 = time.perf_counter()
        with eng.connect() as c:
            rows = c.execute(sa.text("SELECT * FROM gz_ff")).fetchall()
        dt = time.perf_counter() - t0
        print(f"finance gz_ff: {len(rows):,} rows in {dt:.1f}s = {len(rows) / dt:,.0f} records/s")
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--periods", type=int, default=2)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="roster-bench-"))
    last = None
    for n in sizes:
        out = root / f"p{n}"
        t0 = time.perf_counter()
        generate(WorldParams(persons=n, periods=args.periods, findings_per_code=3), out, progress=lambda m: print("   ", m, flush=True))
        dt = time.perf_counter() - t0
        print(f"generate {n:>9,} persons x {args.periods} periods: {dt:7.1f}s, {dir_size(out) / 1e6:8.1f} MB", flush=True)
        last = out
    serve_rates(last)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
