"""An operator's worst days (issue 12): nothing wrong gets published.

Each bad month follows a clean published one, on SQLite and on PostgreSQL: a source that
breaks its contract stops the run before anything is published or mailed, with one line
naming the source and the field; values the roster database cannot store are held back
and the period publishes; the undamaged month then publishes as usual. No full ID number
reaches a log or an error.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from include.pipeline.extract.http import SourceContractError
from include.pipeline.local import run_local
from include.quality.gates import QualityGateFailed
from include.simulators.base import Faults
from include.simulators.cluster import Simulators
from tests.id_scan import full_ids_in, known_ids

FREE = {"staffing": 0, "org": 0, "hr": 0}
D1, D2 = "2026-10-31", "2026-11-30"
P1, P2 = "2026-10", "2026-11"
CHANGED = "2026-11-20T10:00:00+08:00"      # an edit the staffing office made during November
# roster_db's tables as a reader sees them; updated_at and at change on every write
TABLES = {"roster": "period, id_number", "reconciliation_alert": "alert_key", "reconciliation_finding": "period, alert_key",
          "alert_event": "alert_key, period, event", "quarantine": "period, source, rec_no, reason",
          "digest_item": "office_code, alert_key, event, event_period", "digest_log": "digest_id"}
VOLATILE = {"updated_at", "at", "sent_at", "location", "published_at", "run_id"}


def snapshot(url) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as c:
        have = set(sa.inspect(c).get_table_names())
        for name, order in TABLES.items():
            if name in have:
                df = pd.read_sql(sa.text(f"SELECT * FROM {name} ORDER BY {order}"), c)
                out[name] = df.drop(columns=[col for col in df.columns if col in VOLATILE])
        out["publish_log"] = pd.read_sql(sa.text("SELECT period, roster_rows, findings, roster_sha256 FROM publish_log "
                                                 "ORDER BY id"), c) if "publish_log" in have else None
    engine.dispose()
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if a[name] is None or b[name] is None:
            assert a[name] is None and b[name] is None, name
            continue
        pd.testing.assert_frame_equal(a[name].reset_index(drop=True), b[name].reset_index(drop=True), check_dtype=False,
                                      obj=name)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def month_one(small_world, tmp_path_factory, request):
    """A clean 2026-10 published (and digested) once per backend; each test gets its own copy."""
    made = {}

    def get(kind: str):
        if kind not in made:
            tmp = tmp_path_factory.mktemp(f"month-one-{kind}")
            url = f"sqlite:///{tmp / 'roster.db'}" if kind == "sqlite" else request.getfixturevalue("pg").create_database(
                f"base_{uuid.uuid4().hex[:8]}")
            with Simulators(small_world, period=P1, ports=FREE, finance_url=f"sqlite:///{tmp / 'finance.db'}") as sims:
                run_local(sims.connections(), sims.finance_url, url, str(tmp / "lake"), D1, full_resync_days=60)
            made[kind] = (tmp, url)
        return made[kind]
    return get


def clone(month_one, kind: str, into: Path, request) -> tuple[str, str]:
    """A private copy of the published 2026-10: (lake, roster_db url)."""
    base, url = month_one(kind)
    shutil.copytree(base / "lake", into / "lake")
    if kind == "sqlite":
        shutil.copy(base / "roster.db", into / "roster.db")
        return str(into / "lake"), f"sqlite:///{into / 'roster.db'}"
    pg = request.getfixturevalue("pg")
    name = f"case_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(pg.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{sa.make_url(url).database}"'))
    engine.dispose()
    return str(into / "lake"), pg.url(name)


@pytest.fixture()
def after_month_one(month_one, backend, tmp_path, small_world, request):
    """(world copy to damage, lake, roster_db url) with 2026-10 published."""
    lake, url = clone(month_one, backend, tmp_path, request)
    world = tmp_path / "world"
    shutil.copytree(small_world, world)
    (world / "finance.db").unlink(missing_ok=True)
    return world, lake, url


def month_two(world, lake, url, tmp_path, faults=None, damage_finance=None, fresh=False, accept=None):
    with Simulators(world, period=P2, faults=faults, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'finance.db'}") as sims:
        if damage_finance:
            con = sqlite3.connect(tmp_path / "finance.db")
            con.execute(damage_finance)
            con.commit()
            con.close()
        return run_local(sims.connections(), sims.finance_url, url, lake, D2, full_resync_days=60, fresh=fresh,
                         accept=accept)


def mails(lake, period=P2) -> list[Path]:
    return sorted(Path(lake, "outbox", "digests", period).glob("*.eml"))


def drop_hr_column(world, name, column):
    from tests.test_bad_input import rewrite_hr

    def without(raw: bytes) -> bytes:
        df = pd.read_csv(pd.io.common.BytesIO(raw), encoding="gb18030", dtype=str, keep_default_na=False)
        return df.drop(columns=[column]).to_csv(index=False).encode("gb18030")
    rewrite_hr(world, name, without)


# One case per source: a field of SOURCES.md missing from every item, row or file; and the
# sources' other broken days. Each names what broke.
BROKEN = {
    "staffing-field": (dict(faults=Faults(drop_field="persons.unit_code", drop_rate=1.0)), QualityGateFailed,
                       r"staffing: [\d,]+ of [\d,]+ persons items received lack unit_code \(100%, limit 5%"),
    "org-field": (dict(faults=Faults(drop_field="gbxx.dwdm", drop_rate=1.0)), QualityGateFailed,
                  r"org: [\d,]+ of [\d,]+ rows quarantined \(100%, limit 5%\): missing field\(s\): dwdm"),
    "finance-column": (dict(damage_finance="ALTER TABLE gz_ff DROP COLUMN jfly"), SourceContractError,
                       r"'finance_db': table gz_ff lacks column\(s\) jfly"),
    "hr-column": (dict(hr_column=("cbry_202611.csv", "缴费基数")), QualityGateFailed, r"lacks column\(s\) 缴费基数"),
    "staffing-30%": (dict(faults=Faults(drop_field="persons.unit_code", drop_rate=0.3, seed=5)), QualityGateFailed,
                     r"staffing: [\d,]+ of [\d,]+ persons items received lack unit_code \((1[5-9]|[2-4]\d)%, limit 5%"),
    "html-200": (dict(faults=Faults(html=1.0)), SourceContractError, r"answered 200 with text/html, not the JSON"),
}


# The broken days and the flood stop before publish writes a row, through the same
# SQLAlchemy statements on either database: SQLite only, to keep CI inside its budget.
# PostgreSQL's own behaviour (its types and limits, its locks, a backfill's writes) has the
# tests below that run on both.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_broken_source_stops_before_anything_is_published_or_mailed(backend, after_month_one, tmp_path, small_world, caplog):
    """Every case of BROKEN, one after the other on the same roster_db: each stops with its
    line and leaves everything as it was; the mended month then publishes."""
    world, lake, url = after_month_one
    before = snapshot(url)
    caplog.set_level(logging.INFO)
    known = known_ids(small_world, [P1, P2])
    for case, (how, error, message) in BROKEN.items():
        how = dict(how)
        hr_column = how.pop("hr_column", None)
        if hr_column:
            drop_hr_column(world, *hr_column)
        with pytest.raises(error, match=message) as exc:
            month_two(world, lake, url, tmp_path, fresh=True, **how)
        assert "\n" not in str(exc.value).strip(), f"{case}: one line"
        assert_same(before, snapshot(url))                 # the last published period untouched, nothing of 2026-11
        assert mails(lake) == [], case                      # no office told anything
        assert not list(Path(lake, "published").glob(".staging-*")), case
        text = "\n".join(r.getMessage() for r in caplog.records) + str(exc.value)
        assert full_ids_in(text, known) == [], case
        if hr_column:                                       # mend the HR export for the cases after it
            for rel in [Path("hr") / hr_column[0], Path("hr") / "index.json",
                        *(p.relative_to(small_world) for p in (small_world / "periods").glob("*/hr_index.json"))]:
                shutil.copy(small_world / rel, world / rel)
    # The sources are mended: the same month, extracted afresh, publishes.
    result = month_two(world, lake, url, tmp_path, fresh=True)
    assert result["period"] == P2 and result["publish"]["roster_rows"] > 0
    assert set(snapshot(url)["roster"].period) == {P1, P2}


def test_values_no_database_stores_are_held_back_and_the_period_publishes(after_month_one, tmp_path, caplog):
    world, lake, url = after_month_one
    base = world / "periods" / P2
    persons = pd.read_parquet(base / "staffing" / "persons.parquet")
    active = persons.index[persons.status == "active"]
    persons.loc[active[0], "name"] = "张\x00三"                       # a NUL: PostgreSQL refuses it in text
    persons.loc[active[1], "position"] = "科员" * 1_000               # longer than roster.position
    persons.loc[active[:2], "updated_at"] = CHANGED                   # so that the incremental sync receives them
    persons.to_parquet(base / "staffing" / "persons.parquet")
    units = pd.read_parquet(base / "staffing" / "units.parquet")
    long_unit = units.unit_code.iloc[-1]
    units.loc[units.index[-1], "name"] = "某" * 3_500                  # a 3,500-character unit name
    units.loc[units.index[-1], "updated_at"] = CHANGED
    units.to_parquet(base / "staffing" / "units.parquet")
    pay = pd.read_parquet(base / "finance" / "gz_ff.parquet")
    row = pay.index[pay.ffyf == "202611"][0]
    pay.loc[row, "xm"] = "=HYPERLINK(\"http://x\",\"李四\")"          # a formula, for the CSV
    pay.to_parquet(base / "finance" / "gz_ff.parquet")
    caplog.set_level(logging.INFO)
    result = month_two(world, lake, url, tmp_path)
    q = pd.read_parquet(f"{result['standardise']['dir']}/quarantine_rows.parquet")
    reasons = set(q.reason)
    assert "name contains a control character" in reasons
    assert "position longer than 100 characters" in reasons
    assert "units item: name longer than 200 characters" in reasons
    assert long_unit in q[q.part == "units"].record.iloc[0]
    published = snapshot(url)
    assert set(published["roster"].period) == {P1, P2}
    assert (published["quarantine"].period == P2).sum() == result["publish"]["quarantined"] >= 3
    csv = Path(result["publish"]["exports"]["csv"]).read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(" in csv and "\n=HYPERLINK" not in csv and ",=HYPERLINK" not in csv
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not full_ids_in(text, set())


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_value_the_database_refuses_names_the_table_never_the_row(backend, after_month_one, small_world):
    """Past standardise (a staged roster written by hand): PostgreSQL refuses the value, and the
    error names table and database error, never the row's parameters."""
    from include.pipeline.publish import PublishError, publish

    world, lake, url = after_month_one
    work = Path(lake, "work", D1, P1)
    roster = pd.read_parquet(work / "roster.parquet")
    roster.loc[roster.index[0], "unit_name"] = "某" * 300
    roster.to_parquet(work / "roster.parquet")
    before = snapshot(url)
    with pytest.raises(PublishError, match=r"^roster_db refused 2026-10 in table roster: StringDataRightTruncation: "
                                           r"value too long .*nothing of the period was published$") as exc:
        publish(str(work), url, P1, D1, export_root=lake)
    text = str(exc.value)
    assert "parameters" not in text and full_ids_in(text, known_ids(small_world, [P1])) == []
    assert_same(before, snapshot(url))
    assert not list(Path(lake, "published").glob(".staging-*"))


def test_permanent_errors_fail_at_once_naming_the_connection(small_world, tmp_path):
    """HTML with 200 and a table-less finance database are not retried: one request, one line."""
    from include.pipeline.extract.finance import extract_finance
    from include.pipeline.extract.staffing import extract_staffing
    from include.pipeline.local import source_conns
    from include.pipeline.period import NoPayrollError, resolve_period

    with Simulators(small_world, faults=Faults(html=1.0), ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        with pytest.raises(SourceContractError, match=r"^staffing_api: the token endpoint answered 200 with text/html"):
            extract_staffing(source_conns(sims.connections())["staffing"], str(tmp_path / "lake"), D1)
        assert sims.counters()["staffing"]["requests"] == 1
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(SourceContractError, match=r"'finance_db': the finance database has no table ys_dw"):
        extract_finance("finance_db", f"sqlite:///{empty}", str(tmp_path / "lake"), D1)
    with pytest.raises(NoPayrollError, match=r"^finance_db: no payroll month on or before 2026-08"):
        resolve_period(None, pd.Timestamp("2026-08-31").date(), months=["202610"])
    locked = tmp_path / "locked.db"
    con = sqlite3.connect(locked)
    con.execute("CREATE TABLE ys_dw (dwbm, tyshxydm, dwmc, qhdm)")
    con.execute("CREATE TABLE gz_ff (ffyf, dwbm, sfzh, xm, rylb, yfgz, jfly)")
    con.commit()
    con.execute("BEGIN EXCLUSIVE")                                   # another process writing
    from include.pipeline.extract.http import SourceError
    with pytest.raises(SourceError, match=r"'finance_db': the finance database is locked") as exc:
        extract_finance("finance_db", f"sqlite:///{locked}?timeout=0.2", str(tmp_path / "lake2"), D1)
    assert not isinstance(exc.value, SourceContractError)            # locked: the task retries
    con.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_flood_of_findings_stops_at_the_publish_gate_until_accepted(backend, after_month_one, tmp_path):
    world, lake, url = after_month_one
    path = world / "periods" / P2 / "staffing" / "persons.parquet"
    persons = pd.read_parquet(path)
    est = persons.index[(persons.status == "active") & (persons.personnel_class == "establishment")]
    flood = est[: len(persons) // 3]                                 # a third of the persons lose their slip
    persons.loc[flood, "slip_no"] = None
    persons.loc[flood, "updated_at"] = CHANGED
    persons.to_parquet(path)
    before = snapshot(url)
    from include.quality.publish_gate import PublishGateFailed
    with pytest.raises(PublishGateFailed, match=r"publish gate stopped 2026-11 against 2026-10: .*alerts would open.*"
                                                r"MISSING_SLIP \d+ -> \d+") as exc:
        month_two(world, lake, url, tmp_path)
    assert "\n" not in str(exc.value) and "accept_publish_gate" in str(exc.value)
    assert_same(before, snapshot(url))
    assert mails(lake) == []
    from include.pipeline.publish import publish
    staged = str(Path(lake, "work", D2, P2))
    with pytest.raises(PublishGateFailed):                            # an acceptance without a reason is none
        publish(staged, url, P2, D2, export_root=lake, accept={"by": "王工"})
    assert_same(before, snapshot(url))
    result = month_two(world, lake, url, tmp_path, accept={"by": "王工", "reason": "checked with the 编办: slips re-keyed"})
    assert result["publish"]["gate"]["accepted"]["by"] == "王工"
    engine = sa.create_engine(url)
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT period, accepted_by, reason, summary FROM publish_acceptance")).all()
    engine.dispose()
    assert len(rows) == 1 and rows[0][:3] == (P2, "王工", "checked with the 编办: slips re-keyed")
    assert "MISSING_SLIP" in rows[0][3]
    assert len(mails(lake)) >= 1


def test_a_backfill_publishes_what_its_date_saw_and_opens_nothing(after_month_one, tmp_path, small_world):
    world, lake, url = after_month_one
    gate = month_two(world, lake, url, tmp_path)["publish"]["gate"]
    assert gate["against"] == P1 and gate["jumps"] == [] and gate["accepted"] is None   # a normal month passes
    after_two = snapshot(url)
    told = len(mails(lake, P1)) + len(mails(lake, P2))
    # Rerun 2026-10-31 while the offices serve November: its own raw layer is reused.
    with Simulators(world, period=P2, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f3.db'}") as sims:
        again = run_local(sims.connections(), sims.finance_url, url, lake, D1, full_resync_days=60)
    assert again["period"] == P1
    now = snapshot(url)
    for name in ("roster", "reconciliation_finding", "alert_event", "digest_item"):
        pd.testing.assert_frame_equal(after_two[name], now[name], check_dtype=False, obj=name)
    pd.testing.assert_frame_equal(after_two["reconciliation_alert"], now["reconciliation_alert"], check_dtype=False)
    # Forced to read today's sources, 2026-10 changes, but no alert opens that 2026-11 does not hold, and no mail.
    with Simulators(world, period=P2, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f4.db'}") as sims:
        fresh = run_local(sims.connections(), sims.finance_url, url, lake, D1, full_resync_days=60, fresh=True,
                          period=P1, accept={"by": "test", "reason": "a backfill on today's sources"})
    assert fresh["publish"]["events"] == {}
    later = snapshot(url)
    alerts = later["reconciliation_alert"]
    opened_now = alerts[(alerts.status == "open") & ~alerts.alert_key.isin(
        after_two["reconciliation_alert"].alert_key[after_two["reconciliation_alert"].status == "open"])]
    assert opened_now.empty
    assert (alerts[~alerts.alert_key.isin(after_two["reconciliation_alert"].alert_key)].status == "resolved").all()
    pd.testing.assert_frame_equal(after_two["alert_event"], later["alert_event"], check_dtype=False)
    assert len(mails(lake, P1)) + len(mails(lake, P2)) == told
    r2 = later["roster"]
    pd.testing.assert_frame_equal(after_two["roster"][after_two["roster"].period == P2].reset_index(drop=True),
                                  r2[r2.period == P2].reset_index(drop=True), check_dtype=False)


def test_the_sandbox_secrets_file_is_readable_by_its_owner_only(tmp_path):
    import os
    import stat

    from include.simulators.cli import _state_path, _write_state

    os.umask(0o022)
    _write_state(str(tmp_path), {"connections": {"staffing_api": {"password": "staffing-secret"}}})
    mode = stat.S_IMODE(_state_path(str(tmp_path)).stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert "staffing-secret" in _state_path(str(tmp_path)).read_text()


# --- kill -9 and concurrency --------------------------------------------------------------------

def drive(world, lake, url, stage, period=P2, ds=D2) -> int:
    """Run the pipeline in a forked child that kills itself (SIGKILL) at ``stage``; its exit code.
    A fork starts with this process's imports, so a run costs what the pipeline costs."""
    import multiprocessing

    from tests import kill_driver

    child = multiprocessing.get_context("fork").Process(
        target=kill_driver.run, args=(str(world), period, lake, url, ds, stage))
    child.start()
    child.join(600)
    return child.exitcode


def published_state(url, lake) -> dict:
    snap = snapshot(url)
    log = snap.pop("publish_log")
    snap["published"] = log.drop_duplicates(["period", "roster_sha256"]).drop(columns="findings").reset_index(drop=True)
    snap["mails"] = pd.DataFrame({"mail": sorted(p.name for p in Path(lake, "outbox", "digests").rglob("*.eml"))})
    exports = sorted(Path(lake, "published").rglob("roster_*.parquet"))
    snap["exports"] = pd.concat([pd.read_parquet(p).assign(file=p.name) for p in exports], ignore_index=True)
    return snap


@pytest.fixture(scope="module")
def references(month_one, small_world, tmp_path_factory, request):
    """2026-11 run to the end once per backend: the state every interrupted run must come back to."""
    made = {}

    def get(kind):
        if kind not in made:
            into = tmp_path_factory.mktemp(f"reference-{kind}")
            lake, url = clone(month_one, kind, into, request)
            assert drive(small_world, lake, url, "none") == 0
            made[kind] = published_state(url, lake)
        return made[kind]
    return get


@pytest.fixture()
def uninterrupted(references, backend):
    return references(backend)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_run_killed_at_each_stage_then_rerun_publishes_exactly_once(backend, after_month_one, uninterrupted):
    """kill -9 in extract, then in reconcile on the rerun, then in publish, then in the digests;
    the last rerun ends with exactly what one uninterrupted run publishes and mails."""
    world, lake, url = after_month_one
    for stage in ("extract", "reconcile", "publish", "digests"):
        assert drive(world, lake, url, stage) == -9, stage
        if stage == "publish":
            assert list(Path(lake, "published").glob(".staging-*")), "the kill left a staging directory behind"
    assert drive(world, lake, url, "none") == 0
    assert not list(Path(lake, "published").glob(".staging-*"))
    assert_same(uninterrupted, published_state(url, lake))


@pytest.mark.parametrize("backend", ["postgres"])
def test_two_publishes_at_once_on_postgres_never_interleave(backend, after_month_one, tmp_path, uninterrupted, pg):
    """The 2026-11 publish and a backfill of 2026-10 started together, three times over, and two
    digest runs at once: the same tables as one publish after the other, no doubled alert,
    event or digest."""
    import threading

    from include.alerts.digest import send_digests
    from include.alerts.mail import FileOutbox
    from include.alerts.routing import load as routes
    from include.pipeline.local import extract_all
    from include.pipeline.publish import publish
    from include.pipeline.reconcile import reconcile_by_region
    from include.pipeline.standardise import standardise

    world, lake, url = after_month_one
    with Simulators(world, period=P2, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'finance.db'}") as sims:
        extract_all(sims.connections(), sims.finance_url, lake, D2, full_resync_days=60)
    nov = reconcile_by_region(standardise(lake, D2, P2, validate_inputs=False)["dir"], as_of=D2)["dir"]
    oct_ = str(Path(lake, "work", D1, P1))
    errors = []
    for _ in range(3):
        start = threading.Barrier(2)

        def go(work, period, ds):
            try:
                start.wait()
                publish(work, url, period, ds, export_root=lake)
            except Exception as exc:   # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=go, args=a) for a in ((nov, P2, D2), (oct_, P1, D1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    start = threading.Barrier(2)
    sent = []

    def digests():
        start.wait()
        sent.append(send_digests(url, P2, routes(), FileOutbox(Path(lake, "outbox", "digests", P2)), work_dir=nov))
    threads = [threading.Thread(target=digests) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(s) for s in sent) == [0, 1]                     # one run told the office, the other nothing
    got = published_state(url, lake)
    for name in ("roster", "reconciliation_alert", "reconciliation_finding", "alert_event", "digest_item", "quarantine"):
        pd.testing.assert_frame_equal(uninterrupted[name].reset_index(drop=True), got[name].reset_index(drop=True),
                                      check_dtype=False, obj=name)
    assert len(got["digest_log"]) == len(uninterrupted["digest_log"])
