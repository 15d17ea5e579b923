"""Benchmark (not a test): the workspace API over a roster_db the size of a province of 1M persons.

    python bench/bench_workspace.py                       # SQLite and PostgreSQL
    python bench/bench_workspace.py --backends sqlite --alerts 60000

A roster_db is filled with ``--alerts`` findings (default 30,000: 3% of 1M persons, over
12 cities of 10 counties each, in the catalogue's proportions of scope), each with its
evidence (4 records on average, facts as received, ~300 bytes each) and, for one in ten, an
answer. Then, through the app itself (FastAPI's TestClient: routing, the auth dependency,
JSON encoding; no network), as a city's clerk:

* ``list``: ``GET /api/alerts?region=<city>`` (the city's first page of 100, and its total);
* ``finding``: ``GET /api/alerts/{key}`` with its evidence and answers (and the audit row
  it writes, committed);

each timed ``--requests`` times (median, p95); and, as the floor in the same run, the bare
SQL each needs (the count and page of the city's findings; the alert, evidence and answers
of one key), timed the same way. Targets (issue 15): list < 300 ms, finding < 100 ms.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from include.findings import CATALOGUE, CODES  # noqa: E402
from include.pipeline.publish import (  # noqa: E402
    alert_table, disposition_table, ensure_schema, evidence_table, finding_table,
)

PERIOD = "2026-11"


def regions() -> list[str]:
    return [f"15{c:02d}{k:02d}" for c in range(1, 13) for k in range(1, 11)]


def fill(engine, n: int, seed: int = 7) -> list[str]:
    """n findings with evidence and some answers; returns the alert keys."""
    rng = random.Random(seed)
    ensure_schema(engine)
    now = dt.datetime.now(dt.timezone.utc)
    regs = regions()
    person_codes = [c for c in CODES if CATALOGUE[c].scope == "person"]
    unit_codes = [c for c in CODES if CATALOGUE[c].scope != "person"]
    alerts, evidence, findings, answers = [], [], [], []
    for i in range(n):
        key = f"{i:032x}"
        region = rng.choice(regs)
        person = rng.random() < 0.85
        code = rng.choice(person_codes if person else unit_codes)
        pid = f"{region}19{rng.randint(60, 99)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}{rng.randint(100, 999)}{rng.randint(0, 9)}"
        unit = f"12{region}{i % 997:08d}X"[:18]
        details = {"payments": [{"dwbm": f"3{i % 1000:05d}", "name": "某某学校", "unit_code": unit, "rylb": "在编",
                                 "jfly": "财政拨款", "gross_pay": 8235.79}], "gross_pay": 8235.79} if person else {
            "approved": 10, "actual": 12, "excess": 2}
        alerts.append({"alert_key": key, "code": code, "severity": CATALOGUE[code].severity, "region_code": region,
                       "unit_code": unit, "id_number": pid if person else None, "quota_type": None if person else "institution",
                       "level": None, "source": None, "raw_value": None, "details": json.dumps(details, ensure_ascii=False),
                       "first_seen": PERIOD, "last_seen": PERIOD, "status": "open", "resolved_in": None, "updated_at": now,
                       "unit_name": f"某某单位{i % 997}", "name": "张三" if person else None})
        findings.append({"period": PERIOD, "alert_key": key, "code": code, "severity": CATALOGUE[code].severity,
                         "region_code": region, "unit_code": unit, "id_number": pid if person else None})
        for j in range(rng.choice((2, 3, 4, 5, 6))):
            facts = {"record_id": f"SP{i:09d}{j}", "id_number": pid, "name": "张三", "unit_code": unit,
                     "personnel_class": "establishment", "quota_type": "institution", "position": "教师",
                     "entered_on": "2015-09-01", "slip_no": "HB2015000001", "status": "active"}
            evidence.append({"alert_key": key, "period": PERIOD, "source": "staffing", "record_key": f"persons|SP{i:09d}{j}",
                             "facts": json.dumps(facts, ensure_ascii=False)})
        if i % 10 == 0:
            answers.append({"alert_key": key, "status": "acknowledged", "reason": None, "note": None, "until": None,
                            "actor": "bench", "office_code": region[:4] + "00", "at": now})
    with engine.begin() as conn:
        for table, rows in ((alert_table, alerts), (finding_table, findings), (evidence_table, evidence),
                            (disposition_table, answers)):
            for k in range(0, len(rows), 20_000):
                conn.execute(table.insert(), rows[k:k + 20_000])
    with engine.begin() as conn:   # planner statistics, as a running database has them
        conn.execute(sa.text("ANALYZE"))
    print(f"   filled: {len(alerts):,} findings, {len(evidence):,} evidence rows, {len(answers):,} answers", flush=True)
    return [a["alert_key"] for a in alerts if a["region_code"].startswith("1502")]


def timed(fn, n: int) -> tuple[float, float]:
    fn()   # warm
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]


def run(label: str, url: str, args) -> None:
    from fastapi.testclient import TestClient

    from include.alerts.routing import parse
    from include.workspace.app import create_app

    engine = sa.create_engine(url)
    t0 = time.perf_counter()
    keys = fill(engine, args.alerts)
    print(f"{label}: filled in {time.perf_counter() - t0:.0f}s", flush=True)
    routing = parse({"offices": {"150200": {"name": "包头市编办", "to": ["c@x.example.gov.cn"], "users": ["clerk"]}}})

    class User:
        def get_name(self):
            return "clerk"

    app = create_app(engine_factory=lambda: engine, routing_factory=lambda: routing, user_dependency=lambda: User())
    client = TestClient(app)
    rng = random.Random(1)

    def list_city():
        r = client.get("/api/alerts", params={"region": "150200"})
        assert r.status_code == 200 and r.json()["total"] > 0

    def one_finding():
        r = client.get(f"/api/alerts/{rng.choice(keys)}")
        assert r.status_code == 200 and r.json()["evidence"]

    a = alert_table.c

    def floor_list():
        with engine.connect() as c:
            c.execute(sa.select(sa.func.count()).select_from(alert_table).where(a.region_code.like("1502%"))).scalar_one()
            c.execute(sa.select(alert_table).where(a.region_code.like("1502%")).order_by(a.alert_key).limit(100)).all()

    def floor_finding():
        k = rng.choice(keys)
        with engine.begin() as c:
            c.execute(sa.select(alert_table).where(a.alert_key == k)).first()
            c.execute(sa.select(evidence_table).where(evidence_table.c.alert_key == k, evidence_table.c.period == PERIOD)).all()
            c.execute(sa.select(disposition_table).where(disposition_table.c.alert_key == k)).all()

    city = client.get("/api/alerts", params={"region": "150200", "limit": 1}).json()["total"]
    for name, fn, floor, target in (("list of a city", list_city, floor_list, 300),
                                    ("a finding + evidence", one_finding, floor_finding, 100)):
        med, p95 = timed(fn, args.requests)
        fmed, fp95 = timed(floor, args.requests)
        print(f"   {name:22s} median {med:7.1f} ms, p95 {p95:7.1f} ms (target < {target} ms)  |  bare SQL median "
              f"{fmed:6.1f} ms, p95 {fp95:6.1f} ms -> ratio {med / fmed:.1f}", flush=True)
    print(f"   (the city has {city:,} findings; {args.requests} requests each)", flush=True)
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=30_000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-workspace-") as tmp:
        if "sqlite" in backends:
            run("SQLite", f"sqlite:///{tmp}/roster.db", args)
        if "postgresql" in backends:
            from tests.pg import Cluster

            cluster = Cluster().start()
            try:
                run("PostgreSQL", cluster.create_database("bench_workspace"), args)
            finally:
                cluster.stop()


if __name__ == "__main__":
    main()
