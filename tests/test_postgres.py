"""PostgreSQL for real: finance on PostgreSQL, the roster published to PostgreSQL."""

import pandas as pd
import pytest
import sqlalchemy as sa

from include.generator import oracle
from include.pipeline.accuracy import compare
from include.pipeline.connections import sqlalchemy_url
from include.pipeline.extract.finance import extract_finance
from include.pipeline.extract.http import SourceAuthError
from include.pipeline.local import run_local
from include.simulators.cluster import Simulators

from pg import PASSWORD

FREE = {"staffing": 0, "org": 0, "hr": 0}


def test_finance_and_roster_on_postgres(pg, small_world, tmp_path):
    finance_url = pg.create_database("finance")
    roster_url = pg.create_database("roster")
    with Simulators(small_world, ports=FREE, finance_url=finance_url) as sims:
        conn = sims.connections()["finance_db"]
        assert conn["conn_type"] == "postgres" and conn["schema"] == "finance" and conn["port"] == pg.port
        url = sqlalchemy_url("finance_db", conn)       # the OUTPUTS.md form, as an operator writes it
        first = run_local(sims.connections(), url, roster_url, str(tmp_path / "lake"), "2026-10-31")
        run_local(sims.connections(), url, roster_url, str(tmp_path / "lake"), "2026-10-31")   # republish: no duplicates
        sims.advance("2026-11")
        second = run_local(sims.connections(), url, roster_url, str(tmp_path / "lake"), "2026-11-30")
    assert (first["period"], second["period"]) == ("2026-10", "2026-11")
    engine = sa.create_engine(roster_url)
    with engine.connect() as c:
        for period in ("2026-10", "2026-11"):
            found = pd.read_sql(sa.text("SELECT * FROM reconciliation_finding WHERE period = :p"), c, params={"p": period})
            roster = pd.read_sql(sa.text("SELECT id_number FROM roster WHERE period = :p"), c, params={"p": period})
            truth = oracle.load(small_world, period)
            result = compare(found, truth["findings"], roster.id_number, truth["roster"])
            assert ((result.recall == 1) & (result.precision == 1)).all(), result.to_string()
        dup = c.execute(sa.text("SELECT count(*) FROM (SELECT period, id_number FROM roster GROUP BY 1, 2 HAVING count(*) > 1) d")).scalar()
        assert dup == 0
        pk = c.execute(sa.text("SELECT count(*) FROM information_schema.table_constraints "
                               "WHERE table_name = 'roster' AND constraint_type = 'PRIMARY KEY'")).scalar()
        assert pk == 1
        assert c.execute(sa.text("SELECT count(*) FROM publish_log")).scalar() == 3
    engine.dispose()


def test_wrong_finance_password_is_a_clear_non_retryable_error(pg, small_world, tmp_path):
    bad = sqlalchemy_url("finance_db", {"conn_type": "postgres", "host": "127.0.0.1", "port": pg.port, "login": "postgres",
                                        "password": "not-the-password", "schema": "postgres"})
    with pytest.raises(SourceAuthError) as exc:
        extract_finance("finance_db", bad, str(tmp_path / "lake"), "2026-10-31")
    assert "finance_db" in str(exc.value) and "not-the-password" not in str(exc.value) and PASSWORD not in str(exc.value)
