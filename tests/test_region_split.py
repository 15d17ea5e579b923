"""Splitting reconcile by region (issue 7): the same roster and findings as one piece.

A province of seven jurisdictions is extracted and standardised once; reconcile then runs
whole and split by province, city and county, and both are published. A few persons are
made to cross regions on purpose (two establishments in two cities, paid by two cities'
budget units, placed in one city and paid in another) so the checks that cross regions
are exercised, not just present.
"""

import json
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa

from include.pipeline.local import extract_all
from include.pipeline.publish import publish
from include.pipeline.reconcile import combine_parts, plan_parts, reconcile, reconcile_by_region, reconcile_part
from include.pipeline.standardise import standardise
from include.simulators.cluster import Simulators

D1, P1 = "2026-10-31", "2026-10"


def _cross_regions(std, lake):
    """Make persons cross regions: X gets a second staffing placement and a second payroll row
    in another city; Y's only payroll row moves to a budget unit of another city. Their rows as
    received change with them (a copy of each raw file, with its fingerprint in the summary): a
    finding's evidence reads its records' keys and facts from there."""
    import fsspec

    from include.pipeline.received import fingerprint

    rec = pd.read_parquet(std / "records.parquet")
    units = pd.read_parquet(std / "units.parquet")
    budget = pd.read_parquet(std / "budget_units.parquet")
    summary = json.loads((std / "_summary.json").read_text())
    raw = {s: pd.read_parquet(summary["received"][s]["file"]) for s in ("staffing", "finance")}
    city = units.set_index("unit_code").region_code.str[:4]
    s = rec[(rec.source == "staffing") & rec.id_valid & (rec.personnel_class == "establishment")]
    s = s[s.unit_code.map(city) == "1501"]
    paid_once = rec[rec.source == "finance"].groupby("id_clean").size()
    s = s[s.id_clean.map(paid_once).eq(1) & ~s.id_clean.duplicated(keep=False)]
    x, y = s.iloc[0], s.iloc[1]
    other_unit = units[(units.region_code.str[:4] == "1502") & (units.status == "active")].iloc[0]
    other_budget = budget[budget.qhdm.str[:4] == "1502"].iloc[0]
    next_no = rec.groupby("source").rec_no.max()
    extra_s = x.copy()
    extra_s["rec_no"] = next_no["staffing"] + 1   # (the file's last row: no tombstone after it)
    extra_s["record_id"] = "SPZZZZZZZZZ"          # sorts after every real record: X stays at home
    extra_s["unit_code"] = other_unit.unit_code
    row = raw["staffing"][raw["staffing"].record_id == x.record_id].assign(record_id=extra_s.record_id,
                                                                            unit_code=other_unit.unit_code)
    raw["staffing"] = pd.concat([raw["staffing"], row], ignore_index=True)
    fx = rec[(rec.source == "finance") & (rec.id_clean == x.id_clean)].iloc[0].copy()
    row = raw["finance"].iloc[[fx.rec_no]].assign(dwbm=other_budget.dwbm)   # (payroll rows: rec_no is the file's row)
    fx["rec_no"] = next_no["finance"] + 1
    fx["dwbm"], fx["unit_code"] = other_budget.dwbm, other_budget.credit
    raw["finance"] = pd.concat([raw["finance"], row], ignore_index=True)
    rec = pd.concat([rec, pd.DataFrame([extra_s, fx])], ignore_index=True)
    fy = (rec.source == "finance") & (rec.id_clean == y.id_clean)
    rec.loc[fy, "dwbm"], rec.loc[fy, "unit_code"] = other_budget.dwbm, other_budget.credit
    raw["finance"].loc[rec.rec_no[fy].to_numpy(), "dwbm"] = other_budget.dwbm
    rec.to_parquet(std / "records.parquet", index=False)
    for source, rows in raw.items():
        path = lake / f"crossing_{source}.parquet"
        rows.to_parquet(path, index=False)
        summary["received"][source].update(file=str(path), fingerprint=fingerprint(fsspec.filesystem("file"), str(path)))
    (std / "_summary.json").write_text(json.dumps(summary))
    return x.id_clean, y.id_clean


@pytest.fixture(scope="module")
def std(province_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("split")
    root = str(tmp / "lake")
    with Simulators(province_world, ports={"staffing": 0, "org": 0, "hr": 0},
                    finance_url=f"sqlite:///{tmp / 'finance.db'}") as sims:
        extract_all(sims.connections(), sims.finance_url, root, D1)
    base = tmp / "std"
    shutil.copytree(standardise(root, D1, P1)["dir"], base)
    crossing = _cross_regions(base, tmp)
    return {"tmp": tmp, "std": base, "crossing": crossing}


def _run(std, tmp, name, level=None):
    work = tmp / name
    shutil.copytree(std, work / "std")
    if level is None:
        reconcile(str(work / "std"), as_of=D1)
    else:
        reconcile_by_region(str(work / "std"), as_of=D1, level=level)
    url = f"sqlite:///{tmp / (name + '.db')}"
    publish(str(work), url, P1, D1)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = {t: pd.read_sql(sa.text(f"SELECT * FROM {t} ORDER BY {key}"), conn)
                  for t, key in (("roster", "id_number"), ("reconciliation_finding", "alert_key"),
                                 ("reconciliation_alert", "alert_key"), ("quarantine", "source, rec_no"),
                                 ("alert_evidence", "alert_key, source, record_key"))}
    engine.dispose()
    tables["unit_stats"] = pd.read_parquet(work / "unit_stats.parquet")
    return tables


@pytest.fixture(scope="module")
def whole(std):
    return _run(std["std"], std["tmp"], "whole")


def test_the_crossing_persons_raise_their_cross_region_codes(whole, std):
    x, y = std["crossing"]
    f = whole["reconciliation_finding"]
    assert {"MULTIPLE_ESTABLISHMENT", "DUPLICATE_PAY"} <= set(f[f.id_number == x].code)
    assert "UNIT_MISMATCH" in set(f[f.id_number == y].code)
    # the evidence shows the added placement as received, under its own key
    ev = whole["alert_evidence"].merge(f[f.id_number == x][["alert_key", "code"]], on="alert_key")
    added = ev[(ev.code == "MULTIPLE_ESTABLISHMENT") & (ev.record_key == "persons|SPZZZZZZZZZ")]
    assert len(added) == 1 and json.loads(added.facts.iloc[0])["record_id"] == "SPZZZZZZZZZ"


@pytest.mark.parametrize("level", ["province", "city", "county", "whole"])
def test_a_split_run_publishes_exactly_what_a_whole_run_does(whole, std, level):
    split = _run(std["std"], std["tmp"], f"split-{level}", level)
    for table in ("roster", "reconciliation_finding", "unit_stats", "quarantine", "alert_evidence"):
        a, b = whole[table], split[table]
        if "as_of" in a:
            a, b = a.drop(columns=[c for c in ("as_of",) if c in a]), b.drop(columns=[c for c in ("as_of",) if c in b])
        pd.testing.assert_frame_equal(a, b, obj=f"{table} split by {level}")
    cols = [c for c in whole["reconciliation_alert"].columns if c != "updated_at"]
    pd.testing.assert_frame_equal(whole["reconciliation_alert"][cols], split["reconciliation_alert"][cols])


def test_partitions_keep_each_person_whole_and_the_plan_is_rerunnable(std):
    work = std["tmp"] / "plan"
    shutil.copytree(std["std"], work / "std")
    first = plan_parts(str(work / "std"), level="city")
    assert set(first["parts"]) >= {"150000", "150100", "150200"}
    home = pd.read_parquet(work / "parts" / "home.parquet")
    assert not home.person_id.duplicated().any(), "a person in two partitions"
    assert sum(first["persons"].values()) == len(home)
    again = plan_parts(str(work / "std"), level="city")     # a retry replaces, never adds
    assert again["persons"] == first["persons"]
    assert len(pd.read_parquet(work / "parts" / "home.parquet")) == len(home)
    rosters = []
    for p in again["parts"]:
        r = reconcile_part(str(work / "std"), str(work), p, as_of=D1)
        rosters.append(pd.read_parquet(f"{r['dir']}/roster.parquet").assign(part=p))
    rosters = pd.concat(rosters)
    assert not rosters.id_number.duplicated().any()
    assert (rosters.id_number.map(home.set_index("person_id").part) == rosters.part).all()
    with pytest.raises(RuntimeError, match="partitions not reconciled: 159900"):
        combine_parts(str(work / "std"), str(work), [*again["parts"], "159900"])
    with pytest.raises(ValueError, match="region level"):
        plan_parts(str(work / "std"), level="township")


def test_reconcile_memory_limit_is_a_setting(monkeypatch):
    """ROSTER_SYNC_RECONCILE_MEMORY reaches each reconcile connection; a size DuckDB would misread is refused."""
    from include.pipeline.reconcile import connect
    from include.settings import SettingError

    def limit() -> str:
        return connect().execute("SELECT current_setting('memory_limit')").fetchone()[0]

    monkeypatch.delenv("ROSTER_SYNC_RECONCILE_MEMORY", raising=False)
    assert limit() == "1.8 GiB"                 # the default, 2GB (DuckDB shows GiB)
    monkeypatch.setenv("ROSTER_SYNC_RECONCILE_MEMORY", "1500MB")
    assert limit() == "1.3 GiB"
    assert connect(memory_limit="3GB").execute("SELECT current_setting('memory_limit')").fetchone()[0] == "2.7 GiB"
    monkeypatch.setenv("ROSTER_SYNC_RECONCILE_MEMORY", "none")
    assert limit() not in ("1.8 GiB", "1.3 GiB")   # DuckDB's own: 80% of the machine
    monkeypatch.setenv("ROSTER_SYNC_RECONCILE_MEMORY", "2 gigs")
    with pytest.raises(SettingError, match="ROSTER_SYNC_RECONCILE_MEMORY"):
        connect()


def test_people_projected_for_one_record_equal_people_grouped(std):
    """Each source's facts are projected for a person with one record there and grouped for the
    few with several (reconcile.Fact): the same people, column for column, as grouping everyone.
    The province has persons with several records in staffing and in finance (the crossing
    persons and the generator's duplicates), so both forms are in the comparison."""
    from include.pipeline.reconcile import _people, connect, resolve

    con = connect()
    resolve(con, str(std["std"]))
    several = dict(con.execute("SELECT source, count(*) FROM (SELECT source, person_id FROM r GROUP BY ALL HAVING count(*) > 1) "
                               "GROUP BY source").fetchall())
    assert several.get("staffing", 0) > 0 and several.get("finance", 0) > 0, several

    def people(grouped: bool):
        _people(con, P1, grouped=grouped)
        return con.execute("SELECT * FROM people ORDER BY person_id").fetchall(), con.execute("DESCRIBE people").fetchall()

    projected, grouped = people(False), people(True)
    assert len(projected[0]) > 1000
    assert projected == grouped


def test_the_whole_plan_reads_no_record(std, tmp_path):
    """At level whole the plan has nothing to plan: it clears the partitions of an earlier split and
    reads no record (the one partition's reconcile counts its persons)."""
    model = tmp_path / "work" / "std"
    model.mkdir(parents=True)
    shutil.copy(std["std"] / "_summary.json", model / "_summary.json")   # no records.parquet at all
    (tmp_path / "work" / "parts" / "150100").mkdir(parents=True)          # an earlier split's
    plan = plan_parts(str(model), level="whole")
    assert (plan["parts"], plan["persons"], plan["dir"]) == (["whole"], {"whole": None}, str(tmp_path / "work"))
    assert not (tmp_path / "work" / "parts").exists()
