"""The names a digest gives its persons: the period's roster, else the latest earlier one (issue 17:
looked up period by period, on the roster's key, in SQLite and PostgreSQL alike)."""

import datetime as dt

import pytest

from include.alerts.digest import _person_names
from include.pipeline import database
from include.pipeline.publish import ensure_schema, roster_table

ROWS = [  # period, id, name
    ("2026-08", "A", "甲"), ("2026-09", "A", "甲二"), ("2026-10", "A", "甲三"), ("2026-11", "A", "甲四"),
    ("2026-08", "B", "乙"),                       # left the roster after August
    ("2026-11", "C", "丙"),                       # only after the period asked
    ("2026-09", "D", "丁"), ("2026-10", "D", None),   # the latest row has no name: as it has it
    *[("2026-09", f"P{i:04d}", f"名{i}") for i in range(700)],   # more than one batch of the IN list
]


@pytest.fixture(params=["sqlite", "postgresql"])
def roster_db(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'roster.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg").create_database("digest_names"))
    engine = database.engine(url)
    ensure_schema(engine, tables=[roster_table])
    with engine.begin() as conn:
        conn.execute(roster_table.insert(), [{"period": p, "as_of": dt.date(2026, 12, 1), "id_number": i, "name": n,
                                              "alert_codes": ""} for p, i, n in ROWS])
    yield engine
    engine.dispose()


def test_each_person_gets_the_name_of_the_latest_roster_up_to_the_period(roster_db):
    wanted = {"A", "B", "C", "D", "E", *[f"P{i:04d}" for i in range(0, 700, 3)]}
    with roster_db.connect() as conn:
        names = _person_names(conn, "2026-10", wanted)
        assert _person_names(conn, "2026-07", wanted) == {}, "no roster that early"
        assert _person_names(conn, "2026-12", {"A", "C"}) == {"A": "甲四", "C": "丙"}
        assert _person_names(conn, "2026-10", set()) == {}
    assert {k: names[k] for k in "ABD"} == {"A": "甲三", "B": "乙", "D": None}
    assert "C" not in names and "E" not in names
    assert {k: v for k, v in names.items() if k.startswith("P")} == {f"P{i:04d}": f"名{i}" for i in range(0, 700, 3)}
