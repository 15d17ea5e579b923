"""The catalogue of findings: every code of OUTPUTS.md "The codes", declared once.

Each :class:`Finding` holds everything about its code: severity, the office's own term,
the key columns that make its ``alert_key``, what the office should do, the sources its
evidence comes from, its named thresholds, and the SQL that finds it. Everything else
reads this module: the reconciliation (:mod:`include.pipeline.reconcile` runs the SQL),
publish (keys), the digests and the monthly report (terms, severities, actions), the
findings suite's value set (:func:`include.quality.gates.audit_period`) and the
operator's guide (its table is :func:`guide_table`; ``tests/test_findings_catalogue.py``
fails when they drift apart).

To add a code: add its entry here (in OUTPUTS.md's order) with its SQL, then a test of its
boundaries in ``tests/test_reconcile_rules.py``; the oracle (:mod:`include.generator.oracle`)
keeps its own plain reading of the contract and must be taught the code separately.
To change a threshold: change it in ``thresholds`` below; the SQL is built from it.

How the SQL is written, by scope:

* ``person``: a boolean condition over ``p`` (one row of the ``people`` table of
  :mod:`include.pipeline.reconcile`: each source's facts about the person), ``m`` (the exact
  answers for the few persons with several units, ``people_multi``) and ``d`` (the person's
  set of likely second identities, ``identity_sets``); ``details`` is an optional JSON
  object over ``pc``: the person's ``people`` row, ``others`` and ``set_names`` (their
  identity set), and the facts gathered for flagged persons only (``names``, ``conflicts``,
  ``rank_over``, ``self_funded_payers``), merged into the details every person finding carries;
* ``unit`` and ``record``: a query over the summed per-unit partials (``unit_counts``,
  ``unit_posts``, ``unit_leaders``, ``unit_revoked``), the reference tables (``units``,
  ``quotas``, ``leader_posts``, ``budget_units``) and ``links``, returning the key columns
  and ``details``.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from types import MappingProxyType

SEVERITIES = ("high", "medium", "info")
SOURCES = ("staffing", "org", "finance", "hr")


@dataclasses.dataclass(frozen=True)
class Finding:
    code: str
    severity: str                 # high / medium / info
    term: str                     # the office's own term (中文术语)
    scope: str                    # unit / person / record
    keys: tuple[str, ...]         # key columns besides the code: the alert_key is made of them
    action: str                   # what the office should do, printed in every digest and in the guide
    evidence: tuple[str, ...]     # the sources whose records show why (OUTPUTS.md "Evidence")
    sql: str                      # see the module docstring
    thresholds: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    details: str | None = None    # person scope: extra JSON for this code's details
    schema: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType({}))   # details: field -> type
    # person scope: the sources whose records of the person are evidence, where not all of
    # ``evidence`` (LEADER_RANK_MISMATCH and FUNDING_MISMATCH take a staffing *unit* item)
    records_from: tuple[str, ...] | None = None

    def record_sources(self) -> tuple[str, ...]:
        return self.records_from if self.records_from is not None else self.evidence

    def details_schema(self) -> dict:
        """Every field of this code's ``details`` and its type (see :data:`DETAIL_TYPES`)."""
        return {**(PERSON_DETAILS if self.scope == "person" else {}), **self.schema}

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.code}: severity {self.severity!r}")
        if self.scope not in ("unit", "person", "record") or not set(self.evidence) <= set(SOURCES):
            raise ValueError(f"{self.code}: scope {self.scope!r} or evidence {self.evidence!r}")


def _t(**kw) -> MappingProxyType:
    return MappingProxyType(kw)


# --- the numbers behind a finding: one documented schema per code ----------------------------------
# Types of the fields of ``details``; a trailing ``?`` allows null. ``money`` is yuan rounded to
# the fen (at most two decimals); ``date`` is YYYY-MM-DD; ``rate`` a share between 0 and 1.
DETAIL_TYPES = ("int", "money", "rate", "bool", "str", "date", "list[str]", "list[object]")
# Every person finding carries these (reconcile.PERSON_FINDINGS_SQL), and its code's own fields.
PERSON_DETAILS = MappingProxyType({
    "staffing_units": "list[str]?", "staffing_records": "int", "paid_by": "list[str]?", "gross_pay": "money?",
    "org_units": "list[str]?", "retired_on": "date?", "insured": "bool", "paid_as": "list[str]",
    "payments": "list[object]?", "units": "list[object]?",
})
# The members of each ``list[object]`` field (checked too): what each entry of the list holds.
OBJECT_FIELDS = MappingProxyType({
    "payments": ("dwbm", "name", "unit_code", "rylb", "jfly", "gross_pay"),   # one per payroll row; name: the budget unit's
    "units": ("unit_code", "name", "sources"),                  # each unit a source names (HR names none), and which sources
    "conflicts": ("source", "field", "value"),                  # IDENTITY_CONFLICT: a stated birth date or sex the ID contradicts
    "names": ("source", "name"),                                # IDENTITY_CONFLICT: the name each source wrote
    "posts": ("unit_code", "ldlb", "zwcc", "limit"),            # LEADER_RANK_MISMATCH: a leadership row above its unit's limit
    "self_funded_payers": ("dwbm", "unit_code", "rylb"),        # FUNDING_MISMATCH: a budget unit paying for a self-funded unit
})


def check_details(code: str, details: dict) -> list[str]:
    """What is wrong with one finding's ``details`` against its code's schema (empty: nothing)."""
    import re

    schema = CATALOGUE[code].details_schema()
    problems = [f"{code}: field {k!r} not in the schema" for k in details if k not in schema]
    for name, kind in schema.items():
        if name not in details:
            problems.append(f"{code}: field {name!r} missing")
            continue
        v, nullable, base = details[name], kind.endswith("?"), kind.rstrip("?")
        if v is None:
            if not nullable:
                problems.append(f"{code}: {name} is null")
            continue
        ok = {"int": isinstance(v, int) and not isinstance(v, bool),
              "money": isinstance(v, (int, float)) and not isinstance(v, bool) and round(v, 2) == v,
              "rate": isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
              "bool": isinstance(v, bool), "str": isinstance(v, str),
              "date": isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) is not None,
              "list[str]": isinstance(v, list) and all(isinstance(x, str) for x in v),
              "list[object]": isinstance(v, list) and all(isinstance(x, dict) for x in v)}[base]
        if not ok:
            problems.append(f"{code}: {name} = {v!r} is not {kind}")
        elif base == "list[object]" and name in OBJECT_FIELDS:
            problems += [f"{code}: {name} entry {x!r} has not the fields {OBJECT_FIELDS[name]}"
                         for x in v if tuple(sorted(x)) != tuple(sorted(OBJECT_FIELDS[name]))][:1]
    return problems


# --- thresholds shared by the SQL below ----------------------------------------------------------

# HIGH_VACANCY 长期空编: T >= 10 and T - actual >= 30% of T, compared in whole numbers.
VACANCY = _t(min_approved=10, share=Fraction(3, 10))
# RESTRICTED_POST: posts a non-establishment person may not hold.
RESTRICTED_POSTS = ("personnel", "finance", "classified")
# Funding of a unit whose establishment is paid from the budget (ESTABLISHED_NOT_PAID, the roster).
BUDGET_FUNDED = ("full", "partial")

# OVER_RETIREMENT_AGE 超龄未退休: the 2024 NPC Standing Committee decision (in force 2025-01-01),
# everyone read as a cadre. Per sex (the ID's digit 17: odd M, even F): the statutory age in
# years and the last birth month with no delay; then one month of delay per `step_months`
# months of birth after it, at most `max_delay_months`.
RETIREMENT = _t(
    age_years=MappingProxyType({"M": 60, "F": 55}),
    reference_month=MappingProxyType({"M": (1964, 12), "F": (1969, 12)}),
    step_months=4, max_delay_months=36,
)

# LEADER_RANK_MISMATCH 领导职务高配: ranks from the highest, and the highest rank a unit's
# `rank` allows a principal (正职) and a deputy (副职).
RANKS = ("正厅", "副厅", "正处", "副处", "正科", "副科", "科员")
RANK_LIMITS = MappingProxyType({
    "department": ("正厅", "副厅"), "bureau": ("正处", "副处"), "deputy_bureau": ("副处", "正科"),
    "section": ("正科", "副科"), "deputy_section": ("副科", "科员"), "unit_level": ("科员", "科员"),
})


def retirement_macro_sql() -> list[str]:
    """DuckDB macros ``statutory_retirement(id)``: the retirement date from a valid ID's birth
    date (digits 7-14) and sex (digit 17). Adding months to a date keeps the day where the
    month has it and takes the month's last day where it does not (1966-10-31 + 6 months:
    2027-04-30), which is OUTPUTS.md's rule; and ``over_retirement_age(id, first_day)``."""
    r = RETIREMENT
    (my, mm), (fy, fm) = r["reference_month"]["M"], r["reference_month"]["F"]
    male = "CAST(substr(id, 17, 1) AS INTEGER) % 2 = 1"
    months = (f"(CAST(substr(id, 7, 4) AS INTEGER) - CASE WHEN {male} THEN {my} ELSE {fy} END) * 12 "
              f"+ CAST(substr(id, 11, 2) AS INTEGER) - CASE WHEN {male} THEN {mm} ELSE {fm} END")
    step = r["step_months"]
    delay = f"least({r['max_delay_months']}, greatest(0, ({months} + {step - 1}) // {step}))"
    years = f"CASE WHEN {male} THEN {r['age_years']['M']} ELSE {r['age_years']['F']} END"
    youngest = min(r["age_years"].values())
    return [f"CREATE OR REPLACE MACRO statutory_retirement(id) AS "
            f"CAST(strptime(substr(id, 7, 8), '%Y%m%d') + to_months({years} * 12 + {delay}) AS DATE)",
            # Whether the date is before first_day; the date itself only for those born early
            # enough to be past the youngest statutory age (a string compare first: computing
            # every person's date cost 0.8 s at 1M persons).
            f"CREATE OR REPLACE MACRO over_retirement_age(id, first_day) AS "
            f"CASE WHEN substr(id, 7, 8) < strftime(first_day - INTERVAL {youngest} YEAR, '%Y%m%d') "
            f"THEN statutory_retirement(id) < first_day ELSE false END"]


def rank_tables_sql() -> list[str]:
    """The rank order and each unit rank's limits, as two small tables for the SQL."""
    order = ", ".join(f"('{r}', {len(RANKS) - i})" for i, r in enumerate(RANKS))
    limits = ", ".join(f"('{unit}', '{ldlb}', '{limit}')" for unit, (p, d) in RANK_LIMITS.items()
                       for ldlb, limit in (("正职", p), ("副职", d)))
    return [f"CREATE OR REPLACE TABLE rank_order AS SELECT * FROM (VALUES {order}) t(rank_name, ord)",
            f"CREATE OR REPLACE TABLE rank_limits AS SELECT l.*, o.ord AS max_ord FROM (VALUES {limits}) "
            "l(unit_rank, post_ldlb, max_zwcc) JOIN rank_order o ON o.rank_name = l.max_zwcc"]


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_EST = "SELECT unit_code, quota_type, actual FROM unit_counts WHERE personnel_class = 'establishment' AND per_unit = 0"
_EST_PER_UNIT = "SELECT unit_code, actual FROM unit_counts WHERE personnel_class = 'establishment' AND per_unit = 1"

CATALOGUE_ENTRIES = [
    Finding(
        "OVER_QUOTA", "high", "超编", "unit", ("unit_code", "quota_type"),
        "停止该编制类型进人，按核定数消化超编，或依程序申请调整编制。", ("staffing",),
        f"""WITH est AS ({_EST}),
            k AS (SELECT unit_code, quota_type FROM est UNION SELECT unit_code, quota_type FROM quotas),
            c AS (SELECT unit_code, quota_type, coalesce(e.actual, 0) AS actual, coalesce(q.approved, 0) AS approved
                  FROM k LEFT JOIN est e USING (unit_code, quota_type) LEFT JOIN quotas q USING (unit_code, quota_type)
                  WHERE quota_type IS DISTINCT FROM 'non_establishment_cap')
            SELECT unit_code, quota_type,
                   json_object('approved', approved, 'actual', actual, 'excess', actual - approved) AS details
            FROM c WHERE actual > approved""",
        schema=_t(approved="int", actual="int", excess="int")),
    Finding(
        "NON_ESTABLISHMENT_OVER_CAP", "medium", "编外超控制数", "unit", ("unit_code",),
        "停止新增编外人员，按控制数清理或报批控制数调整。", ("staffing",),
        """SELECT n.unit_code, json_object('cap', coalesce(q.approved, 0), 'actual', n.actual,
                                           'excess', n.actual - coalesce(q.approved, 0)) AS details
           FROM (SELECT unit_code, actual FROM unit_counts WHERE personnel_class = 'non_establishment' AND per_unit = 1) n
           LEFT JOIN quotas q ON q.unit_code = n.unit_code AND q.quota_type = 'non_establishment_cap'
           WHERE n.actual > coalesce(q.approved, 0)""",
        schema=_t(cap="int", actual="int", excess="int")),
    Finding(
        "LEADER_OVER_LIMIT", "medium", "超职数配备", "unit", ("unit_code", "level"),
        "会同组织部核对领导职数，超配的按程序消化。", ("org", "staffing"),
        """SELECT l.unit_code, l.level, json_object('approved', coalesce(p.approved, 0), 'actual', l.actual,
                                                    'excess', l.actual - coalesce(p.approved, 0)) AS details
           FROM unit_leaders l LEFT JOIN leader_posts p USING (unit_code, level)
           WHERE l.actual > coalesce(p.approved, 0)""",
        schema=_t(approved="int", actual="int", excess="int")),
    Finding(
        "HIGH_VACANCY", "info", "长期空编", "unit", ("unit_code",),
        "核实空编原因；长期不用的编制按规定收回或调剂。", ("staffing",),
        f"""WITH t AS (SELECT unit_code, sum(approved) AS approved FROM quotas
                       WHERE quota_type IS DISTINCT FROM 'non_establishment_cap' GROUP BY ALL),
            v AS (SELECT t.unit_code, t.approved, coalesce(e.actual, 0) AS actual
                  FROM t LEFT JOIN ({_EST_PER_UNIT}) e USING (unit_code))
            SELECT unit_code, json_object('approved', approved, 'actual', actual, 'vacant', approved - actual,
                                          'vacancy_rate', round((approved - actual) / approved, 4)) AS details
            FROM v WHERE approved >= {VACANCY['min_approved']}
                     AND {VACANCY['share'].denominator} * (approved - actual) >= {VACANCY['share'].numerator} * approved""",
        thresholds=VACANCY,
        schema=_t(approved="int", actual="int", vacant="int", vacancy_rate="rate")),
    Finding(
        "REVOKED_UNIT_STAFFED", "high", "机构已撤销仍有人员", "unit", ("unit_code",),
        "核销已撤销机构的实名制信息，会同财政停发或转移工资。", ("staffing", "finance"),
        "SELECT unit_code, json_object('staffed', staffed, 'paid', paid) AS details FROM unit_revoked "
        "WHERE staffed > 0 OR paid > 0",
        schema=_t(staffed="int", paid="int")),
    Finding(
        "PAID_WITHOUT_ESTABLISHMENT", "high", "有薪无编", "person", ("id_number",),
        "核实此人是否应在实名制系统中；无编制的通知财政停发。", ("finance",),
        "p.f_est AND p.s_records = 0"),
    Finding(
        "ESTABLISHED_NOT_PAID", "medium", "有编无薪", "person", ("id_number",),
        "核实此人是否仍在岗；已离岗的办理实名制减员。", ("staffing",),
        "p.s_est_funded_before AND p.f_rows = 0", thresholds=_t(funding=BUDGET_FUNDED)),
    Finding(
        "DUPLICATE_PAY", "high", "一人多薪", "person", ("id_number",),
        "会同财政核对发薪单位，只保留一个。", ("finance",),
        "p.f_dwbm_varies"),
    Finding(
        "MULTIPLE_ESTABLISHMENT", "high", "一人多编/一人多岗", "person", ("id_number",),
        "核实在岗单位，只保留一个实名制记录。", ("staffing",),
        "p.s_unit_varies"),
    Finding(
        "RETIRED_STILL_ACTIVE", "high", "退休未减员", "person", ("id_number",),
        "办理退休减员，通知财政改按离退休发放。", ("hr", "staffing", "finance"),
        "p.h_retired_by_end AND (p.s_records > 0 OR p.f_est OR p.f_non_est)"),
    Finding(
        "UNIT_MISMATCH", "medium", "单位不一致", "person", ("id_number",),
        "核对实名制、财政、组织部的单位，改正错误一方。", ("staffing", "finance", "org"),
        # exactly one staffing record in unit u, and the paying units (with a credit code) or
        # the organisation rows exist and none of them is u
        "p.s_records = 1 AND ("
        "(p.f_credit_rows > 0 AND NOT coalesce(m.f_has_s_unit, p.f_credit_min = p.s_unit)) OR "
        "(p.o_rows > 0 AND NOT coalesce(m.o_has_s_unit, p.o_unit_rows = p.o_rows AND p.o_unit = p.s_unit)))"),
    Finding(
        "CLASS_MISMATCH", "medium", "身份不一致", "person", ("id_number",),
        "核对编制身份，改正实名制或财政发放身份。", ("staffing", "finance"),
        "p.s_records > 0 AND ((p.f_est AND NOT p.s_est) OR (p.f_non_est AND NOT p.s_non_est))"),
    Finding(
        "RESTRICTED_POST", "high", "编外人员占用关键岗位", "person", ("id_number",),
        "编外人员不得在人事、财务、涉密岗位，调整岗位。", ("staffing",),
        "p.s_restricted", thresholds=_t(posts=RESTRICTED_POSTS)),
    Finding(
        "CADRE_WITHOUT_ESTABLISHMENT", "high", "领导干部无编", "person", ("id_number",),
        "会同组织部核实任职与编制，先有编后任职。", ("org", "staffing"),
        "p.o_leader AND NOT p.s_est"),
    Finding(
        "MISSING_SLIP", "medium", "无核编单据", "person", ("id_number",),
        "补录核编单据号（《机构编制核准通知单》）。", ("staffing",),
        "p.s_missing_slip"),
    Finding(
        "NOT_INSURED", "medium", "未参保", "person", ("id_number",),
        "通知单位和人社部门办理参保缴费。", ("finance", "hr"),
        "(p.f_est OR p.f_non_est) AND NOT p.h_insured"),
    Finding(
        "INVALID_ID", "medium", "身份证号校验不通过", "record", ("source", "raw_value"),
        "请录入单位核对证件，改正源系统中的身份证号。", ("staffing", "org", "finance", "hr"),
        """SELECT l.source, l.raw_trim AS raw_value, min(l.unit_code) AS unit_code, min(l.unit_code) AS f_unit_code,
                  min(l.person_id) AS id_number, min(b.qhdm) FILTER (WHERE l.source = 'finance') AS fallback_region,
                  json_object('records', count(*), 'linked', min(l.person_id) IS NOT NULL,
                              'candidates', max(l.candidates)) AS details
           FROM links l LEFT JOIN budget_units b ON b.dwbm = l.dwbm GROUP BY l.source, l.raw_trim""",
        schema=_t(records="int", linked="bool", candidates="int")),
    Finding(
        "IDENTITY_CONFLICT", "medium", "身份信息不一致", "person", ("id_number",),
        "核对身份证件，改正记错出生日期、性别或姓名的源系统。", ("staffing", "org", "finance", "hr"),
        "p.i_conflict",
        details="json_object('id_birth_date', strftime(strptime(substr(pc.person_id, 7, 8), '%Y%m%d'), '%Y-%m-%d'), "
                "'id_sex', CASE WHEN CAST(substr(pc.person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 'M' ELSE 'F' END, "
                "'conflicts', pc.conflicts, 'names', pc.names)",
        schema=_t(id_birth_date="date", id_sex="str", conflicts="list[object]?", names="list[object]?")),
    Finding(
        "OVER_RETIREMENT_AGE", "high", "超龄未退休", "person", ("id_number",),
        "核实是否经批准延迟退休；未经批准的办理退休，通知财政改按离退休发放。", ("staffing", "finance", "hr"),
        "(p.s_records > 0 OR p.f_est OR p.f_non_est) AND p.hr_status IS DISTINCT FROM '退休' "
        "AND over_retirement_age(p.person_id, $month_start_date)",
        thresholds=RETIREMENT,
        details="json_object('birth_date', strftime(strptime(substr(pc.person_id, 7, 8), '%Y%m%d'), '%Y-%m-%d'), "
                "'sex', CASE WHEN CAST(substr(pc.person_id, 17, 1) AS INTEGER) % 2 = 1 THEN 'M' ELSE 'F' END, "
                "'retirement_date', strftime(statutory_retirement(pc.person_id), '%Y-%m-%d'), 'hr_status', pc.hr_status)",
        schema=_t(birth_date="date", sex="str", retirement_date="date", hr_status="str?")),
    Finding(
        "LEADER_RANK_MISMATCH", "medium", "领导职务高配", "person", ("id_number",),
        "会同组织部核对职务层次，按机构规格纠正高配。", ("org", "staffing"),
        "p.o_rank_over",
        thresholds=_t(ranks=RANKS, limits=RANK_LIMITS),
        details="json_object('posts', pc.rank_over)",
        schema=_t(posts="list[object]"), records_from=("org",)),
    Finding(
        "FUNDING_MISMATCH", "medium", "自收自支单位财政发薪", "person", ("id_number",),
        "核实单位经费形式；自收自支单位人员不得由财政拨款发薪，会同财政纠正。", ("finance", "staffing"),
        "p.f_self_funded",
        details="json_object('self_funded_payers', pc.self_funded_payers)",
        schema=_t(self_funded_payers="list[object]"), records_from=("finance",)),
    Finding(
        "DUPLICATE_IDENTITY", "high", "疑似一人多号", "person", ("id_number",),
        "核对身份证件，确认是否一人持多个号码；注销错误号码并追回多发工资。", ("staffing", "org", "finance", "hr"),
        "d.person_id IS NOT NULL",
        details="json_object('others', pc.others, 'names', pc.set_names)",
        schema=_t(others="list[str]", names="list[str]")),
    Finding(
        "UNREGISTERED_NON_ESTABLISHMENT", "medium", "编外人员未纳入实名管理", "person", ("id_number",),
        "将编外人员录入实名制系统并核对控制数；不应聘用的通知财政停发。", ("finance",),
        "p.f_non_est AND p.s_records = 0"),
]

CATALOGUE: MappingProxyType = MappingProxyType({f.code: f for f in CATALOGUE_ENTRIES})
CODES = tuple(CATALOGUE)
SEVERITY = MappingProxyType({c: f.severity for c, f in CATALOGUE.items()})
TERM = MappingProxyType({c: f.term for c, f in CATALOGUE.items()})
ACTION = MappingProxyType({c: f.action for c, f in CATALOGUE.items()})
KEYS = MappingProxyType({c: list(f.keys) for c, f in CATALOGUE.items()})
PERSON_CODES = MappingProxyType({c: f for c, f in CATALOGUE.items() if f.scope == "person"})
UNIT_CODES = MappingProxyType({c: f for c, f in CATALOGUE.items() if f.scope != "person"})


def key_columns(code: str) -> list[str]:
    """The key columns of a code (an unknown code keys on the person, as person codes do)."""
    return KEYS.get(code, ["id_number"])


def guide_table() -> str:
    """The operator's guide's table of codes (docs/OPERATIONS.md §9), made from the catalogue."""
    rows = ["| code | 术语 | severity | key | sources of the evidence | what the office should do |",
            "|---|---|---|---|---|---|"]
    for f in CATALOGUE.values():
        rows.append(f"| `{f.code}` | {f.term} | {f.severity} | {', '.join(f.keys)} | {', '.join(f.evidence)} | {f.action} |")
    return "\n".join(rows)


def thresholds_table() -> str:
    """The named thresholds, for the guide: where to change them."""
    rows = ["| code | threshold | value |", "|---|---|---|"]
    for f in CATALOGUE.values():
        for name, value in f.thresholds.items():
            shown = dict(value) if isinstance(value, MappingProxyType) else value
            rows.append(f"| `{f.code}` | `{name}` | {shown} |")
    return "\n".join(rows)


def details_table() -> str:
    """The fields of ``details`` per code, for the guide (every person code also carries the
    person fields of the first row)."""
    rows = ["| code | fields of `details` (type; `?` may be null) |", "|---|---|",
            "| every person code | " + ", ".join(f"`{k}` {v}" for k, v in PERSON_DETAILS.items()) + " |"]
    for f in CATALOGUE.values():
        if f.schema:
            rows.append(f"| `{f.code}` | " + ", ".join(f"`{k}` {v}" for k, v in f.schema.items()) + " |")
    rows += ["", "| list field | each entry holds |", "|---|---|"]
    rows += [f"| `{k}` | " + ", ".join(f"`{m}`" for m in v) + " |" for k, v in OBJECT_FIELDS.items()]
    return "\n".join(rows)


if __name__ == "__main__":   # python -m include.findings: the guide's tables, to paste into docs/OPERATIONS.md
    print(guide_table())
    print()
    print(thresholds_table())
    print()
    print(details_table())
