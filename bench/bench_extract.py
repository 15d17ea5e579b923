"""Benchmark (not a test): extract throughput and peak memory per source, over loopback.

    python bench/bench_extract.py                       # 100k and 1M persons
    python bench/bench_extract.py --sizes 100000 --fault-rate 0.05
    python bench/bench_extract.py --sizes 1000000 --floor     # each source also through a bare client

Generated jurisdictions are cached under var/bench/p<N> (generation of 1M takes minutes).
The simulators run in their own process; each extract runs in a fresh child process so
its peak RSS (VmHWM) is its own. Flat memory shows as the same peak at 100k and 1M.

``--floor`` also runs, per source, a bare client that only fetches what the extract
fetches and throws it away (no shaping, no Parquet, no checks): staffing's four cursor
chains (JSON parsed: the cursor is in the body), org's pages once, finance's ``ys_dw``
and ``gz_ff`` rows fetched in chunks, HR's files streamed. That is the rate the servers
allow; the extract's own cost is the difference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time, logging
sys.path.insert(0, {root!r})
from include.pipeline.extract.http import SourceConn
state = json.load(open({state!r}))
c = state["connections"]
source, lake = {source!r}, {lake!r}
# import every connector before the clock starts: the figures are extraction, not start-up
from include.pipeline.extract import staffing, org, finance, hr  # noqa: F401
t0 = time.perf_counter()
if source == "staffing":
    from include.pipeline.extract.staffing import extract_staffing as f
    r = f(SourceConn("staffing_api", c["staffing_api"]["host"], c["staffing_api"]["login"], c["staffing_api"]["password"]), lake, "2026-10-31")
    rows = sum(v["rows"] for v in r["stats"].values())
elif source == "org":
    from include.pipeline.extract.org import extract_org as f
    r = f(SourceConn("org_api", c["org_api"]["host"], c["org_api"]["login"], c["org_api"]["password"]), lake, "2026-10-31")
    rows = r["stats"]["rows"]
elif source == "finance":
    from include.pipeline.extract.finance import extract_finance as f
    r = f("finance_db", state["finance_url"], lake, "2026-10-31")
    rows = sum(v["rows"] for v in r["stats"].values())
else:
    from include.pipeline.extract.hr import extract_hr as f
    r = f(SourceConn("hr_exports", c["hr_exports"]["host"], None, c["hr_exports"]["password"]), lake, "2026-10-31")
    rows = r["stats"]["rows"]
dt = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the parent process.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"rows": rows, "seconds": dt, "maxrss_mb": hwm / 1024}}))
"""


BARE = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import requests, sqlalchemy as sa
from include.pipeline.extract.http import SourceConn
state = json.load(open({state!r}))
c = state["connections"]
source = {source!r}
s = requests.Session()
rows = 0
t0 = time.perf_counter()
if source == "staffing":
    conn = SourceConn("staffing_api", c["staffing_api"]["host"], c["staffing_api"]["login"], c["staffing_api"]["password"])
    def token():
        return s.post(conn.base_url + "/api/v1/auth/token",
                      json={{"client_id": conn.login, "client_secret": conn.password}}).json()["access_token"]
    tok = token()
    for coll in ("units", "quotas", "leader_posts", "persons"):
        params = {{"page_size": 1000}}
        while True:
            r = s.get(f"{{conn.base_url}}/api/v1/{{coll}}", params=params, headers={{"Authorization": f"Bearer {{tok}}"}})
            if r.status_code == 401:
                tok = token()
                continue
            body = r.json()
            rows += len(body["items"])
            if not body["next_cursor"]:
                break
            params = {{"cursor": body["next_cursor"]}}
elif source == "org":
    conn = SourceConn("org_api", c["org_api"]["host"], c["org_api"]["login"], c["org_api"]["password"])
    s.auth = (conn.login, conn.password)
    page = 1
    while True:
        body = s.get(conn.base_url + "/gbxx/list", params={{"page": page, "size": 500}}).json()
        rows += len(body["rows"])
        if not body["rows"] or page * 500 >= body["total"]:
            break
        page += 1
elif source == "finance":
    engine = sa.create_engine(state["finance_url"])
    with engine.connect() as db:
        for sql in ("SELECT dwbm, tyshxydm, dwmc, qhdm FROM ys_dw", "SELECT ffyf, dwbm, sfzh, xm, rylb, yfgz, jfly FROM gz_ff"):
            result = db.execution_options(stream_results=True, yield_per=50_000).execute(sa.text(sql))
            for part in result.partitions(50_000):
                rows += len(part)
else:
    conn = SourceConn("hr_exports", c["hr_exports"]["host"], None, c["hr_exports"]["password"])
    head = {{"X-Api-Key": conn.password}}
    for e in s.get(conn.base_url + "/exports/index.json", headers=head).json():
        with s.get(f"{{conn.base_url}}/exports/{{e['name']}}", headers=head, stream=True) as r:
            for _ in r.iter_content(1 << 20):
                pass
        rows += e["rows"]
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"rows": rows, "seconds": dt, "maxrss_mb": hwm / 1024}}))
"""


def ensure_data(n: int) -> Path:
    from include.generator.generate import generate
    from include.generator.world import WorldParams
    out = ROOT / "var" / "bench" / f"p{n}"
    if not (out / "manifest.json").exists():
        t0 = time.perf_counter()
        generate(WorldParams(persons=n, periods=1, findings_per_code=3), out, progress=lambda m: print("   ", m, flush=True))
        print(f"generated {n:,} persons in {time.perf_counter() - t0:.0f}s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--floor", action="store_true", help="also time a bare client per source")
    args = ap.parse_args()
    for n in [int(x) for x in args.sizes.split(",")]:
        data = ensure_data(n)
        (data / "sim.json").unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "include.simulators.cli", "serve", "--data", str(data),
               "--staffing-port", "0", "--org-port", "0", "--hr-port", "0"]
        if args.fault_rate:
            cmd += ["--fault-rate", str(args.fault_rate), "--token-ttl", "5"]
        sim = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            while not (data / "sim.json").exists():
                time.sleep(0.2)
            with tempfile.TemporaryDirectory() as lake:
                for source in ("staffing", "org", "finance", "hr"):
                    for label, template in (("extract", CHILD), *((("bare", BARE),) if args.floor else ())):
                        code = template.format(root=str(ROOT), state=str(data / "sim.json"), source=source, lake=lake)
                        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
                        if out.returncode:
                            print(out.stderr[-2000:])
                            raise SystemExit(1)
                        r = json.loads(out.stdout.strip().splitlines()[-1])
                        print(f"{n:>9,} persons  {source:9s} {label:7s} {r['rows']:>10,} records in {r['seconds']:6.1f}s = "
                              f"{r['rows'] / r['seconds']:>9,.0f} records/s, peak RSS {r['maxrss_mb']:6.0f} MB", flush=True)
        finally:
            sim.terminate()
            sim.wait()


if __name__ == "__main__":
    main()
