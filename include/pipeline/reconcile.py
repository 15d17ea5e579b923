"""Resolve identities, reconcile the seventeen codes, build the roster (OUTPUTS.md).

All join-heavy work is DuckDB SQL over the standardised Parquet files of
:mod:`include.pipeline.standardise`; nothing here loops over rows in Python.

Outputs, beside the ``std/`` directory (``work/<ds>/<period>/``):

* ``resolved.parquet``: every record with its ``person_id`` (the valid ID, or the one its
  invalid ID was linked to, or null) and how it was resolved;
* ``quarantine.parquet``: records that stay unresolved, with the reason;
* ``findings.parquet``: one row per finding, with the key columns, the region of the
  office that must act, and the numbers behind it in ``details`` (JSON);
* ``roster.parquet``: the roster of the period, one row per person.

Choices where OUTPUTS.md leaves room (each written here and in the issue notes):

* a person's own unit (for a finding's unit and region, and the roster's unit) is the
  unit of their active staffing record with the lowest ``record_id``; else the paying
  budget unit with the lowest ``dwbm`` (its credit code, and its ``qhdm`` as region);
  else the lowest organisation ``dwdm``;
* the roster's ``sex`` and ``birth_date`` are read from the ID itself (digits 7-14 and 17),
  so they always agree with it; ``name`` is staffing's, else finance's, else HR's;
* ``personnel_class`` is ``establishment`` when any active staffing record is, else
  ``non_establishment``; the roster's quota type, categories and position come from the
  active record with the lowest ``record_id`` among those of that class;
* the HR status is ``参保缴费`` if any row says so, else ``暂停缴费``, else ``终止参保``; ``退休``
  if any row says so (with that row's date), else ``在职``;
* "at least 30% of T" is evaluated in whole numbers (10 x vacancies >= 3 x T).
"""

from __future__ import annotations

import json
import logging
import time

import duckdb
import fsspec

from include import periods as P

log = logging.getLogger("roster_sync.reconcile")

SEVERITY = {
    "OVER_QUOTA": "high", "NON_ESTABLISHMENT_OVER_CAP": "medium", "LEADER_OVER_LIMIT": "medium", "HIGH_VACANCY": "info",
    "REVOKED_UNIT_STAFFED": "high", "PAID_WITHOUT_ESTABLISHMENT": "high", "ESTABLISHED_NOT_PAID": "medium",
    "DUPLICATE_PAY": "high", "MULTIPLE_ESTABLISHMENT": "high", "RETIRED_STILL_ACTIVE": "high", "UNIT_MISMATCH": "medium",
    "CLASS_MISMATCH": "medium", "RESTRICTED_POST": "high", "CADRE_WITHOUT_ESTABLISHMENT": "high", "MISSING_SLIP": "medium",
    "NOT_INSURED": "medium", "INVALID_ID": "medium",
}
FINDING_COLUMNS = ["code", "severity", "region_code", "unit_code", "id_number", "quota_type", "level", "source",
                   "raw_value", "details"]
KEY_COLUMNS = ["code", "unit_code", "quota_type", "level", "id_number", "source", "raw_value"]
ROSTER_COLUMNS = [
    "period", "as_of", "id_number", "name", "sex", "birth_date", "region_code", "unit_code", "unit_name",
    "personnel_class", "quota_type", "non_establishment_category", "post_category", "position", "leader_level",
    "cadre_rank", "gross_pay", "budget_unit_codes", "insured_status", "hr_status", "in_staffing", "in_org",
    "in_finance", "in_hr", "alert_codes",
]


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def _q(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def resolve(con, std: str) -> None:
    """Views ``r`` (records with ``person_id``) and ``quarantine``; tables of the reference data."""
    for name in ("units", "quotas", "leader_posts", "budget_units"):
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet({_q(f'{std}/{name}.parquet')})")
    con.execute(f"CREATE OR REPLACE VIEW records AS SELECT * FROM read_parquet({_q(f'{std}/records.parquet')})")
    con.execute("""
        CREATE OR REPLACE TABLE links AS
        WITH bad AS (
            SELECT source, rec_no, unit_code, name_norm, birth8 FROM records WHERE NOT id_valid
        ), keys AS (
            SELECT DISTINCT unit_code, name_norm, id_clean AS cand FROM records
            WHERE id_valid AND unit_code IS NOT NULL
        )
        SELECT b.source, b.rec_no, count(DISTINCT k.cand) AS candidates, min(k.cand) AS cand
        FROM bad b LEFT JOIN keys k
          ON b.unit_code = k.unit_code AND b.name_norm = k.name_norm
         AND (b.birth8 IS NULL OR substr(k.cand, 7, 8) = b.birth8)
        GROUP BY b.source, b.rec_no
    """)
    con.execute("""
        CREATE OR REPLACE TABLE r AS
        SELECT rec.*,
               CASE WHEN rec.id_valid THEN rec.id_clean WHEN l.candidates = 1 THEN l.cand END AS person_id,
               CASE WHEN rec.id_valid THEN 'valid' WHEN l.candidates = 1 THEN 'linked' ELSE 'unresolved' END AS resolution,
               coalesce(l.candidates, 0) AS link_candidates
        FROM records rec LEFT JOIN links l USING (source, rec_no)
    """)
    con.execute("""
        CREATE OR REPLACE VIEW quarantine AS
        SELECT source, rec_no, raw_trim AS raw_value, unit_code, name,
               CASE WHEN unit_code IS NULL THEN 'invalid ID and no unit to link it by'
                    WHEN link_candidates = 0 THEN 'invalid ID with no candidate of the same unit and name'
                    ELSE 'invalid ID with ' || link_candidates || ' candidates of the same unit and name' END AS reason
        FROM r WHERE resolution = 'unresolved'
    """)


FINDINGS_SQL = """
WITH
s AS (SELECT * FROM r WHERE source = 'staffing' AND person_id IS NOT NULL),
o AS (SELECT * FROM r WHERE source = 'org' AND person_id IS NOT NULL),
f AS (SELECT r.*, b.qhdm FROM r LEFT JOIN budget_units b USING (dwbm) WHERE source = 'finance' AND person_id IS NOT NULL),
h AS (SELECT * FROM r WHERE source = 'hr' AND person_id IS NOT NULL),
unit_region AS (SELECT unit_code, region_code FROM units),
-- per person, the facts the person-level codes need
sp AS (
    SELECT person_id,
           count(*) AS s_records,
           count(DISTINCT unit_code) AS s_units,
           arg_min(unit_code, record_id) AS s_unit,
           bool_or(personnel_class = 'establishment') AS s_est,
           bool_or(personnel_class = 'non_establishment') AS s_non_est,
           bool_or(personnel_class = 'establishment' AND u.funding IN ('full', 'partial') AND entered_on < $month_start) AS s_est_funded_before,
           bool_or(personnel_class = 'non_establishment' AND post_category IN ('personnel', 'finance', 'classified')) AS s_restricted,
           bool_or(personnel_class = 'establishment' AND (slip_no IS NULL OR trim(slip_no) = '')) AS s_missing_slip,
           list(DISTINCT unit_code ORDER BY unit_code) AS s_unit_list
    FROM s LEFT JOIN units u USING (unit_code) GROUP BY person_id
),
fp AS (
    SELECT person_id,
           count(DISTINCT dwbm) AS f_units,
           bool_or(rylb = '在编') AS f_est, bool_or(rylb = '编外') AS f_non_est,
           list(DISTINCT unit_code ORDER BY unit_code) FILTER (WHERE unit_code IS NOT NULL) AS f_credits,
           list(DISTINCT dwbm ORDER BY dwbm) AS f_dwbm,
           arg_min(unit_code, dwbm) AS f_unit, arg_min(qhdm, dwbm) AS f_region,
           sum(yfgz) AS f_pay
    FROM f GROUP BY person_id
),
op AS (
    SELECT person_id, count(*) AS o_rows, bool_or(sfld = '1') AS o_leader, min(unit_code) AS o_unit,
           list(DISTINCT unit_code ORDER BY unit_code) AS o_units
    FROM o GROUP BY person_id
),
hp AS (
    SELECT person_id, bool_or(insured_status = '参保缴费') AS h_insured,
           bool_or(hr_status = '退休' AND retired_on IS NOT NULL AND try_cast(retired_on AS DATE) <= $month_end) AS h_retired_by_end,
           min(retired_on) FILTER (WHERE hr_status = '退休') AS h_retired_on
    FROM h GROUP BY person_id
),
people AS (
    SELECT coalesce(sp.person_id, fp.person_id, op.person_id, hp.person_id) AS person_id, sp.*, fp.*, op.*, hp.*
    FROM sp FULL JOIN fp USING (person_id) FULL JOIN op USING (person_id) FULL JOIN hp USING (person_id)
),
pu AS (   -- the person's own unit and region
    SELECT p.*,
           coalesce(s_unit, f_unit, o_unit) AS own_unit,
           CASE WHEN s_unit IS NOT NULL THEN (SELECT region_code FROM unit_region WHERE unit_code = s_unit)
                WHEN f_dwbm IS NOT NULL THEN f_region
                ELSE (SELECT region_code FROM unit_region WHERE unit_code = o_unit) END AS own_region
    FROM people p
),
person_findings AS (
    SELECT 'PAID_WITHOUT_ESTABLISHMENT' AS code, * FROM pu WHERE f_est AND s_records IS NULL
    UNION ALL BY NAME SELECT 'ESTABLISHED_NOT_PAID' AS code, * FROM pu WHERE s_est_funded_before AND f_dwbm IS NULL
    UNION ALL BY NAME SELECT 'DUPLICATE_PAY' AS code, * FROM pu WHERE f_units >= 2
    UNION ALL BY NAME SELECT 'MULTIPLE_ESTABLISHMENT' AS code, * FROM pu WHERE s_units >= 2
    UNION ALL BY NAME SELECT 'RETIRED_STILL_ACTIVE' AS code, * FROM pu WHERE h_retired_by_end AND (s_records IS NOT NULL OR f_est OR f_non_est)
    UNION ALL BY NAME SELECT 'UNIT_MISMATCH' AS code, * FROM pu
        WHERE s_records = 1 AND ((len(f_credits) > 0 AND NOT list_contains(f_credits, s_unit))
                                 OR (o_rows > 0 AND NOT list_contains(o_units, s_unit)))
    UNION ALL BY NAME SELECT 'CLASS_MISMATCH' AS code, * FROM pu
        WHERE s_records IS NOT NULL AND ((f_est AND NOT s_est) OR (f_non_est AND NOT s_non_est))
    UNION ALL BY NAME SELECT 'RESTRICTED_POST' AS code, * FROM pu WHERE s_restricted
    UNION ALL BY NAME SELECT 'CADRE_WITHOUT_ESTABLISHMENT' AS code, * FROM pu WHERE o_leader AND NOT coalesce(s_est, false)
    UNION ALL BY NAME SELECT 'MISSING_SLIP' AS code, * FROM pu WHERE s_missing_slip
    UNION ALL BY NAME SELECT 'NOT_INSURED' AS code, * FROM pu WHERE (f_est OR f_non_est) AND NOT coalesce(h_insured, false)
),
-- unit-level codes
est AS (SELECT unit_code, quota_type, count(DISTINCT person_id) AS actual FROM s
        WHERE personnel_class = 'establishment' GROUP BY ALL),
over_quota AS (
    SELECT unit_code, quota_type, coalesce(e.actual, 0) AS actual, coalesce(q.approved, 0) AS approved
    FROM (SELECT unit_code, quota_type FROM est UNION SELECT unit_code, quota_type FROM quotas) k
    LEFT JOIN est e USING (unit_code, quota_type) LEFT JOIN quotas q USING (unit_code, quota_type)
    WHERE quota_type IS DISTINCT FROM 'non_establishment_cap' AND coalesce(e.actual, 0) > coalesce(q.approved, 0)
),
non_est AS (
    SELECT unit_code, count(DISTINCT person_id) AS actual FROM s WHERE personnel_class = 'non_establishment' GROUP BY ALL
),
over_cap AS (
    SELECT n.unit_code, n.actual, coalesce(q.approved, 0) AS approved FROM non_est n
    LEFT JOIN quotas q ON q.unit_code = n.unit_code AND q.quota_type = 'non_establishment_cap'
    WHERE n.actual > coalesce(q.approved, 0)
),
leaders AS (
    SELECT unit_code, CASE ldlb WHEN '正职' THEN 'principal' WHEN '副职' THEN 'deputy' END AS level, count(*) AS actual
    FROM o WHERE sfld = '1' AND ldlb IN ('正职', '副职') GROUP BY ALL
),
over_leaders AS (
    SELECT l.unit_code, l.level, l.actual, coalesce(p.approved, 0) AS approved FROM leaders l
    LEFT JOIN leader_posts p USING (unit_code, level) WHERE l.actual > coalesce(p.approved, 0)
),
totals AS (SELECT unit_code, sum(approved) AS approved FROM quotas
           WHERE quota_type IS DISTINCT FROM 'non_establishment_cap' GROUP BY ALL),
est_unit AS (SELECT unit_code, count(DISTINCT person_id) AS actual FROM s WHERE personnel_class = 'establishment' GROUP BY ALL),
vacancy AS (
    SELECT t.unit_code, t.approved, coalesce(e.actual, 0) AS actual FROM totals t LEFT JOIN est_unit e USING (unit_code)
    WHERE t.approved >= 10 AND 10 * (t.approved - coalesce(e.actual, 0)) >= 3 * t.approved
),
revoked AS (
    SELECT u.unit_code,
           (SELECT count(DISTINCT person_id) FROM s WHERE s.unit_code = u.unit_code) AS staffed,
           (SELECT count(DISTINCT person_id) FROM f WHERE f.unit_code = u.unit_code) AS paid
    FROM units u WHERE u.status = 'revoked'
),
invalid AS (
    SELECT source, raw_trim AS raw_value, min(unit_code) AS unit_code, min(person_id) AS person_id,
           min(CASE WHEN source = 'finance' THEN (SELECT qhdm FROM budget_units b WHERE b.dwbm = r.dwbm) END) AS qhdm,
           count(*) AS records, max(link_candidates) AS candidates
    FROM r WHERE NOT id_valid GROUP BY source, raw_trim
)
SELECT code, person_id AS id_number, own_unit AS f_unit_code, own_region AS region_code,
       json_object('staffing_units', s_unit_list, 'staffing_records', s_records, 'paid_by', f_dwbm, 'gross_pay', f_pay,
                   'org_units', o_units, 'retired_on', h_retired_on, 'insured', h_insured,
                   'paid_as', list_filter(['在编', '编外'], lambda x: (x = '在编' AND f_est) OR (x = '编外' AND f_non_est))) AS details
FROM person_findings
UNION ALL BY NAME
SELECT 'OVER_QUOTA' AS code, unit_code, quota_type,
       json_object('approved', approved, 'actual', actual, 'excess', actual - approved) AS details FROM over_quota
UNION ALL BY NAME
SELECT 'NON_ESTABLISHMENT_OVER_CAP' AS code, unit_code,
       json_object('cap', approved, 'actual', actual, 'excess', actual - approved) AS details FROM over_cap
UNION ALL BY NAME
SELECT 'LEADER_OVER_LIMIT' AS code, unit_code, level,
       json_object('approved', approved, 'actual', actual, 'excess', actual - approved) AS details FROM over_leaders
UNION ALL BY NAME
SELECT 'HIGH_VACANCY' AS code, unit_code,
       json_object('approved', approved, 'actual', actual, 'vacant', approved - actual,
                   'vacancy_rate', round((approved - actual) / approved, 4)) AS details FROM vacancy
UNION ALL BY NAME
SELECT 'REVOKED_UNIT_STAFFED' AS code, unit_code,
       json_object('staffed', staffed, 'paid', paid) AS details FROM revoked WHERE staffed > 0 OR paid > 0
UNION ALL BY NAME
SELECT 'INVALID_ID' AS code, unit_code, person_id AS id_number, source, raw_value, unit_code AS f_unit_code,
       qhdm AS fallback_region,
       json_object('records', records, 'linked', person_id IS NOT NULL, 'candidates', candidates) AS details FROM invalid
"""


def reconcile(std: str, out: str | None = None, as_of: str | None = None, threads: int | None = None,
              memory_limit: str | None = None) -> dict:
    """Resolve, reconcile and build the roster from a ``std/`` directory. Returns a summary."""
    fs, _ = fsspec.core.url_to_fs(std)
    with fs.open(f"{std}/_summary.json") as fh:
        meta = json.load(fh)
    period = meta["period"]
    out = out or std.rsplit("/std", 1)[0]
    t0 = time.perf_counter()
    con = connect(threads, memory_limit)
    try:
        resolve(con, std)
        params = {"month_start": str(P.first_day(period)), "month_end": P.last_day(period)}
        sql = FINDINGS_SQL.replace("$month_start", "'" + params["month_start"] + "'").replace("$month_end", f"DATE '{params['month_end']}'")
        con.execute(f"""
            CREATE OR REPLACE TABLE findings AS
            WITH raw AS ({sql})
            SELECT code, NULL::VARCHAR AS severity,
                   coalesce(region_code, (SELECT region_code FROM units u WHERE u.unit_code = coalesce(raw.unit_code, raw.f_unit_code)),
                            fallback_region) AS region_code,
                   coalesce(unit_code, f_unit_code) AS unit_code, id_number, quota_type, level, source, raw_value,
                   CAST(details AS VARCHAR) AS details
            FROM raw
        """)
        con.execute("UPDATE findings SET severity = CASE code " +
                    " ".join(f"WHEN '{c}' THEN '{s}'" for c, s in SEVERITY.items()) + " END")
        _roster(con, period, as_of or str(P.last_day(period)))
        for name, query in (("resolved", "SELECT * FROM r"), ("quarantine", "SELECT * FROM quarantine"),
                            ("findings", f"SELECT {', '.join(FINDING_COLUMNS)} FROM findings ORDER BY ALL"),
                            ("roster", f"SELECT {', '.join(ROSTER_COLUMNS)} FROM roster ORDER BY id_number")):
            con.execute(f"COPY ({query}) TO {_q(f'{out}/{name}.parquet')} (FORMAT parquet, COMPRESSION zstd)")
        counts = dict(con.execute("SELECT code, count(*) FROM findings GROUP BY code").fetchall())
        roster_n = con.execute("SELECT count(*) FROM roster").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        classes = dict(con.execute("SELECT personnel_class, count(*) FROM roster GROUP BY ALL").fetchall())
    finally:
        con.close()
    seconds = time.perf_counter() - t0
    summary = {"period": period, "dir": out, "findings": {c: int(counts.get(c, 0)) for c in SEVERITY},
               "roster": int(roster_n), "roster_by_class": {k: int(v) for k, v in classes.items()},
               "quarantined": int(quarantined), "seconds": round(seconds, 2)}
    with fs.open(f"{out}/_reconcile.json", "w") as fh:
        json.dump(summary, fh, ensure_ascii=False, indent=1)
    log.info("reconciled %s in %.1fs: roster %s persons, %s findings, %s records quarantined",
             period, seconds, f"{roster_n:,}", f"{sum(counts.values()):,}", quarantined)
    return summary


def _roster(con, period: str, as_of: str) -> None:
    con.execute(f"""
        CREATE OR REPLACE TABLE roster AS
        WITH
        s AS (SELECT r.*, u.funding FROM r LEFT JOIN units u USING (unit_code) WHERE source = 'staffing' AND person_id IS NOT NULL),
        f AS (SELECT * FROM r WHERE source = 'finance' AND person_id IS NOT NULL),
        o AS (SELECT * FROM r WHERE source = 'org' AND person_id IS NOT NULL),
        h AS (SELECT * FROM r WHERE source = 'hr' AND person_id IS NOT NULL),
        members AS (
            SELECT person_id FROM f WHERE jfly = '财政拨款'
            UNION SELECT person_id FROM s WHERE funding IN ('full', 'partial')
        ),
        s_pick AS (   -- the record that speaks for the person: establishment first, then lowest record_id
            SELECT person_id, arg_min(s, (personnel_class IS DISTINCT FROM 'establishment', record_id)) AS rec
            FROM s GROUP BY person_id
        ),
        f_agg AS (
            SELECT person_id, sum(yfgz) AS gross_pay, string_agg(DISTINCT dwbm, ';' ORDER BY dwbm) AS budget_unit_codes,
                   arg_min(unit_code, dwbm) AS unit_code, arg_min(dwbm, dwbm) AS dwbm, arg_min(name, dwbm) AS name,
                   bool_or(rylb = '离退休') AS retired
            FROM f GROUP BY person_id
        ),
        o_agg AS (
            SELECT person_id,
                   CASE WHEN bool_or(sfld = '1' AND ldlb = '正职') THEN 'principal'
                        WHEN bool_or(sfld = '1' AND ldlb = '副职') THEN 'deputy' END AS leader_level,
                   arg_min(zwcc, (sfld IS DISTINCT FROM '1', unit_code)) AS cadre_rank
            FROM o GROUP BY person_id
        ),
        h_agg AS (
            SELECT person_id,
                   CASE WHEN bool_or(insured_status = '参保缴费') THEN '参保缴费'
                        WHEN bool_or(insured_status = '暂停缴费') THEN '暂停缴费'
                        WHEN bool_or(insured_status = '终止参保') THEN '终止参保' END AS insured_status,
                   CASE WHEN bool_or(hr_status = '退休') THEN '退休' WHEN bool_or(hr_status = '在职') THEN '在职' END AS hr_status,
                   arg_min(name, rec_no) AS name
            FROM h GROUP BY person_id
        ),
        codes AS (
            SELECT id_number AS person_id, string_agg(DISTINCT code, ';' ORDER BY code) AS alert_codes
            FROM findings WHERE id_number IS NOT NULL GROUP BY ALL
        )
        SELECT '{period}' AS period, DATE '{as_of}' AS as_of, m.person_id AS id_number,
               coalesce(sp.rec.name, fa.name, ha.name) AS name,
               CASE WHEN CAST(substr(m.person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 'M' ELSE 'F' END AS sex,
               strptime(substr(m.person_id, 7, 8), '%Y%m%d')::DATE AS birth_date,
               coalesce(u.region_code, b.qhdm) AS region_code,
               coalesce(sp.rec.unit_code, fa.unit_code) AS unit_code,
               coalesce(u.name, b.dwmc) AS unit_name,
               CASE WHEN sp.rec.personnel_class IN ('establishment', 'non_establishment') THEN sp.rec.personnel_class
                    WHEN fa.retired THEN 'retired' ELSE 'unknown' END AS personnel_class,
               sp.rec.quota_type, sp.rec.non_establishment_category, sp.rec.post_category, sp.rec.position,
               oa.leader_level, oa.cadre_rank,
               round(fa.gross_pay, 2) AS gross_pay, fa.budget_unit_codes,
               ha.insured_status, ha.hr_status,
               sp.person_id IS NOT NULL AS in_staffing, oa.person_id IS NOT NULL AS in_org,
               fa.person_id IS NOT NULL AS in_finance, ha.person_id IS NOT NULL AS in_hr,
               coalesce(c.alert_codes, '') AS alert_codes
        FROM members m
        LEFT JOIN s_pick sp USING (person_id)
        LEFT JOIN f_agg fa USING (person_id)
        LEFT JOIN o_agg oa USING (person_id)
        LEFT JOIN h_agg ha USING (person_id)
        LEFT JOIN codes c USING (person_id)
        LEFT JOIN units u ON u.unit_code = coalesce(sp.rec.unit_code, fa.unit_code)
        LEFT JOIN budget_units b ON b.dwbm = fa.dwbm
    """)
