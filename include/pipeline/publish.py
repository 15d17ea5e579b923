"""Publish a reconciled period to ``roster_db`` and write the finance exports (OUTPUTS.md).

Tables (created when missing; SQLite by default, PostgreSQL in production):

* ``roster``: one row per person per published period, primary key ``(period, id_number)``;
* ``reconciliation_alert``: one row per finding, stable ``alert_key``, ``first_seen`` /
  ``last_seen``, ``status`` open or resolved (plus ``resolved_in``, ``updated_at``);
* ``reconciliation_finding`` (ours): the findings of each published period, as found;
* ``alert_event`` (ours): opened / reopened / resolved, once per alert and period, for
  the digests that tell an office once;
* ``publish_log`` (ours): one row per publish;
* ``alert_disposition`` and ``workspace_audit``: what the offices say on findings and who
  looked at what (written by the workspace, :mod:`include.workspace`); a finding that
  reopens here starts with no disposition.

Everything for a period is written in one transaction: a reader sees the old roster or
the new one, never half of either. Republishing a period replaces its roster and
findings and creates no duplicate alert or event. An alert is resolved when a run for a
later period no longer finds it; a finding that comes back reopens its row (``first_seen``
kept). A run for an earlier period (a backfill) never resolves or reopens a later state.

Exports ``roster_<period>.parquet``, ``.csv`` (UTF-8 with BOM) and ``.xlsx`` are written
beside, in a staging directory, and moved into ``published/<period>/`` after the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import fsspec
import pandas as pd
import sqlalchemy as sa

from include.findings import KEYS
from include.identifiers import redact
from include.pipeline.reconcile import FINDING_KEY_COLUMNS, ROSTER_COLUMNS
from include.pipeline import changes as changes_mod

log = logging.getLogger("roster_sync.publish")

# The key columns of each code: the catalogue's (person-level codes key on the person).
CODE_KEYS = {code: cols for code, cols in KEYS.items() if cols != ["id_number"]}
PERSON_KEY = ["id_number"]
ALERT_COLUMNS = ["alert_key", "code", "severity", "region_code", "unit_code", "id_number", "quota_type", "level",
                 "source", "raw_value", "details"]

metadata = sa.MetaData()
roster_table = sa.Table(
    "roster", metadata,
    sa.Column("period", sa.String(7), primary_key=True), sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("id_number", sa.String(18), primary_key=True), sa.Column("name", sa.String(100)),
    sa.Column("sex", sa.String(1)), sa.Column("birth_date", sa.Date), sa.Column("region_code", sa.String(6)),
    sa.Column("unit_code", sa.String(18)), sa.Column("unit_name", sa.String(200)),
    sa.Column("personnel_class", sa.String(20)), sa.Column("quota_type", sa.String(30)),
    sa.Column("non_establishment_category", sa.String(30)), sa.Column("post_category", sa.String(20)),
    sa.Column("position", sa.String(100)), sa.Column("leader_level", sa.String(10)), sa.Column("cadre_rank", sa.String(10)),
    sa.Column("gross_pay", sa.Numeric(14, 2)), sa.Column("budget_unit_codes", sa.Text),
    sa.Column("insured_status", sa.String(10)), sa.Column("hr_status", sa.String(10)),
    sa.Column("in_staffing", sa.Boolean), sa.Column("in_org", sa.Boolean), sa.Column("in_finance", sa.Boolean),
    sa.Column("in_hr", sa.Boolean), sa.Column("alert_codes", sa.Text, nullable=False),
)
sa.Index("ix_roster_period_region", roster_table.c.period, roster_table.c.region_code)
alert_table = sa.Table(
    "reconciliation_alert", metadata,
    sa.Column("alert_key", sa.String(32), primary_key=True), sa.Column("code", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False), sa.Column("region_code", sa.String(6)),
    sa.Column("unit_code", sa.String(18)), sa.Column("id_number", sa.String(18)), sa.Column("quota_type", sa.String(30)),
    sa.Column("level", sa.String(10)), sa.Column("source", sa.String(10)), sa.Column("raw_value", sa.String(64)),
    sa.Column("details", sa.Text), sa.Column("first_seen", sa.String(7), nullable=False),
    sa.Column("last_seen", sa.String(7), nullable=False), sa.Column("status", sa.String(10), nullable=False),
    sa.Column("resolved_in", sa.String(7)), sa.Column("updated_at", sa.DateTime(timezone=True)),
    # OUTPUTS.md "What the offices say": the latest word on the finding (alert_disposition keeps every word)
    sa.Column("disposition", sa.String(12)), sa.Column("disposition_reason", sa.String(24)),
    sa.Column("disposition_until", sa.String(7)), sa.Column("disposition_by", sa.String(100)),
    sa.Column("disposition_at", sa.DateTime(timezone=True)),
    # ours: the unit's and the person's names as of the last period that found it, for the workspace
    sa.Column("unit_name", sa.String(200)), sa.Column("name", sa.String(100)),
)
sa.Index("ix_alert_region_status", alert_table.c.region_code, alert_table.c.status)
NAMES = ["unit_name", "name"]
DISPOSITION_COLUMNS = ["disposition", "disposition_reason", "disposition_until", "disposition_by", "disposition_at"]
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")    # SQLite autoincrements an INTEGER primary key only
# Every word an office said on a finding: appended, never updated or deleted.
disposition_table = sa.Table(
    "alert_disposition", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True), sa.Column("alert_key", sa.String(32), nullable=False),
    sa.Column("status", sa.String(12), nullable=False), sa.Column("reason", sa.String(24)), sa.Column("note", sa.Text),
    sa.Column("until", sa.String(7)), sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("office_code", sa.String(6)), sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_disposition_alert", disposition_table.c.alert_key, disposition_table.c.id)
# Every disposition and every view of a finding's unmasked ID number.
audit_table = sa.Table(
    "workspace_audit", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True), sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False), sa.Column("action", sa.String(30), nullable=False),
    sa.Column("alert_key", sa.String(32)),
)
finding_table = sa.Table(
    "reconciliation_finding", metadata,
    sa.Column("period", sa.String(7), primary_key=True), sa.Column("alert_key", sa.String(32), primary_key=True),
    *[sa.Column(c, sa.Text if c == "details" else sa.String(64)) for c in ALERT_COLUMNS[1:]],
)
event_table = sa.Table(
    "alert_event", metadata,
    sa.Column("alert_key", sa.String(32), primary_key=True), sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("event", sa.String(10), primary_key=True), sa.Column("region_code", sa.String(6)),
    sa.Column("at", sa.DateTime(timezone=True)),
)
# OUTPUTS.md "Evidence": the source records each finding of a published period rests on.
evidence_table = sa.Table(
    "alert_evidence", metadata,
    sa.Column("alert_key", sa.String(32), primary_key=True), sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("source", sa.String(10), primary_key=True), sa.Column("record_key", sa.String(400), primary_key=True),
    sa.Column("facts", sa.Text),
)
sa.Index("ix_evidence_period", evidence_table.c.period)
# Each unit's approved and actual numbers per period (reconcile's unit_stats: measure quota by
# quota type, non_establishment by post category and total against the cap, leader_posts by
# level), for the workspace's unit page.
UNIT_STATS_COLUMNS = ["measure", "unit_code", "region_code", "item", "approved", "actual"]
unit_stats_table = sa.Table(
    "unit_stats", metadata,
    sa.Column("period", sa.String(7), primary_key=True), sa.Column("unit_code", sa.String(18), primary_key=True),
    sa.Column("measure", sa.String(20), primary_key=True), sa.Column("item", sa.String(30), primary_key=True),
    sa.Column("region_code", sa.String(6)), sa.Column("approved", sa.BigInteger), sa.Column("actual", sa.BigInteger),
    sa.Column("unit_name", sa.String(200)),
)
sa.Index("ix_unit_stats_unit", unit_stats_table.c.unit_code, unit_stats_table.c.period)
# OUTPUTS.md "Changes between periods": finance's 人员增减变动, against the latest earlier
# period (include/pipeline/changes.py computes them).
change_table = sa.Table(
    "roster_change", metadata,
    sa.Column("period", sa.String(7), primary_key=True), sa.Column("previous_period", sa.String(7), nullable=False),
    sa.Column("id_number", sa.String(18), primary_key=True), sa.Column("change", sa.String(8), nullable=False),
    sa.Column("fields", sa.Text),
)
quarantine_table = sa.Table(
    "quarantine", metadata,
    sa.Column("period", sa.String(7), nullable=False), sa.Column("as_of", sa.Date), sa.Column("source", sa.String(10)),
    sa.Column("rec_no", sa.BigInteger), sa.Column("reason", sa.Text), sa.Column("record", sa.Text),
)
sa.Index("ix_quarantine_period", quarantine_table.c.period)
publish_log = sa.Table(
    "publish_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), sa.Column("period", sa.String(7), nullable=False),
    sa.Column("as_of", sa.Date), sa.Column("run_id", sa.String(250)), sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("roster_rows", sa.Integer), sa.Column("findings", sa.Integer), sa.Column("roster_sha256", sa.String(64)),
)


SCHEMA_LOCK = "roster_sync:schema"


def ensure_schema(engine: sa.Engine, tables: list | None = None) -> None:
    """Create the missing tables of ``roster_db`` (all, or ``tables``), add the columns a
    table gained since it was created (nullable, so adding them changes no row) and widen
    the text columns that grew (PostgreSQL; SQLite does not hold lengths): a ``roster_db``
    published by an earlier version keeps working."""
    from include.pipeline import database

    # Under a writers' lock: tasks starting together (the mapped report batches, say) would each find a
    # table missing and each create it. SQLite refuses the second writer at once, whatever its busy
    # timeout (a reader may not become a writer while another writes: "database is locked"), and
    # PostgreSQL fails on the duplicate type. The second now waits, then finds the table made.
    with database.writer(engine, SCHEMA_LOCK) as conn:
        metadata.create_all(conn, tables=tables)
        inspector = sa.inspect(conn)
        for table in tables or metadata.sorted_tables:
            have = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                kind = column.type.compile(dialect=engine.dialect)
                if column.name not in have and column.nullable:
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}'))
                    log.info("roster_db: added column %s.%s", table.name, column.name)
                elif (engine.dialect.name == "postgresql" and isinstance(column.type, sa.String) and column.type.length
                      and getattr(have.get(column.name), "length", None) and have[column.name].length < column.type.length):
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ALTER COLUMN {column.name} TYPE {kind}'))
                    log.info("roster_db: widened column %s.%s to %s", table.name, column.name, kind)


def alert_keys(findings: pd.DataFrame) -> pd.Series:
    """A stable identity per finding: sha256 of the code and its key columns (24 hex chars)."""
    def key(row) -> str:
        cols = CODE_KEYS.get(row["code"], PERSON_KEY)
        text = "|".join([row["code"]] + ["" if pd.isna(row[c]) else str(row[c]) for c in cols])
        return hashlib.sha256(text.encode()).hexdigest()[:24]
    return findings.apply(key, axis=1) if len(findings) else pd.Series([], dtype=str)


def _chunks(rows: list, n: int = 20_000):
    for i in range(0, len(rows), n):
        yield rows[i:i + n]


publish_acceptance = sa.Table(
    "publish_acceptance", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), sa.Column("period", sa.String(7), nullable=False),
    sa.Column("run_id", sa.String(250)), sa.Column("accepted_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False), sa.Column("summary", sa.Text), sa.Column("at", sa.DateTime(timezone=True)),
)

class PublishError(RuntimeError):
    """roster_db refused the period; names the table, never a row."""


def publish(work: str, url, period: str, as_of: str, export_root: str | None = None, run_id: str | None = None,
            accept: dict | None = None) -> dict:
    """Publish ``work/roster.parquet`` and ``work/findings.parquet`` for ``period``. Returns a summary.

    Holds the writers' lock of ``roster_db`` (:func:`include.pipeline.database.writer`) from
    before it reads the alerts until it commits, so two publishes never interleave. Before
    writing, the period is compared with the last published one
    (:mod:`include.quality.publish_gate`); a jump beyond the bands stops here unless
    ``accept`` (``{"by", "reason"}``) says an operator checked it.
    """
    from include.pipeline import database
    from include.quality import publish_gate

    t0 = time.perf_counter()
    fs, _ = fsspec.core.url_to_fs(work)
    roster = pd.read_parquet(f"{work}/roster.parquet")
    findings = pd.read_parquet(f"{work}/findings.parquet")
    if (roster.period != period).any():
        raise ValueError(f"the roster in {work} is not of period {period}")
    if roster.id_number.duplicated().any():
        raise ValueError("the roster has a person twice: refusing to publish")
    findings["alert_key"] = alert_keys(findings)
    if findings.alert_key.duplicated().any():
        raise ValueError("two findings share an alert key: refusing to publish")
    evidence = _evidence(work, fs, findings)
    unit_names = _unit_names(work, fs, roster)
    findings = findings.assign(unit_name=findings.unit_code.map(unit_names).astype(object),   # kept on the alert
                               name=findings.id_number.map(roster.set_index("id_number").name).astype(object))
    unit_stats = (pd.read_parquet(f"{work}/unit_stats.parquet", columns=UNIT_STATS_COLUMNS)
                  if fs.exists(f"{work}/unit_stats.parquet") else pd.DataFrame(columns=UNIT_STATS_COLUMNS))
    unit_stats["item"] = unit_stats["item"].fillna("unknown")
    unit_stats["unit_name"] = unit_stats.unit_code.map(unit_names).astype(object)
    now = dt.datetime.now(dt.timezone.utc)
    roster_out = roster[ROSTER_COLUMNS].copy()
    roster_out["as_of"] = pd.to_datetime(roster_out.as_of).dt.date
    roster_out["birth_date"] = pd.to_datetime(roster_out.birth_date).dt.date
    q = _quarantine(work, fs)

    engine = database.engine(url)
    staging = exporting = None
    exports_pool = ThreadPoolExecutor(1, thread_name_prefix="exports")
    try:
        ensure_schema(engine)
        with database.writer(engine) as conn:
            plan = _plan_alerts(conn, findings, period, now)
            gate = publish_gate.check(conn, period, len(roster_out), findings, plan["counts"], accept)
            changes, change_view, previous_period = _changes_against_previous(conn, roster_out, period)
            if export_root:   # under the lock: any staging directory left now is a killed publish's
                from include.report import finance   # (here: standardise reads the schema above without the exports)

                _remove_stale_staging(export_root)
                staging = f"{export_root.rstrip('/')}/published/.staging-{period}-{uuid.uuid4().hex[:8]}"
                # finance's files are written on a thread beside the inserts (Arrow and zlib do most of
                # that work outside the GIL: the second core); the period commits only once they are
                exporting = exports_pool.submit(finance.write_period_exports, staging, period, roster_out, changes,
                                                change_view, previous_period, _budget_unit_names(work, fs))
            log.info("publishing %s: %s roster rows, %s findings, %s changes against %s; writing them in one transaction "
                     "(%.1fs in)", period, f"{len(roster_out):,}", f"{len(findings):,}", f"{len(changes):,}",
                     previous_period or "no earlier period", time.perf_counter() - t0)
            table = roster_table.name
            try:
                conn.execute(roster_table.delete().where(roster_table.c.period == period))
                database.insert_frame(conn, roster_table, roster_out)
                table = finding_table.name
                conn.execute(finding_table.delete().where(finding_table.c.period == period))
                database.insert_frame(conn, finding_table, findings[ALERT_COLUMNS].assign(period=period))
                table = evidence_table.name
                conn.execute(evidence_table.delete().where(evidence_table.c.period == period))
                database.insert_frame(conn, evidence_table, evidence.assign(period=period))
                table = change_table.name
                conn.execute(change_table.delete().where(change_table.c.period == period))
                database.insert_frame(conn, change_table, changes)
                table = unit_stats_table.name
                conn.execute(unit_stats_table.delete().where(unit_stats_table.c.period == period))
                database.insert_frame(conn, unit_stats_table, unit_stats.assign(period=period))
                table = alert_table.name
                events = _apply_alerts(conn, plan, period, now)
                table = quarantine_table.name
                conn.execute(quarantine_table.delete().where(quarantine_table.c.period == period))
                database.insert_frame(conn, quarantine_table, q.assign(period=period, as_of=dt.date.fromisoformat(as_of)))
                table = publish_log.name
                sha = hashlib.sha256(pd.util.hash_pandas_object(roster_out.sort_values("id_number"), index=False).values.tobytes()).hexdigest()
                conn.execute(publish_log.insert(), [{"period": period, "as_of": dt.date.fromisoformat(as_of), "run_id": run_id,
                                                    "published_at": now, "roster_rows": len(roster_out),
                                                    "findings": len(findings), "roster_sha256": sha}])
                if gate.get("accepted"):
                    table = publish_acceptance.name
                    conn.execute(publish_acceptance.insert(), [{"period": period, "run_id": run_id, "at": now,
                                                                "accepted_by": gate["accepted"]["by"],
                                                                "reason": gate["accepted"]["reason"], "summary": gate["summary"]}])
                if exporting is not None:
                    exporting.result()      # an export that failed rolls the period back
            except sa.exc.DBAPIError as exc:
                first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
                raise PublishError(f"roster_db refused {period} in table {table}: {type(exc.orig).__name__}: {redact(first)[:200]}; "
                                   "nothing of the period was published") from None
    except Exception:
        exports_pool.shutdown(wait=True)      # the files stop being written before they are removed
        if staging:
            sfs = fsspec.core.url_to_fs(staging)[0]
            if sfs.exists(staging):
                sfs.rm(staging, recursive=True)
        raise
    finally:
        exports_pool.shutdown(wait=True)
        engine.dispose()
    exports = {}
    if staging:
        final = f"{export_root.rstrip('/')}/published/{period}"
        efs, _ = fsspec.core.url_to_fs(final)
        efs.makedirs(final, exist_ok=True)
        for name in efs.ls(staging, detail=False):
            target = f"{final}/{name.rsplit('/', 1)[-1]}"
            if efs.exists(target):
                efs.rm(target)
            efs.mv(name, target)
            ext = target.rsplit(".", 1)[-1]
            exports[f"changes_{ext}" if "/roster_changes_" in target else ext] = target
        efs.rm(staging, recursive=True)
    summary = {"period": period, "roster_rows": len(roster_out), "findings": len(findings), "events": events,
               "quarantined": len(q), "gate": gate,
               "changes": {k: int(v) for k, v in changes.change.value_counts().items()},
               "exports": exports, "seconds": round(time.perf_counter() - t0, 2)}
    log.info("published %s: %s roster rows, %s findings (%s), exports in %s", period, f"{len(roster_out):,}",
             len(findings), ", ".join(f"{k} {v}" for k, v in events.items()) or "no alert changes",
             exports.get("parquet", "(none)").rsplit("/", 1)[0])
    return summary


def _evidence(work: str, fs, findings: pd.DataFrame) -> pd.DataFrame:
    """The evidence rows of ``work`` with their findings' alert keys; every finding must have some."""
    path = f"{work}/evidence.parquet"
    if not fs.exists(path):
        raise PublishError(f"{work} has no evidence.parquet: reconcile it again before publishing")
    ev = pd.read_parquet(path)
    keyed = ev[FINDING_KEY_COLUMNS].drop_duplicates().reset_index(drop=True)
    keyed["alert_key"] = alert_keys(keyed)
    ev = ev.merge(keyed, on=FINDING_KEY_COLUMNS, how="left")
    bare = set(findings.alert_key) - set(ev.alert_key)
    if bare:
        raise PublishError(f"{len(bare)} finding(s) without evidence, e.g. {sorted(findings[findings.alert_key.isin(bare)].code)[:3]}: "
                           "nothing of the period was published")
    out = ev[["alert_key", "ev_source", "record_key", "facts"]].rename(columns={"ev_source": "source"})
    return out.drop_duplicates(["alert_key", "source", "record_key"])


def _unit_names(work: str, fs, roster: pd.DataFrame) -> dict:
    """Unit code -> name: the staffing office's units, else the roster's (for the alerts and unit_stats)."""
    placed = roster[["unit_code", "unit_name"]].drop_duplicates("unit_code")   # thousands of units, not a million rows
    units = dict(zip(placed.unit_code, placed.unit_name))
    if fs.exists(f"{work}/std/units.parquet"):
        u = pd.read_parquet(f"{work}/std/units.parquet", columns=["unit_code", "name"])
        units.update(zip(u.unit_code, u.name))
    return units


def _budget_unit_names(work: str, fs) -> dict:
    """Budget unit code (dwbm) -> name (dwmc), from finance's ys_dw of the period."""
    path = f"{work}/std/budget_units.parquet"
    if not fs.exists(path):
        return {}
    b = pd.read_parquet(path, columns=["dwbm", "dwmc"])
    return dict(zip(b.dwbm, b.dwmc))


def _remove_stale_staging(export_root: str) -> None:
    """Staging directories of publishes that were killed before they could clean up."""
    fs, base = fsspec.core.url_to_fs(f"{export_root.rstrip('/')}/published")
    for path in fs.glob(f"{base}/.staging-*"):
        log.warning("removing %s, left by a publish that was killed", path)
        fs.rm(path, recursive=True)


def published_periods(conn) -> list[str]:
    return sorted(r[0] for r in conn.execute(sa.select(publish_log.c.period).distinct()))


def _plan_alerts(conn, findings: pd.DataFrame, period: str, now: dt.datetime) -> dict:
    """What publishing this period's findings does to the alerts: rows to insert, rows to
    update, events; nothing is written. Read under the writers' lock, so the plan is made on
    the state it will change.

    A period earlier than the latest published one (a backfill) speaks for its own history
    only: a finding the later periods never had is recorded as resolved in the next
    published period, with no event, so no office is told of it; nothing a later period
    settled is reopened or resolved (OUTPUTS.md "The period").
    """
    existing = pd.read_sql(sa.select(alert_table), conn)
    existing = existing.set_index("alert_key") if len(existing) else pd.DataFrame(columns=alert_table.c.keys()).set_index("alert_key")
    found = findings.set_index("alert_key")
    later = [p for p in published_periods(conn) if p > period]
    inserts, updates, events = [], [], []
    for key, f in found.iterrows():
        if key not in existing.index:
            row = {"alert_key": key, **{c: (None if pd.isna(f[c]) else f[c]) for c in [*ALERT_COLUMNS[1:], *NAMES]},
                   "first_seen": period, "last_seen": period, "status": "open", "resolved_in": None, "updated_at": now}
            if later:     # a backfill: the later periods did not find it
                row.update(status="resolved", resolved_in=later[0])
            else:
                events.append((key, "opened", f["region_code"]))
            inserts.append(row)
            continue
        row = existing.loc[key]
        # This run speaks for the alert's current state only if no later period has spoken:
        # neither found it later (last_seen) nor resolved it (resolved_in).
        resolved_in = None if pd.isna(row.resolved_in) else row.resolved_in
        current = period >= row.last_seen and (resolved_in is None or period >= resolved_in) and not later
        change = {"alert_key": key, "first_seen": min(row.first_seen, period), "last_seen": max(row.last_seen, period),
                  "status": row.status, "resolved_in": row.resolved_in, "updated_at": now,
                  "severity": row.severity, "region_code": row.region_code, "details": row.details,
                  **{c: row.get(c) for c in NAMES}}
        if current:
            change.update({c: (None if pd.isna(f[c]) else f[c]) for c in ("severity", "region_code", "details", *NAMES)})
            if row.status == "resolved":
                change.update(status="open", resolved_in=None)
                events.append((key, "reopened", f["region_code"]))
        updates.append(change)
    if not later:
        gone = existing[(existing.status == "open") & (existing.last_seen < period) & ~existing.index.isin(found.index)]
        for key, row in gone.iterrows():
            updates.append({"alert_key": key, "first_seen": row.first_seen, "last_seen": row.last_seen, "status": "resolved",
                            "resolved_in": period, "updated_at": now, "severity": row.severity, "region_code": row.region_code,
                            "details": row.details, **{c: row.get(c) for c in NAMES}})
            events.append((key, "resolved", row.region_code))
    done = {(r.alert_key, r.event) for r in conn.execute(
        sa.select(event_table.c.alert_key, event_table.c.event).where(event_table.c.period == period))}
    new_events = [(k, e, reg) for k, e, reg in events if (k, e) not in done]
    counts = {"opened": 0, "reopened": 0, "resolved": 0}
    for _, e, _ in new_events:
        counts[e] += 1
    # A missing value read back by pandas is NaN; written to PostgreSQL it would become the text 'NaN'.
    updates = [{k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in u.items()} for u in updates]
    return {"inserts": inserts, "updates": updates, "events": new_events, "counts": counts}


def _apply_alerts(conn, plan: dict, period: str, now: dt.datetime) -> dict:
    """Write a plan of :func:`_plan_alerts`; returns the events' counts."""
    for part in _chunks(plan["inserts"]):
        conn.execute(alert_table.insert(), part)
    updates = plan["updates"]
    if updates:   # one executemany: every update sets the same columns
        stmt = alert_table.update().where(alert_table.c.alert_key == sa.bindparam("k")).values(
            {c: sa.bindparam(c) for c in updates[0] if c != "alert_key"})
        for part in _chunks([{**{k: v for k, v in u.items() if k != "alert_key"}, "k": u["alert_key"]} for u in updates]):
            conn.execute(stmt, part)
    # A finding that reopens starts with no disposition (its history stays in alert_disposition).
    reopened = sorted(k for k, e, _ in plan["events"] if e == "reopened")
    for i in range(0, len(reopened), 500):
        conn.execute(alert_table.update().where(alert_table.c.alert_key.in_(reopened[i:i + 500]))
                     .values({c: None for c in DISPOSITION_COLUMNS}))
    rows = [{"alert_key": k, "period": period, "event": e, "region_code": reg, "at": now} for k, e, reg in plan["events"]]
    for part in _chunks(rows):
        conn.execute(event_table.insert(), part)
    return {k: v for k, v in plan["counts"].items() if v}


def _quarantine(work: str, fs) -> pd.DataFrame:
    """The rows set aside for this period: screened out at standardise, or unresolved invalid IDs."""
    parts = []
    rows = f"{work}/std/quarantine_rows.parquet"
    if fs.exists(rows):
        parts.append(pd.read_parquet(rows)[["source", "rec_no", "reason", "record"]])
    ids = f"{work}/quarantine.parquet"
    if fs.exists(ids):
        q = pd.read_parquet(ids)
        parts.append(pd.DataFrame({"source": q.source, "rec_no": q.rec_no, "reason": q.reason,
                                   "record": [json.dumps({"raw_id": v, "unit_code": u}, ensure_ascii=False)
                                              for v, u in zip(q.raw_value, q.unit_code.astype(object).where(q.unit_code.notna(), None))]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["source", "rec_no", "reason", "record"])


def _changes_against_previous(conn, roster: pd.DataFrame, period: str) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """The changes of ``period`` against the latest published period before it (rows, the
    readable view, that period; no earlier period: no rows and None)."""
    previous_period = conn.execute(sa.select(sa.func.max(publish_log.c.period)).where(publish_log.c.period < period)).scalar()
    previous = pd.DataFrame(columns=changes_mod.VIEW_COLUMNS)
    if previous_period:
        previous = changes_mod.read_roster(conn, previous_period)
    return (*changes_mod.period_changes(roster, previous, period, previous_period), previous_period)
