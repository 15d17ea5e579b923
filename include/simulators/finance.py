"""财政 unified payroll: the tables ``ys_dw`` and ``gz_ff`` in a SQLAlchemy database.

The finance bureau's system is a database, not a server of ours: "serving" a period
means materialising its tables. SQLite (the embedded default) is written to a new file
and swapped in atomically; any other URL (PostgreSQL in production) is rewritten in one
transaction, so a reader never sees half a payroll.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

YS_DW = ("ys_dw", [("dwbm", sa.String(16)), ("tyshxydm", sa.String(18)), ("dwmc", sa.String(200)), ("qhdm", sa.String(6))])
GZ_FF = ("gz_ff", [("ffyf", sa.String(6)), ("dwbm", sa.String(16)), ("sfzh", sa.String(32)), ("xm", sa.String(100)),
                   ("rylb", sa.String(8)), ("yfgz", sa.Numeric(12, 2)), ("jfly", sa.String(8))])


def _tables(meta: sa.MetaData) -> list[sa.Table]:
    return [sa.Table(name, meta, *[sa.Column(c, t) for c, t in cols]) for name, cols in (YS_DW, GZ_FF)]


def _write(conn, data_dir: Path, period: str, chunk: int = 50_000) -> dict:
    meta = sa.MetaData()
    tables = _tables(meta)
    meta.drop_all(conn, checkfirst=True)
    meta.create_all(conn)
    counts = {}
    for table in tables:
        df = pd.read_parquet(Path(data_dir) / "periods" / period / "finance" / f"{table.name}.parquet")
        df = df.astype(object).where(df.notna(), None)
        rows = df.to_dict("records")
        for i in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[i:i + chunk])
        counts[table.name] = len(rows)
    conn.execute(sa.text("CREATE INDEX ix_gz_ff_ffyf ON gz_ff (ffyf)"))
    return counts


def materialise(data_dir: str | Path, period: str, url: str) -> dict:
    """Write the period's finance tables to ``url``. Returns row counts."""
    if url.startswith("sqlite:///"):
        target = Path(url[len("sqlite:///"):])
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".loading")
        tmp.unlink(missing_ok=True)
        engine = sa.create_engine(f"sqlite:///{tmp}")
        with engine.begin() as conn:
            counts = _write(conn, Path(data_dir), period)
        engine.dispose()
        os.replace(tmp, target)
        return counts
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return _write(conn, Path(data_dir), period)
    finally:
        engine.dispose()
