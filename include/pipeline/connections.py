"""Turning the Airflow connections of OUTPUTS.md into what the steps use.

Kept free of Airflow imports so the steps stay testable without a scheduler: the DAG
passes each connection's fields (``conn_type``, ``host``, ``port``, ``login``,
``password``, ``schema``, ``extra``) as a plain mapping.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from include.pipeline.errors import NotRetryable


class ConnectionConfigError(ValueError, NotRetryable):
    """A connection that cannot be used as configured. Never carries a secret."""


def sqlalchemy_url(conn_id: str, conn: Mapping) -> sa.URL | str:
    """A SQLAlchemy URL for a ``sqlite`` or ``postgres`` connection (``finance_db``, ``roster_db``)."""
    kind = (conn.get("conn_type") or "").lower()
    if kind == "sqlite":
        host = conn.get("host") or ""
        if not host:
            raise ConnectionConfigError(f"connection {conn_id!r}: a sqlite connection needs host = the database file path")
        return f"sqlite:///{host}"
    if kind in ("postgres", "postgresql"):
        if conn.get("uri"):
            return str(conn["uri"])
        return sa.URL.create("postgresql+psycopg2", username=conn.get("login") or None, password=conn.get("password") or None,
                             host=conn.get("host") or None, port=conn.get("port") or None, database=conn.get("schema") or None)
    raise ConnectionConfigError(f"connection {conn_id!r}: conn_type {kind or '(none)'!r} is not supported; use sqlite or postgres")
