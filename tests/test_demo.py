"""The demo, the README's main job (issue 18): its runs go through Airflow's scheduler.

``python -m include.demo`` (what ``scripts/demo.sh`` runs) on a small county: it starts
the api-server, scheduler (LocalExecutor on SQLite) and dag-processor, triggers one run
per period through the REST API and follows them. The runs must be in Airflow's metadata
database as an operator's UI shows them (state, durations, a task log per task), the
standardise and audit tasks must print their Data Docs links, and a second demo over the
same state reruns the same runs (cleared, as an operator's "Clear": second tries). No task
log holds a full ID number.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.id_scan import full_ids_in, known_ids

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("demo__2026-10-31", "demo__2026-11-30")


def _demo(var: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}   # as from a fresh shell
    return subprocess.run([sys.executable, "-m", "include.demo", "--var", str(var), "--persons", "1500", "--port", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    var = tmp_path_factory.mktemp("demo") / "var"
    first = _demo(var)
    with sqlite3.connect(var / "airflow" / "airflow.db") as db:
        after_first = db.execute("SELECT run_id, task_id, map_index, state, try_number, duration FROM task_instance "
                                 "WHERE dag_id = 'roster_sync'").fetchall()
    second = _demo(var)
    return {"var": var, "first": first, "second": second, "after_first": after_first}


def test_the_demo_runs_each_period_through_the_scheduler(demo):
    out = demo["first"].stdout + demo["first"].stderr
    assert demo["first"].returncode == 0, out[-4000:]
    assert out.count("run succeeded") == 2
    assert "scheduler (LocalExecutor)" in out
    with sqlite3.connect(demo["var"] / "airflow" / "airflow.db") as db:
        runs = dict(db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = 'roster_sync'").fetchall())
        jobs = {j for (j,) in db.execute("SELECT job_type FROM job")}
    assert runs == {r: "success" for r in RUNS}
    assert {"SchedulerJob", "DagProcessorJob"} <= jobs, "the runs went through a scheduler, not `airflow dags test`"
    tis = demo["after_first"]
    assert tis and all(state == "success" and tries == 1 and duration is not None and duration < 600
                       for _, _, _, state, tries, duration in tis), tis


def test_every_task_has_its_log_where_the_ui_reads_it(demo):
    logs = demo["var"] / "airflow" / "logs" / "dag_id=roster_sync"
    for run_id, task_id, map_index, _, tries, _ in demo["after_first"]:
        folder = logs / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        assert (folder / f"attempt={tries}.log").is_file(), folder


def test_the_stages_that_validate_print_their_data_docs_link(demo):
    out = demo["first"].stdout
    docs = [line for line in out.splitlines() if "roster_sync quality" in line]
    assert any("raw_staffing_persons" in line for line in docs), "standardise's input suites"
    assert any("quality roster:" in line for line in docs), "audit's suites"
    assert all("Data Docs: file://" in line and "None" not in line for line in docs), docs


def test_a_second_demo_reruns_the_same_runs(demo):
    out = demo["second"].stdout + demo["second"].stderr
    assert demo["second"].returncode == 0, out[-4000:]
    assert out.count("run succeeded") == 2 and "generating a county" not in out
    with sqlite3.connect(demo["var"] / "airflow" / "airflow.db") as db:
        runs = dict(db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = 'roster_sync'").fetchall())
        tries = {t for (t,) in db.execute("SELECT DISTINCT try_number FROM task_instance WHERE dag_id = 'roster_sync'")}
    assert runs == {r: "success" for r in RUNS}, "the same two runs, cleared and run again"
    assert tries == {2}


def test_no_task_log_holds_a_full_id(demo):
    known = known_ids(demo["var"] / "data", ["2026-10", "2026-11"])
    logs = [p for p in (demo["var"] / "airflow" / "logs").rglob("*") if p.is_file()]
    assert len(logs) > 20
    leaks = {str(p): full_ids_in(p.read_text(errors="replace"), known) for p in logs}
    assert {k: v for k, v in leaks.items() if v} == {}
