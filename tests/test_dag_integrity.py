"""Every DAG imports, is tagged, retries, and does no work at import time."""

import socket

import pytest
import sqlalchemy

from airflow.dag_processing.dagbag import DagBag


@pytest.fixture(scope="module")
def dagbag():
    # Import-time work would show up as a network connection or a database engine.
    real_connect, real_engine = socket.socket.connect, sqlalchemy.create_engine

    def no_network(self, *a, **k):
        raise AssertionError("a DAG file opened a network connection at import time")

    def no_engine(*a, **k):
        raise AssertionError("a DAG file created a database engine at import time")

    socket.socket.connect, sqlalchemy.create_engine = no_network, no_engine
    try:
        return DagBag(str(__import__("pathlib").Path(__file__).resolve().parents[1] / "dags"))
    finally:
        socket.socket.connect, sqlalchemy.create_engine = real_connect, real_engine


def test_every_dag_imports(dagbag):
    assert dagbag.import_errors == {}
    assert "roster_sync" in dagbag.dags


def test_dags_are_tagged_and_retry(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for t in dag.tasks:
            assert t.retries >= 2, f"{dag_id}.{t.task_id} retries {t.retries}"


def test_roster_sync_takes_a_period_parameter(dagbag):
    dag = dagbag.dags["roster_sync"]
    assert "period" in dag.params
    assert dag.max_active_runs == 1


def test_failed_gates_and_wrong_credentials_are_not_retried():
    from airflow.sdk.exceptions import AirflowFailException

    from include.pipeline.airflow_glue import not_retryable
    from include.pipeline.extract.http import SourceAuthError
    from include.quality.gates import QualityGateFailed

    for exc in (QualityGateFailed("not published: org is empty"), SourceAuthError("connection 'org_api': refused")):
        def step():
            raise exc
        with pytest.raises(AirflowFailException, match=str(exc)):
            not_retryable(step)
    assert not_retryable(lambda x: x + 1, 1) == 2


def test_roster_sync_ends_with_report_and_digests_and_alerts_engineers(dagbag):
    dag = dagbag.dags["roster_sync"]
    assert dag.get_task("monthly_report").upstream_task_ids == {"plan_reports", "publish", "audit"}
    assert dag.get_task("plan_reports").upstream_task_ids == {"publish", "audit"}
    assert dag.get_task("send_digests").upstream_task_ids >= {"collect_reports", "publish"}
    assert dag.get_task("collect_reports").upstream_task_ids == {"monthly_report"}
    for d in (dag, dagbag.dags["roster_sync_deadline"]):
        for t in d.tasks:
            assert t.on_failure_callback, f"{d.dag_id}.{t.task_id} does not tell the engineers when it fails"
    # Airflow 3.3.2's dag.test() breaks on a DeadlineAlert (see include/alerts/ops.py), and
    # OUTPUTS.md promises `airflow dags test roster_sync`: the deadline is a DAG of its own.
    assert not dag.deadline


def test_the_deadline_dag_runs_at_the_configured_time(dagbag):
    from include.alerts.ops import deadline_schedule

    d = dagbag.dags["roster_sync_deadline"]
    assert d.timetable.expression == deadline_schedule() == "0 12 * * *"


def test_the_dag_file_does_not_import_pandas_at_parse():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import runpy, sys; runpy.run_path('dags/roster_sync.py'); runpy.run_path('dags/roster_sync_deadline.py'); "
            "print('pandas' in sys.modules, 'duckdb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout
