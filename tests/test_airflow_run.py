"""A full run of roster_sync under Airflow (``airflow dags test``), as an operator runs it.

The sources are the simulators with every fault on, alert mail goes to a real SMTP server
on loopback through ``alerts_smtp``. The run must extract all four sources, publish a
roster that matches the ground truth, mail the office its digest once (a second run of
the same logical date sends nothing), and nowhere (stdout, task logs, mail, digest
files, reports, XCom) show a full ID number.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from include.generator import oracle
from include.pipeline.accuracy import compare
from include.simulators.base import Faults
from include.simulators.cluster import Simulators
from tests.id_scan import full_ids_in, known_ids
from tests.smtp import SmtpServer

FREE = {"staffing": 0, "org": 0, "hr": 0}
D1 = "2026-10-31"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def airflow_run(small_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("airflow-run")
    with SmtpServer() as smtp, Simulators(small_world, faults=Faults.all_on(0.05, token_ttl=1.0), ports=FREE,
                                          finance_url=f"sqlite:///{tmp / 'finance.db'}") as sims:
        env = dict(os.environ)
        env.update(sims.env())
        env.update(smtp.env())
        env["AIRFLOW_CONN_ROSTER_DB"] = json.dumps({"conn_type": "sqlite", "host": str(tmp / "roster.db")})
        env.update({"AIRFLOW_HOME": str(tmp / "airflow"), "ROSTER_SYNC_DATA_ROOT": str(tmp / "lake"),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(ROOT)})
        airflow = str(Path(sys.executable).with_name("airflow"))
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        runs = []
        for _ in range(2):
            r = subprocess.run([airflow, "dags", "test", "roster_sync", D1], env=env, capture_output=True, text=True,
                               timeout=600)
            runs.append({"rc": r.returncode, "out": r.stdout + r.stderr, "mails": len(smtp.inbox.messages)})
        deadline = []
        for day in (D1, "2026-11-02"):   # published that day / nothing published that day
            r = subprocess.run([airflow, "dags", "test", "roster_sync_deadline", day], env=env, capture_output=True,
                               text=True, timeout=300)
            deadline.append({"rc": r.returncode, "out": r.stdout + r.stderr, "mails": len(smtp.inbox.messages)})
        mails = list(smtp.inbox.messages)
        texts = smtp.inbox.texts()
    return {"tmp": tmp, "runs": runs, "mails": mails, "texts": texts, "deadline": deadline}


def test_the_run_extracts_publishes_and_matches_the_truth(airflow_run, small_world):
    tmp = airflow_run["tmp"]
    first = airflow_run["runs"][0]
    assert first["rc"] == 0, first["out"][-4000:]
    assert "roster_sync reconciles period 2026-10" in first["out"]
    for source in ("staffing", "org", "finance", "hr"):
        assert (tmp / "lake" / "raw" / source / D1 / "_manifest.json").exists(), source
    engine = sa.create_engine(f"sqlite:///{tmp / 'roster.db'}")
    with engine.connect() as c:
        found = pd.read_sql(sa.text("SELECT * FROM reconciliation_finding WHERE period = '2026-10'"), c)
        roster = pd.read_sql(sa.text("SELECT id_number FROM roster WHERE period = '2026-10'"), c)
    engine.dispose()
    truth = oracle.load(small_world, "2026-10")
    result = compare(found, truth["findings"], roster.id_number, truth["roster"])
    assert ((result.recall == 1) & (result.precision == 1)).all(), result.to_string()
    assert (tmp / "lake" / "published" / "2026-10" / "roster_2026-10.xlsx").exists()
    with sqlite3.connect(tmp / "airflow" / "airflow.db") as db:   # the roster Asset's event carries the counts
        events = [json.loads(e) for (e,) in db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.uri LIKE 'roster-sync://roster%'")]
    assert events and events[0] == {"period": "2026-10", "rows": len(roster), "added": 0, "removed": 0, "changed": 0}
    assert (tmp / "lake" / "reports" / "2026-10" / "150204" / "monthly_report_150204_2026-10.html").exists()


def test_the_office_is_mailed_once_through_alerts_smtp(airflow_run):
    first, second = airflow_run["runs"]
    assert second["rc"] == 0, second["out"][-4000:]
    assert first["mails"] == 1, "one digest for the county's office (config/recipients.json)"
    assert second["mails"] == 1, "the rerun of the same logical date sent the digest again"
    m = airflow_run["mails"][0]
    assert m["rcpt"] == ["bianban@qingshan.example.gov.cn", "shimingzhi@qingshan.example.gov.cn"]
    assert "roster_sync digest 2026-10 to office 150204" in first["out"]
    assert "no office has anything new" in second["out"]


def test_the_deadline_dag_tells_the_engineers_only_when_the_roster_is_late(airflow_run):
    on_time, late = airflow_run["deadline"]
    assert on_time["rc"] == 0 and late["rc"] == 0, late["out"][-3000:]
    assert "roster_sync_deadline 2026-10-31: published" in on_time["out"]
    assert on_time["mails"] == 1, "no mail when the roster is there"
    assert late["mails"] == 2
    m = airflow_run["mails"][-1]
    assert m["rcpt"] == ["roster-sync-ops@example.org"]
    assert "LATE: the roster of 2026-11-02 is not published" in m["msg"]["Subject"]


def test_no_full_id_anywhere_an_operator_or_office_can_read(airflow_run, small_world):
    tmp = airflow_run["tmp"]
    known = known_ids(small_world, ["2026-10"])
    places = {f"stdout/stderr of run {i}": r["out"] for i, r in enumerate(airflow_run["runs"] + airflow_run["deadline"])}
    for i, text in enumerate(airflow_run["texts"]):
        places[f"mail {i}"] = text
    # `airflow dags test` runs the tasks in-process: their log lines are in its output (and
    # in AIRFLOW_HOME/logs when a deployment writes files there)
    assert "published 2026-10" in places["stdout/stderr of run 0"] and "digest" in places["stdout/stderr of run 0"]
    logs = list((tmp / "airflow" / "logs").rglob("*"))
    for p in logs + list((tmp / "lake" / "reports").rglob("*.html")) + list((tmp / "lake" / "quality").rglob("*.json")):
        if p.is_file():
            places[str(p)] = p.read_text(errors="replace")
    with sqlite3.connect(tmp / "airflow" / "airflow.db") as db:   # task output: every XCom value
        for task_id, value in db.execute("SELECT task_id, value FROM xcom"):
            places[f"xcom {task_id}"] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    assert any(k.startswith("xcom publish") for k in places)
    leaks = {where: full_ids_in(text, known) for where, text in places.items()}
    assert {k: v for k, v in leaks.items() if v} == {}
