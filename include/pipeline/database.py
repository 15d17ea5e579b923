"""How the pipeline opens ``roster_db``: no row ever reaches a log, one writer at a time.

* Every engine is created with ``hide_parameters=True``: a database error names the
  statement, never the rows it carried (SQLAlchemy's ``[parameters: ...]`` would put ID
  numbers, names and pay into the task log that the Airflow UI shows).
* :func:`writer` is the one transaction that changes a period (publish, digests): on
  PostgreSQL it first takes a transaction-scoped advisory lock, on SQLite it begins with
  ``BEGIN IMMEDIATE`` (the database's write lock). Whatever starts the second writer (a
  second deployment, ``airflow dags test`` beside the scheduler, ``tasks test``), it waits
  for the first to commit, reads the state the first left, and never interleaves with it.
  It waits up to ``ROSTER_SYNC_LOCK_WAIT_SECONDS``, then fails naming the lock.
"""

from __future__ import annotations

import contextlib
import logging
import zlib

import sqlalchemy as sa

log = logging.getLogger("roster_sync.db")

PUBLISH_LOCK = "roster_sync:publish"


def engine(url, **kwargs) -> sa.Engine:
    """An engine for ``roster_db`` (or finance) whose errors never carry row parameters."""
    from include.settings import lock_wait_seconds

    u = sa.make_url(url)
    if u.get_backend_name() == "sqlite":
        # The driver's busy timeout: a second writer waits for the first instead of failing at once.
        kwargs.setdefault("connect_args", {"timeout": float(lock_wait_seconds())})
    eng = sa.create_engine(u, hide_parameters=True, **kwargs)
    if u.get_backend_name() == "sqlite":
        @sa.event.listens_for(eng, "connect")
        def _no_implicit_begin(dbapi_conn, _record):
            dbapi_conn.isolation_level = None     # we emit BEGIN ourselves (SQLAlchemy's pysqlite recipe)

        @sa.event.listens_for(eng, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("writer") else "BEGIN")
    return eng


def lock_id(name: str) -> int:
    """A stable 32-bit key for a PostgreSQL advisory lock."""
    return zlib.crc32(name.encode())


@contextlib.contextmanager
def writer(eng: sa.Engine, name: str = PUBLISH_LOCK):
    """One transaction holding the writers' lock ``name`` until it commits or rolls back."""
    from include.settings import lock_wait_seconds

    wait = lock_wait_seconds()
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            conn.info["writer"] = True
            try:
                with conn.begin():
                    yield conn
            except sa.exc.OperationalError as exc:
                if "locked" in str(exc.orig).lower():
                    raise RuntimeError(f"roster_db is locked by another writer for more than {wait} s ({name}); "
                                       "is another publish still going?") from None
                raise
            finally:
                conn.info.pop("writer", None)
            return
        with conn.begin():
            if eng.dialect.name == "postgresql":
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'"))
                try:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id(name)})
                except sa.exc.OperationalError as exc:
                    raise RuntimeError(f"roster_db: the lock {name} was held by another writer for more than {wait} s; "
                                       "is another publish still going?") from None
                conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
            yield conn
