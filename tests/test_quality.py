"""Quality gates (issue 5, first part): GX suites, severities, write-audit-publish."""

import glob
import json
import logging
import os
import re
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from include.pipeline import local
from include.quality.gates import QualityGateFailed, gx_root, load_suite, validate
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


def test_the_audit_gives_each_suite_the_columns_it_reads(run, tmp_path):
    """audit_period reads of each staged file the columns its suite and its own expectations read (the
    others as placeholders): the verdicts and failures are those the whole files give, a critical
    failure, a warning and a passing suite alike."""
    import shutil

    from include.quality.gates import audit_expectations, audit_period, expected_roster_size

    work = tmp_path / "work" / "2026-10-31" / run["result"]["period"]
    shutil.copytree(run["result"]["reconcile"]["dir"], work, ignore=shutil.ignore_patterns("quality"))
    roster = pd.read_parquet(work / "roster.parquet")
    bad = pd.concat([roster, roster.head(2)], ignore_index=True)      # two persons twice: critical
    bad.loc[3, "region_code"] = None                                  # a warning
    bad.to_parquet(work / "roster.parquet")
    with pytest.raises(QualityGateFailed) as exc:
        audit_period(str(work), str(tmp_path / "gx"))
    extra = audit_expectations(expected_roster_size(str(work)))
    for name, frame in (("roster", bad), ("findings", pd.read_parquet(work / "findings.parquet"))):
        whole = validate(frame, name, str(tmp_path / "gx-whole"), data_docs=False, extra=extra[name])
        audited = json.loads((work / "quality" / f"{name}.json").read_text())
        assert (audited["success"], audited["rows"], audited["evaluated"]) == (whole.success, whole.rows, whole.evaluated)
        assert audited["failures"] == json.loads(json.dumps(whole.failures, default=str))
    assert "expect_column_values_to_be_unique(id_number)" in str(exc.value) and "roster" in str(exc.value)
    roster_failures = json.loads((work / "quality" / "roster.json").read_text())["failures"]
    assert any(f["severity"] == "warning" and f["column"] == "region_code" for f in roster_failures)


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


def _with_a_critical_failure(monkeypatch, tmp_path, suite_name: str) -> None:
    """``suite_name`` gains a critical expectation no frame of more than one row meets: the suites
    are copied to ``tmp_path`` and the setting ``ROSTER_SYNC_EXPECTATIONS_DIR`` points there (the
    input suites run in a worker process, which reads them from there)."""
    import shutil

    from include.settings import expectations_dir

    strict = tmp_path / "expectations-strict"
    shutil.copytree(expectations_dir(), strict, dirs_exist_ok=True)
    suite = json.loads((strict / f"{suite_name}.json").read_text())
    suite["expectations"].append({"type": "expect_table_row_count_to_be_between", "kwargs": {"max_value": 1},
                                  "meta": {"severity": "critical"}})
    (strict / f"{suite_name}.json").write_text(json.dumps(suite, ensure_ascii=False))
    monkeypatch.setenv("ROSTER_SYNC_EXPECTATIONS_DIR", str(strict))


def test_a_failed_input_suite_leaves_no_standardised_model(run, monkeypatch):
    """The input suites run as the sources are taken, and decide with the batch gates; when one
    fails, nothing the run wrote stays, not even a partial file."""
    from include.pipeline.standardise import standardise

    out = run["tmp"] / "std-failed"
    with monkeypatch.context() as m:
        _with_a_critical_failure(m, run["tmp"], "standardised_records")
        with pytest.raises(QualityGateFailed, match="standardised_records.*expect_table_row_count_to_be_between") as exc:
            standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert not list(out.iterdir())
    page = re.search(r"Data Docs: file://(\S+)\)", str(exc.value)).group(1)   # the failed suite's own page, built
    assert "/validations/standardised_records/2026-10-31_" in page and os.path.exists(page)
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
    assert {"records.parquet", "units.parquet", "_summary.json"} <= set(before)
    with monkeypatch.context() as m:
        m.setattr(S, "freshness_gates", lambda *a: ["the staffing snapshot is 99 days old (limit 7)"])
        with pytest.raises(QualityGateFailed, match="99 days old"):
            S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert files() == before
    _with_a_critical_failure(monkeypatch, run["tmp"], "raw_org")
    with pytest.raises(QualityGateFailed, match="raw_org.*expect_table_row_count_to_be_between"):
        S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert files() == before


def test_a_sources_records_are_made_beside_the_next_source_and_a_failure_there_leaves_nothing(run, monkeypatch):
    """Standardise gives a source's kept rows their ID columns, and writes them, on a thread of its own
    while the main one reads the next source: staffing's records wait here for the organisation file to
    be read (made on the main thread, they would wait in vain). A part that fails on that thread fails
    the run with its error, and nothing the run wrote stays."""
    import threading

    from include.pipeline import standardise as S

    org_read = threading.Event()
    read, identify = S._read, S._identify

    def reading(path, columns=None):
        if path.endswith("/gbxx.parquet"):
            org_read.set()
        return read(path, columns)

    def identifying(part, period):
        sources = set(part["source"].astype(str))
        if sources == {"staffing"}:
            assert org_read.wait(20), "staffing's records were made before the organisation file was read"
        if sources == {"finance"} and failing:
            raise RuntimeError("finance's part could not be made")
        return identify(part, period)

    monkeypatch.setattr(S, "_read", reading)
    monkeypatch.setattr(S, "_identify", identifying)
    out = run["tmp"] / "std-beside"
    failing = True
    with pytest.raises(RuntimeError, match="finance's part could not be made"):
        S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert not list(out.iterdir())
    failing = False
    org_read.clear()
    S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(out))
    assert org_read.is_set() and (out / "records.parquet").exists()
    assert pd.read_parquet(out / "records.parquet").source.value_counts().to_dict() == {
        s: v["rows"] for s, v in json.loads((out / "_summary.json").read_text())["sources"].items()}


def test_the_input_suites_worker_sees_the_rows_standardise_saw(run, tmp_path):
    """Standardise hands the worker each raw file's rows as it has read them (:meth:`InputSuites.frame`)
    instead of the worker reading the file again: the frame the worker makes of them equals the one
    a read of the file gives the suite (:func:`read_for_suite`: the columns its expectations name, the
    others as placeholders; staffing's tombstones and the ``ys_dw`` rows its screening sets aside left
    out), and the verdicts are those of the suites given standardise's frames in this process."""
    from include.pipeline import standardise as S
    from include.quality.input_suites import InputSuites, SuiteParts, read_for_suite, read_parts_for_suite

    inputs = S.locate(run["root"], "2026-10-31", run["result"]["period"])
    persons = pd.read_parquet(f"{inputs.staffing_dir}/persons__state.parquet")
    persons.loc[persons.index[:3], "status"] = "left"        # tombstones: not used, not checked
    persons.loc[persons.index[3], "sex"] = "9"               # a warning the suite must still see
    persons.to_parquet(tmp_path / "persons.parquet")
    ys = pd.read_parquet(inputs.ys_dw_file)
    ys.loc[ys.index[0], "dwbm"] = "   "                      # screened out: no dwbm
    ys.to_parquet(tmp_path / "ys_dw.parquet")

    # (suite, the file, the rows of it the suite is given, the frame standardise holds and hands over)
    cases = [("raw_staffing_persons", tmp_path / "persons.parquet", "staffing_active",
              S.read_active_persons(str(tmp_path / "persons.parquet"))),
             ("raw_finance_budget_units", tmp_path / "ys_dw.parquet", "ys_dw_usable",
              S.usable_rows("ys_dw", S._read(str(tmp_path / "ys_dw.parquet")))[0]),
             ("raw_org", inputs.org_file, None, S._read(inputs.org_file)),
             ("raw_finance_payroll", inputs.gz_ff_file, None, S._read(inputs.gz_ff_file)),
             ("raw_hr_persons", inputs.hr_persons_file, None, S._read(inputs.hr_persons_file))]
    suites = InputSuites(str(tmp_path / "gx-worker"), str(tmp_path / "q-worker"), "worker")
    for suite, path, rows, used in cases:
        parts = SuiteParts.of(suite, used)
        try:
            handed = read_parts_for_suite(parts.finish(), suite, parts.names)
        finally:
            parts.remove()
        pd.testing.assert_frame_equal(handed, read_for_suite(str(path), suite, rows))
        suites.frame(suite, used)
    quality = suites.verdict()
    for suite, path, rows, used in cases:   # the same verdicts as the suites given standardise's frames here
        here = validate(used, suite, str(tmp_path / "gx-here"), data_docs=False)
        assert quality[suite]["summary"] == here.summary() and here.rows == len(used)
    assert quality["raw_staffing_persons"]["warnings"] == 1 and "(sex)" in quality["raw_staffing_persons"]["summary"]
    assert len(cases[0][3]) <= len(persons) - 3 and len(cases[1][3]) == len(ys) - 1


def test_the_records_suite_is_given_the_parts_as_the_file_has_them(run, tmp_path, monkeypatch):
    """Standardise hands the records' suite each part as it writes it (:class:`SuiteParts`) instead of
    the worker reading the finished file back: the frame the worker makes of the parts equals the
    one a read of the file gives (values, dtypes, the source as a category, placeholders), the suite's
    verdict is the same, no rows at all still give the suite its columns, a part after the suite was
    sent is refused, and a run leaves no scratch part behind."""
    import tempfile

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from include.pipeline import standardise as S
    from include.quality.input_suites import SuiteParts, read_for_suite, read_parts_for_suite

    path = f"{run['result']['standardise']['dir']}/records.parquet"
    table = pq.read_table(path, schema=S._records_schema())
    from_file = read_for_suite(path, "standardised_records")
    parts = SuiteParts("standardised_records", S._records_schema())
    try:
        for source in ("staffing", "org", "finance", "hr"):   # the writer's parts: a source each
            parts.add(table.filter(pc.equal(table["source"], source)))
        from_parts = read_parts_for_suite(parts.finish(), "standardised_records", parts.names)
        with pytest.raises(RuntimeError, match="after the suite was sent"):
            parts.add(table)
    finally:
        parts.remove()
    assert not os.path.exists(parts.dir) and len(parts.paths) == 4
    pd.testing.assert_frame_equal(from_parts, from_file)
    assert isinstance(from_parts.source.dtype, pd.CategoricalDtype) and len(from_parts) == table.num_rows
    assert (validate(from_parts, "standardised_records", str(tmp_path / "gx"), data_docs=False).summary()
            == validate(from_file, "standardised_records", str(tmp_path / "gx"), data_docs=False).summary())
    empty = SuiteParts("standardised_records", S._records_schema())
    try:
        none = read_parts_for_suite(empty.finish(), "standardised_records", empty.names)
    finally:
        empty.remove()
    assert len(none) == 0 and list(none.columns) == list(from_file.columns)

    scratch = tmp_path / "scratch"   # a whole standardise: its scratch directory goes with it
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(tmp_path / "std"))
    assert not list(scratch.iterdir())


def test_a_suite_that_reads_no_values_still_counts_the_rows(tmp_path):
    """A deployment's suite may name its columns only to say they exist (its value checks dropped,
    say, through ``ROSTER_SYNC_EXPECTATIONS_DIR``): the worker's frame still has every row, so
    the row count is the data's (a table of no columns written as a part came back with none)."""
    from include.quality.gates import validate
    from include.quality.input_suites import InputSuites, SuiteParts, read_parts_for_suite

    exp = tmp_path / "expectations"
    exp.mkdir()
    (exp / "raw_org.json").write_text(json.dumps({"name": "raw_org", "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "sfzh"}, "meta": {"severity": "critical"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 3}, "meta": {"severity": "critical"}}]}))
    frame = pd.DataFrame({"sfzh": ["a", "b", "c"], "xm": ["x", "y", "z"]})
    parts = SuiteParts.of("raw_org", frame, str(exp))
    try:
        given = read_parts_for_suite(parts.finish(), "raw_org", parts.names, str(exp))
    finally:
        parts.remove()
    assert len(given) == 3 and list(given.columns) == ["sfzh"]
    assert validate(given, "raw_org", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp).success
    suites = InputSuites(str(tmp_path / "gx"), str(tmp_path / "q"), "no-values")   # and through the worker
    suites.expectations = str(exp)
    suites.frame("raw_org", frame)
    assert suites.verdict()["raw_org"]["success"]


def test_a_worker_gone_mid_run_fails_the_run_clearly(run, tmp_path):
    """A worker killed mid-run (out of memory, say) fails the run with a clear error instead of
    waiting forever; the next run starts another."""
    from include.pipeline import standardise as S
    from include.quality.input_suites import InputSuites

    inputs = S.locate(run["root"], "2026-10-31", run["result"]["period"])
    suites = InputSuites(str(tmp_path / "gx"), str(tmp_path / "q"), "killed")
    suites.file("raw_org", inputs.org_file)
    suites.worker.kill()
    suites.worker.wait()
    with pytest.raises(RuntimeError, match="worker stopped"):
        suites.verdict()
    again = InputSuites(str(tmp_path / "gx"), str(tmp_path / "q"), "again")
    again.file("raw_org", inputs.org_file)
    assert again.verdict()["raw_org"]["success"]


def test_the_worker_keeps_what_its_imports_made_out_of_its_collections(monkeypatch):
    """The worker collects garbage after each suite (each frame let go before the next is read); what
    its imports made (Great Expectations) lives as long as it does and is frozen out of those
    collections, which went over all of it after every suite."""
    import gc
    import io

    from include.quality import input_suites

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))   # no job: the worker starts, imports and ends
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    quality_log = logging.getLogger("roster_sync.quality")   # (the worker quietens it: set back after)
    level = quality_log.level
    gc.unfreeze()
    try:
        input_suites.serve()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        quality_log.setLevel(level)


def test_a_suite_the_worker_cannot_run_fails_the_run_naming_it_with_ids_masked(tmp_path):
    """An error inside the worker comes back as the run's error, naming the suite; an ID-shaped
    number in it (here in a file's name) is masked in the error and in the worker's log."""
    from include.quality.input_suites import InputSuites

    suites = InputSuites(str(tmp_path / "gx"), str(tmp_path / "q"), "broken")
    suites.file("raw_org", str(tmp_path / "gbxx-110101199003071234.parquet"))
    with pytest.raises(RuntimeError, match="input suite raw_org could not run: FileNotFoundError") as exc:
        suites.verdict()
    assert "110101199003071234" not in str(exc.value) and "110101********1234" in str(exc.value)


def test_the_data_docs_index_lists_the_newest_validations(monkeypatch, tmp_path):
    """ROSTER_SYNC_DATA_DOCS_INDEX_LIMIT: the index lists that many validations, the newest (building it
    reads back every one it lists); an older validation keeps its page; 0 lists every one; a value
    that is not a whole number is refused, naming the variable."""
    from include.settings import SettingError, data_docs_index_limit

    frame = pd.DataFrame({"unit_code": ["A1", "A2"], "status": ["active", "active"]})
    suite = {"name": "listed", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "unit_code"},
                                                 "meta": {"severity": "critical"}}]}
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "listed.json").write_text(json.dumps(suite))

    def runs_listed(root, limit):
        monkeypatch.setenv("ROSTER_SYNC_DATA_DOCS_INDEX_LIMIT", limit)
        for n in (1, 2, 3):
            gate = validate(frame, "listed", str(tmp_path / root), expectations_dir=tmp_path / "suites", run_name=f"night-{n}")
        index = gate.docs[len("file://"):]
        text = open(index, encoding="utf-8").read()
        pages = glob.glob(os.path.join(os.path.dirname(index), "validations", "listed", "night-*", "*", "*.html"))
        return [n for n in (1, 2, 3) if f"listed/night-{n}/" in text], len(pages)

    assert runs_listed("gx-2", "2") == ([2, 3], 3)
    assert runs_listed("gx-all", "0") == ([1, 2, 3], 3)
    monkeypatch.delenv("ROSTER_SYNC_DATA_DOCS_INDEX_LIMIT")
    assert data_docs_index_limit() == 250
    monkeypatch.setenv("ROSTER_SYNC_DATA_DOCS_INDEX_LIMIT", "a month")
    with pytest.raises(SettingError, match="ROSTER_SYNC_DATA_DOCS_INDEX_LIMIT"):
        data_docs_index_limit()


def test_the_suites_directory_is_a_setting(monkeypatch, tmp_path):
    """ROSTER_SYNC_EXPECTATIONS_DIR: the suites read from there; a directory that is not there is refused, naming it."""
    from include.settings import SettingError, expectations_dir

    assert (expectations_dir() / "roster.json").exists()
    (tmp_path / "roster.json").write_text(json.dumps({"name": "roster", "expectations": []}))
    monkeypatch.setenv("ROSTER_SYNC_EXPECTATIONS_DIR", str(tmp_path))
    assert load_suite("roster")["expectations"] == []
    monkeypatch.setenv("ROSTER_SYNC_EXPECTATIONS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingError, match="ROSTER_SYNC_EXPECTATIONS_DIR"):
        load_suite("roster")


def test_gx_modules_deferred_to_first_use_still_work(tmp_path):
    """:func:`include.quality.gates.import_gx` leaves SciPy's statistics and Altair unloaded (a
    fresh process: this one has GX already), and an expectation that needs them still runs:
    the KL divergence, met on a column of its own partition and failed on another."""
    import subprocess
    import sys

    (tmp_path / "kl.json").write_text(json.dumps({"name": "kl", "expectations": [
        {"type": "expect_column_kl_divergence_to_be_less_than", "meta": {"severity": "critical"},
         "kwargs": {"column": "x", "threshold": 0.1,
                    "partition_object": {"values": ["a", "b"], "weights": [0.5, 0.5]}}}]}))
    script = f"""
import json, sys
import pandas as pd
from include.quality.gates import DEFERRED_MODULES, import_gx, validate
import_gx()
before = {{m: type(sys.modules[m]).__name__ for m in DEFERRED_MODULES}}
met = validate(pd.DataFrame({{"x": ["a", "b"] * 50}}), "kl", {str(tmp_path / "gx")!r}, expectations_dir={str(tmp_path)!r},
               data_docs=True)
failed = validate(pd.DataFrame({{"x": ["a"] * 95 + ["b"] * 5}}), "kl", {str(tmp_path / "gx")!r},
                  expectations_dir={str(tmp_path)!r}, data_docs=True)
after = {{m: type(sys.modules[m]).__name__ for m in DEFERRED_MODULES}}
print(json.dumps({{"before": before, "after": after, "met": met.success, "met_failures": met.failures, "failed": failed.success, "docs": bool(failed.docs)}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"] == {"scipy.stats": "_LoadedOnFirstUse", "altair": "_LoadedOnFirstUse"}
    assert seen["after"]["scipy.stats"] == "module"   # loaded by the KL divergence's computation
    assert seen["met"] is True and seen["failed"] is False and seen["docs"], seen


def _suite_files(run) -> dict:
    """Each suite of ``expectations/`` and the file of the quality run it checks."""
    import glob as globbing

    lake, ds = run["root"], "2026-10-31"
    work = run["result"]["reconcile"]["dir"]
    files = {"raw_staffing_persons": f"{lake}/raw/staffing/{ds}/persons__state.parquet",
             "raw_org": f"{lake}/raw/org/{ds}/gbxx.parquet",
             "raw_finance_budget_units": f"{lake}/raw/finance/{ds}/ys_dw.parquet",
             "raw_finance_payroll": sorted(globbing.glob(f"{lake}/raw/finance/{ds}/gz_ff_*.parquet"))[-1],
             "raw_hr_persons": sorted(globbing.glob(f"{lake}/raw/hr/{ds}/cbry_*.parquet"))[-1],
             "standardised_records": f"{work}/std/records.parquet",
             "roster": f"{work}/roster.parquet", "findings": f"{work}/findings.parquet"}
    assert sorted(files) == sorted(os.path.basename(f)[:-5] for f in globbing.glob("expectations/*.json"))
    return files


def _stored_results(root) -> dict:
    """Every validation's stored results in the GX store under ``root``: run name -> [(type, kwargs,
    success, result, raised)], in the order GX stored them."""
    import glob as globbing

    stored = {}
    for path in globbing.glob(str(root / "**" / "validations" / "**" / "*.json"), recursive=True):
        result = json.loads(open(path).read())
        stored[result["meta"]["run_id"]["run_name"]] = (
            result["success"], result["statistics"],
            [(r["expectation_config"]["type"], json.dumps(r["expectation_config"]["kwargs"], sort_keys=True), r["success"],
              r["result"], r["exception_info"]["raised_exception"]) for r in result["results"]])
    return stored


def _faulted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with rows twice (every uniqueness broken) and a null and a stray value in each column."""
    frame = pd.concat([frame, frame.head(3)], ignore_index=True)
    for i, column in enumerate(frame.columns):
        if frame[column].dtype.kind in "Ob" or str(frame[column].dtype) in ("str", "string", "category"):
            frame[column] = frame[column].astype("string")
            frame.loc[1 + i % 5, column], frame.loc[2 + i % 7, column] = None, "坏值"
        elif frame[column].dtype.kind in "if":
            frame[column] = frame[column].astype("float64")
            frame.loc[1 + i % 5, column], frame.loc[2 + i % 7, column] = None, -1e12
    return frame


def test_the_stored_results_are_those_a_summary_stores(run, tmp_path, monkeypatch):
    """RESULT_FORMAT (BASIC, no partial lists) stores, for every suite and every expectation, what a
    SUMMARY with no partial lists stored: on frames with a fault in every column a suite reads."""
    import glob as globbing

    import include.quality.gates as gates
    from include.quality.input_suites import read_for_suite

    files = _suite_files(run)
    stored = {}
    for fmt in ({"result_format": "SUMMARY", "partial_unexpected_count": 0}, gates.RESULT_FORMAT):
        monkeypatch.setattr(gates, "RESULT_FORMAT", fmt)
        for suite, path in files.items():
            frame = _faulted(read_for_suite(path, suite))
            validate(frame, suite, str(tmp_path / "gx"), data_docs=False, run_name=f"{suite}-{fmt['result_format']}")
    for path in globbing.glob(str(tmp_path / "gx" / "**" / "validations" / "**" / "*.json"), recursive=True):
        result = json.loads(open(path).read())
        stored[result["meta"]["run_id"]["run_name"]] = [(r["expectation_config"]["type"], r["success"], r["result"])
                                                       for r in result["results"]]
    assert len(stored) == 2 * len(files)
    failing = 0
    for suite in files:
        assert stored[f"{suite}-BASIC"] == stored[f"{suite}-SUMMARY"], suite
        failing += sum(not ok for _, ok, _ in stored[f"{suite}-BASIC"])
    assert failing >= 20, "the frames' faults fail expectations in every suite"


def test_every_suites_metrics_computed_as_aggregates_give_the_frames_results(run, tmp_path, monkeypatch):
    """A suite given an Arrow table has its metrics computed as aggregates (:mod:`include.quality.aggregates`)
    and stores, expectation for expectation, the results a validation of the same rows as a pandas
    frame stores (success, counts, percentages, the suite's statistics): for every suite of
    ``expectations/``, on its data as it is and with a fault in every column it reads. The input suites
    (the raw files', the records') are computed so, none validated as a frame."""
    import pyarrow as pa

    from include.quality import aggregates
    from include.quality.gates import RESULT_FORMAT
    from include.quality.input_suites import read_for_suite

    files = _suite_files(run)
    computed = []
    real_value = aggregates.TableMetrics.value
    monkeypatch.setattr(aggregates.TableMetrics, "value", lambda self, *a: computed.append(a[0]) or real_value(self, *a))
    failing, by_aggregates = 0, set()
    for suite, path in files.items():
        as_read = read_for_suite(path, suite)
        for name, frame in (("as-read", as_read), ("faulted", _faulted(as_read))):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if aggregates.unsupported(load_suite(suite)["expectations"], table.schema, RESULT_FORMAT) is None:
                by_aggregates.add(suite)
            validate(frame, suite, str(tmp_path / "gx"), data_docs=False, run_name=f"{suite}-{name}-frame")
            before = len(computed)
            validate(table, suite, str(tmp_path / "gx"), data_docs=False, run_name=f"{suite}-{name}-table")
            assert (len(computed) > before) == (suite in by_aggregates), suite
    stored = _stored_results(tmp_path / "gx")
    assert len(stored) == 4 * len(files)
    for suite in files:
        for name in ("as-read", "faulted"):
            frame, table = stored[f"{suite}-{name}-frame"], stored[f"{suite}-{name}-table"]
            assert frame[0] == table[0] and frame[1] == table[1], (suite, name)
            assert sorted(frame[2]) == sorted(table[2]), (suite, name)
            assert not any(raised for *_, raised in table[2]), (suite, name)
        failing += sum(not ok for _, _, ok, _, _ in stored[f"{suite}-faulted-table"][2])
    assert failing >= 20, "the frames' faults fail expectations in every suite"
    assert {s for s in files if s.startswith("raw_") or s == "standardised_records"} <= by_aggregates


def test_aggregates_give_gxs_results_on_edge_cases(tmp_path, monkeypatch):
    """The metrics computed as aggregates, against GX's over a frame, on values made to tell them apart:
    nulls and NaN, blanks, full-width digits and newlines under regular expressions (``\\d``, ``$``: pandas
    then matches with Python's ``re``), a value set, ``mostly``, keys twice in and out of order, a
    dictionary whose parts have dictionaries of their own, every row missing, no rows at all."""
    import numpy as np
    import pyarrow as pa

    from include.quality import aggregates

    rng = np.random.default_rng(17)
    n = 400
    text = rng.choice(np.array(["110101199001011234", "11010119900101123X", " 110101199001011234", "１１０１０１",
                                "123456\n", "123456", "abc\n123456", "", "x", "y", "坏值"], dtype=object), n)
    text[rng.random(n) < 0.1] = None
    nan = rng.integers(0, 30, n).astype(float)
    nan[rng.random(n) < 0.1] = np.nan   # NaN in Arrow (not null): missing to pandas all the same
    frame = pd.DataFrame({
        "t": pd.array(text, dtype="string"),
        "k": pd.array(rng.choice(["a", "b", "c", None], n), dtype="string"),
        "i": rng.integers(0, 50, n),
        "seq": np.arange(n),
        "f": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 30, n).astype(float)),
        "b": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype="boolean"),
        "none": pd.array([None] * n, dtype="string"),
        # in order (the proof without grouping): strictly, nulls among them; and with a value twice in a row
        "asc": pd.array([None if i % 9 == 4 else f"R{i:05d}" for i in range(n)], dtype="string"),
        "ties": pd.array([f"R{40 if i == 41 else i:05d}" for i in range(n)], dtype="string"),
        "gap": pd.array([None if i == 41 else f"R{40 if i == 42 else i:05d}" for i in range(n)], dtype="string"),   # across a null
    })
    e = lambda t, **kw: {"type": t, "kwargs": kw, "meta": {"severity": "critical"}}   # noqa: E731
    expectations = [
        e("expect_column_to_exist", column="t"), e("expect_column_to_exist", column="nowhere"),
        e("expect_table_row_count_to_be_between", min_value=1, max_value=n - 1), e("expect_table_row_count_to_equal", value=n),
        *[e("expect_column_values_to_not_be_null", column=c, mostly=m) for c in frame.columns for m in (1.0, 0.8)],
        *[e("expect_column_values_to_be_in_set", column=c, value_set=vs, mostly=m)
          for c, vs in (("t", ["x", "y", ""]), ("k", ["a", "b"]), ("none", ["a"])) for m in (1.0, 0.5)],
        *[e("expect_column_values_to_match_regex", column="t", regex=r, mostly=m)
          for r in (r"^\d{6}$", r"^[0-9]{6}$", r"^[0-9]{17}[0-9X]$", r"123456$", r"^\s*\d", "x|y") for m in (1.0, 0.3)],
        e("expect_column_values_to_match_regex", column="none", regex="a"),
        *[e("expect_column_values_to_be_unique", column=c) for c in ("t", "k", "i", "seq", "f", "b", "none", "asc", "ties", "gap")],
        *[e("expect_column_values_to_be_between", column=c, **b) for c in ("i", "f")
          for b in ({"min_value": 10}, {"max_value": 20, "mostly": 0.5}, {"min_value": 10, "max_value": 20},
                    {"min_value": 10, "max_value": 20, "strict_min": True, "strict_max": True}, {"min_value": 0.5})],
        *[e("expect_column_distinct_values_to_be_in_set", column=c, value_set=vs)
          for c, vs in (("t", ["x", "y", ""]), ("k", ["a", "b", "c"]), ("none", ["a"]))],
        *[e("expect_compound_columns_to_be_unique", column_list=cl)
          for cl in (["k", "i"], ["k", "seq"], ["t", "k"], ["i", "seq"], ["f", "b"], ["none", "k"])],
    ]
    table = pa.Table.from_pandas(frame, preserve_index=False).append_column("nan", pa.array(nan, from_pandas=False))
    assert table.column("nan").null_count == 0 and np.isnan(nan).any()
    expectations += [e("expect_column_values_to_not_be_null", column="nan"), e("expect_column_values_to_be_unique", column="nan"),
                     e("expect_compound_columns_to_be_unique", column_list=["nan", "k"]),
                     e("expect_column_values_to_be_between", column="nan", min_value=3, max_value=25)]
    # k as a dictionary in two parts, each with its own dictionary (as the worker's parts are)
    halves = [pa.table({"k": table.column("k").slice(a, n // 2).combine_chunks().dictionary_encode()}) for a in (0, n // 2)]
    k = pa.chunked_array([h.column("k").chunks[0] for h in halves])
    exp = tmp_path / "expectations"
    exp.mkdir()
    (exp / "edges.json").write_text(json.dumps({"name": "edges", "expectations": expectations}))
    table = table.set_column(table.schema.get_field_index("k"), "k", k)
    # each case's frame: the table as pandas has it (what GX is given when it validates the table as a frame)
    cases = {name: (t.to_pandas(), t) for name, t in (("whole", table), ("no-rows", table.slice(0, 0)),
                                                       ("one-row", table.slice(0, 1)))}
    assert aggregates.unsupported(expectations[:1] + expectations[2:], table.schema, {"result_format": "BASIC",
                                                                                    "partial_unexpected_count": 0}) is None
    for name, (as_frame, as_table) in cases.items():
        validate(as_frame, "edges", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp, run_name=f"{name}-frame")
        validate(as_table, "edges", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp, run_name=f"{name}-table")
    stored = _stored_results(tmp_path / "gx")
    for name in cases:
        frame_results, table_results = stored[f"{name}-frame"], stored[f"{name}-table"]
        assert frame_results[:2] == table_results[:2], name
        assert sorted(map(repr, frame_results[2])) == sorted(map(repr, table_results[2])), name
    whole = {(t, kw): (ok, r) for t, kw, ok, r, _ in stored["whole-table"][2]}
    assert sum(not ok for ok, _ in whole.values()) >= 20   # most of them fail: the cases are not all trivially met
    # the keys' proof by order: (k, seq) increase only within k's runs here, so they are grouped; in order, proved
    metrics = aggregates.TableMetrics(pa.table({"s": pa.array(["a"] * 3 + ["b"] * 2).dictionary_encode(),
                                                "n": [0, 1, 2, 0, 1]}), ["s", "n"])
    assert metrics._increasing(["s", "n"]) and not metrics._increasing(["n", "s"])
    twice = aggregates.TableMetrics(pa.table({"s": pa.array(["a", "a", "b"]).dictionary_encode(), "n": [0, 0, 1]}), ["s", "n"])
    assert not twice._increasing(["s", "n"])
    assert twice.value("compound_columns.unique.unexpected_count", {"column_list": ["s", "n"]}, {}) == 2
    # a column's values in order, proved unique; grouped when two are equal, or out of order
    whole_table = aggregates.TableMetrics(table, list(table.column_names))
    assert whole_table._ascending("asc") and whole_table._ascending("seq")
    assert not any(whole_table._ascending(c) for c in ("ties", "gap", "t", "i", "k"))
    assert whole_table.value("column_values.unique.unexpected_count", {"column": "ties"}, {}) == 2
    # ("a", 5) in two parts whose dictionaries number "a" 0 and 1: in order only if the numbers are the parts' own
    parts = pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), pa.array(["a", "b"])),
                              pa.DictionaryArray.from_arrays(pa.array([1], pa.int32()), pa.array(["x", "a"]))])
    again = aggregates.TableMetrics(pa.table({"s": parts, "n": [5, 5]}), ["s", "n"])
    assert again.value("compound_columns.unique.unexpected_count", {"column_list": ["s", "n"]}, {}) == 2


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_a_columns_values_matched_a_slice_a_thread_are_counted_as_pandas_counts(threads, monkeypatch):
    """The values of a column are matched a slice per thread: every value counted once, wherever the
    misses fall (at the slices' edges, across chunks, with nulls set aside first), as pandas counts."""
    import itertools
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pyarrow as pa

    from include.quality import aggregates

    pool = ThreadPoolExecutor(threads)
    monkeypatch.setattr(aggregates, "_threads", lambda: (threads, pool))
    regex = "^[0-9]{17}[0-9X]$"
    rng = np.random.default_rng(5)
    for n, chunks, edge in itertools.product((1, 5, 13, 64, 301), (1, 3), ("bad", "110101199001011234")):
        values = rng.choice(np.array(["110101199001011234", "11010119900101123X", "1101011990010112", "x", None],
                                     dtype=object), n, p=[0.5, 0.2, 0.1, 0.1, 0.1])
        values[[0, -1, n // 2]] = edge   # (a miss, or a match, first, last and in the middle: one lost either way counts)
        cuts = sorted(rng.choice(np.arange(1, n), min(chunks - 1, n - 1), replace=False)) if n > 1 else []
        column = pa.chunked_array([pa.array(part, pa.large_string()) for part in np.split(values, cuts)])
        expected = int((~pd.Series(values, dtype="string").dropna().astype(str).str.contains(regex)).sum())
        assert aggregates._regex_misses(column, regex) == expected, (n, chunks, edge)
    pool.shutdown()


def test_values_outside_a_set_and_rows_considered_are_counted_without_a_scan_as_a_query_counts_them():
    """A dictionary column's values outside a set, found from each part's dictionary, and a compound key's
    rows considered, known from null counts: as DuckDB's queries over the same table count them (a null
    index, a null in a dictionary, parts with dictionaries of their own, string and large string)."""
    import pyarrow as pa

    from include.quality import aggregates

    def dictionary(indices, values, kind=pa.string()):
        return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(values, kind))

    parts = [dictionary([0, 1, None, 2, 1], ["a", "z", None]), dictionary([1, 1, 0], ["b", "a"]),
             dictionary([0, 0], ["y"], pa.large_string()).cast(pa.dictionary(pa.int32(), pa.string())),
             dictionary([], ["a"])]
    table = pa.table({"s": pa.chunked_array(parts), "n": pa.array(range(10), pa.int64()),
                      "gaps": pa.array([None, 1, None, 3, 4, 5, None, 7, 8, 9], pa.int64()),
                      "f": pa.array([0.5] * 10)})
    metrics = aggregates.TableMetrics(table, table.column_names)
    for value_set in (["a", "b"], ["a", "b", "y", "z"], [], ["q"]):
        queried = metrics._one('SELECT count(*) FROM batch WHERE "s" IS NOT NULL AND NOT list_contains($1, "s"::VARCHAR)',
                               [value_set])
        assert aggregates._outside_by_dictionary(table.column("s"), value_set) == queried, value_set
    assert aggregates._outside_by_dictionary(table.column("s"), ["a", "b"]) == 4   # z and y, twice each
    for columns in (["s", "n"], ["s", "gaps"], ["gaps"], ["f", "gaps"], ["n"]):
        considered = " AND ".join(metrics._missing(c) for c in columns)
        queried = metrics._one(f"SELECT count(*) FROM batch WHERE NOT ({considered})")
        assert metrics.value("compound_columns.unique.filtered_row_count", {"column_list": columns}, {}) == queried, columns
    assert metrics._known_missing("s") is None and metrics._known_missing("n") == 0 and metrics._known_missing("f") is None


def test_a_table_whose_metrics_gx_resolved_elsewhere_fails_loudly(tmp_path, monkeypatch):
    """Should GX stop taking the metrics from the table (its metric calculator no longer the one
    :mod:`include.quality.aggregates` intercepts), it would resolve them over the empty frame it is
    given, where every expectation on values passes: the validation fails instead of passing."""
    import pyarrow as pa
    from great_expectations.validator.metrics_calculator import MetricsCalculator

    from include.quality import aggregates

    exp = tmp_path / "expectations"
    exp.mkdir()
    (exp / "nulls.json").write_text(json.dumps({"name": "nulls", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"severity": "critical"}}]}))
    table = pa.table({"a": ["x", None]})
    assert not validate(table, "nulls", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp).success
    aggregates._install()
    monkeypatch.setattr(MetricsCalculator, "resolve_validation_graph", aggregates._original)
    with pytest.raises(RuntimeError, match="took none of the suite's metrics"):
        validate(table, "nulls", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp)


def test_a_suite_validated_as_a_frame_says_so_and_why(tmp_path, caplog):
    """A suite with an expectation not computed as aggregates (a deployment's own) is validated over a
    pandas frame, with the results a frame gives, and its log line says so and names what made it."""
    import pyarrow as pa

    exp = tmp_path / "expectations"
    exp.mkdir()
    (exp / "mine.json").write_text(json.dumps({"name": "mine", "expectations": [
        {"type": "expect_column_value_lengths_to_equal", "kwargs": {"column": "a", "value": 1}, "meta": {"severity": "critical"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"severity": "critical"}}]}))
    table = pa.table({"a": ["x", "yy", None]})
    with caplog.at_level(logging.INFO, logger="roster_sync.quality"):
        gate = validate(table, "mine", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp)
    assert gate.as_frame == "expect_column_value_lengths_to_equal is not computed here"
    assert "validated as a pandas frame, slower on large tables: expect_column_value_lengths_to_equal" in caplog.text
    frame = validate(table.to_pandas(), "mine", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp)
    assert (gate.success, gate.failures) == (frame.success, frame.failures) and len(gate.failures) == 2
    (exp / "nulls.json").write_text(json.dumps({"name": "nulls", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"severity": "critical"}}]}))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="roster_sync.quality"):   # as aggregates: nothing to say
        assert validate(table, "nulls", str(tmp_path / "gx"), data_docs=False, expectations_dir=exp).as_frame is None
    assert "pandas frame" not in caplog.text


def test_the_input_suites_worker_runs_below_the_task(tmp_path):
    """The suites' worker lowers its own scheduling priority by NICENESS: standardise's threads,
    the stage's critical path, come first, and the worker takes the CPU they leave."""
    from include.quality.input_suites import NICENESS, InputSuites

    InputSuites.stop()   # a worker of this process's own, started here
    suites = InputSuites(str(tmp_path / "gx"), str(tmp_path / "q"), "nice")
    suites.verdict()     # (answered once it serves: its priority is set by then)
    lowest = 19   # (a niceness goes no further)
    assert os.getpriority(os.PRIO_PROCESS, suites.worker.pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + NICENESS, lowest)
    assert NICENESS > 0


def test_a_worker_started_early_is_the_one_the_suites_use(tmp_path):
    """The DAG's standardise task starts the suites' worker before it imports standardise's modules
    (its Great Expectations import under way meanwhile); the suites then run in that worker."""
    from include.quality.input_suites import InputSuites

    InputSuites.stop()
    InputSuites.start()
    started = InputSuites._worker
    assert started is not None and started.poll() is None
    InputSuites.start()   # (once: a second call keeps it)
    suites = InputSuites(str(tmp_path / "gx"), str(tmp_path / "q"), "early")
    assert suites.worker is started
    suites.verdict()
    dag = open(os.path.join(os.path.dirname(__file__), "..", "dags", "roster_sync.py")).read()
    task = dag[dag.index("def standardise(period: str)"):]
    assert task.index("InputSuites.start()") < task.index("from include.pipeline.standardise import")


def test_the_audit_builds_its_data_docs_once_for_both_suites(run, tmp_path, monkeypatch):
    """The audit validates the roster and the findings, then builds the Data Docs once: both suites'
    pages are there, each summary file and result names the site, and GX's build ran once (each build
    reads back every validation the index lists, whatever it adds)."""
    import shutil

    from include.quality import gates

    work = tmp_path / "work" / "2026-10-31" / run["result"]["period"]
    shutil.copytree(run["result"]["reconcile"]["dir"], work, ignore=shutil.ignore_patterns("quality"))
    builds = []
    ctx = gates._context(str(tmp_path / "gx"))
    real_build = type(ctx).build_data_docs
    monkeypatch.setattr(type(ctx), "build_data_docs", lambda self, *a, **k: builds.append(k) or real_build(self, *a, **k))
    audit = gates.audit_period(str(work), str(tmp_path / "gx"))
    assert len(builds) == 1 and len(builds[0]["resource_identifiers"]) == 2
    site = audit["roster"]["docs"][len("file://"):].rsplit("/", 1)[0]
    for suite in ("roster", "findings"):
        assert audit[suite]["docs"] == audit["roster"]["docs"]
        assert json.loads((work / "quality" / f"{suite}.json").read_text())["data_docs"] == audit["roster"]["docs"]
        assert glob.glob(f"{site}/validations/{suite}/2026-10-31_{run['result']['period']}/*/*.html") == \
            [audit[suite]["page"][len("file://"):]], "each suite's line links to its own page"


def _units_in_suite(tmp_path, monkeypatch) -> tuple[str, list]:
    """A one-expectation suite ``units_in`` (status must be active) under ``tmp_path/suites``, a GX
    root, and the keyword arguments of each Data Docs build made there (``build_data_docs`` spied)."""
    from include.quality import gates

    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "units_in.json").write_text(json.dumps({"name": "units_in", "expectations": [
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "status", "value_set": ["active"]},
         "meta": {"severity": "critical"}}]}))
    gx = str(tmp_path / "gx")
    builds = []
    ctx = gates._context(gx)
    real_build = type(ctx).build_data_docs
    monkeypatch.setattr(type(ctx), "build_data_docs", lambda self, *a, **k: builds.append(k) or real_build(self, *a, **k))
    return gx, builds


def test_the_input_suites_verdict_builds_the_index_only_when_the_run_stops_there_or_there_is_none(tmp_path, monkeypatch):
    """A passing verdict builds its suites' pages, not the index (the night's audit rebuilds that, listing
    them: it reads the store); a failing one builds the index too, as does the first one of a site."""
    from include.quality import gates

    gx, builds = _units_in_suite(tmp_path, monkeypatch)

    def night(run_name, status):
        gate = validate(pd.DataFrame({"status": [status]}), "units_in", gx, expectations_dir=tmp_path / "suites",
                        out_dir=str(tmp_path / run_name), run_name=run_name, data_docs=False)
        return gates.inputs_verdict({"units_in": gate}, gx)

    first = night("2026-09-30_2026-09", "active")          # no site yet: its index too
    index = first["units_in"]["docs"][len("file://"):]
    site = index.rsplit("/", 1)[0]
    assert builds[-1]["build_index"] is True and "2026-09-30_2026-09" in open(index).read()
    second = night("2026-10-31_2026-10", "active")         # passing: the pages only
    assert builds[-1]["build_index"] is False
    page = second["units_in"]["page"]
    assert glob.glob(f"{site}/validations/units_in/2026-10-31_2026-10/*/*.html") == [page[len("file://"):]], \
        "its page is built, and the log line links to it"
    assert "2026-10-31_2026-10" not in open(index).read(), "the index waits for the night's audit"
    summary = json.loads((tmp_path / "2026-10-31_2026-10" / "units_in.json").read_text())
    assert (summary["data_docs"], summary["data_docs_page"]) == (first["units_in"]["docs"], page)
    with pytest.raises(QualityGateFailed, match=r"Data Docs: file://\S+/validations/units_in/2026-11-30_2026-11/\S+\.html\)"):
        night("2026-11-30_2026-11", "revoked")             # failing: the run stops here, the index is built now
    assert builds[-1]["build_index"] is True
    listed = open(index).read()
    assert "2026-11-30_2026-11" in listed and "2026-10-31_2026-10" in listed, "the index reads every result of the store"


def test_a_page_already_built_is_not_built_again(tmp_path, monkeypatch):
    """A result whose page was built (pages only, made to work offline at once) has no page built again
    by the verdict: nothing at all when it passes, the index (with one page: none named is a full
    build) when the run stops there or the site has none."""
    from include.quality import datadocs, gates

    gx, builds = _units_in_suite(tmp_path, monkeypatch)

    def night(run_name, status):
        gate = validate(pd.DataFrame({"status": [status]}), "units_in", gx, expectations_dir=tmp_path / "suites",
                        out_dir=str(tmp_path / run_name), run_name=run_name, data_docs=False)
        gates.build_docs({"units_in": gate}, gx, index=False)   # its page now
        page = gate.page[len("file://"):]
        assert builds[-1]["build_index"] is False and len(builds[-1]["resource_identifiers"]) == 1
        assert open(page).read().startswith(datadocs._DONE), "served offline as soon as it is built"
        before = len(builds)
        return gates.inputs_verdict({"units_in": gate}, gx), builds[before:], page

    verdict, more, page = night("2026-09-30_2026-09", "active")   # no site index yet: the index, with its one page
    assert [(b["build_index"], len(b["resource_identifiers"])) for b in more] == [(True, 1)]
    assert verdict["units_in"]["page"] == f"file://{page}"
    verdict, more, page = night("2026-10-31_2026-10", "active")   # passing: nothing built again
    assert more == [] and verdict["units_in"]["page"] == f"file://{page}"
    summary = json.loads((tmp_path / "2026-10-31_2026-10" / "units_in.json").read_text())
    assert summary["data_docs_page"] == f"file://{page}" and summary["data_docs"] == verdict["units_in"]["docs"]
    with pytest.raises(QualityGateFailed):
        night("2026-11-30_2026-11", "revoked")                    # failing: the index now
    assert builds[-1]["build_index"] is True and len(builds[-1]["resource_identifiers"]) == 1
    index = open(verdict["units_in"]["docs"][len("file://"):]).read()
    assert "2026-11-30_2026-11" in index and index.startswith(datadocs._DONE)


def test_a_page_is_built_without_listing_every_result_ever_kept(tmp_path, monkeypatch):
    """Building a few validations' pages reads only those from the store: GX's own build lists every
    key the store holds (and parses each one's run time) to skip all the others, a cost that grows
    night by night. The pages are built as GX builds them; a full build (no page named) still lists all."""
    from include.quality import gates

    gx, _ = _units_in_suite(tmp_path, monkeypatch)
    gates_ = [validate(pd.DataFrame({"status": ["active"]}), "units_in", gx, expectations_dir=tmp_path / "suites",
                       run_name=f"2026-{m:02d}-28_2026-{m:02d}", data_docs=False) for m in range(1, 5)]
    backend = type(gates._context(gx).validation_results_store._store_backend)
    listed = []
    real_list = backend.list_keys
    monkeypatch.setattr(backend, "list_keys", lambda self, *a, **k: listed.append(1) or real_list(self, *a, **k))
    gates.build_docs({"units_in": gates_[-1]}, gx, index=False)
    assert listed == [] and os.path.isfile(gates_[-1].page[len("file://"):])
    site = gates_[-1].page[len("file://"):].split("/validations/")[0]
    assert glob.glob(f"{site}/validations/units_in/*/*/*.html") == [gates_[-1].page[len("file://"):]], "that page only"
    gates._context(gx).build_data_docs()   # (GX's own full build: every result listed, every page built)
    assert listed and len(glob.glob(f"{site}/validations/units_in/*/*/*.html")) == 4


def test_the_collections_between_sources_leave_out_what_the_imports_made(run, tmp_path, monkeypatch):
    """Standardise collects garbage between its sources (release_unused); what the task's imports made
    lives as long as the process, is left out of those passes while it runs, and is back in them after."""
    import gc

    from include import memory
    from include.pipeline import standardise as S

    frozen_at = []
    release = S.release_unused

    def releasing():
        frozen_at.append(gc.get_freeze_count())
        release()

    monkeypatch.setattr(S, "release_unused", releasing)
    gc.unfreeze()
    S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(tmp_path / "std"))
    assert len(frozen_at) >= 4 and min(frozen_at) > 0, frozen_at
    assert gc.get_freeze_count() == 0
    # nested, the outermost unfreezes; an object made within, in a cycle, is still collected within
    with memory.made_before_not_collected():
        with memory.made_before_not_collected():
            cycle = []
            cycle.append(cycle)
            held = gc.get_freeze_count()
        assert gc.get_freeze_count() == held > 0
        del cycle
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0


def test_a_validation_stores_its_suite_and_definition_once_and_keeps_them_current(tmp_path, monkeypatch):
    """The checkpoint stored adds or updates its validation definition and suite (GX's factories): each
    is written once per validation, and a suite whose expectations change is stored as it now is."""
    from great_expectations.core.factory.suite_factory import SuiteFactory
    from great_expectations.core.factory.validation_definition_factory import ValidationDefinitionFactory

    from include.quality.gates import _context

    stored = {"suite": 0, "definition": 0}
    suite_update, definition_update = SuiteFactory.add_or_update, ValidationDefinitionFactory.add_or_update

    def storing_suite(self, suite):
        stored["suite"] += 1
        return suite_update(self, suite)

    def storing_definition(self, validation):
        stored["definition"] += 1
        return definition_update(self, validation)

    monkeypatch.setattr(SuiteFactory, "add_or_update", storing_suite)
    monkeypatch.setattr(ValidationDefinitionFactory, "add_or_update", storing_definition)
    root = str(tmp_path / "gx")
    frame = pd.DataFrame({"dwbm": ["a", "b"], "dwmc": ["x", "y"], "tyshxydm": [None, None], "qhdm": ["1", "2"]})
    extra = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "dwmc"}, "meta": {"severity": "warning"}}]
    for expectations in (None, extra, None):
        stored.update(suite=0, definition=0)
        gate = validate(frame, "raw_finance_budget_units", root, data_docs=False, extra=expectations)
        assert stored == {"suite": 1, "definition": 1}
        kept = _context(root).suites.get("raw_finance_budget_units")
        assert len(kept.expectations) == gate.evaluated == len(load_suite("raw_finance_budget_units")["expectations"]) + len(expectations or [])


def test_a_records_number_is_written_as_differences_and_read_back_as_it_was(run):
    """records.parquet's ``rec_no`` (a record's row as received) counts up in each source: stored as the
    differences of neighbours (no dictionary), read back the same by pandas and by DuckDB (reconcile)."""
    import duckdb
    import pyarrow.parquet as pq

    path = f"{run['result']['standardise']['dir']}/records.parquet"
    meta = pq.ParquetFile(path).metadata
    chunks = [meta.row_group(g).column(meta.schema.names.index("rec_no")) for g in range(meta.num_row_groups)]
    assert chunks and all("DELTA_BINARY_PACKED" in c.encodings and not c.has_dictionary_page for c in chunks)
    assert all(c.statistics.has_min_max for c in chunks)   # (what a reader filtering on it skips by)
    records = pd.read_parquet(path, columns=["source", "rec_no"])
    for _, numbers in records.groupby("source").rec_no:
        assert numbers.min() >= 0 and numbers.is_monotonic_increasing and numbers.is_unique
    read = duckdb.sql(f"SELECT source, rec_no FROM read_parquet('{path}')").df()
    assert read.rec_no.tolist() == records.rec_no.tolist() and read.source.tolist() == records.source.astype(str).tolist()


def test_a_validation_reads_no_config_variables_file(tmp_path, monkeypatch):
    """GX reads its config variables file again at every read of a setting (282 times in standardise's
    input suites at 1M persons). The project sets none: its context is made without the file, a project
    made before (with GX's default) is saved without it, and settings still take environment variables."""
    import great_expectations as gx
    from great_expectations.core.config_provider import _ConfigurationVariablesConfigurationProvider

    from include.quality import gates

    root = tmp_path / "gx"
    made = gx.get_context(mode="file", project_root_dir=str(root))   # as a project GX made before
    assert made.variables.config_variables_file_path
    reads = []
    values = _ConfigurationVariablesConfigurationProvider.get_values
    monkeypatch.setattr(_ConfigurationVariablesConfigurationProvider, "get_values",
                        lambda self: reads.append(1) or values(self))
    ctx = gates._context(str(root))
    assert not ctx.variables.config_variables_file_path
    assert not gx.get_context(mode="file", project_root_dir=str(root)).variables.config_variables_file_path
    reads.clear()
    frame = pd.DataFrame({"dwbm": ["a"], "dwmc": ["x"], "tyshxydm": [None], "qhdm": ["110000"]})
    assert gates.validate(frame, "raw_finance_budget_units", str(root), data_docs=True).page
    assert reads == []
    monkeypatch.setenv("ROSTER_SYNC_TEST_SETTING", "from the environment")
    assert ctx.config_provider.substitute_config("${ROSTER_SYNC_TEST_SETTING}") == "from the environment"


def test_a_sources_records_made_in_slices_side_by_side_are_those_made_whole(run, tmp_path, monkeypatch):
    """A source's records get their ID columns a slice per core, on threads side by side, each slice
    written in order: the records file, its rows' accounting and the records' suite are those of the
    parts made whole."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    from include.pipeline import standardise as S

    identify = S._identify

    def made(out, slice_rows, count=3):
        pool = ThreadPoolExecutor(count - 1)
        monkeypatch.setattr(S, "SLICE_ROWS", slice_rows)
        monkeypatch.setattr(S, "_slicing", lambda: (count, pool))
        threads = set()

        def identifying(part, period):
            threads.add(threading.current_thread().name)
            return identify(part, period)

        monkeypatch.setattr(S, "_identify", identifying)
        summary = S.standardise(run["root"], "2026-10-31", run["result"]["period"], out_dir=str(tmp_path / out))
        pool.shutdown()
        return pq.ParquetFile(tmp_path / out / "records.parquet"), summary, threads

    whole, whole_summary, whole_threads = made("whole", 10 ** 9)
    sliced, sliced_summary, sliced_threads = made("sliced", 50)
    assert len(whole_threads) == 1 and len(sliced_threads) > 1   # (the records' thread, and the pool's too)
    assert sliced.metadata.num_row_groups > whole.metadata.num_row_groups
    assert sliced.read().equals(whole.read())
    assert sliced_summary["sources"] == whole_summary["sources"] and sliced_summary["rows"] == whole_summary["rows"]
    assert sliced_summary["quality"]["standardised_records"]["success"]
    assert sliced_summary["quality"]["standardised_records"]["summary"] == whole_summary["quality"]["standardised_records"]["summary"]


def _misses_in_child(queue):
    import pyarrow as pa

    from include.quality import aggregates

    queue.put(aggregates._regex_misses(pa.chunked_array([pa.array(["1", "x"] * 50)]), "^[0-9]$"))


def test_a_process_forked_after_its_parent_used_the_threads_makes_its_own():
    """The threads matching a column's values (and making the records' ID columns) are the process's: a
    process forked from one that used them (a run's driver, a task forked by Airflow's supervisor) gets
    none of their threads and makes its own, instead of waiting on the parent's forever."""
    import multiprocessing

    import pyarrow as pa

    from include import threads
    from include.quality import aggregates

    assert aggregates._regex_misses(pa.chunked_array([pa.array(["1", "x"] * 50)]), "^[0-9]$") == 50
    assert "regex" in threads._pools   # (made here, in the parent)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_misses_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        child.join()
    assert not queue.empty() and queue.get() == 50, "the forked process waited on its parent's threads"
