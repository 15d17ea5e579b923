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
