"""Reconcile and publish end to end (issue 4): ground truth, reruns, the alert lifecycle."""

import json
import os

import pandas as pd
import pytest

from include.generator import oracle
from include.pipeline.accuracy import compare, main as accuracy_main
from include.pipeline.local import run_local
from include.pipeline.publish import alert_keys
from include.simulators.base import Faults
from include.simulators.cluster import Simulators
from tests.db import table

FREE = {"staffing": 0, "org": 0, "hr": 0}
P1, P2 = "2026-10", "2026-11"
D1, D2 = "2026-10-31", "2026-11-30"


def assert_perfect(url, world, period):
    truth = oracle.load(world, period)
    found = table(url, "SELECT * FROM reconciliation_finding WHERE period = :p", p=period)
    roster = table(url, "SELECT id_number FROM roster WHERE period = :p", p=period)
    result = compare(found, truth["findings"], roster.id_number, truth["roster"])
    bad = result[(result.recall < 1) | (result.precision < 1)]
    assert bad.empty, bad.to_string()
    assert set(found.code) == set(truth["findings"].code)


@pytest.fixture(scope="module")
def published(small_world, tmp_path_factory):
    """Both periods run through the pipeline with every fault on, plus a rerun of the first."""
    tmp = tmp_path_factory.mktemp("pipeline")
    url = f"sqlite:///{tmp / 'roster.db'}"
    root = str(tmp / "lake")
    snapshots = {}
    with Simulators(small_world, faults=Faults.all_on(0.05, token_ttl=0.5, seed=5), ports=FREE,
                    finance_url=f"sqlite:///{tmp / 'finance.db'}") as sims:
        first = run_local(sims.connections(), sims.finance_url, url, root, D1)
        snapshots["after_first"] = (table(url, "SELECT * FROM roster ORDER BY id_number"),
                                    table(url, "SELECT * FROM reconciliation_alert ORDER BY alert_key"),
                                    table(url, "SELECT * FROM alert_event ORDER BY alert_key"))
        rerun = run_local(sims.connections(), sims.finance_url, url, root, D1)
        snapshots["after_rerun"] = (table(url, "SELECT * FROM roster ORDER BY id_number"),
                                    table(url, "SELECT * FROM reconciliation_alert ORDER BY alert_key"),
                                    table(url, "SELECT * FROM alert_event ORDER BY alert_key"))
        sims.advance(P2)
        second = run_local(sims.connections(), sims.finance_url, url, root, D2)
    return {"url": url, "root": root, "runs": (first, rerun, second), "snapshots": snapshots}


def test_first_period_matches_the_ground_truth(published, small_world):
    assert published["runs"][0]["period"] == P1
    assert_perfect(published["url"], small_world, P1)


def test_next_period_matches_the_ground_truth(published, small_world):
    assert published["runs"][2]["period"] == P2
    assert_perfect(published["url"], small_world, P2)


def test_rerunning_a_logical_date_changes_nothing(published):
    (r1, a1, e1), (r2, a2, e2) = published["snapshots"]["after_first"], published["snapshots"]["after_rerun"]
    pd.testing.assert_frame_equal(r1.drop(columns=[]), r2)
    pd.testing.assert_frame_equal(a1.drop(columns="updated_at"), a2.drop(columns="updated_at"))
    pd.testing.assert_frame_equal(e1, e2)
    assert published["runs"][1]["publish"]["events"] == {}


def test_fixed_problems_resolve_and_persisting_ones_stay_open(published, small_world):
    t1, t2 = oracle.load(small_world, P1)["findings"], oracle.load(small_world, P2)["findings"]
    k1, k2 = set(alert_keys(t1)), set(alert_keys(t2))
    alerts = table(published["url"], "SELECT * FROM reconciliation_alert").set_index("alert_key")
    assert k1 - k2, "the generator fixes some problems between periods"
    assert (alerts.loc[sorted(k1 - k2), "status"] == "resolved").all()
    assert (alerts.loc[sorted(k1 - k2), "resolved_in"] == P2).all()
    assert (alerts.loc[sorted(k1 & k2), "status"] == "open").all()
    assert (alerts.loc[sorted(k1 & k2), "first_seen"] == P1).all()
    assert (alerts.loc[sorted(k2 - k1), "first_seen"] == P2).all()
    assert len(alerts) == len(k1 | k2)


def test_earlier_roster_rows_are_untouched_by_a_later_period(published):
    before = published["snapshots"]["after_rerun"][0]
    now = table(published["url"], "SELECT * FROM roster WHERE period = :p ORDER BY id_number", p=P1)
    pd.testing.assert_frame_equal(before, now)


def test_roster_columns_and_exports(published):
    roster = table(published["url"], "SELECT * FROM roster WHERE period = :p", p=P2)
    expected = ["period", "as_of", "id_number", "name", "sex", "birth_date", "region_code", "unit_code", "unit_name",
                "personnel_class", "quota_type", "non_establishment_category", "post_category", "position", "leader_level",
                "cadre_rank", "gross_pay", "budget_unit_codes", "insured_status", "hr_status", "in_staffing", "in_org",
                "in_finance", "in_hr", "alert_codes"]
    assert list(roster.columns) == expected
    assert roster.id_number.is_unique and roster.unit_code.notna().all() and roster.region_code.notna().all()
    assert set(roster.personnel_class) <= {"establishment", "non_establishment", "retired", "unknown"}
    exports = published["runs"][2]["publish"]["exports"]
    assert pd.read_parquet(exports["parquet"]).shape[0] == len(roster)
    raw = open(exports["csv"], "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(exports["csv"], encoding="utf-8-sig", dtype=str).shape[0] == len(roster)
    from openpyxl import load_workbook
    wb = load_workbook(exports["xlsx"], read_only=True)
    rows = list(wb["花名册"].iter_rows(values_only=True))
    assert len(rows) == len(roster) + 1
    # every contract column is there under its Chinese header, findable in the data dictionary
    names = {r[1]: r[0] for r in wb["数据字典"].iter_rows(min_row=3, values_only=True) if r[0] and r[1]}
    assert sorted(names[h] for h in rows[0]) == sorted(expected)


def test_accuracy_command(published, small_world, capsys):
    assert accuracy_main(["--data", str(small_world), "--period", P2, "--roster-db", published["url"]]) == 0
    out = capsys.readouterr().out
    assert "ROSTER" in out and "all 1.00" in out


def test_no_full_id_in_the_run_logs(published, small_world, caplog):
    """Everything the pipeline logs at INFO and above carries no full ID number."""
    import logging
    import re
    caplog.set_level(logging.INFO)
    with Simulators(small_world, period=P2, ports=FREE, finance_url=f"sqlite:///{published['root']}/f2.db") as sims:
        run_local(sims.connections(), sims.finance_url, published["url"], published["root"], D2)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text
    assert not re.search(r"\d{17}[\dXx]", text)


def test_standardise_reconcile_and_publish_tell_how_far_they_are(published, tmp_path, caplog):
    """Each source standardised is told as it is taken (rows, time, rate, how many of how many), then
    the wait for the input suites; each step of reconcile as it ends (what it made, its time, the
    time so far); publish what it is about to write (the inserts tell their own progress,
    test_bulk_insert): an operator can tell slow from stuck before the task's last line."""
    import logging
    import re

    from include.pipeline.publish import publish
    from include.pipeline.reconcile import reconcile
    from include.pipeline.standardise import standardise

    caplog.set_level(logging.INFO)
    summary = standardise(published["root"], D2, P2, out_dir=str(tmp_path / "work" / "std"))
    lines = [r.getMessage() for r in caplog.records if r.name == "roster_sync.standardise"]
    taken = [line for line in lines if " rows read and screened in " in line]
    assert [line.split()[2] for line in taken] == ["staffing", "org", "finance", "hr"], lines
    for n, (line, source) in enumerate(zip(taken, ["staffing", "org", "finance", "hr"]), start=1):
        rows = summary["accounting"][source]["rows_in"]
        assert re.fullmatch(rf"standardise {P2}: {source} {rows:,} rows read and screened in \d+\.\ds \([\d,]+ rows/s\), "
                            rf"{summary['accounting'][source]['rows_quarantined']:,} quarantined; {n} of 4 sources, "
                            rf"\d+\.\ds in", line), line
    waiting = [i for i, line in enumerate(lines) if "waiting for the input suites' verdict" in line]
    assert waiting and lines.index(taken[-1]) < waiting[0] < len(lines) - 1

    caplog.clear()
    done = reconcile(summary["dir"], as_of=D2)
    steps = [r.getMessage() for r in caplog.records if r.name == "roster_sync.reconcile"]
    assert all(re.fullmatch(rf"reconcile {P2}: .+ in \d+\.\ds; \d+\.\ds in", s) for s in steps[:-1]), steps
    told = [s.split(": ", 1)[1].rsplit(" in ", 1)[0] for s in steps[:-1]]
    assert [re.sub(r"\d[\d,]*", "N", t) for t in told] == [
        "records resolved (N invalid IDs linked to a person, N not)", "N persons' facts joined", "N person findings",
        "roster of N built", "units checked against their quotas, N findings with N evidence rows",
        "roster, findings and evidence written"], steps
    assert told[3] == f"roster of {done['roster']:,} built" and steps[-1].startswith(f"reconciled {P2} in ")

    caplog.clear()
    out = publish(done["dir"], f"sqlite:///{tmp_path / 'fresh.db'}", P2, D2, run_id="progress")
    lines = [r.getMessage() for r in caplog.records if r.name == "roster_sync.publish"]
    assert any(re.fullmatch(rf"publishing {P2}: {done['roster']:,} roster rows, [\d,]+ findings, [\d,]+ changes against "
                            rf"no earlier period; writing them in one transaction \(\d+\.\ds in\)", line) for line in lines), lines
    assert out["roster_rows"] == done["roster"]


def test_a_publish_that_fails_halfway_leaves_the_previous_roster(published, monkeypatch):
    from include.pipeline import publish as pub
    work = published["runs"][2]["reconcile"]["dir"]
    before = table(published["url"], "SELECT * FROM roster ORDER BY period, id_number")
    alerts = table(published["url"], "SELECT * FROM reconciliation_alert ORDER BY alert_key")

    def boom(*a, **k):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(pub, "_apply_alerts", boom)   # after the roster rows are written, before the commit
    with pytest.raises(RuntimeError, match="went away"):
        pub.publish(work, published["url"], P2, D2, export_root=published["root"])
    pd.testing.assert_frame_equal(before, table(published["url"], "SELECT * FROM roster ORDER BY period, id_number"))
    pd.testing.assert_frame_equal(alerts, table(published["url"], "SELECT * FROM reconciliation_alert ORDER BY alert_key"))
    import glob
    assert not glob.glob(f"{published['root']}/published/.staging-*"), "a failed publish leaves no staged exports"


def test_an_export_that_fails_beside_the_inserts_rolls_the_period_back(published, monkeypatch):
    """Finance's files are written on a thread while the rows go in: a failure there (after a
    file is half written) rolls the rows back, removes the staged files and keeps the files
    already published."""
    import glob
    from include.pipeline import publish as pub
    from include.report import finance
    work = published["runs"][2]["reconcile"]["dir"]
    before = table(published["url"], "SELECT * FROM roster ORDER BY period, id_number")
    published_files = {p: os.path.getmtime(p) for p in glob.glob(f"{published['root']}/published/{P2}/*")}
    real = finance.write_period_exports

    def disk_full(directory, *a, **k):
        real(directory, *a, **k)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(finance, "write_period_exports", disk_full)
    with pytest.raises(OSError, match="No space left"):
        pub.publish(work, published["url"], P2, D2, export_root=published["root"])
    pd.testing.assert_frame_equal(before, table(published["url"], "SELECT * FROM roster ORDER BY period, id_number"))
    assert not glob.glob(f"{published['root']}/published/.staging-*"), "no staged exports left"
    assert published_files and {p: os.path.getmtime(p) for p in published_files} == published_files


def test_a_period_with_no_payroll_is_a_clear_error(published, small_world, tmp_path):
    from include.pipeline.period import NoPayrollError
    from include.pipeline.standardise import MissingExtractError, standardise
    with pytest.raises(MissingExtractError, match="no payroll rows for 2026-12"):
        standardise(published["root"], D2, "2026-12")
    with Simulators(small_world, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        with pytest.raises(NoPayrollError, match="nothing to reconcile"):
            run_local(sims.connections(), sims.finance_url, f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "lake"), "2026-08-31")


def test_a_backfill_of_an_earlier_period_never_reopens_what_a_later_one_resolved(published, small_world, tmp_path):
    before = table(published["url"], "SELECT * FROM reconciliation_alert ORDER BY alert_key")
    events = table(published["url"], "SELECT * FROM alert_event ORDER BY alert_key, period, event")
    assert (before.status == "resolved").any()
    with Simulators(small_world, period=P1, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        result = run_local(sims.connections(), sims.finance_url, published["url"], str(tmp_path / "lake"), D1)
    assert result["publish"]["events"] == {}
    after = table(published["url"], "SELECT * FROM reconciliation_alert ORDER BY alert_key")
    pd.testing.assert_frame_equal(before.drop(columns="updated_at"), after.drop(columns="updated_at"))
    pd.testing.assert_frame_equal(events, table(published["url"], "SELECT * FROM alert_event ORDER BY alert_key, period, event"))
    assert_perfect(published["url"], small_world, P1)


def test_every_record_has_its_key_in_its_own_system(published, small_world):
    """OUTPUTS.md "Evidence": a record's key is made from its row as received in the raw layer (read
    back by rec_no, as for a finding's facts); an HR key is the file and the data row's number in it."""
    from include.pipeline.received import received_records

    std = published["runs"][2]["standardise"]["dir"]
    records = pd.read_parquet(f"{std}/records.parquet")
    assert "record_key" not in records   # (made when a finding needs it, not carried for every record)
    entries = json.load(open(f"{std}/_summary.json"))["received"]
    by = {s: records[records.source == s].reset_index(drop=True) for s in ("staffing", "org", "finance", "hr")}
    read = {s: received_records(s, entries[s], by[s].rec_no[::-1]) for s in by}   # (any order asked: rec_no order given)
    assert all([r[0] for r in read[s]] == list(by[s].rec_no) for s in by)
    keys = {s: pd.Series([r[1] for r in read[s]]) for s in by}
    received = {s: pd.DataFrame([json.loads(r[2]) for r in read[s]]) for s in by}
    every = pd.concat([s + "/" + keys[s] for s in by])
    assert every.notna().all() and not every.duplicated().any()
    assert (keys["staffing"] == "persons|" + by["staffing"].record_id).all()
    org = keys["org"].str.split("|", expand=True)
    assert (org[0] == "gbxx").all() and (org[1] == received["org"].sfzh.str.strip()).all()
    assert (org[2] == by["org"].unit_code.fillna("")).all() and (org[3] == received["org"].zwmc.str.strip()).all()
    pay = keys["finance"].str.split("|", expand=True)
    assert (pay[0] == "gz_ff").all() and (pay[1] == "202611").all()
    assert (pay[2] == by["finance"].dwbm).all() and (pay[3] == received["finance"].sfzh.str.strip()).all()
    hr = keys["hr"].str.split("|", expand=True)
    assert set(hr[0]) == {"cbry_202611.csv"}
    rows = pd.read_csv(small_world / "hr" / "cbry_202611.csv", encoding="gb18030", dtype=str, keep_default_na=False)
    nth = rows["公民身份号码"].iloc[hr[1].astype(int).to_numpy() - 1].to_numpy()
    assert (nth == received["hr"]["公民身份号码"].to_numpy()).all()


def test_a_findings_facts_are_read_from_the_raw_files_as_their_copies_gave_them(published, tmp_path):
    """The model keeps a reference to each source's raw file, not a copy of its rows as received
    (``_summary.json`` ``received``): reconciling the period gives the same evidence, facts and all,
    as a model that kept copies (standardise before it kept references; what reconcile still reads
    where a model has them): each raw file's rows, staffing's without the tombstones, our ``_``
    columns left out, the amounts as numbers of the type the whole column gives; its records
    carrying their keys, as standardise then made them."""
    import shutil

    from include.pipeline import standardise as S
    from include.pipeline.received import received_records
    from include.pipeline.reconcile import reconcile

    std = published["runs"][2]["standardise"]["dir"]
    summary = json.load(open(f"{std}/_summary.json"))
    assert set(summary["received"]) == {"staffing", "org", "finance", "hr"}
    assert not [f for f in os.listdir(std) if f.startswith("received_")]
    reconcile(std, str(tmp_path / "refs"), as_of=D2)
    copies = tmp_path / "copies" / "std"
    shutil.copytree(std, copies)
    for source, entry in summary["received"].items():
        raw = pd.read_parquet(entry["file"])
        raw = S.active_persons(raw) if source == "staffing" else raw
        raw = raw[[c for c in raw.columns if not c.startswith("_")]].copy()
        for amount in S.AMOUNTS.get(source, ()):
            raw[amount] = S.to_number(raw[amount])
        raw.to_parquet(copies / f"received_{source}.parquet", index=False)
    records = pd.read_parquet(copies / "records.parquet")
    keys = {(source, rec_no): key for source, entry in summary["received"].items()
            for rec_no, key, _ in received_records(source, entry, records.rec_no[records.source == source])}
    records.insert(2, "record_key", pd.array([keys[k] for k in zip(records.source, records.rec_no)], dtype="string"))
    records.to_parquet(copies / "records.parquet", index=False)
    del summary["received"]
    (copies / "_summary.json").write_text(json.dumps(summary))
    reconcile(str(copies), str(tmp_path / "copies"), as_of=D2)
    refs, kept = (pd.read_parquet(tmp_path / d / "evidence.parquet") for d in ("refs", "copies"))
    assert set(refs.ev_source) >= {"staffing", "org", "finance", "hr"} and refs.facts.notna().all()
    assert refs[refs.ev_source == "finance"].facts.str.contains(r'"yfgz":-?[0-9]').all(), "pay as a number"
    pd.testing.assert_frame_equal(refs, kept)


def test_reconcile_stays_without_pandas(published, tmp_path):
    """Reconcile is DuckDB over the model and never needed pandas: reading the evidence's rows back
    from the raw files must not bring it in either (pyarrow building an array from Python or NumPy
    values imports it: 0.4 s of the task at 2M persons, once)."""
    import subprocess
    import sys

    std = published["runs"][2]["standardise"]["dir"]
    code = ("import sys; from include.pipeline.reconcile import reconcile; "
            f"s = reconcile({std!r}, {str(tmp_path)!r}, as_of={D2!r}); "
            "print(sum(s['findings'].values()), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__))).stdout.split()
    assert int(out[0]) > 0 and out[1] == "False", out
    assert len(pd.read_parquet(tmp_path / "evidence.parquet")) > 0


def test_a_raw_file_written_again_since_standardise_stops_reconcile_clearly(published, tmp_path):
    """A raw file written again after the period was standardised from it (its extract rerun alone)
    no longer holds the model's rows: reconcile stops with what to do instead of giving a finding
    another record's facts, and writes nothing."""
    import shutil

    import fsspec

    from include.pipeline.received import ReceivedChanged, fingerprint
    from include.pipeline.reconcile import reconcile

    std = tmp_path / "std"
    shutil.copytree(published["runs"][2]["standardise"]["dir"], std)
    summary = json.loads((std / "_summary.json").read_text())
    entry = summary["received"]["finance"]
    rewritten = tmp_path / "gz_ff.parquet"   # the same file, written again with one row fewer
    pd.read_parquet(entry["file"]).iloc[:-1].to_parquet(rewritten, index=False)
    summary["received"]["finance"] = {**entry, "file": str(rewritten)}
    (std / "_summary.json").write_text(json.dumps(summary))
    with pytest.raises(ReceivedChanged, match="written again since the period was standardised.*standardise the period again"):
        reconcile(str(std), str(tmp_path / "out"), as_of=D2)
    assert not (tmp_path / "out" / "evidence.parquet").exists() and not (tmp_path / "out" / "roster.parquet").exists()
    rewritten.unlink()   # and one that is gone
    with pytest.raises(ReceivedChanged, match="is gone: extract and standardise the period again"):
        reconcile(str(std), str(tmp_path / "out"), as_of=D2)
    assert fingerprint(fsspec.filesystem("file"), entry["file"]) == entry["fingerprint"]


def test_only_a_record_whose_id_is_invalid_keeps_its_id_as_written(published):
    """records.parquet: the ID as written, trimmed and its birth date are what linking an invalid ID
    reads; a record with a valid ID has them null (its person is its cleaned ID)."""
    std = published["runs"][2]["standardise"]["dir"]
    records = pd.read_parquet(f"{std}/records.parquet", columns=["source", "raw_id", "raw_trim", "id_clean", "id_valid", "birth8"])
    valid, written = records[records.id_valid], records[~records.id_valid & records.raw_id.notna()]
    assert len(valid) and len(written) and valid[["raw_id", "raw_trim", "birth8"]].isna().all().all()
    assert (written.raw_trim == written.raw_id.str.strip()).all()
    assert written.birth8.notna().any()   # an invalid ID's stated birth date, where it states one
    assert (written.birth8.dropna() == written.id_clean[written.birth8.notna()].str[6:14]).all()


def test_every_finding_s_numbers_follow_its_code_schema(published):
    """details as documented numbers: the schema of each code in the catalogue, amounts to the fen."""
    from include.findings import check_details

    found = table(published["url"], "SELECT code, details FROM reconciliation_finding")
    assert len(found) > 50 and found.code.nunique() == 23
    problems = [p for code, d in zip(found.code, found.details) for p in check_details(code, json.loads(d))]
    assert problems == []


def test_every_finding_has_its_evidence_and_every_key_names_a_real_record(published, small_world):
    """OUTPUTS.md "Evidence": written with the findings, keyed in each source's own system."""
    from include.pipeline.received import received_records

    url = published["url"]
    for run, period in ((published["runs"][0], "2026-10"), (published["runs"][2], "2026-11")):
        found = table(url, "SELECT alert_key, code FROM reconciliation_finding WHERE period = :p", p=period)
        ev = table(url, "SELECT * FROM alert_evidence WHERE period = :p", p=period)
        assert set(found.alert_key) == set(ev.alert_key), "a finding without evidence"
        assert ev.facts.notna().all()
        std = run["standardise"]["dir"]
        records = pd.read_parquet(f"{std}/records.parquet", columns=["source", "rec_no"])   # each one's key, from its row as received
        received = json.load(open(f"{std}/_summary.json"))["received"]
        keys = {(s, key) for s, entry in received.items() for _, key, _ in received_records(s, entry, records.rec_no[records.source == s])}
        units = pd.read_parquet(f"{std}/units.parquet")
        quotas = pd.read_parquet(f"{std}/quotas.parquet")
        posts = pd.read_parquet(f"{std}/leader_posts.parquet")
        real = (keys | {("staffing", "units|" + u) for u in units.unit_code}
                | {("staffing", f"quotas|{u}|{t}") for u, t in zip(quotas.unit_code, quotas.quota_type)}
                | {("staffing", f"leader_posts|{u}|{lv}") for u, lv in zip(posts.unit_code, posts.level)})
        assert set(zip(ev.source, ev.record_key)) <= real
        # a payroll row's facts are the row as finance wrote it, its amount a number
        row = ev[ev.source == "finance"].iloc[0]
        facts = json.loads(row.facts)
        assert row.record_key == f"gz_ff|{facts['ffyf']}|{facts['dwbm']}|{facts['sfzh'].strip()}"
        assert isinstance(facts["yfgz"], float)


def expected_changes(before: pd.DataFrame, after: pd.DataFrame) -> dict:
    """id -> (change, fields), recomputed from two periods' roster rows one person at a time."""
    cols = ["unit_code", "personnel_class", "quota_type", "budget_unit_codes", "gross_pay"]
    before, after = before.set_index("id_number"), after.set_index("id_number")
    expected = {}
    for pid in set(after.index) - set(before.index):
        expected[pid] = ("added", None)
    for pid in set(before.index) - set(after.index):
        expected[pid] = ("removed", None)
    for pid in set(before.index) & set(after.index):
        diff = {}
        for c in cols:
            x, y = before.at[pid, c], after.at[pid, c]
            if c == "gross_pay":
                x, y = (None if pd.isna(x) else round(float(x), 2)), (None if pd.isna(y) else round(float(y), 2))
            else:
                x, y = (None if pd.isna(x) else x), (None if pd.isna(y) else y)
            if x != y:
                diff[c] = {"before": x, "after": y}
        if diff:
            expected[pid] = ("changed", diff)
    return expected


def assert_changes(got: pd.DataFrame, expected: dict, previous_period: str) -> None:
    assert len(got) == len(expected) and len(expected) > 0
    assert got.id_number.is_unique
    assert set(got.previous_period) == {previous_period}
    for r in got.itertuples():
        kind, diff = expected[r.id_number]
        assert r.change == kind, r.id_number
        assert (json.loads(r.fields) if isinstance(r.fields, str) else None) == diff, r.id_number


def test_roster_change_is_the_difference_of_the_two_rosters(published):
    """OUTPUTS.md "Changes between periods", recomputed here from the two periods' roster rows."""
    url = published["url"]
    before = table(url, "SELECT * FROM roster WHERE period = :p", p=P1)
    after = table(url, "SELECT * FROM roster WHERE period = :p", p=P2)
    expected = expected_changes(before, after)
    assert {k for k, _ in expected.values()} == {"added", "removed", "changed"}
    got = table(url, "SELECT * FROM roster_change WHERE period = :p", p=P2)
    assert_changes(got, expected, P1)
    # the first period, published twice: nothing to compare with, no rows
    assert table(url, "SELECT count(*) AS n FROM roster_change WHERE period = :p", p=P1).n[0] == 0
    assert published["runs"][1]["publish"]["changes"] == {}
    second = published["runs"][2]["publish"]
    assert second["changes"] == got.change.value_counts().to_dict()
    assert second["exports"]["changes_csv"].endswith(f"roster_changes_{P2}.csv")
    assert second["exports"]["csv"].endswith(f"roster_{P2}.csv")
    exported = pd.read_csv(second["exports"]["changes_csv"], encoding="utf-8-sig", dtype=str)
    assert list(exported.columns) == ["period", "previous_period", "id_number", "change", "fields"]
    assert sorted(exported.id_number) == sorted(got.id_number)


def test_a_republished_period_replaces_its_changes(published, tmp_path):
    """Republishing P2 from a changed roster: its roster_change rows are recomputed, never added to."""
    import shutil

    from include.pipeline.publish import publish

    url, run = published["url"], published["runs"][2]
    work = tmp_path / "work"
    shutil.copytree(run["reconcile"]["dir"], work)
    roster = pd.read_parquet(work / "roster.parquet")
    on_both = roster.id_number.isin(set(table(url, "SELECT id_number FROM roster WHERE period = :p", p=P1).id_number))
    quiet = roster[on_both & roster.alert_codes.fillna("").eq("") & roster.gross_pay.notna()]
    dropped, repaid = quiet.id_number.iloc[0], quiet.id_number.iloc[1]
    roster = roster[roster.id_number != dropped].copy()
    roster.loc[roster.id_number == repaid, "gross_pay"] += 123.45
    roster.to_parquet(work / "roster.parquet", index=False)
    try:
        summary = publish(str(work), url, P2, D2)
        before = table(url, "SELECT * FROM roster WHERE period = :p", p=P1)
        after = table(url, "SELECT * FROM roster WHERE period = :p", p=P2)
        assert dropped not in set(after.id_number)
        got = table(url, "SELECT * FROM roster_change WHERE period = :p", p=P2)
        assert_changes(got, expected_changes(before, after), P1)
        by_id = got.set_index("id_number")
        assert by_id.at[dropped, "change"] == "removed"
        assert json.loads(by_id.at[repaid, "fields"])["gross_pay"]["after"] == round(
            float(after.set_index("id_number").at[repaid, "gross_pay"]), 2)
        assert summary["changes"] == got.change.value_counts().to_dict()
    finally:   # put the period back as the pipeline published it
        publish(run["reconcile"]["dir"], url, P2, D2)
    restored = table(url, "SELECT * FROM roster_change WHERE period = :p", p=P2)
    assert_changes(restored, expected_changes(table(url, "SELECT * FROM roster WHERE period = :p", p=P1),
                                              table(url, "SELECT * FROM roster WHERE period = :p", p=P2)), P1)
    assert dropped not in set(restored.id_number)


def test_the_workbook_opens_ready_for_finance(published):
    """What finance sees on opening roster_<period>.xlsx: types, styles, labels, summary, changes."""
    import datetime as dt

    from openpyxl import load_workbook

    from include import dictionary as D

    url = published["url"]
    exports = published["runs"][2]["publish"]["exports"]
    roster = table(url, "SELECT * FROM roster WHERE period = :p", p=P2).set_index("id_number")
    wb = load_workbook(exports["xlsx"])
    assert wb.sheetnames == ["花名册", "汇总", "本期变动", "数据字典"]
    ws = wb["花名册"]
    header = [c.value for c in ws[1]]
    at = {D.HEADER[c]: i for i, c in enumerate(D.HEADER)}
    col = {h: i for i, h in enumerate(header)}
    assert header[:2] == ["身份证号", "姓名"] and set(header) == set(at)
    assert ws.freeze_panes == "C2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(row=1, column=len(header)).column_letter}{len(roster) + 1}"
    assert all(c.font.b for c in ws[1]) and ws.print_title_rows == "$1:$1"
    assert ws.column_dimensions["A"].width >= 18, "an ID fits its column"
    checked = 0
    for row in ws.iter_rows(min_row=2, max_row=len(roster) + 1):
        cell = {h: row[i] for h, i in col.items()}
        pid = cell["身份证号"].value
        assert isinstance(pid, str) and cell["身份证号"].number_format == "@"
        person = roster.loc[pid]
        assert cell["单位代码"].data_type == "s" and cell["单位代码"].value == person.unit_code
        born = cell["出生日期"]
        assert isinstance(born.value, dt.datetime) and born.number_format == "yyyy-mm-dd"
        assert born.value.date() == pd.Timestamp(person.birth_date).date()
        pay = cell["应发工资（元）"]
        if pd.isna(person.gross_pay):
            assert pay.value is None
        else:
            assert isinstance(pay.value, (int, float)) and pay.number_format == "#,##0.00"
            assert round(pay.value, 2) == round(float(person.gross_pay), 2)
        assert cell["人员类别"].value == D.PERSONNEL_CLASS[person.personnel_class]
        assert cell["编办实名制在册"].value == ("是" if person.in_staffing else "否")
        if isinstance(person.quota_type, str):
            assert cell["编制类型"].value == D.QUOTA_TYPE[person.quota_type]
        checked += 1
    assert checked == len(roster)
    # the summary adds up to the roster
    summary = list(wb["汇总"].iter_rows(values_only=True))
    totals = [r for r in summary if r and r[0] == "合计"]
    assert len(totals) == 2
    pay = round(float(pd.to_numeric(roster.gross_pay).sum()), 2)
    assert totals[0][1] == len(roster) and round(totals[0][3], 2) == pay
    assert totals[1][2] == len(roster) and round(totals[1][3], 2) == pay
    assert "新增" in summary[0][0] and P1 in summary[0][0]
    # the changes sheet: one row per roster_change row, in words
    changes = table(url, "SELECT * FROM roster_change WHERE period = :p", p=P2)
    sheet = list(wb["本期变动"].iter_rows(values_only=True))
    assert len(sheet) == len(changes) + 1
    kinds = pd.Series([r[2] for r in sheet[1:]]).value_counts().to_dict()
    assert kinds == {D.CHANGE[k]: v for k, v in changes.change.value_counts().items()}
    assert any(r[8] and "→" in r[8] for r in sheet[1:]), "a change says what changed"
    assert load_workbook(exports["changes_xlsx"], read_only=True).sheetnames == ["变动明细", "数据字典"]


def test_changes_between_any_two_published_periods(published, tmp_path, capsys, small_world):
    from include.pipeline import changes
    from tests.id_scan import full_ids_in, known_ids

    url = published["url"]
    rows, view = changes.between(url, P2, P1)
    stored = table(url, "SELECT * FROM roster_change WHERE period = :p", p=P2)
    assert sorted(map(tuple, rows.astype(str).to_numpy())) == sorted(map(tuple, stored.astype(str).to_numpy()))
    assert len(view) == len(rows) and set(view.id_number) == set(rows.id_number)
    back, _ = changes.between(url, P1, P2)
    swap = {"added": "removed", "removed": "added", "changed": "changed"}
    assert dict(zip(back.id_number, back.change)) == {i: swap[c] for i, c in zip(rows.id_number, rows.change)}
    for r in back[back.change == "changed"].itertuples():
        there = json.loads(rows.set_index("id_number").at[r.id_number, "fields"])
        assert json.loads(r.fields) == {c: {"before": v["after"], "after": v["before"]} for c, v in there.items()}

    assert changes.main([P2, P1, "--db", url, "--export", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{P2} against {P1}: 新增" in out
    assert not full_ids_in(out, known_ids(small_world, [P1, P2])), "the command prints masked IDs"
    for ext in ("xlsx", "csv", "parquet"):
        assert (tmp_path / f"roster_changes_{P2}_vs_{P1}.{ext}").exists()
    with pytest.raises(SystemExit) as exc:
        changes.main(["2030-01", P1, "--db", url])
    assert exc.value.code == 2 and "not published in roster_db: 2030-01" in capsys.readouterr().err
