"""Benchmark (not a test): the whole night at province scale, stage by stage, each against its floor (issue 17).

    python bench/bench_night.py                                   # 1M and 2M persons, SQLite and PostgreSQL
    python bench/bench_night.py --persons 1000000 --databases sqlite --workers 2
    python bench/bench_night.py --repeat 2                        # standardise, reconcile and floors: best of 2

For each size, a generated province (``var/bench/p<N>``, made once) is served by the
simulators in their own process, and the DAG's tasks run as it runs them: each task a fresh
child process (as Airflow's task runner starts one), the mapped tasks and the four extracts
side by side, at most ``--workers`` children at a time for the mapped tasks (the worker's
slots; the four extracts start together, as the DAG starts them). Per stage: wall time from
the first task's start to the last one's end (imports included, as a task pays them), the
peak RSS of its largest task (the most its processes held at once, sampled, or the largest
one's own VmHWM if more: standardise's input suites run in a worker process of its own) and,
where a stage has one, its floor measured in the same run:

* **extract**: the four sources through bare clients side by side, the same pages and rows
  fetched and thrown away (``bench_extract.BARE``): the rate the servers allow;
* **standardise**: the raw layer read from Parquet and its text cast (``bench_standardise.FLOOR``;
  the files the period is built from alone, a stricter floor, in the note);
* **reconcile** (plan_regions, the regions, combine_regions): a bare DuckDB FULL JOIN of the
  four sources' records on ID with every column the rules read (``bench_reconcile.LOWER_BOUND``);
* **publish**: the same roster, findings and evidence rows written in one transaction with
  nothing else: PostgreSQL COPY, SQLite executemany (``bench_publish.FLOOR``).

Audit, the monthly reports and the digests have no floor: nothing simpler does their work.
Every child, task or floor, runs with the Arrow allocator the pipeline sets (``include/__init__.py``):
a bare read with Arrow's mimalloc took the standardise floor 5.7 s at 2M, with jemalloc 3.2 s.
Extract, standardise and reconcile do not depend on ``roster_db`` and run once per size;
publish, the reports and the digests run once per database, each into a fresh one
(PostgreSQL: a throwaway cluster on loopback, as the tests start). The night's total is the
sum of its stages, one after another as the DAG's dependencies order them.

Prints the table and a JSON line of the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import include  # noqa: E402,F401  (its allocator default, ARROW_DEFAULT_MEMORY_POOL, is inherited by every child: the
                #  tasks and the floors run with the same allocator, as the floor of a stage must)
from bench_extract import BARE, ensure_data  # noqa: E402
from bench_publish import FLOOR as PUBLISH_FLOOR  # noqa: E402
from bench_reconcile import LOWER_BOUND  # noqa: E402
from bench_standardise import FLOOR as STANDARDISE_FLOOR  # noqa: E402

DS, PERIOD = "2026-10-31", "2026-10"

TASK = r"""
import json, logging, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
{body}
dt = time.perf_counter() - t0
if "include.quality.input_suites" in sys.modules:   # the task's worker: stopped as the task's process ends
    sys.modules["include.quality.input_suites"].InputSuites.stop()
import resource
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss   # KB, its largest child's own peak
print(json.dumps({{"seconds": dt, "rss_mb": max(hwm, children) / 1024, "own_mb": hwm / 1024, "child_mb": children / 1024,
                  "result": result}}, default=str))
"""

EXTRACT = {
    "staffing": """from include.pipeline.extract.http import SourceConn
from include.pipeline.extract.staffing import extract_staffing
c = json.load(open({state!r}))["connections"]["staffing_api"]
result = extract_staffing(SourceConn("staffing_api", c["host"], c["login"], c["password"]), {lake!r}, {ds!r})["stats"]""",
    "org": """from include.pipeline.extract.http import SourceConn
from include.pipeline.extract.org import extract_org
c = json.load(open({state!r}))["connections"]["org_api"]
result = extract_org(SourceConn("org_api", c["host"], c["login"], c["password"]), {lake!r}, {ds!r})["stats"]""",
    "finance": """from include.pipeline.extract.finance import extract_finance
result = extract_finance("finance_db", json.load(open({state!r}))["finance_url"], {lake!r}, {ds!r})["stats"]""",
    "hr": """from include.pipeline.extract.http import SourceConn
from include.pipeline.extract.hr import extract_hr
c = json.load(open({state!r}))["connections"]["hr_exports"]
result = extract_hr(SourceConn("hr_exports", c["host"], None, c["password"]), {lake!r}, {ds!r})["stats"]""",
}
STANDARDISE = """from include.quality.input_suites import InputSuites
InputSuites.start()   # as the DAG's task starts it, before standardise's modules are imported
from include.pipeline.standardise import standardise
result = standardise({lake!r}, {ds!r}, {period!r})["dir"]"""
PLAN_REGIONS = """from include.pipeline.reconcile import plan_parts, region_level
plan = plan_parts({std!r}, level=region_level())
result = {{"dir": plan["dir"], "parts": plan["parts"]}}"""
RECONCILE_REGION = """from include.pipeline.reconcile import reconcile_part
result = reconcile_part({std!r}, {out!r}, {part!r}, as_of={ds!r})["dir"]"""
COMBINE_REGIONS = """from include.pipeline.reconcile import combine_parts
result = combine_parts({std!r}, {out!r}, {parts!r})["dir"]"""
AUDIT = """from include.quality.gates import audit_period, gx_root
result = {{k: v["summary"] for k, v in audit_period({work!r}, gx_root({lake!r})).items()}}"""
PUBLISH = """from include.pipeline.publish import publish
s = publish({work!r}, {url!r}, {period!r}, {ds!r}, export_root={lake!r}, run_id="bench_night")
result = {{"roster": s["roster_rows"], "findings": s["findings"]}}"""
ROUTES = """from include.alerts import routing
import pandas as pd
regions = sorted(pd.read_parquet({work!r} + "/unit_stats.parquet").region_code.dropna().unique())
# an office per city and the province (counties fall back to their city), as bench_alerts_report.py
routes = routing.parse({{"offices": {{r: {{"name": f"{{r}} 编办", "to": [f"bb{{r}}@example.gov.cn"]}}
                                    for r in regions if r.endswith("00")}}}})"""
PLAN_REPORTS = """from include.report.monthly import report_batches
result = report_batches({work!r}, {batches!r})"""
MONTHLY_REPORT = ROUTES + """
from include.report.monthly import build
result = {{r: v["html"] for r, v in build({work!r}, {url!r}, {period!r}, {out!r}, routes, only={only!r}).items()}}"""
DIGESTS = ROUTES + """
from include.alerts.digest import send_digests
from include.alerts.mail import open_outbox
sent = send_digests({url!r}, {period!r}, routes, open_outbox({out!r} + "/outbox/digests/" + {period!r}), work_dir={work!r},
                    run_id="bench_night", report_links=json.load(open({links!r})))
result = {{"offices": len(sent), "told": sum(d["new"] for d in sent.values())}}"""


# How a child ends: as Airflow's task processes end (the Task SDK's ``_fork_main``: the exit handlers
# run, the output flushed, then ``os._exit``), with no interpreter finalization. Finalization's last
# garbage collection goes over every object the imports made: 0.13-0.15 s of standardise's 1M-person
# process, which no task of the DAG pays. Floors and stages alike.
ENDING = """
import atexit as _atexit, os as _os, sys as _sys
_atexit._run_exitfuncs()
_sys.stdout.flush()
_sys.stderr.flush()
_os._exit(0)
"""


def _spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code + ENDING], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _collect(label: str, proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode:
        print(f"{label} failed:\n{err[-4000:]}", flush=True)
        raise SystemExit(1)
    r = json.loads(out.strip().splitlines()[-1])
    r.setdefault("rss_mb", r.get("maxrss_mb"))   # bench_extract's templates name it so
    return r


def _tree_rss_kb(pid: int) -> int:
    """The resident memory of a process and its descendants now (KB; 0 once it is gone)."""
    try:
        rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except (OSError, StopIteration):
        return 0
    return rss + sum(_tree_rss_kb(int(c)) for c in children)


def run_stage(tasks: list[tuple[str, str]], workers: int) -> dict:
    """Run ``(label, code)`` children, at most ``workers`` at a time, in order; the stage's wall time,
    peak RSS and each task's figures. A task's peak is the larger of its processes' own peaks
    (VmHWM) and the most its process tree held at once (sampled every 50 ms)."""
    t0 = time.perf_counter()
    pending, running, done, tree = list(tasks), [], {}, {}
    while pending or running:
        while pending and len(running) < workers:
            label, code = pending.pop(0)
            running.append((label, _spawn(code)))
        for item in list(running):
            tree[item[0]] = max(tree.get(item[0], 0), _tree_rss_kb(item[1].pid))
            if item[1].poll() is not None:
                running.remove(item)
                done[item[0]] = _collect(*item)
                done[item[0]]["tree_mb"] = tree[item[0]] / 1024
                done[item[0]]["rss_mb"] = max(done[item[0]]["rss_mb"], done[item[0]]["tree_mb"])
        time.sleep(0.05)
    return {"seconds": time.perf_counter() - t0, "rss_mb": max(r["rss_mb"] for r in done.values()), "tasks": done}


def task(body: str, **values) -> str:
    return TASK.format(root=str(ROOT), body=body.format(**values))


class Night:
    """The figures of one size, printed as they come."""

    def __init__(self, persons: int):
        self.persons, self.rows = persons, []

    def add(self, db: str, stage: str, r: dict, floor: dict | None = None, note: str = "") -> None:
        ratio = r["seconds"] / floor["seconds"] if floor else None
        self.rows.append({"persons": self.persons, "db": db, "stage": stage, "seconds": round(r["seconds"], 1),
                          "rss_mb": round(r["rss_mb"]), "floor": round(floor["seconds"], 1) if floor else None,
                          "x_floor": round(ratio, 1) if ratio else None, "note": note})
        print(f"{self.persons:>9,}  {db:10s} {stage:12s} {r['seconds']:7.1f} s  peak {r['rss_mb']:6,.0f} MB"
              + (f"  floor {floor['seconds']:6.1f} s = {ratio:4.1f}x" if floor else "") + (f"  {note}" if note else ""),
              flush=True)


def simulators(data: Path) -> tuple[subprocess.Popen, Path]:
    state = data / "sim.json"
    state.unlink(missing_ok=True)
    sim = subprocess.Popen([sys.executable, "-m", "include.simulators.cli", "serve", "--data", str(data),
                            "--staffing-port", "0", "--org-port", "0", "--hr-port", "0"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    while not state.exists():
        if sim.poll() is not None:
            raise SystemExit("the simulators did not start")
        time.sleep(0.2)
    return sim, state


def best_of(repeat: int, once) -> tuple[dict, dict, list[dict]]:
    """``once()`` (a stage and its floor, one after the other: ``(stage, floor, extra)``) ``repeat``
    times: the shortest stage, the shortest floor (each the least disturbed of its runs, as
    ``timeit`` takes the best; the floors move between runs by up to a fifth), and every run's
    figures (``extra`` with ``r`` and ``floor``). Peak RSS: the largest of the runs."""
    seen = []
    for _ in range(max(repeat, 1)):
        r, floor, extra = once()
        seen.append({**extra, "r": r, "floor": floor})
    r = dict(min((s["r"] for s in seen), key=lambda x: x["seconds"]), rss_mb=max(s["r"]["rss_mb"] for s in seen))
    return r, min((s["floor"] for s in seen), key=lambda x: x["seconds"]), seen


def spread(seen: list[dict]) -> str:
    """The runs of :func:`best_of`, when more than one: each stage's and floor's times."""
    if len(seen) < 2:
        return ""
    times = lambda key: "/".join(f"{s[key]['seconds']:.1f}" for s in seen)   # noqa: E731
    return f" (runs: {times('r')} s, floors {times('floor')} s)"


def shared_stages(night: Night, data: Path, base: Path, workers: int, repeat: int = 1) -> tuple[str, str, str]:
    """Extract, standardise and reconcile of one size: (lake, std dir, work dir). Standardise and
    reconcile, and their floors, ``repeat`` times (:func:`best_of`)."""
    lake = base / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    sim, state = simulators(data)
    try:
        v = {"state": str(state), "lake": str(lake), "ds": DS}
        floor = run_stage([(s, BARE.format(root=str(ROOT), state=str(state), source=s, lake=str(lake)))
                           for s in EXTRACT], workers=4)
        r = run_stage([(s, task(body, **v)) for s, body in EXTRACT.items()], workers=4)
        each = ", ".join(f"{s} {t['seconds']:.1f}" for s, t in r["tasks"].items())
        night.add("-", "extract", r, floor, note=f"(side by side: {each} s)")
    finally:
        sim.terminate()
        sim.wait()
    def standardise_once():
        floor = run_stage([("floor", STANDARDISE_FLOOR.format(lake=str(lake), used=False, root=str(ROOT)))], 1)
        used = run_stage([("floor", STANDARDISE_FLOOR.format(lake=str(lake), used=True, root=str(ROOT)))], 1)
        r = run_stage([("standardise", task(STANDARDISE, lake=str(lake), ds=DS, period=PERIOD))], 1)
        return r, floor, {"used": used, "std": r["tasks"]["standardise"]["result"]}

    r, floor, seen = best_of(repeat, standardise_once)
    std, used = seen[0]["std"], min(s["used"]["seconds"] for s in seen)
    night.add("-", "standardise", r, floor, note=f"(the files the period uses alone: {used:.1f} s "
                                                 f"= {r['seconds'] / used:.1f}x){spread(seen)}")

    def reconcile_once():
        floor = run_stage([("floor", LOWER_BOUND.format(mode="columns", records=f"{std}/records.parquet"))], 1)
        t0 = time.perf_counter()
        plan = run_stage([("plan", task(PLAN_REGIONS, std=std))], 1)
        parts, out = plan["tasks"]["plan"]["result"]["parts"], plan["tasks"]["plan"]["result"]["dir"]
        regions = run_stage([(p, task(RECONCILE_REGION, std=std, out=out, part=p, ds=DS)) for p in parts], workers)
        combine = run_stage([("combine", task(COMBINE_REGIONS, std=std, out=out, parts=parts))], 1)
        whole = {"seconds": time.perf_counter() - t0, "rss_mb": max(plan["rss_mb"], regions["rss_mb"], combine["rss_mb"])}
        return whole, floor, {"work": combine["tasks"]["combine"]["result"],
                              "note": f"(plan {plan['seconds']:.1f}, {len(parts)} regions {regions['seconds']:.1f}, "
                                      f"combine {combine['seconds']:.1f} s)"}

    whole, floor, seen = best_of(repeat, reconcile_once)
    work = seen[0]["work"]
    night.add("-", "reconcile", whole, floor, note=min(seen, key=lambda s: s["r"]["seconds"])["note"] + spread(seen))
    r = run_stage([("audit", task(AUDIT, work=work, lake=str(lake)))], 1)
    night.add("-", "audit", r)
    return str(lake), std, work


def database_stages(night: Night, db: str, url, lake: str, work: str, workers: int, batches: int) -> None:
    """Publish, the monthly reports and the digests into a fresh ``roster_db``; ``url()`` makes one."""
    floor = run_stage([("floor", PUBLISH_FLOOR.format(code=str(ROOT), work=work, url=url()))], 1)
    target = url()
    r = run_stage([("publish", task(PUBLISH, work=work, url=target, period=PERIOD, ds=DS, lake=lake))], 1)
    night.add(db, "publish", r, floor, note="(exports included)")
    t0 = time.perf_counter()
    plan = run_stage([("plan", task(PLAN_REPORTS, work=work, batches=batches))], 1)
    jobs = [(f"batch {i}", task(MONTHLY_REPORT, work=work, url=target, period=PERIOD, out=lake, only=b))
            for i, b in enumerate(plan["tasks"]["plan"]["result"])]
    reports = run_stage(jobs, workers)
    links = {k: v for t in reports["tasks"].values() for k, v in t["result"].items()}
    night.add(db, "reports", {"seconds": time.perf_counter() - t0, "rss_mb": max(plan["rss_mb"], reports["rss_mb"])},
              note=f"({len(links)} jurisdictions in {len(jobs)} batches)")
    links_file = Path(lake) / "report_links.json"
    links_file.write_text(json.dumps(links))
    r = run_stage([("digests", task(DIGESTS, work=work, url=target, period=PERIOD, out=lake, links=str(links_file)))], 1)
    told = r["tasks"]["digests"]["result"]
    night.add(db, "digests", r, note=f"({told['offices']} offices, {told['told']:,} findings told)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", default="1000000,2000000")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--workers", type=int, default=2, help="task slots for the mapped tasks (default 2: the cores)")
    ap.add_argument("--report-batches", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1,
                    help="standardise, reconcile and their floors this many times each, alternating; the best of each "
                         "is reported (their ratios are the ones the noise decides: the floors move by up to a fifth)")
    a = ap.parse_args()
    cluster, fresh, nights = None, iter(range(1_000_000)), []
    try:
        for n in [int(x) for x in a.persons.split(",")]:
            data = ensure_data(n)
            base = ROOT / "var" / "bench" / f"night-{n}"
            base.mkdir(parents=True, exist_ok=True)
            night = Night(n)
            nights.append(night)
            lake, std, work = shared_stages(night, data, base, a.workers, a.repeat)
            for db in a.databases.split(","):
                if db == "postgresql" and cluster is None:
                    from tests.pg import Cluster
                    cluster = Cluster().start()

                def url(db=db) -> str:
                    k = next(fresh)
                    if db == "postgresql":
                        return cluster.create_database(f"bench_night_{k}")
                    path = base / f"roster-{k}.db"
                    path.unlink(missing_ok=True)
                    return f"sqlite:///{path}"
                database_stages(night, db, url, lake, work, a.workers, a.report_batches)
    finally:
        if cluster:
            cluster.stop()
    print("\n| persons | roster_db | stage | wall | peak RSS | floor | × floor |\n|---|---|---|---|---|---|---|")
    for night in nights:
        for row in night.rows:
            print(f"| {row['persons']:,} | {row['db']} | {row['stage']} | {row['seconds']:.1f} s | {row['rss_mb']:,} MB | "
                  + (f"{row['floor']:.1f} s | {row['x_floor']:.1f} |" if row["floor"] else "– | – |"))
        shared = sum(r["seconds"] for r in night.rows if r["db"] == "-")
        for db in a.databases.split(","):
            total = shared + sum(r["seconds"] for r in night.rows if r["db"] == db)
            peak = max(r["rss_mb"] for r in night.rows if r["db"] in ("-", db))
            print(f"| {night.persons:,} | {db} | **the night** | **{total:.1f} s** | {peak:,} MB | | |")
    national_estimate(nights, a.databases.split(","))
    print(json.dumps([row for night in nights for row in night.rows]))


NATIONAL = 68_500_000     # budget-funded persons in 2020, retirees included (domain.md)
PROVINCES = 31
# The stages whose tasks run side by side (the four extracts, the regions, the report batches): on a
# deployment with more worker slots they divide; the others are one task each and do not.
PARALLEL = {"extract", "reconcile", "reports"}


def national_estimate(nights: list[Night], databases: list[str]) -> None:
    """The national night from the measured stages, assumptions printed with it."""
    sizes = sorted({n.persons for n in nights})
    if not sizes:
        return
    big = max(sizes)
    rows = [r for n in nights if n.persons == big for r in n.rows]
    per_person = {}   # seconds per person of each stage at the largest size measured (stages scale linearly)
    for r in rows:
        per_person.setdefault(r["db"], {})[r["stage"]] = r["seconds"] / big
    if len(sizes) > 1:
        small = [r for n in nights if n.persons == min(sizes) for r in n.rows]
        ratio = sum(r["seconds"] for r in rows) / sum(r["seconds"] for r in small) / (big / min(sizes))
        print(f"\nlinearity: the night at {big:,} took {ratio:.2f}x the {min(sizes):,} night per person")
    province = NATIONAL / PROVINCES
    print(f"\nNational estimate ({NATIONAL:,} persons, {PROVINCES} provinces of {province:,.0f} on average), "
          f"each stage's time per person at {big:,} persons, linear in persons:")
    for db in databases:
        shared, own = per_person.get("-", {}), per_person.get(db, {})
        stages = {**shared, **own}
        night = sum(stages.values()) * province
        print(f"  {db}: one province's night on its own 2-core machine: {night / 60:.1f} min")
        for workers in (1, 4, 16):
            total = sum(v * NATIONAL / (workers if k in PARALLEL else 1) for k, v in stages.items())
            print(f"  {db}: one national night on {workers:>2} machines of 2 cores (side-by-side stages divided, "
                  f"the rest one task each): {total / 3600:.1f} h")
    print("  assumptions: the sources serve each province as fast as the simulators here (extract is bound by them);"
          " the mapped stages divide over machines; standardise, audit, publish and the digests do not;"
          " the national figure is an upper bound for one roster_db, provinces running their own nights in parallel"
          " are the deployment the figures recommend")


if __name__ == "__main__":
    main()
