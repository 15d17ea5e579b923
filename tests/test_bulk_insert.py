"""database.insert_frame (COPY on PostgreSQL, plain executemany on SQLite) stores exactly what
SQLAlchemy's own insert stores, for every column type roster_db uses."""

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from include.pipeline import database

META = sa.MetaData()
SAMPLE = sa.Table(
    "sample", META,
    sa.Column("k", sa.String(10), primary_key=True), sa.Column("text", sa.Text), sa.Column("name", sa.String(100)),
    sa.Column("day", sa.Date), sa.Column("at", sa.DateTime(timezone=True)), sa.Column("flag", sa.Boolean),
    sa.Column("n", sa.BigInteger), sa.Column("pay", sa.Numeric(14, 2)),
)
FRAME = pd.DataFrame({
    "k": ["a", "b", "c", "d"],
    "text": ['{"x": "逗号, 引号\\" 换行"}', "", None, "line\nbreak, \"quoted\""],
    "name": ["买买提·艾力", "O'Brien", None, "\\N-like but not null"],
    "day": [dt.date(2026, 10, 31), None, dt.date(1948, 1, 15), dt.date(2000, 2, 29)],
    "at": pd.to_datetime(["2026-12-02 09:00:01.5", None, "2026-01-01 00:00:00.0", "2026-06-30 23:59:59.0"]).tz_localize("UTC"),
    "flag": [True, False, None, True],
    "n": pd.array([1, None, 3_000_000_000, 0], dtype="Int64"),
    "pay": [7283.01, None, 0.1, 123456789.99],
})


def both_ways(url_a: str, url_b: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = []
    for url, bulk in ((url_a, False), (url_b, True)):
        engine = database.engine(url)
        META.create_all(engine)
        with engine.begin() as conn:
            if bulk:
                assert database.insert_frame(conn, SAMPLE, FRAME, chunk=3) == len(FRAME)
            else:
                conn.execute(SAMPLE.insert(), FRAME.astype(object).where(FRAME.notna(), None).to_dict("records"))
        with engine.connect() as conn:
            out.append(pd.read_sql(sa.select(SAMPLE).order_by(SAMPLE.c.k), conn))
            if engine.dialect.name == "sqlite":   # the storage classes too, not only what comes back
                out.append(pd.read_sql(sa.text("SELECT " + ", ".join(f"typeof({c}) AS {c}" for c in FRAME.columns)
                                               + " FROM sample ORDER BY k"), conn))
        engine.dispose()
    return out[: len(out) // 2], out[len(out) // 2:]


def test_sqlite_stores_what_sqlalchemy_stores(tmp_path):
    a, b = both_ways(f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}")
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert a[0].loc[1, "text"] == "" and pd.isna(a[0].loc[2, "text"]), "empty text and null stay apart"


def test_postgres_copy_stores_what_sqlalchemy_stores(pg):
    (a,), (b,) = both_ways(pg.create_database("bulk_a"), pg.create_database("bulk_b"))
    pd.testing.assert_frame_equal(a, b)
    assert b.loc[3, "text"] == 'line\nbreak, "quoted"' and b.loc[1, "text"] == "" and pd.isna(b.loc[2, "text"])
    assert b.loc[3, "name"] == "\\N-like but not null"


def test_a_refused_row_is_a_dbapi_error_without_the_row(pg):
    engine = database.engine(pg.create_database("bulk_refused"))
    META.create_all(engine)
    secret = "110105194805211234-TOO-LONG"
    with pytest.raises(sa.exc.DBAPIError) as exc:
        with engine.begin() as conn:
            database.insert_frame(conn, SAMPLE, FRAME.assign(k=[secret, "b", "c", "d"]))
    first = str(exc.value.orig).strip().splitlines()[0]
    assert "too long" in first and secret not in first
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sample")).scalar() == 0
    engine.dispose()


def test_a_table_of_several_chunks_tells_its_progress(tmp_path, caplog):
    """A bulk insert of more than one chunk logs its rows, chunks and rate when done (and every few
    seconds before): publishing a province's roster is minutes in one transaction. A table of one
    chunk says nothing (publish inserts a dozen small ones)."""
    engine = database.engine(f"sqlite:///{tmp_path / 'p.db'}")
    META.create_all(engine)
    caplog.set_level("INFO", logger="roster_sync.db")
    with engine.begin() as conn:
        database.insert_frame(conn, SAMPLE, FRAME.iloc[:2], chunk=3)
        assert not [r for r in caplog.records if "rows/s" in r.getMessage()]
        database.insert_frame(conn, SAMPLE, FRAME.iloc[2:].assign(k=["c", "d"]), chunk=1)
    lines = [r.getMessage() for r in caplog.records if "rows/s" in r.getMessage()]
    assert lines == [lines[-1]] and lines[-1].startswith("roster_db sample: 2 of 2 rows, 2 chunks, "), lines
    assert lines[-1].endswith("(done)")
    engine.dispose()
