"""Bad input (issue 5): each case through the simulators and the whole pipeline.

For each: the expected gate outcome (rows quarantined with a reason and the run goes on,
or the run stops before publish with the previous roster intact), and the accounting:
rows in = rows used + rows quarantined.
"""

import hashlib
import json
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa

from include.pipeline.local import run_local
from include.quality.gates import QualityGateFailed
from include.simulators.base import Faults
from include.simulators.cluster import Simulators

FREE = {"staffing": 0, "org": 0, "hr": 0}
D1, D2 = "2026-10-31", "2026-11-30"


@pytest.fixture()
def world(small_world, tmp_path):
    """A private copy of the generated data directory, to damage."""
    data = tmp_path / "data"
    shutil.copytree(small_world, data)
    (data / "finance.db").unlink(missing_ok=True)
    return data


def run(data, tmp_path, ds=D1, period=None, faults=None):
    with Simulators(data, period=period, faults=faults, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'finance.db'}") as sims:
        return run_local(sims.connections(), sims.finance_url, f"sqlite:///{tmp_path / 'roster.db'}", str(tmp_path / "lake"), ds,
                         full_resync_days=60)


def accounting(result):
    acc = result["standardise"]["accounting"]
    for source, a in acc.items():
        assert a["rows_in"] == a["rows_used"] + a["rows_quarantined"], source
    return acc


def quarantined(result):
    return pd.read_parquet(f"{result['standardise']['dir']}/quarantine_rows.parquet")


def roster_periods(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'roster.db'}")
    if not sa.inspect(engine).has_table("roster"):
        return {}                                             # nothing was ever published
    with engine.connect() as c:
        out = pd.read_sql(sa.text("SELECT period, count(*) AS n FROM roster GROUP BY period"), c)
    engine.dispose()
    return dict(zip(out.period, out.n))


def rewrite_hr(data, name, transform):
    """Change an HR export and keep the index (bytes, sha256, rows) consistent, as a real bureau would."""
    path = data / "hr" / name
    raw = transform(path.read_bytes())
    path.write_bytes(raw)
    for index in list((data / "periods").glob("*/hr_index.json")) + [data / "hr" / "index.json"]:
        entries = json.loads(index.read_text())
        for e in entries:
            if e["name"] == name:
                e["bytes"], e["sha256"] = len(raw), hashlib.sha256(raw).hexdigest()
        index.write_text(json.dumps(entries, ensure_ascii=False))


def test_a_json_page_missing_a_field_quarantines_those_items(world, tmp_path):
    result = run(world, tmp_path, faults=Faults(drop_field="persons.unit_code", drop_rate=0.02, seed=4))
    acc = accounting(result)
    q = quarantined(result)
    assert acc["staffing"]["rows_quarantined"] > 0 and len(q[q.source == "staffing"]) == acc["staffing"]["rows_quarantined"]
    assert (q[q.source == "staffing"].reason == "missing field(s): unit_code").all()
    assert json.loads(q.record.iloc[0])["record_id"].startswith("SP")
    assert roster_periods(tmp_path)["2026-10"] > 0          # the run went on and published


def test_duplicated_rows_are_quarantined_once_each(world, tmp_path):
    path = world / "periods" / "2026-10" / "finance" / "gz_ff.parquet"
    pay = pd.read_parquet(path)
    month = pay[pay.ffyf == "202610"]
    pd.concat([pay, month.head(20)]).to_parquet(path)
    result = run(world, tmp_path)
    acc = accounting(result)
    q = quarantined(result)
    assert acc["finance"]["rows_in"] == len(month) + 20 and acc["finance"]["rows_quarantined"] == 20
    assert (q[q.source == "finance"].reason == "duplicate of an earlier row of the same source").all()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'roster.db'}")
    table = pd.read_sql("SELECT * FROM quarantine WHERE period = '2026-10'", engine)
    engine.dispose()
    assert (table.source == "finance").sum() == 20 and result["publish"]["quarantined"] == len(table)
    codes = pd.read_parquet(f"{result['reconcile']['dir']}/findings.parquet").code
    assert (codes == "DUPLICATE_PAY").sum() == (pd.read_csv(world / "periods" / "2026-10" / "truth" / "findings.csv").code == "DUPLICATE_PAY").sum()


def test_a_month_with_40_percent_fewer_payroll_rows_stops_before_publish(world, tmp_path):
    run(world, tmp_path)                                     # 2026-10 published
    path = world / "periods" / "2026-11" / "finance" / "gz_ff.parquet"
    pay = pd.read_parquet(path)
    nov = pay[pay.ffyf == "202611"]
    pd.concat([pay[pay.ffyf != "202611"], nov.iloc[: int(len(nov) * 0.6)]]).to_parquet(path)
    with pytest.raises(QualityGateFailed, match=r"finance has .* 40% fewer than the last run"):
        run(world, tmp_path, ds=D2, period="2026-11")
    assert set(roster_periods(tmp_path)) == {"2026-10"}      # nothing of 2026-11 was published


def test_an_empty_source_stops_before_publish(world, tmp_path):
    path = world / "periods" / "2026-10" / "org" / "gbxx.parquet"
    pd.read_parquet(path).head(0).to_parquet(path)
    with pytest.raises(QualityGateFailed, match="org is empty"):
        run(world, tmp_path)
    assert roster_periods(tmp_path) == {}


def test_a_renamed_column_in_an_hr_file_stops_before_publish(world, tmp_path):
    rewrite_hr(world, "cbry_202610.csv", lambda b: b.decode("gb18030").replace("参保状态", "参保情况", 1).encode("gb18030"))
    with pytest.raises(QualityGateFailed, match="lacks column.*参保状态"):
        run(world, tmp_path)
    assert roster_periods(tmp_path) == {}


def test_a_file_in_the_wrong_encoding_stops_before_publish(world, tmp_path):
    from include.pipeline.extract.http import SourceError
    rewrite_hr(world, "cbry_202610.csv", lambda b: b.decode("gb18030").encode("utf-8"))
    with pytest.raises(SourceError, match="cbry_202610.csv is not GB18030 text"):
        run(world, tmp_path)
    assert roster_periods(tmp_path) == {}


def test_credit_codes_failing_their_check(world, tmp_path):
    from include import identifiers as ids
    base = world / "periods" / "2026-10"
    persons = pd.read_parquet(base / "staffing" / "persons.parquet")
    active = persons.index[persons.status == "active"][:3]
    good = persons.loc[active[0], "unit_code"]
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert not ids.is_valid_credit_code(wrong)
    persons.loc[active, "unit_code"] = wrong                    # three placements recorded under a mistyped code
    persons.to_parquet(base / "staffing" / "persons.parquet")
    ys = pd.read_parquet(base / "finance" / "ys_dw.parquet")
    row = ys.index[ys.tyshxydm.fillna("").str.len() == 18][0]
    ys.loc[row, "tyshxydm"] = ys.loc[row, "tyshxydm"][:-1] + ("0" if ys.loc[row, "tyshxydm"][-1] != "0" else "1")
    ys.to_parquet(base / "finance" / "ys_dw.parquet")
    result = run(world, tmp_path)
    acc = accounting(result)
    q = quarantined(result)
    assert acc["staffing"]["rows_quarantined"] == 3
    assert (q[q.source == "staffing"].reason == "unit_code fails the GB 32100 check").all()
    assert result["standardise"]["invalid_credit_codes"]["budget_units"] == 1
    assert roster_periods(tmp_path)["2026-10"] > 0          # row-level: the run went on


def test_stale_sources_stop_before_publish(world, tmp_path, monkeypatch):
    from include.pipeline import standardise as S
    run(world, tmp_path)                                            # fresh: published
    monkeypatch.setattr(S, "MAX_HR_LAG_MONTHS", -1)                 # now demand an HR export newer than the period
    with pytest.raises(QualityGateFailed, match=r"the HR export used \(2026-10\) is 0 months older"):
        run(world, tmp_path)
    monkeypatch.setattr(S, "MAX_HR_LAG_MONTHS", 1)
    with pytest.raises(QualityGateFailed, match="staffing snapshot is 31 days old"):
        run(world, tmp_path, ds="2026-12-01")                       # the simulators still serve October
