"""Resolve identities, reconcile the codes of the catalogue (:mod:`include.findings`), build the roster (OUTPUTS.md).

All join-heavy work is DuckDB SQL over the standardised Parquet files of
:mod:`include.pipeline.standardise`; nothing here loops over rows in Python.

Outputs, beside the ``std/`` directory (``work/<ds>/<period>/``):

* ``links.parquet``: every record whose ID is invalid, with its candidates and the
  person it was linked to (null when it stays unresolved);
* ``quarantine.parquet``: records that stay unresolved, with the reason;
* ``findings.parquet``: one row per finding, with the key columns, the region of the
  office that must act, and the numbers behind it in ``details`` (JSON);
* ``roster.parquet``: the roster of the period, one row per person.

Choices where OUTPUTS.md leaves room (each written here and in the issue notes):

* a person's own unit (for a finding's unit and region, and the roster's unit) is the
  unit of their active staffing record with the lowest ``record_id``; else the paying
  budget unit with the lowest ``dwbm`` (its credit code, and its ``qhdm`` as region);
  else the lowest organisation ``dwdm``;
* the roster's unit is that same unit, or the paying budget unit's credit code;
* the roster's ``sex`` and ``birth_date`` are read from the ID itself (digits 7-14 and 17),
  so they always agree with it; ``name`` is staffing's, else finance's, else HR's;
* ``personnel_class`` is ``establishment`` when any active staffing record is, else
  ``non_establishment``; the roster's quota type, categories and position come from the
  active record with the lowest ``record_id`` among those of that class;
* the HR status is ``参保缴费`` if any row says so, else ``暂停缴费``, else ``终止参保``; ``退休``
  if any row says so (with that row's date), else ``在职``;
* "at least 30% of T" is evaluated in whole numbers (10 x vacancies >= 3 x T);
* ``IDENTITY_CONFLICT`` compares a value only where the source states one (not null, not
  blank after trimming): staffing's ``birth_date`` must be the ID's date written
  ``YYYY-MM-DD`` and its ``sex`` ``M``/``F`` as digit 17 says; organisation's ``csrq`` the
  ID's ``YYYYMMDD`` and ``xb`` ``1``/``2``; any other stated value (``9``, ``1980/01/01``)
  differs. Names are compared normalised, over records whose own ID is valid (a record
  linked from an invalid ID proves nothing about the person's details);
* ``OVER_RETIREMENT_AGE``: "not 退休 in the HR export" means no row of that export says 退休,
  whatever its date;
* ``LEADER_RANK_MISMATCH``: a ``zwcc`` outside the seven ranks (after trimming) or an
  ``ldlb`` other than 正职/副职 cannot be compared and raises nothing; like every person
  code, the finding's unit and region are the person's own (rule above), and ``details``
  lists the rows with their units;
* ``DUPLICATE_IDENTITY``: a person's names are those of all their used records, linked
  ones included; the others' IDs are in ``details`` (the digests mask them).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import duckdb
import fsspec

from include import findings as F
from include import periods as P
from include.findings import SEVERITY  # noqa: F401  (re-exported: one home, the catalogue)
from include.pipeline.store import holds_lock

log = logging.getLogger("roster_sync.reconcile")

FINDING_COLUMNS = ["code", "severity", "region_code", "unit_code", "id_number", "quota_type", "level", "source",
                   "raw_value", "details"]
ROSTER_COLUMNS = [
    "period", "as_of", "id_number", "name", "sex", "birth_date", "region_code", "unit_code", "unit_name",
    "personnel_class", "quota_type", "non_establishment_category", "post_category", "position", "leader_level",
    "cadre_rank", "gross_pay", "budget_unit_codes", "insured_status", "hr_status", "in_staffing", "in_org",
    "in_finance", "in_hr", "alert_codes",
]


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for reconcile; ``memory_limit`` (a DuckDB size) defaults to the
    setting :func:`include.settings.reconcile_memory`."""
    from include.settings import reconcile_memory

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")   # a bar of carriage returns is noise in a task log
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    memory_limit = memory_limit or reconcile_memory()
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    for statement in F.retirement_macro_sql() + F.rank_tables_sql():
        con.execute(statement)
    return con


def _q(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _records(std: str) -> str:
    """The standardised records of ``std``, as a DuckDB table expression."""
    return f"read_parquet({_q(f'{std}/records.parquet')})"


def _read_identity_sets(con, out: str) -> None:
    """The identity sets plan_parts found (they cross partitions), for a partition or the combine."""
    con.execute(f"CREATE OR REPLACE TABLE identity_sets AS SELECT * FROM read_parquet({_q(f'{out}/parts/identity_sets.parquet')})")


RECORD_COLUMNS = ("source, rec_no, id_valid, unit_code, name, name_norm, record_id, sex, birth_date, personnel_class, "
                  "quota_type, non_establishment_category, post_category, position, entered_on, slip_no, "
                  "sfld, ldlb, zwcc, xb, csrq, dwbm, rylb, yfgz, jfly, insured_status, hr_status, retired_on")


def _reference(con, std: str) -> None:
    for name in ("units", "quotas", "leader_posts", "budget_units"):
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet({_q(f'{std}/{name}.parquet')})")


def _source_views(con) -> None:
    for view, source in (("s", "staffing"), ("o", "org"), ("f", "finance"), ("h", "hr")):
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM r WHERE source = '{source}'")


def _record_key(con, std: str, of: str = "") -> str:
    """SQL of a record's key in its own system (OUTPUTS.md "Evidence"), as a column of ``records.parquet``:
    made from the rows as received with the evidence's facts (:func:`_evidence`), null until then; a
    model standardised before that carries each record's key (and so does a hand-built one)."""
    keyed = con.execute(f"SELECT count(*) FROM parquet_schema({_q(f'{std}/records.parquet')}) WHERE name = 'record_key'").fetchone()[0]
    return f"{of}record_key" if keyed else "NULL::VARCHAR AS record_key"


def _resolved_sql(con, std: str) -> str:
    """Every usable record of ``std`` with its person: the cleaned ID, or the person an invalid ID was linked to."""
    records, record_key = _records(std), _record_key(con, std, of="rec.")
    return f"""
        SELECT CASE WHEN rec.id_valid THEN rec.id_clean ELSE l.person_id END AS person_id,
               {', '.join('rec.' + c.strip() for c in RECORD_COLUMNS.split(','))}, {record_key}
        FROM {records} rec LEFT JOIN (SELECT source, rec_no, person_id FROM links) l USING (source, rec_no)
        WHERE rec.id_valid OR l.person_id IS NOT NULL"""


def resolve(con, std: str) -> None:
    """Reference tables, the links of invalid IDs, and the view ``r`` of every resolved record.

    Only the few records whose ID is invalid need linking; every other record's person is
    its cleaned ID. ``s``, ``o``, ``f``, ``h`` are views of ``r`` per source.
    """
    _reference(con, std)
    records, record_key = _records(std), _record_key(con, std)
    con.execute(f"""
        CREATE OR REPLACE TABLE links AS
        WITH bad AS (
            SELECT source, rec_no, {record_key}, raw_trim, unit_code, name_norm, birth8, dwbm FROM {records} WHERE NOT id_valid
        ), keys AS (
            SELECT DISTINCT unit_code, name_norm, id_clean AS cand FROM {records}
            WHERE id_valid AND unit_code IS NOT NULL
              AND (unit_code, name_norm) IN (SELECT (unit_code, name_norm) FROM bad)
        )
        SELECT b.source, b.rec_no, any_value(b.raw_trim) AS raw_trim, any_value(b.unit_code) AS unit_code,
               any_value(b.dwbm) AS dwbm, any_value(b.name_norm) AS name_norm, any_value(b.record_key) AS record_key,
               count(DISTINCT k.cand) AS candidates,
               CASE WHEN count(DISTINCT k.cand) = 1 THEN min(k.cand) END AS person_id
        FROM bad b LEFT JOIN keys k
          ON b.unit_code = k.unit_code AND b.name_norm = k.name_norm
         AND (b.birth8 IS NULL OR substr(k.cand, 7, 8) = b.birth8)
        GROUP BY b.source, b.rec_no
    """)
    con.execute(f"CREATE OR REPLACE VIEW r AS {_resolved_sql(con, std)}")
    _source_views(con)
    con.execute("""
        CREATE OR REPLACE VIEW quarantine AS
        SELECT source, rec_no, raw_trim AS raw_value, unit_code,
               CASE WHEN unit_code IS NULL THEN 'invalid ID and no unit to link it by'
                    WHEN candidates = 0 THEN 'invalid ID with no candidate of the same unit and name'
                    ELSE 'invalid ID with ' || candidates || ' candidates of the same unit and name' END AS reason
        FROM links WHERE person_id IS NULL
    """)


# One row per person and source (``SOURCE_FACTS``), then one FULL JOIN (``PEOPLE_SQL``).
# (Measured at 1M persons: per-source grouping and a join beat one scan with FILTERed
# aggregates, 4.4 s against 6.5 s.)
# The ID's own birth date (YYYY-MM-DD) and sex (M / F), for IDENTITY_CONFLICT.
_ID_BIRTH = "substr(person_id, 7, 4) || '-' || substr(person_id, 11, 2) || '-' || substr(person_id, 13, 2)"
_ID_MALE = "CAST(substr(person_id, 17, 1) AS INTEGER) % 2 = 1"
_NAMED = "id_valid AND coalesce(name_norm, '') <> ''"   # IDENTITY_CONFLICT's names: records whose own ID is valid
# (names are compared by their 64-bit hash: equal names, equal hashes; a cheaper aggregate
# than the strings' min and max, measured 1 s of 7 at 1M persons)


def _stated(column: str) -> str:
    """A source's own value of a field, when it states one (not null, not blank)."""
    return f"coalesce(trim({column}), '') <> ''"


# IDENTITY_CONFLICT: each field a source states that the record's own valid ID contradicts,
# as (source, field) -> condition. The code, its details and nothing else read these.
_CONTRADICTS = {
    ("staffing", "birth_date"): f"{_stated('birth_date')} AND trim(birth_date) <> {_ID_BIRTH}",
    ("staffing", "sex"): f"{_stated('sex')} AND trim(sex) <> CASE WHEN {_ID_MALE} THEN 'M' ELSE 'F' END",
    ("org", "csrq"): f"{_stated('csrq')} AND trim(csrq) <> replace({_ID_BIRTH}, '-', '')",
    ("org", "xb"): f"{_stated('xb')} AND trim(xb) <> CASE WHEN {_ID_MALE} THEN '1' ELSE '2' END",
}


def _contradicted(source: str) -> str:
    """Whether a record of ``source`` whose own ID is valid states a field its ID contradicts."""
    return "id_valid AND (" + " OR ".join(f"({c})" for (src, _), c in _CONTRADICTS.items() if src == source) + ")"


def _rank_joins(row: str, join: str = "LEFT JOIN", unit: str = "unit_code") -> str:
    """LEADER_RANK_MISMATCH: the limit of an organisation row's unit and ``ldlb`` (``lim``) and
    the order of the rank it holds (``held``); the row is above its limit where
    :data:`_RANK_OVER` holds."""
    return (f"{join} (SELECT unit_code AS rank_unit, rank AS unit_rank FROM units) ru ON ru.rank_unit = {row}.{unit} "
            f"{join} rank_limits lim ON lim.unit_rank = ru.unit_rank AND lim.post_ldlb = {row}.ldlb "
            f"{join} rank_order held ON held.rank_name = trim({row}.zwcc)")


_RANK_OVER = "held.ord > lim.max_ord"


def _self_funded(row: str, funding: str) -> str:
    """FUNDING_MISMATCH: a payroll row paying 在编/编外 from the budget for a self-funded unit."""
    return f"{row}.rylb IN ('在编', '编外') AND {row}.jfly = '财政拨款' AND {funding} = 'self'"


@dataclass(frozen=True)
class Fact:
    """One fact about a person from one source: an aggregate over the person's records of it.

    ``aggregate`` is a DuckDB aggregate (``count``, ``bool_or``, ``min``, ``max``, ``sum``,
    ``arg_min``) of ``value`` (an expression over a record; ``*`` for ``count``), ordered by
    ``by`` for ``arg_min``, over the records where ``where`` holds; or ``varies``: whether
    ``value`` takes more than one value (``min(value) <> max(value)``: null where it has none).
    A set that only needs to be told one value from several (two staffing units, two paying
    budget units) is a ``varies``, not its min and max: carried to ``people`` as a boolean
    instead of two codes of 18 characters (four such pairs were 0.8 s of its 2.9 s at 2M persons, as the guide has it). The same declaration gives
    both forms :func:`_source_facts` needs: :meth:`grouped` for a person with several records,
    :meth:`single` for a person with one: the aggregate's value over that one row, without a
    hash table (nearly everyone has one record per source: at 2M persons, 3 have several
    staffing records; the grouped form over everyone took 3.1 s for staffing, the split 1.5 s).
    """

    name: str
    aggregate: str
    value: str
    by: str | None = None
    where: str | None = None

    def __post_init__(self):
        if self.aggregate not in ("count", "bool_or", "min", "max", "sum", "arg_min", "varies"):
            raise ValueError(f"fact {self.name}: no single-row form for {self.aggregate}")
        if (self.aggregate == "arg_min") != (self.by is not None):
            raise ValueError(f"fact {self.name}: arg_min, and only it, is ordered by a key")

    def grouped(self) -> str:
        rows = f" FILTER (WHERE {self.where})" if self.where else ""
        if self.aggregate == "varies":
            return f"min({self.value}){rows} <> max({self.value}){rows} AS {self.name}"
        args = self.value if self.by is None else f"{self.value}, {self.by}"
        return f"{self.aggregate}({args})" + rows + f" AS {self.name}"

    def single(self) -> str:
        # the aggregate over one row: rows outside FILTER count as none; count skips a null
        # value, min/max/sum/bool_or of a null are null, arg_min skips a row whose value or
        # key is null (DuckDB's arg_min, not arg_min_null). A sum keeps its value's type
        # (DOUBLE, as the pay); a DECIMAL's sum widens, which the UNION in _source_facts does too.
        if self.aggregate == "count":
            counted = [c for c in (self.where, None if self.value == "*" else f"({self.value}) IS NOT NULL") if c]
            return f"CAST(coalesce({' AND '.join(f'({c})' for c in counted) or 'true'}, false) AS BIGINT) AS {self.name}"
        kept = [c for c in (self.where, None if self.by is None else f"({self.by}) IS NOT NULL") if c]
        if self.aggregate == "varies":   # one value is no variety; none is null, as min <> max of none
            kept.append(f"({self.value}) IS NOT NULL")
            return f"CASE WHEN {' AND '.join(f'({c})' for c in kept)} THEN false END AS {self.name}"
        if not kept:
            return f"{self.value} AS {self.name}"
        return f"CASE WHEN {' AND '.join(f'({c})' for c in kept)} THEN {self.value} END AS {self.name}"


# Each source's facts about a person, with the rows they are read from (its records, joined
# to what the facts need). People's columns are these, joined on the person, plus the
# columns :data:`PEOPLE_SQL` derives from them.
_BUDGET = F._in(F.BUDGET_FUNDED)
SOURCE_FACTS = {
    "sp": ("s LEFT JOIN (SELECT unit_code AS funded_unit, funding FROM units) u ON u.funded_unit = s.unit_code", (
        Fact("s_records", "count", "*"),
        Fact("s_unit", "arg_min", "unit_code", by="record_id"),
        Fact("s_unit_varies", "varies", "unit_code"),
        Fact("s_name", "arg_min", "name", by="record_id"),
        Fact("s_est", "bool_or", "personnel_class = 'establishment'"),
        Fact("s_non_est", "bool_or", "personnel_class = 'non_establishment'"),
        Fact("s_est_funded_before", "bool_or",
             f"personnel_class = 'establishment' AND funding IN {_BUDGET} AND entered_on < $month_start"),
        Fact("s_funded", "bool_or", f"funding IN {_BUDGET}"),
        Fact("s_restricted", "bool_or", f"personnel_class = 'non_establishment' AND post_category IN {F._in(F.RESTRICTED_POSTS)}"),
        Fact("s_missing_slip", "bool_or", "personnel_class = 'establishment' AND (slip_no IS NULL OR trim(slip_no) = '')"),
        # quota type, categories and position, packed: from the lowest establishment record, else the lowest record
        Fact("s_post", "arg_min", "coalesce(quota_type, '') || chr(31) || coalesce(non_establishment_category, '') || chr(31) "
                                  "|| coalesce(post_category, '') || chr(31) || coalesce(position, '')",
             by="CASE WHEN personnel_class = 'establishment' THEN '0' ELSE '1' END || record_id"),
        Fact("s_conflict", "bool_or", _contradicted("staffing")),
        Fact("s_name_lo", "min", "hash(name_norm)", where=_NAMED), Fact("s_name_hi", "max", "hash(name_norm)", where=_NAMED),
    )),
    "fp": ("f LEFT JOIN (SELECT unit_code AS paying_unit, funding FROM units) u ON u.paying_unit = f.unit_code", (
        Fact("f_rows", "count", "*"), Fact("f_dwbm_min", "min", "dwbm"), Fact("f_dwbm_varies", "varies", "dwbm"),
        Fact("f_est", "bool_or", "rylb = '在编'"), Fact("f_non_est", "bool_or", "rylb = '编外'"),
        Fact("f_retired", "bool_or", "rylb = '离退休'"), Fact("f_budget", "bool_or", "jfly = '财政拨款'"),
        Fact("f_self_funded", "bool_or", _self_funded("f", "u.funding")),
        Fact("f_credit_rows", "count", "unit_code"), Fact("f_credit_min", "min", "unit_code"),
        Fact("f_credit_varies", "varies", "unit_code"),
        Fact("f_unit", "arg_min", "unit_code", by="dwbm"), Fact("f_name", "arg_min", "name", by="dwbm"),
        Fact("f_pay", "sum", "yfgz"),
        Fact("f_name_lo", "min", "hash(name_norm)", where=_NAMED), Fact("f_name_hi", "max", "hash(name_norm)", where=_NAMED),
    )),
    "op": (f"o {_rank_joins('o')}", (
        Fact("o_rows", "count", "*"), Fact("o_leader", "bool_or", "sfld = '1'"),
        Fact("o_unit_rows", "count", "unit_code"), Fact("o_unit", "min", "unit_code"), Fact("o_unit_varies", "varies", "unit_code"),
        Fact("o_principal", "bool_or", "sfld = '1' AND ldlb = '正职'"), Fact("o_deputy", "bool_or", "sfld = '1' AND ldlb = '副职'"),
        Fact("cadre_rank", "arg_min", "zwcc", by="CASE WHEN sfld = '1' THEN '0' ELSE '1' END || coalesce(unit_code, '')"),
        Fact("o_rank_over", "bool_or", f"sfld = '1' AND {_RANK_OVER}"),
        Fact("o_conflict", "bool_or", _contradicted("org")),
        Fact("o_name_lo", "min", "hash(name_norm)", where=_NAMED), Fact("o_name_hi", "max", "hash(name_norm)", where=_NAMED),
    )),
    "hp": ("h", (
        Fact("h_rows", "count", "*"), Fact("h_insured", "bool_or", "insured_status = '参保缴费'"),
        Fact("h_suspended", "bool_or", "insured_status = '暂停缴费'"), Fact("h_ended", "bool_or", "insured_status = '终止参保'"),
        Fact("h_retired", "bool_or", "hr_status = '退休'"), Fact("h_working", "bool_or", "hr_status = '在职'"),
        Fact("h_retired_by_end", "bool_or", "hr_status = '退休' AND try_cast(retired_on AS DATE) <= $month_end"),
        Fact("h_retired_on", "min", "retired_on", where="hr_status = '退休'"),
        Fact("h_name", "arg_min", "name", by="rec_no"),
        Fact("h_name_lo", "min", "hash(name_norm)", where=_NAMED), Fact("h_name_hi", "max", "hash(name_norm)", where=_NAMED),
    )),
}


def _source_facts(table: str, rows: str, facts: tuple[Fact, ...]) -> str:
    """``CREATE TABLE <table>``: one row per person of a source's ``rows``, its facts. Persons
    with one row are projected (:meth:`Fact.single`); the few with several are grouped."""
    return f"""
CREATE OR REPLACE TABLE {table} AS
WITH several AS (SELECT person_id FROM {rows} GROUP BY person_id HAVING count(*) > 1)
SELECT person_id, {', '.join(f.single() for f in facts)}
FROM {rows} ANTI JOIN several USING (person_id)
UNION ALL
SELECT person_id, {', '.join(f.grouped() for f in facts)}
FROM {rows} SEMI JOIN several USING (person_id)
GROUP BY person_id"""


def _grouped_facts(table: str, rows: str, facts: tuple[Fact, ...]) -> str:
    """The same table by grouping every person (the reference :func:`_source_facts` is tested against)."""
    return f"CREATE OR REPLACE TABLE {table} AS SELECT person_id, {', '.join(f.grouped() for f in facts)} FROM {rows} GROUP BY person_id"


# One row per person: each source's facts, FULL JOINed. Sets (several units, several budget
# units) are reduced to their lowest value and whether they have more than one (``varies``):
# one value for almost everyone; the rare persons with several get exact answers in ``people_multi``.
PEOPLE_SQL = """
CREATE OR REPLACE TABLE people AS
SELECT coalesce(sp.person_id, fp.person_id, op.person_id, hp.person_id) AS person_id,
       coalesce(s_records, 0) AS s_records, s_unit, s_unit_varies, s_name,
       coalesce(s_est, false) AS s_est, coalesce(s_non_est, false) AS s_non_est,
       coalesce(s_est_funded_before, false) AS s_est_funded_before, coalesce(s_funded, false) AS s_funded,
       coalesce(s_restricted, false) AS s_restricted, coalesce(s_missing_slip, false) AS s_missing_slip, s_post,
       coalesce(f_rows, 0) AS f_rows, f_dwbm_min, f_dwbm_varies, coalesce(f_est, false) AS f_est,
       coalesce(f_non_est, false) AS f_non_est, coalesce(f_retired, false) AS f_retired, coalesce(f_budget, false) AS f_budget,
       coalesce(f_self_funded, false) AS f_self_funded,
       coalesce(f_credit_rows, 0) AS f_credit_rows, f_credit_min, f_credit_varies, f_unit, f_name, f_pay,
       coalesce(o_rows, 0) AS o_rows, coalesce(o_leader, false) AS o_leader, coalesce(o_unit_rows, 0) AS o_unit_rows,
       o_unit, o_unit_varies,
       CASE WHEN o_principal THEN 'principal' WHEN o_deputy THEN 'deputy' END AS leader_level,
       cadre_rank, coalesce(o_rank_over, false) AS o_rank_over,
       coalesce(h_rows, 0) AS h_rows, coalesce(h_insured, false) AS h_insured,
       coalesce(h_retired_by_end, false) AS h_retired_by_end, h_retired_on,
       CASE WHEN h_insured THEN '参保缴费' WHEN h_suspended THEN '暂停缴费' WHEN h_ended THEN '终止参保' END AS insured_status,
       CASE WHEN h_retired THEN '退休' WHEN h_working THEN '在职' END AS hr_status, h_name,
       -- IDENTITY_CONFLICT: a stated birth date or sex the ID contradicts, or two different names
       coalesce(s_conflict OR o_conflict
                OR least(s_name_lo, f_name_lo, o_name_lo, h_name_lo) <> greatest(s_name_hi, f_name_hi, o_name_hi, h_name_hi),
                false) AS i_conflict
FROM sp FULL JOIN fp USING (person_id) FULL JOIN op USING (person_id) FULL JOIN hp USING (person_id)
"""


def _people(con, period: str, grouped: bool = False) -> None:
    """The table ``people``: each source's facts (tables sp, fp, op, hp), then joined."""
    make = _grouped_facts if grouped else _source_facts
    for table, (rows, facts) in SOURCE_FACTS.items():
        con.execute(_sql(make(table, rows, facts), period))
    con.execute(PEOPLE_SQL)
    for table in SOURCE_FACTS:
        con.execute(f"DROP TABLE {table}")


# Exact answers for the few persons whose sets have more than one member.
PEOPLE_MULTI_SQL = """
CREATE OR REPLACE TABLE people_multi AS
WITH multi AS (
    SELECT person_id, s_unit FROM people
    WHERE f_credit_varies OR o_unit_varies OR (o_unit_rows < o_rows AND o_unit_rows > 0) OR f_dwbm_varies
)
SELECT m.person_id,
       coalesce(bool_or(r.source = 'finance' AND r.unit_code = m.s_unit), false) AS f_has_s_unit,
       coalesce(bool_or(r.source = 'org' AND r.unit_code = m.s_unit), false) AS o_has_s_unit,
       string_agg(DISTINCT r.dwbm, ';' ORDER BY r.dwbm) FILTER (WHERE r.source = 'finance') AS budget_unit_codes
FROM multi m JOIN r USING (person_id)
GROUP BY m.person_id
"""

# Person-level codes: one pass over people, each code one condition of the catalogue.
# The numbers behind them: every person finding carries the same facts, merged with the
# code's own (``Finding.details``); the facts are gathered for flagged persons only.
# (Joined as text, not with json_merge_patch: a merge patch deletes the keys whose value is
# null, and a null is a documented value of several fields.)
_DETAILS = "CASE pc.code " + " ".join(
    f"WHEN '{f.code}' THEN CAST(substr(CAST(pc.base AS VARCHAR), 1, length(CAST(pc.base AS VARCHAR)) - 1) || ',' "
    f"|| substr(CAST({f.details} AS VARCHAR), 2) AS JSON)"
    for f in F.PERSON_CODES.values() if f.details
) + " ELSE pc.base END"

PERSON_FINDINGS_SQL = """
CREATE OR REPLACE TABLE person_findings AS
WITH
flagged AS (
    SELECT * FROM (
        SELECT p.*, d.others, d.names AS set_names,
               list_filter([""" + ", ".join(f"CASE WHEN {f.sql} THEN '{f.code}' END" for f in F.PERSON_CODES.values()) + """],
                           lambda c: c IS NOT NULL) AS codes
        FROM people p LEFT JOIN people_multi m USING (person_id) LEFT JOIN identity_sets d USING (person_id))
    WHERE len(codes) > 0
),
mine AS MATERIALIZED (SELECT * FROM r WHERE person_id IN (SELECT person_id FROM flagged)),   -- read once, used five times
facts AS (
    SELECT person_id,
           list(DISTINCT unit_code ORDER BY unit_code) FILTER (WHERE source = 'staffing') AS staffing_units,
           list(DISTINCT dwbm ORDER BY dwbm) FILTER (WHERE source = 'finance') AS paid_by,
           list(DISTINCT unit_code ORDER BY unit_code) FILTER (WHERE source = 'org' AND unit_code IS NOT NULL) AS org_units,
           list(DISTINCT {'source': source, 'name': name_norm} ORDER BY {'source': source, 'name': name_norm}) FILTER (WHERE """ + _NAMED + """) AS names,
           -- who pays how much: one entry per payroll row, with the budget unit's name
           list({'dwbm': dwbm, 'name': b_name, 'unit_code': unit_code, 'rylb': rylb, 'jfly': jfly,
                 'gross_pay': CAST(round(yfgz, 2) AS DECIMAL(18, 2))} ORDER BY dwbm, rylb, yfgz)
               FILTER (WHERE source = 'finance') AS payments
    FROM mine LEFT JOIN (SELECT dwbm AS b_dwbm, dwmc AS b_name FROM budget_units) b ON b.b_dwbm = mine.dwbm
    GROUP BY person_id
),
unit_list AS (   -- every unit the person's records name, with its name and the systems that name it
    SELECT person_id, list({'unit_code': unit_code, 'name': name, 'sources': sources} ORDER BY unit_code) AS units
    FROM (SELECT person_id, unit_code, any_value(u.name) AS name, list(DISTINCT source ORDER BY source) AS sources
          FROM mine LEFT JOIN (SELECT unit_code, name FROM units) u USING (unit_code)
          WHERE unit_code IS NOT NULL AND source <> 'hr' GROUP BY person_id, unit_code)
    GROUP BY person_id
),
conflicts AS (   -- IDENTITY_CONFLICT: each stated birth date or sex the ID contradicts
    SELECT person_id, list(DISTINCT {'source': source, 'field': field, 'value': value}
                                                ORDER BY {'source': source, 'field': field, 'value': value}) AS conflicts FROM (
        """ + "\n        UNION ALL\n        ".join(
            f"SELECT person_id, source, '{field}' AS field, trim({field}) AS value FROM mine "
            f"WHERE source = '{source}' AND id_valid AND {condition}" for (source, field), condition in _CONTRADICTS.items()) + f"""
    ) GROUP BY person_id
),
rank_over AS (   -- LEADER_RANK_MISMATCH: each leadership row above its unit's limit
    SELECT o.person_id, list({{'unit_code': o.unit_code, 'ldlb': o.ldlb, 'zwcc': trim(o.zwcc), 'limit': lim.max_zwcc}}
                             ORDER BY o.unit_code, o.ldlb) AS rank_over
    FROM mine o {_rank_joins('o', 'JOIN')}
    WHERE o.source = 'org' AND o.sfld = '1' AND {_RANK_OVER}
    GROUP BY o.person_id
),
self_funded AS (   -- FUNDING_MISMATCH: each budget unit that pays from the budget for a self-funded unit
    SELECT f.person_id, list(DISTINCT {{'dwbm': f.dwbm, 'unit_code': f.unit_code, 'rylb': f.rylb}}
                                  ORDER BY {{'dwbm': f.dwbm, 'unit_code': f.unit_code, 'rylb': f.rylb}}) AS self_funded_payers
    FROM mine f JOIN units u ON u.unit_code = f.unit_code
    WHERE f.source = 'finance' AND {_self_funded('f', 'u.funding')}
    GROUP BY f.person_id
),
per_code AS (
    SELECT unnest(fl.codes) AS code, fl.*, fa.names, c.conflicts, ro.rank_over, sf.self_funded_payers,
           json_object('staffing_units', fa.staffing_units, 'staffing_records', fl.s_records, 'paid_by', fa.paid_by,
                       'gross_pay', CAST(round(fl.f_pay, 2) AS DECIMAL(18, 2)), 'org_units', fa.org_units, 'retired_on', fl.h_retired_on,
                       'insured', fl.h_insured, 'payments', fa.payments, 'units', ul.units,
                       'paid_as', list_filter(['在编', '编外'], lambda x: (x = '在编' AND fl.f_est) OR (x = '编外' AND fl.f_non_est))) AS base
    FROM flagged fl
    LEFT JOIN facts fa USING (person_id) LEFT JOIN unit_list ul USING (person_id) LEFT JOIN conflicts c USING (person_id)
    LEFT JOIN rank_over ro USING (person_id) LEFT JOIN self_funded sf USING (person_id)
)
SELECT pc.code, pc.person_id AS id_number,
       coalesce(pc.s_unit, pc.f_unit, pc.o_unit) AS f_unit_code,
       CASE WHEN pc.s_records > 0 THEN us.region_code
            WHEN pc.f_rows > 0 THEN b.qhdm
            ELSE uo.region_code END AS region_code,
       {_DETAILS} AS details
FROM per_code pc
LEFT JOIN units us ON us.unit_code = pc.s_unit
LEFT JOIN units uo ON uo.unit_code = pc.o_unit
LEFT JOIN budget_units b ON b.dwbm = pc.f_dwbm_min
"""

# Per-unit counts, each summable across partitions: every person is in exactly one
# partition, so distinct persons per unit add up (``reconcile_part`` / ``combine_parts``).
UNIT_PARTIALS_SQL = {
    "unit_counts": """
        SELECT unit_code, personnel_class, quota_type, grouping(quota_type) AS per_unit, count(DISTINCT person_id) AS actual
        FROM s WHERE personnel_class IN ('establishment', 'non_establishment')
        GROUP BY GROUPING SETS ((unit_code, personnel_class, quota_type), (unit_code, personnel_class))""",
    "unit_posts": """
        SELECT unit_code, post_category, count(DISTINCT person_id) AS actual
        FROM s WHERE personnel_class = 'non_establishment' GROUP BY ALL""",
    "unit_leaders": """
        SELECT unit_code, CASE ldlb WHEN '正职' THEN 'principal' WHEN '副职' THEN 'deputy' END AS level, count(*) AS actual
        FROM o WHERE sfld = '1' AND ldlb IN ('正职', '副职') GROUP BY ALL""",
    "unit_revoked": """
        SELECT u.unit_code,
               count(DISTINCT r.person_id) FILTER (WHERE r.source = 'staffing') AS staffed,
               count(DISTINCT r.person_id) FILTER (WHERE r.source = 'finance') AS paid
        FROM (SELECT unit_code FROM units WHERE status = 'revoked') u
        JOIN r ON r.unit_code = u.unit_code AND r.source IN ('staffing', 'finance')
        GROUP BY u.unit_code""",
}
# How combine_parts adds the partitions' partials up.
UNIT_PARTIALS_SUM = {
    "unit_counts": "SELECT unit_code, personnel_class, quota_type, per_unit, sum(actual)::BIGINT AS actual FROM parts GROUP BY ALL",
    "unit_posts": "SELECT unit_code, post_category, sum(actual)::BIGINT AS actual FROM parts GROUP BY ALL",
    "unit_leaders": "SELECT unit_code, level, sum(actual)::BIGINT AS actual FROM parts GROUP BY ALL",
    "unit_revoked": "SELECT unit_code, sum(staffed)::BIGINT AS staffed, sum(paid)::BIGINT AS paid FROM parts GROUP BY ALL",
}

# The unit-level codes and INVALID_ID: each the catalogue's query over the summed partials.
UNIT_FINDINGS_SQL = "\nUNION ALL BY NAME\n".join(
    f"SELECT '{f.code}' AS code, * FROM ({f.sql})" for f in F.UNIT_CODES.values())


# Each unit's approved and actual numbers, for the monthly report (数据月报). Counted the
# way the unit codes count (distinct resolved persons active in staffing; organisation
# rows with sfld = '1'), so the report's totals and the findings never disagree.
# measure 'quota': item = quota type (all but the cap); 'non_establishment': item = post
# category (approved null), plus item 'total' with approved = the cap; 'leader_posts':
# item = principal / deputy.
UNIT_STATS_SQL = """
WITH
est AS (SELECT unit_code, quota_type AS item, actual FROM unit_counts WHERE personnel_class = 'establishment' AND per_unit = 0),
q AS (SELECT unit_code, quota_type AS item, approved FROM quotas WHERE quota_type IS DISTINCT FROM 'non_establishment_cap'),
ne AS (SELECT unit_code, post_category AS item, actual FROM unit_posts
       UNION ALL
       SELECT unit_code, NULL, actual FROM unit_counts WHERE personnel_class = 'non_establishment' AND per_unit = 1),
cap AS (SELECT unit_code, 'total' AS item, approved FROM quotas WHERE quota_type = 'non_establishment_cap'),
ld AS (SELECT unit_code, level AS item, actual FROM unit_leaders),
stats AS (
    SELECT 'quota' AS measure, unit_code, item, coalesce(q.approved, 0) AS approved, coalesce(est.actual, 0) AS actual
    FROM q FULL JOIN est USING (unit_code, item)
    UNION ALL
    SELECT 'non_establishment', coalesce(ne.unit_code, cap.unit_code), coalesce(ne.item, 'total'), cap.approved,
           coalesce(ne.actual, 0)
    FROM ne FULL JOIN cap ON cap.unit_code = ne.unit_code AND cap.item = coalesce(ne.item, 'total')
    UNION ALL
    SELECT 'leader_posts', unit_code, item, coalesce(p.approved, 0), coalesce(ld.actual, 0)
    FROM (SELECT unit_code, level AS item, approved FROM leader_posts) p FULL JOIN ld USING (unit_code, item)
)
SELECT st.measure, st.unit_code, u.region_code, u.status AS unit_status, st.item,
       CAST(st.approved AS BIGINT) AS approved, CAST(st.actual AS BIGINT) AS actual
FROM stats st LEFT JOIN units u USING (unit_code)
ORDER BY ALL
"""

def _sql(text: str, period: str) -> str:
    bounds = {"$month_start_date": f"DATE '{P.first_day(period)}'", "$month_start": f"'{P.first_day(period)}'",
              "$month_end": f"DATE '{P.last_day(period)}'"}
    for k, v in bounds.items():   # longest first: $month_start is a prefix of $month_start_date
        text = text.replace(k, v)
    return text


def identity_sets(con, persons: str, records: str) -> int:
    """DUPLICATE_IDENTITY's sets (OUTPUTS.md): persons whose IDs agree in digits 1-14 and who
    share a normalised name on a record of each, joined transitively (A~B and B~C: one set),
    keyed on the lowest ID. Writes table ``identity_sets`` (person_id = the lowest ID, others,
    names) and returns how many there are.

    ``persons`` is a query of every person's ID, ``records`` the standardised records. Only
    persons that share digits 1-14 with another are looked at, and their names are read
    from the records whose own ID is valid and from the links (the records linked to them):
    two narrow reads, not the resolved view. The sets are then closed by propagating the
    lowest ID through the shared names until nothing changes (one or two rounds)."""
    con.execute(f"""
        CREATE OR REPLACE TABLE identity_edges AS
        WITH twins AS (SELECT substr(person_id, 1, 14) AS born FROM ({persons}) GROUP BY ALL HAVING count(*) > 1),
             used AS (SELECT id_clean AS person_id, name_norm FROM {records} WHERE id_valid
                      UNION ALL
                      SELECT person_id, name_norm FROM links WHERE person_id IS NOT NULL),
             named AS (SELECT DISTINCT person_id, name_norm FROM used
                       WHERE substr(person_id, 1, 14) IN (SELECT born FROM twins) AND coalesce(name_norm, '') <> '')
        SELECT substr(person_id, 1, 14) || chr(31) || name_norm AS link, name_norm, person_id FROM named
        QUALIFY count(*) OVER (PARTITION BY substr(person_id, 1, 14), name_norm) > 1
    """)
    con.execute("""CREATE OR REPLACE TABLE identity_label AS
                   SELECT person_id, min(person_id) OVER (PARTITION BY link) AS label FROM identity_edges""")
    while True:
        con.execute("""
            CREATE OR REPLACE TABLE identity_next AS
            WITH per_person AS (SELECT person_id, min(label) AS label FROM identity_label GROUP BY person_id),
                 per_link AS (SELECT e.link, min(p.label) AS label FROM identity_edges e JOIN per_person p USING (person_id)
                              GROUP BY e.link)
            SELECT e.person_id, l.label FROM identity_edges e JOIN per_link l USING (link)""")
        changed = con.execute("""
            SELECT count(*) FROM (SELECT person_id, min(label) AS label FROM identity_label GROUP BY ALL) a
            JOIN (SELECT person_id, min(label) AS label FROM identity_next GROUP BY ALL) b USING (person_id)
            WHERE a.label <> b.label""").fetchone()[0]
        con.execute("CREATE OR REPLACE TABLE identity_label AS SELECT * FROM identity_next")
        if not changed:
            break
    con.execute("""
        CREATE OR REPLACE TABLE identity_sets AS
        WITH member AS (SELECT person_id, min(label) AS label FROM identity_label GROUP BY ALL)
        SELECT m.label AS person_id,
               list(DISTINCT m.person_id ORDER BY m.person_id) FILTER (WHERE m.person_id <> m.label) AS others,
               list(DISTINCT e.name_norm ORDER BY e.name_norm) AS names
        FROM member m JOIN identity_edges e USING (person_id) GROUP BY m.label""")
    return con.execute("SELECT count(*) FROM identity_sets").fetchone()[0]


def _person_stage(con, period: str, as_of: str, steps: "_Steps", records: str | None = None) -> None:
    """Everything that needs only the persons at hand: their facts, their codes, their roster
    rows, and the per-unit partial counts (all of a person's records are always together).
    The identity sets cross persons: computed here from ``records`` (the standardised
    records), or, when none are given, already there (a partition reads the plan's).
    ``steps``: where each part is told as it ends (:class:`_Steps`)."""
    _people(con, period)
    steps.told(f"{con.execute('SELECT count(*) FROM people').fetchone()[0]:,} persons' facts joined")
    con.execute(PEOPLE_MULTI_SQL)
    if records is not None:
        identity_sets(con, "SELECT person_id FROM people", records)
    con.execute(_sql(PERSON_FINDINGS_SQL, period))
    steps.told(f"{con.execute('SELECT count(*) FROM person_findings').fetchone()[0]:,} person findings")
    for name, query in UNIT_PARTIALS_SQL.items():
        con.execute(f"CREATE OR REPLACE TABLE {name} AS {query}")
    _roster(con, period, as_of)
    steps.told(f"roster of {con.execute('SELECT count(*) FROM roster').fetchone()[0]:,} built")


def _unit_stage(con) -> None:
    """The unit-level codes from the (summed) partial counts, INVALID_ID from the links, and
    the final findings: the office's region and the unit of every finding."""
    severity = " ".join(f"WHEN '{c}' THEN '{v}'" for c, v in SEVERITY.items())
    con.execute(f"""
        CREATE OR REPLACE TABLE findings AS
        WITH raw AS (SELECT code, id_number, f_unit_code, region_code, details FROM person_findings
                     UNION ALL BY NAME
                     SELECT * FROM ({UNIT_FINDINGS_SQL}))
        SELECT code, CASE code {severity} END AS severity,
               coalesce(raw.region_code, u.region_code, raw.fallback_region) AS region_code,
               coalesce(raw.unit_code, raw.f_unit_code) AS unit_code, id_number, quota_type, level, source, raw_value,
               CAST(details AS VARCHAR) AS details
        FROM raw LEFT JOIN units u ON u.unit_code = coalesce(raw.unit_code, raw.f_unit_code)
    """)


# --- evidence (OUTPUTS.md "Evidence"): the source records each finding rests on -------------------
#
# One row per finding and record: the finding's key columns, the record's source and key in
# its own system, and (for a source record) its rec_no, whose fields as received are read
# from the raw file std/_summary.json names (``received``); a staffing reference item (unit, quota, leader post) has
# ``ref`` set and its facts from the reference tables. Which records: the catalogue's
# evidence sources for person codes (every used record of the person, or of every person of
# a DUPLICATE_IDENTITY set, plus the unit item of LEADER_RANK_MISMATCH's rows and of
# FUNDING_MISMATCH's paying units); for unit codes, the item and every record counted.

# A finding's key columns (the alert_key is made of the code's own among them).
FINDING_KEY_COLUMNS = ["code", "unit_code", "quota_type", "level", "id_number", "source", "raw_value"]


def _cols(alias: str | None = None) -> str:
    return ", ".join(f"{alias}.{c}" if alias else c for c in FINDING_KEY_COLUMNS)
# The key of a staffing reference item (OUTPUTS.md "Evidence"), over its own table's columns.
REFERENCE_KEYS = {"units": "'units|' || unit_code", "quotas": "'quotas|' || unit_code || '|' || quota_type",
                  "leader_posts": "'leader_posts|' || unit_code || '|' || level"}


def _evidence_sql() -> str:
    pairs = ", ".join(f"('{f.code}', '{s}')" for f in F.PERSON_CODES.values() for s in f.record_sources())
    keys = _cols("f")
    # the unit codes (scope unit), whose evidence is every record the unit's count took (see unit_ev)
    counted = F._in(c for c, f in F.UNIT_CODES.items() if f.scope == "unit")
    return f"""
CREATE OR REPLACE TABLE evidence AS
WITH f AS (SELECT DISTINCT {_cols()} FROM findings),
ev_sources AS (SELECT * FROM (VALUES {pairs}) t(code, ev_source)),
members AS (   -- whose records: the person; for DUPLICATE_IDENTITY every person of the set
    SELECT f.*, f.id_number AS member FROM f WHERE f.code IN (SELECT code FROM ev_sources) AND f.code <> 'DUPLICATE_IDENTITY'
    UNION ALL
    SELECT f.*, unnest(list_prepend(d.person_id, coalesce(d.others, []))) AS member
    FROM f JOIN identity_sets d ON d.person_id = f.id_number WHERE f.code = 'DUPLICATE_IDENTITY'
),
unit_findings AS (SELECT DISTINCT unit_code FROM f WHERE code IN {counted}),
rr AS MATERIALIZED (   -- the resolved records read once: those of the persons and of the units found
    SELECT person_id, source, record_key, rec_no, sfld, ldlb, zwcc, unit_code, rylb, jfly, personnel_class, quota_type
    FROM r WHERE person_id IN (SELECT member FROM members) OR unit_code IN (SELECT unit_code FROM unit_findings)
),
person_ev AS (
    SELECT {_cols("m")}, r.source AS ev_source, r.record_key, r.rec_no,
           NULL AS ref, r.sfld, r.ldlb, r.zwcc, r.unit_code AS rec_unit, r.rylb, r.jfly
    FROM members m JOIN ev_sources e USING (code) JOIN rr r ON r.person_id = m.member AND r.source = e.ev_source
),
unit_items AS (   -- LEADER_RANK_MISMATCH: the unit of each row above its limit; FUNDING_MISMATCH: the paying unit
    SELECT DISTINCT {_cols("p")}, 'staffing' AS ev_source,
           u.item_key AS record_key, NULL::BIGINT AS rec_no, 'units' AS ref
    FROM person_ev p JOIN (SELECT *, {REFERENCE_KEYS['units']} AS item_key FROM units) u ON u.unit_code = p.rec_unit
    {_rank_joins('p', unit='rec_unit')}
    WHERE (p.code = 'LEADER_RANK_MISMATCH' AND p.ev_source = 'org' AND p.sfld = '1' AND {_RANK_OVER})
       OR (p.code = 'FUNDING_MISMATCH' AND p.ev_source = 'finance' AND {_self_funded('p', 'u.funding')})
),
unit_ev AS (   -- the unit codes: the item where there is one, and every record counted
    SELECT {keys}, 'staffing' AS ev_source, q.item_key AS record_key, NULL::BIGINT AS rec_no, 'quotas' AS ref
    FROM f JOIN (SELECT *, {REFERENCE_KEYS['quotas']} AS item_key FROM quotas) q ON q.unit_code = f.unit_code
     AND ((f.code = 'OVER_QUOTA' AND q.quota_type = f.quota_type)
          OR (f.code = 'NON_ESTABLISHMENT_OVER_CAP' AND q.quota_type = 'non_establishment_cap')
          OR (f.code = 'HIGH_VACANCY' AND q.quota_type IS DISTINCT FROM 'non_establishment_cap'))
    UNION ALL
    SELECT {keys}, 'staffing', p.item_key, NULL, 'leader_posts'
    FROM f JOIN (SELECT *, {REFERENCE_KEYS['leader_posts']} AS item_key FROM leader_posts) p ON f.code = 'LEADER_OVER_LIMIT' AND p.unit_code = f.unit_code AND p.level = f.level
    UNION ALL
    SELECT {keys}, 'staffing', u.item_key, NULL, 'units'
    FROM f JOIN (SELECT *, {REFERENCE_KEYS['units']} AS item_key FROM units) u ON f.code = 'REVOKED_UNIT_STAFFED' AND u.unit_code = f.unit_code
    UNION ALL
    SELECT {keys}, r.source, r.record_key, r.rec_no, NULL
    FROM f JOIN rr r ON r.unit_code = f.unit_code AND f.code IN {counted}
    WHERE (f.code = 'OVER_QUOTA' AND r.source = 'staffing' AND r.personnel_class = 'establishment' AND r.quota_type = f.quota_type)
       OR (f.code = 'NON_ESTABLISHMENT_OVER_CAP' AND r.source = 'staffing' AND r.personnel_class = 'non_establishment')
       OR (f.code = 'HIGH_VACANCY' AND r.source = 'staffing' AND r.personnel_class = 'establishment')
       OR (f.code = 'LEADER_OVER_LIMIT' AND r.source = 'org' AND r.sfld = '1'
           AND r.ldlb = CASE f.level WHEN 'principal' THEN '正职' WHEN 'deputy' THEN '副职' END)
       OR (f.code = 'REVOKED_UNIT_STAFFED' AND r.source IN ('staffing', 'finance'))
    UNION ALL   -- INVALID_ID: every used record carrying that raw value in that source
    SELECT {keys}, l.source, l.record_key, l.rec_no, NULL
    FROM f JOIN links l ON f.code = 'INVALID_ID' AND l.source = f.source AND l.raw_trim = f.raw_value
)
SELECT DISTINCT * FROM (
    SELECT {_cols()}, ev_source, record_key, rec_no, ref FROM person_ev
    UNION ALL SELECT * FROM unit_items
    UNION ALL SELECT * FROM unit_ev)
"""


def _evidence(con, std: str) -> int:
    """The table ``evidence`` with each record's facts (JSON, the fields as received) and key in its own
    system: read from the raw files the model was standardised from
    (:func:`include.pipeline.received.received_records`), or, for a model standardised before it kept
    references, from its copies (``received_<source>``; its records carry their keys)."""
    import os

    from include.pipeline.received import received_records

    con.execute(_evidence_sql())
    fs, _ = fsspec.core.url_to_fs(std)
    received = _summary(fs, std).get("received") or {}
    records, read = [], []
    for source in ("staffing", "org", "finance", "hr"):
        wanted = f"SELECT rec_no FROM evidence WHERE ev_source = '{source}' AND ref IS NULL"
        if source in received:
            rec_nos = [r[0] for r in con.execute(wanted).fetchall()]
            read += [(source, *row) for row in received_records(source, received[source], rec_nos, fs)]
        elif os.path.exists(path := f"{std}/received_{source}.parquet"):
            records.append(f"""SELECT '{source}' AS ev_source, file_row_number AS rec_no, NULL AS record_key,
                                      CAST(json_merge_patch(to_json(t), '{{"file_row_number": null}}') AS VARCHAR) AS facts
                               FROM read_parquet({_q(path)}, file_row_number = true) t WHERE file_row_number IN ({wanted})""")
        # (neither: a test's hand-built std/, or HR in a period with no export)
    if received:   # read from the raw files, handed over as lists (an Arrow table of them would import pandas)
        con.execute("""CREATE OR REPLACE TEMP TABLE received_records AS
                       SELECT unnest($1::VARCHAR[]) AS ev_source, unnest($2::BIGINT[]) AS rec_no,
                              unnest($3::VARCHAR[]) AS record_key, unnest($4::VARCHAR[]) AS facts""",
                    [[r[i] for r in read] for i in range(4)])
        records.append("SELECT ev_source, rec_no, record_key, facts FROM received_records")
    refs = [f"SELECT '{table}' AS ev_source, {key} AS ref_key, CAST(to_json(t) AS VARCHAR) AS facts "
            f"FROM {table} t WHERE {key} IN (SELECT record_key FROM evidence WHERE ref = '{table}')"
            for table, key in REFERENCE_KEYS.items()]
    none = "SELECT NULL AS ev_source, NULL::BIGINT AS rec_no, NULL AS record_key, NULL AS facts"
    con.execute(f"""
        CREATE OR REPLACE TABLE evidence AS
        SELECT e.* REPLACE (coalesce(e.record_key, rf.record_key) AS record_key), coalesce(rf.facts, xf.facts) AS facts
        FROM evidence e
        LEFT JOIN ({' UNION ALL '.join(records) if records else none}) rf
               ON e.ref IS NULL AND rf.ev_source = e.ev_source AND rf.rec_no = e.rec_no
        LEFT JOIN ({' UNION ALL '.join(refs)}) xf ON xf.ev_source = e.ref AND xf.ref_key = e.record_key
    """)
    return con.execute("SELECT count(*) FROM evidence").fetchone()[0]


# The work files' codec. (LZ4 instead, paired at 2M, the whole reconcile alternating: 14.1-14.9 s
# against 14.2-14.7 s with ZSTD, and a roster of 121 MB against 70 MB: nothing gained.)
CODEC = "zstd"


def _copy(con, out: str, queries: dict) -> None:
    for name, query in queries.items():
        con.execute(f"COPY ({query}) TO {_q(f'{out}/{name}.parquet')} (FORMAT parquet, COMPRESSION {CODEC})")


OUTPUT_QUERIES = {
    "findings": f"SELECT {', '.join(FINDING_COLUMNS)} FROM findings ORDER BY ALL",
    "evidence": "SELECT * FROM evidence ORDER BY ALL",
    "roster": f"SELECT {', '.join(ROSTER_COLUMNS)} FROM roster ORDER BY id_number",
    "unit_stats": UNIT_STATS_SQL,
}


def _summarise(con, fs, out: str, period: str, t0: float, extra: dict | None = None) -> dict:
    counts = dict(con.execute("SELECT code, count(*) FROM findings GROUP BY code").fetchall())
    roster_n = con.execute("SELECT count(*) FROM roster").fetchone()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    classes = dict(con.execute("SELECT personnel_class, count(*) FROM roster GROUP BY ALL").fetchall())
    seconds = time.perf_counter() - t0
    summary = {"period": period, "dir": out, "findings": {c: int(counts.get(c, 0)) for c in SEVERITY},
               "roster": int(roster_n), "roster_by_class": {k: int(v) for k, v in classes.items()},
               "quarantined": int(quarantined), "seconds": round(seconds, 2), **(extra or {})}
    with fs.open(f"{out}/_reconcile.json", "w") as fh:
        json.dump(summary, fh, ensure_ascii=False, indent=1)
    log.info("reconciled %s in %.1fs: roster %s persons, %s findings, %s records quarantined",
             period, seconds, f"{roster_n:,}", f"{sum(counts.values()):,}", quarantined)
    return summary


def _summary(fs, std: str) -> dict:
    """Standardise's summary of the model in ``std``."""
    with fs.open(f"{std}/_summary.json") as fh:
        return json.load(fh)


def _period(fs, std: str) -> str:
    return _summary(fs, std)["period"]


def _out_dir(std: str, out: str | None) -> str:
    """The output directory: ``out``, or the run's work directory ``std/`` is in."""
    return out or std.rsplit("/std", 1)[0]


def _start(std: str, out: str | None, threads, memory_limit):
    """The filesystem, the period, the output directory (:func:`_out_dir`), a clock, a connection."""
    fs, _ = fsspec.core.url_to_fs(std)
    return fs, _period(fs, std), _out_dir(std, out), time.perf_counter(), connect(threads, memory_limit)


class _Steps:
    """Each step of a reconcile told as it ends (what it made, how long, how far in): a province's
    reconcile is a quarter of a minute of statements that print nothing, and an operator must
    tell slow from stuck."""

    def __init__(self, what: str, t0: float):
        self.what, self.t0, self.last = what, t0, time.perf_counter()

    def told(self, step: str) -> None:
        now = time.perf_counter()
        log.info("%s: %s in %.1fs; %.1fs in", self.what, step, now - self.last, now - self.t0)
        self.last = now


@holds_lock(lambda a: f"{_work_dir(a)}/outputs")
def reconcile(std: str, out: str | None = None, as_of: str | None = None, threads: int | None = None,
              memory_limit: str | None = None) -> dict:
    """Resolve, reconcile and build the roster from a ``std/`` directory in one go. Returns a summary."""
    fs, period, out, t0, con = _start(std, out, threads, memory_limit)
    steps = _Steps(f"reconcile {period}", t0)
    try:
        resolve(con, std)
        linked, unlinked = con.execute("SELECT count(person_id), count(*) - count(person_id) FROM links").fetchone()
        steps.told(f"records resolved ({linked:,} invalid IDs linked to a person, {unlinked:,} not)")
        _person_stage(con, period, as_of or str(P.last_day(period)), steps, _records(std))
        # the persons' facts are in their codes and roster rows now: what they held (about 1 GB at
        # 2M persons) is let go before the roster is sorted and written and the evidence is read
        con.execute("DROP TABLE people")
        _unit_stage(con)
        _evidence(con, std)
        found, evidence = con.execute("SELECT (SELECT count(*) FROM findings), (SELECT count(*) FROM evidence)").fetchone()
        steps.told(f"units checked against their quotas, {found:,} findings with {evidence:,} evidence rows")
        _copy(con, out, {"links": "SELECT * FROM links", "quarantine": "SELECT * FROM quarantine", **OUTPUT_QUERIES})
        steps.told("roster, findings and evidence written")
        return _summarise(con, fs, out, period, t0)
    finally:
        con.close()


# --- the same, split by region (dynamic task mapping across Celery workers) -----------------
#
# plan_parts (one task, over compact data): links every invalid ID (candidates may be in
# any region) and gives each person a home region (the region of their own unit, by the
# rule at the top of this module, cut to ``level``): parts/home.parquet, person -> region.
# reconcile_part (one task per partition): reads the records of its persons only, all of
# a person's records together, and computes people, person codes, roster rows and per-unit
# partial counts. (Writing each partition's records out in the plan instead made the
# plan, a serial step, cost as much as a whole reconcile: 12.9 s and 3.9 GB at 2M.) combine_parts (one task): sums the
# partials (a person is in one partition only, so distinct counts add up), finds the unit
# codes and INVALID_ID, and writes the same files as reconcile(), row for row.

LEVELS = {"province": 2, "city": 4, "county": 6}     # the split levels: the region code's digits kept
NO_REGION = "none"
# Level ``whole`` does not split: one partition, reconciled in one piece by reconcile() itself
# (the plan and the combine have nothing to do). On a single machine that is the fastest: at
# 1M persons the one-piece run took 26.5 s where the split by city took 49.1 s (one after the
# other in one process, with a data generator running beside them); its memory is the whole
# province's, held by DuckDB's limit (ROSTER_SYNC_RECONCILE_MEMORY): 2.1 GB at 2M in bench_night
# with the default 2GB, 3.3 GB without a limit.
WHOLE = "whole"
REGION_LEVELS = (*LEVELS, WHOLE)


def part_key_sql(level: str, region: str = "region") -> str:
    if level not in LEVELS:
        raise ValueError(f"region level {level!r}: use one of {', '.join(LEVELS)}")
    n = LEVELS[level]
    return (f"CASE WHEN {region} IS NULL THEN '{NO_REGION}' "
            f"ELSE rpad(substr({region}, 1, {n}), 6, '0') END")


def _work_dir(args) -> str:
    return _out_dir(args["std"], args["out"])


@holds_lock(lambda a: f"{_work_dir(a)}/parts")
def plan_parts(std: str, out: str | None = None, level: str = "city", threads: int | None = None,
               memory_limit: str | None = None) -> dict:
    """Write ``parts/home.parquet`` (each person's region) and the global links; returns the partitions and their sizes.
    At level ``whole``: one partition, nothing written, its size not counted (None)."""
    if level not in REGION_LEVELS:
        raise ValueError(f"region level {level!r}: use one of {', '.join(REGION_LEVELS)}")
    if level == WHOLE:
        # nothing to plan: the one partition's persons are counted as it is reconciled (its log says
        # how many); counting them here read every record's ID, 0.4 s at 2M persons, for a log line
        t0 = time.perf_counter()
        fs, _ = fsspec.core.url_to_fs(std)
        period, out = _period(fs, std), _out_dir(std, out)
        if fs.exists(f"{out}/parts"):
            fs.rm(f"{out}/parts", recursive=True)
        log.info("planned %s whole: one partition, reconciled in one piece", period)
        return {"period": period, "std": std, "dir": out, "level": level, "parts": [WHOLE],
                "persons": {WHOLE: None}, "seconds": round(time.perf_counter() - t0, 2)}
    fs, period, out, t0, con = _start(std, out, threads, memory_limit)
    try:
        resolve(con, std)
        con.execute(f"""
            CREATE OR REPLACE TABLE home AS
            WITH sh AS (SELECT person_id, arg_min(unit_code, record_id) AS unit_code FROM s GROUP BY person_id),
                 fh AS (SELECT person_id, min(dwbm) AS dwbm FROM f GROUP BY person_id),
                 oh AS (SELECT person_id, min(unit_code) AS unit_code FROM o GROUP BY person_id),
                 persons AS (SELECT DISTINCT person_id FROM r)
            SELECT p.person_id, {part_key_sql(level, "coalesce(us.region_code, b.qhdm, uo.region_code)")} AS part
            FROM persons p LEFT JOIN sh USING (person_id) LEFT JOIN fh USING (person_id) LEFT JOIN oh USING (person_id)
            LEFT JOIN units us ON us.unit_code = sh.unit_code
            LEFT JOIN budget_units b ON b.dwbm = fh.dwbm
            LEFT JOIN units uo ON uo.unit_code = oh.unit_code
        """)
        if fs.exists(f"{out}/parts"):
            fs.rm(f"{out}/parts", recursive=True)
        fs.makedirs(f"{out}/parts", exist_ok=True)
        con.execute(f"COPY (SELECT part, person_id FROM home ORDER BY part) TO {_q(f'{out}/parts/home.parquet')} "
                    f"(FORMAT parquet, COMPRESSION {CODEC})")
        _copy(con, out, {"links": "SELECT * FROM links", "quarantine": "SELECT * FROM quarantine"})
        # the identity sets cross partitions: found here, read by each part
        identity_sets(con, "SELECT person_id FROM home", _records(std))
        _copy(con, f"{out}/parts", {"identity_sets": "SELECT * FROM identity_sets"})
        sizes = dict(con.execute("SELECT part, count(*) FROM home GROUP BY ALL ORDER BY ALL").fetchall())
    finally:
        con.close()
    seconds = round(time.perf_counter() - t0, 2)
    log.info("planned %s by %s: %d partitions (%s persons) in %.1fs", period, level, len(sizes),
             ", ".join(f"{k} {v:,}" for k, v in sizes.items()), seconds)
    return {"period": period, "std": std, "dir": out, "level": level, "parts": list(sizes),
            "persons": {k: int(v) for k, v in sizes.items()}, "seconds": seconds}


def _planned(con, std: str, out: str) -> None:
    """Reference tables and the links plan_parts wrote, for a partition or the combine step."""
    _reference(con, std)
    con.execute(f"CREATE OR REPLACE TABLE links AS SELECT * FROM read_parquet({_q(f'{out}/links.parquet')})")


@holds_lock(lambda a: f"{_work_dir(a)}/parts/{a['part']}")
def reconcile_part(std: str, out: str, part: str, as_of: str | None = None, threads: int | None = None,
                   memory_limit: str | None = None) -> dict:
    """Reconcile the persons of one partition; writes ``parts/<part>/`` (partition ``whole``: the
    period's outputs themselves, by :func:`reconcile`)."""
    if part == WHOLE:
        summary = reconcile(std, out, as_of, threads, memory_limit)
        return {"part": part, "dir": out, "persons": None, "roster": summary["roster"], "seconds": summary["seconds"]}
    fs, period, out, t0, con = _start(std, out, threads, memory_limit)
    target = f"{out}/parts/{part}"
    try:
        fs.makedirs(target, exist_ok=True)
        _planned(con, std, out)
        con.execute(f"""CREATE OR REPLACE TABLE mine AS SELECT person_id FROM read_parquet({_q(f'{out}/parts/home.parquet')})
                        WHERE part = {_q(part)}""")
        con.execute(f"""CREATE OR REPLACE TABLE r AS SELECT * FROM ({_resolved_sql(con, std)})
                        WHERE person_id IN (SELECT person_id FROM mine)""")
        _source_views(con)
        _read_identity_sets(con, out)
        _person_stage(con, period, as_of or str(P.last_day(period)), _Steps(f"reconcile {period}, partition {part}", t0))
        _copy(con, target, {"person_findings": "SELECT * FROM person_findings",
                            "roster": f"SELECT {', '.join(ROSTER_COLUMNS)} FROM roster",
                            **{name: f"SELECT * FROM {name}" for name in UNIT_PARTIALS_SQL}})
        persons, roster_n = con.execute("SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM roster)").fetchone()
    finally:
        con.close()
    seconds = round(time.perf_counter() - t0, 2)
    log.info("reconciled partition %s of %s: %s persons, roster %s, in %.1fs", part, period, f"{persons:,}",
             f"{roster_n:,}", seconds)
    return {"part": part, "dir": target, "persons": int(persons), "roster": int(roster_n), "seconds": seconds}


@holds_lock(lambda a: f"{_work_dir(a)}/outputs")
def combine_parts(std: str, out: str, parts: list[str], threads: int | None = None,
                  memory_limit: str | None = None) -> dict:
    """The checks that cross regions, on the partitions' compact partials; writes what reconcile() writes
    (partition ``whole``: reconcile() wrote it; its summary is returned)."""
    if list(parts) == [WHOLE]:
        fs, _ = fsspec.core.url_to_fs(out)
        if not fs.exists(f"{out}/_reconcile.json"):
            raise RuntimeError("partitions not reconciled: whole")
        with fs.open(f"{out}/_reconcile.json") as fh:
            return {**json.load(fh), "parts": 1}
    fs, period, out, t0, con = _start(std, out, threads, memory_limit)

    def each(name: str) -> str:
        files = ", ".join(_q(f"{out}/parts/{p}/{name}.parquet") for p in parts)
        return f"read_parquet([{files}], union_by_name = true)"
    try:
        missing = [p for p in parts if not fs.exists(f"{out}/parts/{p}/roster.parquet")]
        if missing:
            raise RuntimeError(f"partitions not reconciled: {', '.join(missing)}")
        _planned(con, std, out)
        con.execute(f"CREATE OR REPLACE VIEW quarantine AS SELECT * FROM read_parquet({_q(f'{out}/quarantine.parquet')})")
        con.execute(f"CREATE OR REPLACE VIEW person_findings AS SELECT * FROM {each('person_findings')}")
        con.execute(f"CREATE OR REPLACE VIEW roster AS SELECT * FROM {each('roster')}")
        for name, query in UNIT_PARTIALS_SUM.items():
            con.execute(f"CREATE OR REPLACE TABLE {name} AS WITH parts AS (SELECT * FROM {each(name)}) {query}")
        _unit_stage(con)
        # the evidence reads the records of every finding's persons and units: the whole resolved view
        con.execute(f"CREATE OR REPLACE VIEW r AS {_resolved_sql(con, std)}")
        _read_identity_sets(con, out)
        _evidence(con, std)
        _copy(con, out, OUTPUT_QUERIES)
        return _summarise(con, fs, out, period, t0, {"parts": len(parts)})
    finally:
        con.close()


def _roster(con, period: str, as_of: str) -> None:
    """The roster from the per-person facts: paid from the budget, or active in a full/partial funded unit."""
    con.execute(f"""
        CREATE OR REPLACE TABLE roster AS
        WITH codes AS (   -- the person's codes, and INVALID_ID where an invalid ID was linked to them
            SELECT person_id, string_agg(DISTINCT code, ';' ORDER BY code) AS alert_codes FROM (
                SELECT id_number AS person_id, code FROM person_findings
                UNION ALL
                SELECT min(person_id), 'INVALID_ID' FROM links GROUP BY source, raw_trim)
            WHERE person_id IS NOT NULL GROUP BY ALL
        ), base AS (
            SELECT p.*, string_split(p.s_post, chr(31)) AS post
            FROM people p WHERE p.f_budget OR p.s_funded
        )
        SELECT '{period}' AS period, DATE '{as_of}' AS as_of, p.person_id AS id_number,
               coalesce(p.s_name, p.f_name, p.h_name) AS name,
               CASE WHEN CAST(substr(p.person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 'M' ELSE 'F' END AS sex,
               strptime(substr(p.person_id, 7, 8), '%Y%m%d')::DATE AS birth_date,
               coalesce(u.region_code, b.qhdm) AS region_code,
               coalesce(p.s_unit, p.f_unit) AS unit_code,
               coalesce(u.name, b.dwmc) AS unit_name,
               CASE WHEN p.s_est THEN 'establishment' WHEN p.s_non_est THEN 'non_establishment'
                    WHEN p.f_retired THEN 'retired' ELSE 'unknown' END AS personnel_class,
               nullif(p.post[1], '') AS quota_type, nullif(p.post[2], '') AS non_establishment_category,
               nullif(p.post[3], '') AS post_category, nullif(p.post[4], '') AS position,
               p.leader_level, p.cadre_rank,
               round(p.f_pay, 2) AS gross_pay,
               CASE WHEN NOT p.f_dwbm_varies THEN p.f_dwbm_min ELSE m.budget_unit_codes END AS budget_unit_codes,
               p.insured_status, p.hr_status,
               p.s_records > 0 AS in_staffing, p.o_rows > 0 AS in_org, p.f_rows > 0 AS in_finance, p.h_rows > 0 AS in_hr,
               coalesce(c.alert_codes, '') AS alert_codes
        FROM base p
        LEFT JOIN people_multi m USING (person_id)
        LEFT JOIN codes c USING (person_id)
        LEFT JOIN units u ON u.unit_code = coalesce(p.s_unit, p.f_unit)
        LEFT JOIN budget_units b ON b.dwbm = p.f_dwbm_min
    """)


def region_level() -> str:
    """The partition level of the region split: ``ROSTER_SYNC_REGION_LEVEL`` (province, city, county, or
    whole: not split). Default ``whole``, the fastest on one machine (the embedded default); the
    compose file's Celery workers split by ``city``, which bounds a worker's memory by its region."""
    import os

    level = os.environ.get("ROSTER_SYNC_REGION_LEVEL", "whole").strip().lower()
    if level not in REGION_LEVELS:
        raise ValueError(f"ROSTER_SYNC_REGION_LEVEL={level!r}: use one of {', '.join(REGION_LEVELS)}")
    return level


def reconcile_by_region(std: str, out: str | None = None, as_of: str | None = None, level: str | None = None) -> dict:
    """plan_parts, every reconcile_part, combine_parts, one after the other (what the DAG maps over workers)."""
    plan = plan_parts(std, out, level or region_level())
    for part in plan["parts"]:
        reconcile_part(std, plan["dir"], part, as_of)
    return combine_parts(std, plan["dir"], plan["parts"])
