"""ensure_schema from tasks that start together (the mapped report batches): each waits for the
other and finds the tables made, on SQLite and on PostgreSQL. Before it took the writers' lock,
the bench's 2M night on SQLite failed with "database is locked": SQLite refuses a reader's
upgrade to writer while another writes, without waiting out its busy timeout."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PROCESSES, ROUNDS = 4, 5


def _ensure(url: str, barrier) -> str:
    import sys

    sys.path.insert(0, str(ROOT))
    from include.pipeline import database
    from include.pipeline.publish import alert_table, ensure_schema, finding_table
    from include.report.monthly import report_table

    engine = database.engine(url)
    barrier.wait()
    try:
        ensure_schema(engine, tables=[report_table, finding_table, alert_table])
        return "ok"
    except Exception as exc:   # noqa: BLE001 - reported to the test
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        engine.dispose()


def _race(urls: list[str]) -> list[str]:
    ctx = mp.get_context("spawn")
    outcomes = []
    with ctx.Manager() as manager, ctx.Pool(PROCESSES) as pool:
        for url in urls:
            barrier = manager.Barrier(PROCESSES)
            outcomes += pool.starmap(_ensure, [(url, barrier)] * PROCESSES)
    return outcomes


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_tasks_starting_together_create_the_schema_once(db, tmp_path, request):
    if db == "sqlite":
        urls = [f"sqlite:///{tmp_path / f'race_{i}.db'}" for i in range(ROUNDS)]
    else:
        urls = [request.getfixturevalue("pg").create_database(f"schema_race_{i}") for i in range(ROUNDS)]
    outcomes = _race(urls)
    assert [o for o in outcomes if o != "ok"] == []
    assert all({"monthly_report", "reconciliation_finding", "reconciliation_alert"} <= _tables(u) for u in urls)
