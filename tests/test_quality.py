"""Quality gates (issue 5, first part): GX suites, severities, write-audit-publish."""

import glob
import os
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from include.pipeline import local
from include.quality.gates import QualityGateFailed, audit_period, gx_root, load_suite, validate
from include.simulators.cluster import Simulators

FREE = {"staffing": 0, "org": 0, "hr": 0}


@pytest.fixture(scope="module")
def run(small_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality")
    url = f"sqlite:///{tmp / 'roster.db'}"
    with Simulators(small_world, ports=FREE, finance_url=f"sqlite:///{tmp / 'finance.db'}") as sims:
        result = local.run_local(sims.connections(), sims.finance_url, url, str(tmp / "lake"), "2026-10-31")
    return {"tmp": tmp, "url": url, "result": result, "root": str(tmp / "lake")}


def test_suites_are_json_with_a_severity_each():
    for name in ("roster", "findings"):
        suite = load_suite(name)
        assert suite["expectations"] and all(e["meta"]["severity"] in ("critical", "warning") for e in suite["expectations"])


def test_a_good_period_passes_and_data_docs_are_built(run):
    audit = run["result"]["audit"]
    assert audit["roster"]["success"] and audit["findings"]["success"]
    docs = audit["roster"]["docs"]
    assert docs.startswith("file://") and os.path.exists(docs[len("file://"):])
    assert os.path.exists(os.path.join(run["result"]["reconcile"]["dir"], "quality", "roster.json"))


def test_a_critical_failure_stops_before_publish_and_keeps_the_previous_roster(run, small_world, monkeypatch):
    before = pd.read_sql("SELECT * FROM roster ORDER BY id_number", sa.create_engine(run["url"]))
    real = local.reconcile_by_region

    def duplicating(std, **kw):    # the staged roster gets a person twice
        out = real(std, **kw)
        path = f"{out['dir']}/roster.parquet"
        df = pd.read_parquet(path)
        pd.concat([df, df.head(3)]).to_parquet(path)
        return out

    monkeypatch.setattr(local, "reconcile_by_region", duplicating)
    with Simulators(small_world, ports=FREE, finance_url=f"sqlite:///{run['tmp'] / 'f2.db'}") as sims:
        with pytest.raises(QualityGateFailed) as exc:
            # its own data root: the staged (bad) period must not replace the fixture's work directory
            local.run_local(sims.connections(), sims.finance_url, run["url"], str(run["tmp"] / "lake-bad"), "2026-10-31")
    message = str(exc.value)
    assert "not published" in message and "expect_column_values_to_be_unique(id_number)" in message
    assert "6 unexpected rows" in message and "Data Docs" in message
    assert not re.search(r"\d{17}[\dX]", message), "no ID number in the error"
    after = pd.read_sql("SELECT * FROM roster ORDER BY id_number", sa.create_engine(run["url"]))
    pd.testing.assert_frame_equal(before, after)


def test_severity_is_configuration(run):
    work = run["result"]["reconcile"]["dir"]
    df = pd.read_parquet(f"{work}/roster.parquet")
    bad = pd.concat([df, df.head(1)])
    strict = validate(bad, "roster", gx_root(run["root"]), data_docs=False)
    assert not strict.success
    lenient = validate(bad, "roster", gx_root(run["root"]), data_docs=False,
                       severity={"expect_column_values_to_be_unique:id_number": "warning"})
    assert lenient.success and lenient.failures[0]["severity"] == "warning"


def test_stored_results_and_docs_carry_no_id_number(run):
    files = glob.glob(f"{gx_root(run['root'])}/**/*.json", recursive=True) + glob.glob(f"{gx_root(run['root'])}/**/*.html", recursive=True)
    assert files
    for path in files:
        text = open(path, encoding="utf-8", errors="replace").read()
        ids = [m for m in re.findall(r"(?<![\d.])\d{17}[\dX](?![\d])", text)]
        assert not ids, path


def test_the_roster_size_must_reconcile_with_the_union_of_sources(run):
    from include.quality.gates import expected_roster_size
    work = run["result"]["reconcile"]["dir"]
    roster = pd.read_parquet(f"{work}/roster.parquet")
    assert expected_roster_size(work) == len(roster)
    short = roster.iloc[:-5]                                   # a roster that lost people on the way
    gate = validate(short, "roster", gx_root(run["root"]), data_docs=False,
                    extra=[{"type": "expect_table_row_count_to_equal", "kwargs": {"value": len(roster)},
                            "meta": {"severity": "critical"}}])
    assert not gate.success and "expect_table_row_count_to_equal(table)" in gate.summary()


def _with_a_critical_failure(monkeypatch, suite_name: str) -> None:
    """``suite_name`` gains a critical expectation no frame of more than one row meets."""
    from include.quality import gates

    real = gates.load_suite

    def strict(name, *a, **kw):
        suite = real(name, *a, **kw)
        if name == suite_name:
            suite["expectations"].append({"type": "expect_table_row_count_to_be_between", "kwargs": {"max_value": 1},
                                          "meta": {"severity": "critical"}})
        return suite

    monkeypatch.setattr(gates, "load_suite", strict)


def test_a_failed_input_suite_leaves_no_standardised_model(run, monkeypatch):
    """The input suites run as the sources are taken, and decide with the batch gates; when one
    fails, nothing the run wrote stays, not even a partial file."""
    from include.pipeline.standardise import standardise

    out = run["tmp"] / "std-failed"
    with monkeypatch.context() as m:
        _with_a_critical_failure(m, "standardised_records")
        with pytest.raises(QualityGateFailed, match="standardised_records.*expect_table_row_count_to_be_between"):
            standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert not list(out.iterdir())
    standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert (out / "records.parquet").exists() and (out / "_summary.json").exists()


def test_a_failing_rerun_keeps_the_last_complete_model(run, monkeypatch):
    """Every file of the model is written under a partial name as the sources are taken, and named as
    the model's only once the run has passed: a rerun stopped by a batch gate, or by a critical
    expectation of an input suite, leaves the last complete model as it was, and no partial file."""
    import hashlib

    from include.pipeline import standardise as S

    out = run["tmp"] / "std-rerun"
    S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))

    def files() -> dict:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}

    before = files()
    assert {"records.parquet", "received_staffing.parquet", "units.parquet", "_summary.json"} <= set(before)
    with monkeypatch.context() as m:
        m.setattr(S, "freshness_gates", lambda *a: ["the staffing snapshot is 99 days old (limit 7)"])
        with pytest.raises(QualityGateFailed, match="99 days old"):
            S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert files() == before
    _with_a_critical_failure(monkeypatch, "raw_org")
    with pytest.raises(QualityGateFailed, match="raw_org.*expect_table_row_count_to_be_between"):
        S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert files() == before
