"""The period a run reconciles, and the connections that locate the databases."""

import datetime as dt

import pytest
import sqlalchemy as sa

from include.pipeline.connections import ConnectionConfigError, sqlalchemy_url
from include.pipeline.period import NoPayrollError, resolve_period


@pytest.fixture()
def finance(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("CREATE TABLE gz_ff (ffyf TEXT, dwbm TEXT, sfzh TEXT, xm TEXT, rylb TEXT, yfgz NUMERIC, jfly TEXT)"))
        for m in ("202609", "202610", "202612"):
            c.execute(sa.text("INSERT INTO gz_ff VALUES (:m, '300001', 'x', 'x', '在编', 1, '财政拨款')"), {"m": m})
    eng.dispose()
    return url


def test_latest_payroll_month_not_after_the_logical_date(finance):
    assert resolve_period(finance, dt.date(2026, 10, 1)) == "2026-10"
    assert resolve_period(finance, dt.date(2026, 11, 30)) == "2026-10"   # no November payroll yet
    assert resolve_period(finance, dt.date(2027, 3, 1)) == "2026-12"


def test_a_requested_period_must_have_payroll(finance):
    assert resolve_period(finance, dt.date(2026, 12, 31), "2026-09") == "2026-09"
    with pytest.raises(NoPayrollError, match="2026-11 was requested"):
        resolve_period(finance, dt.date(2026, 12, 31), "2026-11")
    with pytest.raises(ValueError, match="YYYY-MM"):
        resolve_period(finance, dt.date(2026, 12, 31), "2026/11")


def test_no_payroll_yet_is_a_clear_error(finance):
    with pytest.raises(NoPayrollError, match="nothing to reconcile"):
        resolve_period(finance, dt.date(2026, 8, 31))


def test_connection_urls():
    assert sqlalchemy_url("finance_db", {"conn_type": "sqlite", "host": "/tmp/f.db"}) == "sqlite:////tmp/f.db"
    url = sqlalchemy_url("roster_db", {"conn_type": "postgres", "host": "127.0.0.1", "port": 5433, "login": "u",
                                       "password": "s3cret", "schema": "roster"})
    assert url.drivername == "postgresql+psycopg2" and url.database == "roster" and url.port == 5433
    assert "s3cret" not in str(url)   # a URL renders with its password hidden
    with pytest.raises(ConnectionConfigError, match="finance_db") as exc:
        sqlalchemy_url("finance_db", {"conn_type": "mysql", "password": "s3cret"})
    assert "s3cret" not in str(exc.value)
