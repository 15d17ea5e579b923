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
                except sa.exc.OperationalError:
                    raise RuntimeError(f"roster_db: the lock {name} was held by another writer for more than {wait} s; "
                                       "is another publish still going?") from None
                conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
            yield conn


def insert_frame(conn: sa.Connection, table: sa.Table, frame, chunk: int = 100_000) -> int:
    """Append ``frame``'s rows (columns named as ``table``'s) to ``table`` inside the caller's
    transaction, at bulk speed; returns the rows written.

    * PostgreSQL: ``COPY ... FROM STDIN`` (CSV written by Arrow) through the driver, in
      chunks: no statement per row, no parameters to bind (a bare COPY of a 1M roster is
      seconds where executemany took minutes);
    * SQLite: the driver's ``executemany`` over plain tuples, each column converted once,
      vectorised, to what SQLAlchemy would have stored (dates as ``YYYY-MM-DD``, times as
      ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans as 0/1, amounts as floats): SQLAlchemy's
      per-row dictionaries and type processors skipped.

    Either way it is the caller's transaction: a reader sees all the rows or none. A
    database error comes back as SQLAlchemy's ``DBAPIError`` carrying the driver's message,
    never the rows (the caller reports the first line only).
    """
    import io

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not len(frame):
        return 0
    cols = list(frame.columns)
    types = {c: table.c[c].type for c in cols}
    out = pd.DataFrame(index=frame.index)
    sqlite = conn.dialect.name == "sqlite"
    for c in cols:
        v, t = frame[c], types[c]
        if isinstance(t, sa.DateTime):
            d = pd.to_datetime(v, utc=True, errors="coerce")
            v = d.dt.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else d.dt.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        elif isinstance(t, sa.Date):   # numpy's day cast: strftime takes seconds a million rows
            d = pd.to_datetime(v, errors="coerce")
            v = pd.Series(d.to_numpy().astype("datetime64[D]").astype(str), index=v.index).where(d.notna(), None)
        elif isinstance(t, sa.Boolean):
            v = v.astype("boolean").astype("Int64") if sqlite else v.astype("boolean")
        elif isinstance(t, sa.Integer):
            v = pd.to_numeric(v).astype("Int64")
        elif isinstance(t, sa.Numeric):
            v = pd.to_numeric(v).astype("float64")
        out[c] = v
    if sqlite:
        statement = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    else:
        # Arrow's CSV writer quotes every text value and leaves a null empty and unquoted: in
        # PostgreSQL's CSV format that is NULL, while "" stays an empty string
        statement = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)"
    # a table of more than one chunk tells its progress (every few seconds, and when done): the
    # roster of a province is a few million rows, most of a publish, in one transaction
    from include.pipeline.store import Progress

    progress = Progress(f"roster_db {table.name}", total=len(out), logger=log, unit="chunks") if len(out) > chunk else None
    cur = conn.connection.dbapi_connection.cursor()
    try:
        for a in range(0, len(out), chunk):
            part = pa.Table.from_pandas(out.iloc[a:a + chunk], preserve_index=False)
            if sqlite:   # Arrow hands out Python values column by column, nulls as None
                cur.executemany(statement, zip(*[part.column(c).to_pylist() for c in cols]))
            else:
                buf = io.BytesIO()
                pacsv.write_csv(part, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
                buf.seek(0)
                cur.copy_expert(statement, buf)
            if progress is not None:
                progress.add(part.num_rows)
    except conn.dialect.dbapi.Error as exc:
        raise sa.exc.DBAPIError(statement, None, exc, hide_parameters=True) from None
    finally:
        cur.close()
    if progress is not None:
        progress.done()
    return len(out)
