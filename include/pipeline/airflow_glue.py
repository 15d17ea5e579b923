"""The thin layer between Airflow and the steps: connections in, references out.

Only this module (and the DAG files) import Airflow; every step stays a plain function.
"""

from __future__ import annotations

import logging

from include.pipeline import store
from include.pipeline.errors import NotRetryable
from include.pipeline.extract.http import SourceConn

log = logging.getLogger("roster_sync")


def connection(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def source_conn(conn_id: str) -> SourceConn:
    c = connection(conn_id)
    return SourceConn(conn_id=conn_id, host=c.host or "", login=c.login, password=c.password,
                      extra=c.extra_dejson if hasattr(c, "extra_dejson") else {})


def sql_url(conn_id: str):
    from include.pipeline.connections import sqlalchemy_url

    c = connection(conn_id)
    extra = c.extra_dejson if hasattr(c, "extra_dejson") else {}
    return sqlalchemy_url(conn_id, {"conn_type": c.conn_type, "host": c.host, "port": c.port, "login": c.login,
                                    "password": c.password, "schema": c.schema, "uri": extra.get("uri")})


def data_root() -> str:
    return store.data_root()


def not_retryable(fn, *args, **kwargs):
    """Run a step; what retrying cannot help (:class:`include.pipeline.errors.NotRetryable`:
    wrong credentials, a source off its contract, a failed quality gate, no payroll for the
    period) fails the task at once with its one line instead of being retried for minutes."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return fn(*args, **kwargs)
    except NotRetryable as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None


def routing():
    """The recipients in force: the Variable ``roster_sync_recipients`` if set, else the file
    (``ROSTER_SYNC_RECIPIENTS`` or ``config/recipients.json``)."""
    from airflow.sdk import Variable

    from include.alerts.routing import load

    return load(text=Variable.get("roster_sync_recipients", default=None))
