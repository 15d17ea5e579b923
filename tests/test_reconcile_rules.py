"""Each code of OUTPUTS.md on small hand-built data, boundary cases included."""

import json

import pandas as pd
import pytest

from include import findings as F
from include import identifiers as ids
from include.pipeline.reconcile import reconcile
from include.pipeline.standardise import RECORD_COLUMNS, _identify

PERIOD = "2026-10"
U1, U2, U3 = "11150204MA0000001X", "11150204MA00000028", "12150204MA00000036"
REGION = "150204"


def make_id(birth="19800101", seq="001", region="150204"):
    body = region + birth + seq
    return body + ids.id_check_char(body)


A, B, C, D = make_id(seq="001"), make_id(seq="003"), make_id("19750505", "011"), make_id("19900909", "021")
# Each person their own name (persons born the same day in the same place who share a name
# are DUPLICATE_IDENTITY); A is 张三, whose typos the linking tests write.
NAMES = {A: "张三", B: "李四", C: "王五", D: "赵六"}


def name_of(pid: str) -> str:
    return NAMES.get(pid, f"职工{pid[6:17]}")


def born_of(pid: str) -> str:
    """The birth date an ID says, as staffing writes it (or a fixed one for an ID too broken to say)."""
    s = ids.clean_id(pid) or ""
    return f"{s[6:10]}-{s[10:12]}-{s[12:14]}" if len(s) == 18 and ids.parse_yyyymmdd(s[6:14]) else "1980-01-01"


def sex_of(pid: str) -> str:
    s = ids.clean_id(pid) or ""
    return "F" if len(s) == 18 and s[16].isdigit() and int(s[16]) % 2 == 0 else "M"


def staffing(pid, unit=U1, klass="establishment", quota="admin", **kw):
    row = {"raw_id": pid, "name": kw.pop("name", name_of(pid)), "unit_code": unit, "record_id": kw.pop("record_id", f"SP{pid[-6:]}{unit[-2:]}"),
           "sex": sex_of(pid), "birth_date": born_of(pid), "personnel_class": klass,
           "quota_type": quota if klass == "establishment" else None,
           "non_establishment_category": None if klass == "establishment" else "general_support",
           "post_category": "general", "position": "科员", "entered_on": "2020-01-01",
           "slip_no": "HB2020000001" if klass == "establishment" else None}
    row.update(kw)
    return {"source": "staffing", **row}


def pay(pid, dwbm="300001", rylb="在编", jfly="财政拨款", name=None, yfgz=8000.0):
    return {"source": "finance", "raw_id": pid, "name": name_of(pid) if name is None else name, "dwbm": dwbm, "rylb": rylb, "jfly": jfly, "yfgz": yfgz}


def org(pid, unit=U1, sfld="0", ldlb="", name=None, zwcc="科员", **kw):
    return {"source": "org", "raw_id": pid, "name": name_of(pid) if name is None else name, "unit_code": unit, "sfld": sfld, "ldlb": ldlb,
            "zwcc": zwcc, "xb": kw.pop("xb", "2" if sex_of(pid) == "F" else "1"),
            "csrq": kw.pop("csrq", born_of(pid).replace("-", "")), **kw}


def hr(pid, emp="E1", insured="参保缴费", status="在职", retired_on=None, name=None):
    return {"source": "hr", "raw_id": pid, "name": name_of(pid) if name is None else name, "emp_no": emp, "insured_status": insured, "hr_status": status,
            "retired_on": retired_on}


BUDGET = {"300001": U1, "300002": U2, "300003": U3, "900001": None}
EMPLOYERS = {"E1": U1, "E2": U2, "E3": U3}


def build(tmp_path, records, quotas=None, leader_posts=None, units=None, period=PERIOD):
    """A std/ directory as standardise writes it, from a few records."""
    std = tmp_path / "work" / "std"
    std.mkdir(parents=True)
    units = units or [
        {"unit_code": U1, "name": "财政局", "parent_code": None, "region_code": REGION, "kind": "government", "rank": "section", "funding": "full", "status": "active"},
        {"unit_code": U2, "name": "教育局", "parent_code": None, "region_code": REGION, "kind": "government", "rank": "section", "funding": "full", "status": "active"},
        {"unit_code": U3, "name": "服务中心", "parent_code": U1, "region_code": "150205", "kind": "institution", "rank": "section", "funding": "self", "status": "active"},
    ]
    quotas = quotas if quotas is not None else [
        {"unit_code": U1, "quota_type": "admin", "approved": 5}, {"unit_code": U2, "quota_type": "admin", "approved": 5},
        {"unit_code": U3, "quota_type": "institution", "approved": 5},
        {"unit_code": U1, "quota_type": "non_establishment_cap", "approved": 2},
        {"unit_code": U2, "quota_type": "non_establishment_cap", "approved": 2},
    ]
    leader_posts = leader_posts if leader_posts is not None else [
        {"unit_code": u, "level": lv, "approved": 1} for u in (U1, U2) for lv in ("principal", "deputy")]
    pd.DataFrame(units).to_parquet(std / "units.parquet")
    pd.DataFrame(quotas, columns=["unit_code", "quota_type", "approved"]).to_parquet(std / "quotas.parquet")
    pd.DataFrame(leader_posts, columns=["unit_code", "level", "approved"]).to_parquet(std / "leader_posts.parquet")
    pd.DataFrame({"dwbm": list(BUDGET), "credit": list(BUDGET.values()), "dwmc": ["a", "b", "c", "d"],
                  "qhdm": [REGION, REGION, "150205", "150206"]}).to_parquet(std / "budget_units.parquet")
    rows = []
    for i, r in enumerate(records):
        r = dict(r)
        if r["source"] == "finance":
            r["unit_code"] = BUDGET.get(r["dwbm"])
        if r["source"] == "hr":
            r["unit_code"] = EMPLOYERS.get(r["emp_no"])
        rows.append(r)
    df = pd.DataFrame(rows)
    df["rec_no"] = df.groupby("source").cumcount()
    df["record_key"] = [record_key(r, period) for r in df.to_dict("records")]
    for source, part in df.groupby("source"):   # the rows "as received", in rec_no order: the evidence's facts
        part.sort_values("rec_no").drop(columns=["source", "rec_no", "record_key", "unit_code"]).dropna(axis=1, how="all") \
            .to_parquet(std / f"received_{source}.parquet", index=False)
    # (a model as standardise wrote it when it kept copies of the rows as received: each record with its key)
    columns = [*RECORD_COLUMNS, "record_key"]
    df = _identify(df, period).reindex(columns=columns)
    for col in columns:
        if col not in ("rec_no", "id_valid", "yfgz"):
            df[col] = df[col].astype("string")
    df["yfgz"] = pd.to_numeric(df["yfgz"])
    df.to_parquet(std / "records.parquet")
    (std / "_summary.json").write_text(json.dumps({"period": period, "ds": f"{period}-28"}))
    summary = reconcile(str(std))
    findings = pd.read_parquet(f"{summary['dir']}/findings.parquet")
    for code, d in zip(findings.code, findings.details):   # every finding's numbers follow its code's schema
        assert F.check_details(code, json.loads(d)) == [], (code, d)
    roster = pd.read_parquet(f"{summary['dir']}/roster.parquet")
    return findings, roster, summary


def record_key(r: dict, period: str) -> str:
    """The key of a hand-built record in its own system (OUTPUTS.md "Evidence")."""
    return {"staffing": lambda: f"persons|{r.get('record_id')}",
            "org": lambda: f"gbxx|{str(r['raw_id']).strip()}|{r.get('unit_code') or ''}|",
            "finance": lambda: f"gz_ff|{period.replace('-', '')}|{r['dwbm']}|{str(r['raw_id']).strip()}",
            "hr": lambda: f"cbry_{period.replace('-', '')}.csv|{r['rec_no'] + 1}"}[r["source"]]()


def clean_person(pid, unit=U1, dwbm="300001", emp="E1", name=None, **kw):
    name = name or name_of(pid)
    return [staffing(pid, unit, name=name, **kw), pay(pid, dwbm, name=name), hr(pid, emp, name=name)]


def codes(findings, pid=None):
    f = findings if pid is None else findings[findings.id_number == pid]
    return sorted(f.code)


def test_a_clean_person_raises_nothing_and_is_on_the_roster(tmp_path):
    findings, roster, _ = build(tmp_path, clean_person(A))
    assert findings.empty
    assert list(roster.id_number) == [A]
    r = roster.iloc[0]
    assert (r.personnel_class, r.unit_code, r.region_code, r.insured_status, r.hr_status) == ("establishment", U1, REGION, "参保缴费", "在职")
    assert r.in_staffing and r.in_finance and r.in_hr and not r.in_org and r.alert_codes == ""
    assert r.sex == "M" and str(r.birth_date) == "1980-01-01" and float(r.gross_pay) == 8000.0


def test_over_quota_exactly_at_quota_is_not_a_finding(tmp_path):
    people = [make_id(seq=f"{i:02d}1") for i in range(5)]
    records = [r for p in people for r in clean_person(p)]
    findings, _, _ = build(tmp_path / "at", records)
    assert "OVER_QUOTA" not in codes(findings)
    extra = make_id(seq="991")
    findings, _, _ = build(tmp_path / "over", records + clean_person(extra))
    row = findings[findings.code == "OVER_QUOTA"].iloc[0]
    assert (row.unit_code, row.quota_type, row.severity, row.region_code) == (U1, "admin", "high", REGION)
    assert json.loads(row.details) == {"approved": 5, "actual": 6, "excess": 1}


def test_missing_quota_counts_as_zero(tmp_path):
    findings, _, _ = build(tmp_path, clean_person(A, quota="logistics"))
    assert findings[findings.code == "OVER_QUOTA"][["unit_code", "quota_type"]].values.tolist() == [[U1, "logistics"]]


def test_non_establishment_over_cap_and_restricted_post(tmp_path):
    ne = [make_id(seq=f"{i:02d}3") for i in range(3)]
    records = [staffing(p, klass="non_establishment", post_category="finance" if i == 0 else "general") for i, p in enumerate(ne)]
    records += [pay(p, rylb="编外") for p in ne] + [hr(p) for p in ne]
    findings, _, _ = build(tmp_path, records)
    assert findings[findings.code == "NON_ESTABLISHMENT_OVER_CAP"].unit_code.tolist() == [U1]
    assert findings[findings.code == "RESTRICTED_POST"].id_number.tolist() == [ne[0]]


def test_leader_over_limit_counts_organisation_rows(tmp_path):
    records = clean_person(A) + clean_person(B) + [org(A, sfld="1", ldlb="副职"), org(B, sfld="1", ldlb="副职", name="张三")]
    findings, roster, _ = build(tmp_path, records)
    row = findings[findings.code == "LEADER_OVER_LIMIT"]
    assert row[["unit_code", "level"]].values.tolist() == [[U1, "deputy"]]
    assert roster.set_index("id_number").loc[A, "leader_level"] == "deputy"


def test_high_vacancy_boundary(tmp_path):
    people = [make_id(seq=f"{i:02d}5") for i in range(7)]
    records = [r for p in people for r in clean_person(p, unit=U2, dwbm="300002", emp="E2")]
    q = [{"unit_code": U2, "quota_type": "admin", "approved": 10}]
    findings, _, _ = build(tmp_path / "thirty", records, quotas=q)      # 3 of 10 vacant: exactly 30%
    assert findings[findings.code == "HIGH_VACANCY"].unit_code.tolist() == [U2]
    findings, _, _ = build(tmp_path / "small", records[:-3 * 1], quotas=[{"unit_code": U2, "quota_type": "admin", "approved": 9}])
    assert "HIGH_VACANCY" not in codes(findings)                           # T below 10
    findings, _, _ = build(tmp_path / "under", records + clean_person(make_id(seq="995"), unit=U2, dwbm="300002", emp="E2"), quotas=q)
    assert "HIGH_VACANCY" not in codes(findings)                           # 2 of 10: 20%


def test_revoked_unit_staffed_or_paid(tmp_path):
    units = [{"unit_code": U1, "name": "撤销局", "parent_code": None, "region_code": REGION, "kind": "government",
              "rank": "section", "funding": "full", "status": "revoked"},
             {"unit_code": U2, "name": "教育局", "parent_code": None, "region_code": REGION, "kind": "government",
              "rank": "section", "funding": "full", "status": "revoked"}]
    findings, _, _ = build(tmp_path, [pay(A, dwbm="300002", rylb="离退休")] + clean_person(B), units=units)
    assert sorted(findings[findings.code == "REVOKED_UNIT_STAFFED"].unit_code) == [U1, U2]


def test_paid_without_establishment_and_class_mismatch_never_both(tmp_path):
    records = [pay(A), hr(A)] + [staffing(B, klass="non_establishment"), pay(B, rylb="在编"), hr(B)]
    findings, roster, _ = build(tmp_path, records)
    assert codes(findings, A) == ["PAID_WITHOUT_ESTABLISHMENT"]
    assert codes(findings, B) == ["CLASS_MISMATCH"]
    assert roster.set_index("id_number").loc[A, "personnel_class"] == "unknown"


def test_established_not_paid_respects_the_first_day_and_funding(tmp_path):
    records = [staffing(A, entered_on="2026-09-30"), hr(A),                 # entered before M began: finding
               staffing(B, entered_on="2026-10-01"), hr(B),                 # entered on the first day of M: none
               staffing(C, unit=U3, quota="institution", entered_on="2020-01-01"), hr(C, emp="E3")]  # self-funded unit: none
    findings, roster, _ = build(tmp_path, records)
    assert findings[findings.code == "ESTABLISHED_NOT_PAID"].id_number.tolist() == [A]
    assert set(roster.id_number) == {A, B}      # C: self-funded and unpaid, so not on the roster


def test_duplicate_pay_and_multiple_establishment(tmp_path):
    records = clean_person(A) + [pay(A, dwbm="900001", yfgz=1000.0)]
    records += [staffing(B), staffing(B, unit=U2, record_id="SP2"), pay(B), hr(B)]
    findings, roster, _ = build(tmp_path, records)
    assert "DUPLICATE_PAY" in codes(findings, A)
    assert codes(findings, B) == ["MULTIPLE_ESTABLISHMENT"]                # two records: UNIT_MISMATCH needs exactly one
    row = roster.set_index("id_number").loc[A]
    assert float(row.gross_pay) == 9000.0 and row.budget_unit_codes == "300001;900001"
    # the details say who pays how much, and name every unit involved
    d = json.loads(findings[(findings.code == "DUPLICATE_PAY") & (findings.id_number == A)].details.iloc[0])
    assert d["payments"] == [
        {"dwbm": "300001", "name": "a", "unit_code": U1, "rylb": "在编", "jfly": "财政拨款", "gross_pay": 8000.0},
        {"dwbm": "900001", "name": "d", "unit_code": None, "rylb": "在编", "jfly": "财政拨款", "gross_pay": 1000.0}]
    assert d["gross_pay"] == 9000.0 and d["paid_by"] == ["300001", "900001"]
    assert d["units"] == [{"unit_code": U1, "name": "财政局", "sources": ["finance", "staffing"]}]   # no org row: not a cadre
    d = json.loads(findings[(findings.code == "MULTIPLE_ESTABLISHMENT") & (findings.id_number == B)].details.iloc[0])
    assert d["units"] == [{"unit_code": U1, "name": "财政局", "sources": ["finance", "staffing"]},
                          {"unit_code": U2, "name": "教育局", "sources": ["staffing"]}]


def test_retired_still_active_at_month_end(tmp_path):
    records = [staffing(A), pay(A), hr(A, status="退休", retired_on="2026-10-31"),
               staffing(B), pay(B), hr(B, status="退休", retired_on="2026-11-01"),
               pay(C, rylb="离退休"), hr(C, status="退休", retired_on="2010-05-01", insured="终止参保")]
    findings, roster, _ = build(tmp_path, records)
    assert findings[findings.code == "RETIRED_STILL_ACTIVE"].id_number.tolist() == [A]
    assert codes(findings, C) == []
    assert roster.set_index("id_number").loc[C, "personnel_class"] == "retired"


def test_unit_mismatch_by_payroll_or_organisation(tmp_path):
    records = [staffing(A), pay(A, dwbm="300002"), hr(A)]                    # paid by another unit
    records += [staffing(B), pay(B, dwbm="900001"), hr(B)]                   # paid only by a unit with no credit code: none
    records += clean_person(C) + [org(C, unit=U2)]                           # appointed in another unit
    findings, _, _ = build(tmp_path, records)
    assert sorted(findings[findings.code == "UNIT_MISMATCH"].id_number) == sorted([A, C])


def test_cadre_without_establishment_and_missing_slip(tmp_path):
    records = [staffing(A, klass="non_establishment"), pay(A, rylb="编外"), hr(A), org(A, sfld="1", ldlb="副职")]
    records += [staffing(B, slip_no="  "), pay(B), hr(B)]
    findings, _, _ = build(tmp_path, records)
    assert codes(findings, A) == ["CADRE_WITHOUT_ESTABLISHMENT"]
    assert codes(findings, B) == ["MISSING_SLIP"]


def test_not_insured(tmp_path):
    records = [staffing(A), pay(A), hr(A, insured="暂停缴费"), staffing(B), pay(B),
               staffing(C), pay(C), hr(C, insured="终止参保", emp="E2"), hr(C)]  # one of two rows contributing: insured
    findings, _, _ = build(tmp_path, records)
    assert sorted(findings[findings.code == "NOT_INSURED"].id_number) == sorted([A, B])


def test_invalid_id_linked_when_exactly_one_candidate(tmp_path):
    typo = A[:3] + str((int(A[3]) + 1) % 10) + A[4:]
    records = clean_person(A) + [org(typo, name="张 三")]
    findings, roster, summary = build(tmp_path, records)
    row = findings[findings.code == "INVALID_ID"].iloc[0]
    assert (row.source, row.raw_value, row.id_number, row.unit_code) == ("org", typo, A, U1)
    assert summary["quarantined"] == 0
    assert roster.set_index("id_number").loc[A, "in_org"]
    assert roster.set_index("id_number").loc[A, "alert_codes"] == "INVALID_ID"


def test_invalid_id_with_two_candidates_is_quarantined(tmp_path):
    twin = make_id(seq="051")                                # same birth date, same name, same unit
    typo = A[:15] + str((int(A[15]) + 5) % 10) + A[16:]      # a digit outside the birth date
    records = clean_person(A) + clean_person(twin, name="张三") + [pay(typo, dwbm="300001", name="张三")]
    findings, roster, summary = build(tmp_path, records)
    row = findings[findings.code == "INVALID_ID"].iloc[0]
    assert row.id_number is None or pd.isna(row.id_number)
    assert json.loads(row.details)["candidates"] == 2
    assert summary["quarantined"] == 1
    quarantine = pd.read_parquet(f"{summary['dir']}/quarantine.parquet")
    assert "2 candidates" in quarantine.reason.iloc[0]
    assert not (findings.code == "DUPLICATE_PAY").any()      # computed as if the record were not there


def test_invalid_birth_date_narrows_candidates(tmp_path):
    other_birthday = make_id("19811111", "001")
    typo = A[:13] + str((int(A[13]) + 2) % 10) + A[14:]     # 19800103: still a real date, no one born then
    findings, _, summary = build(tmp_path, clean_person(A) + clean_person(other_birthday) + [hr(typo, emp="E1")])
    assert summary["quarantined"] == 1
    assert findings[findings.code == "INVALID_ID"].id_number.isna().all()


def test_invalid_id_without_unit_is_never_linked(tmp_path):
    typo = A[:3] + str((int(A[3]) + 1) % 10) + A[4:]
    findings, _, summary = build(tmp_path, clean_person(A) + [pay(typo, dwbm="900001")])
    row = findings[findings.code == "INVALID_ID"].iloc[0]
    assert pd.isna(row.id_number) and row.region_code == "150206"      # the paying budget unit's qhdm
    assert summary["quarantined"] == 1


def test_a_harmlessly_dirty_id_is_the_same_person(tmp_path):
    dirty = " " + A.lower() + "\u3000"
    legacy = ids.to_legacy_15(A)
    findings, roster, _ = build(tmp_path, [staffing(A), pay(dirty, name="张三"), hr(legacy, name="张三")])
    assert findings.empty and roster.iloc[0].in_hr and roster.iloc[0].in_finance


def test_a_unit_no_source_knows_and_a_person_twice_in_one_source(tmp_path):
    ghost = "11150204MA0000099Z"
    records = clean_person(A) + [pay(A)] + [org(A, unit=ghost, sfld="1", ldlb="正职")]
    findings, roster, _ = build(tmp_path, records)
    row = findings[findings.code == "LEADER_OVER_LIMIT"].iloc[0]
    assert row.unit_code == ghost and pd.isna(row.region_code)          # raised, with no office to route to yet
    assert "DUPLICATE_PAY" not in codes(findings, A)                     # paid twice by the same budget unit
    assert float(roster.iloc[0].gross_pay) == 16000.0 and len(roster) == 1
    assert "UNIT_MISMATCH" in codes(findings, A)                         # appointed in a unit that is not theirs


# --- the six codes of issue 13 -----------------------------------------------------------------

def details(findings, code, pid=None):
    f = findings[findings.code == code]
    if pid is not None:
        f = f[f.id_number == pid]
    assert len(f) == 1, (code, pid, f)
    return json.loads(f.iloc[0].details)


def test_identity_conflict_each_field_the_id_contradicts(tmp_path):
    born, sex, csrq, xb, name = (make_id(seq=s) for s in ("101", "103", "105", "107", "109"))
    ok = make_id(seq="111")
    records = (
        clean_person(born, birth_date="1980-01-02")                       # staffing's birth date off by a day
        + clean_person(sex, sex="F")                                      # staffing's sex
        + clean_person(csrq) + [org(csrq, csrq="19800110")]               # organisation's csrq
        + clean_person(xb) + [org(xb, xb="2")]                            # organisation's xb
        + clean_person(name) + [org(name, name="王小明")]                  # another name
        # harmless: dirt that normalises away, a blank name, and no stated birth date or sex
        + [staffing(ok, name=" 欧阳•娜 ", birth_date=None, sex=None), pay(ok, name="欧阳.娜"), hr(ok, name="欧阳 ・娜\u3000"),
           org(ok, name="", xb="", csrq=" ")]
    )
    findings, _, _ = build(tmp_path, records)
    flagged = sorted(findings[findings.code == "IDENTITY_CONFLICT"].id_number)
    assert flagged == sorted([born, sex, csrq, xb, name])
    assert findings[findings.code == "IDENTITY_CONFLICT"].severity.unique().tolist() == ["medium"]
    d = details(findings, "IDENTITY_CONFLICT", born)
    assert (d["id_birth_date"], d["id_sex"]) == ("1980-01-01", "M")
    assert d["conflicts"] == [{"source": "staffing", "field": "birth_date", "value": "1980-01-02"}]
    assert details(findings, "IDENTITY_CONFLICT", sex)["conflicts"] == [{"source": "staffing", "field": "sex", "value": "F"}]
    assert details(findings, "IDENTITY_CONFLICT", csrq)["conflicts"] == [{"source": "org", "field": "csrq", "value": "19800110"}]
    assert details(findings, "IDENTITY_CONFLICT", xb)["conflicts"] == [{"source": "org", "field": "xb", "value": "2"}]
    names = details(findings, "IDENTITY_CONFLICT", name)["names"]
    assert {n["name"] for n in names} == {name_of(name), "王小明"} and {"source": "org", "name": "王小明"} in names


def test_identity_conflict_reads_only_records_whose_own_id_is_valid(tmp_path):
    typo = A[:15] + str((int(A[15]) + 5) % 10) + A[16:]   # linked to A by unit and name "张三"
    findings, _, _ = build(tmp_path, clean_person(A) + [org(typo, name="张三", csrq="19991231", xb="2")])
    assert "IDENTITY_CONFLICT" not in codes(findings)
    assert codes(findings) == ["INVALID_ID"]


def _retirement_sql(ids_: list[str]) -> list[str]:
    from include.pipeline.reconcile import connect

    con = connect()
    try:
        return [str(con.execute("SELECT statutory_retirement(?)", [i]).fetchone()[0]) for i in ids_]
    finally:
        con.close()


def test_statutory_retirement_dates_by_the_2025_schedule():
    # Written out by hand from OUTPUTS.md, not computed by the code under test:
    # men: m = months after December 1964, delay = min(36, ceil(m / 4)); women: after December 1969.
    cases = {
        make_id("19641215", "001"): "2024-12-15",   # December 1964, man: m = 0, no delay, 60 years
        make_id("19650115", "001"): "2025-02-15",   # January 1965, man: m = 1, 1 month
        make_id("19650430", "001"): "2025-05-30",   # April 1965, man: m = 4, 1 month; 31 -> 30 days
        make_id("19650501", "001"): "2025-07-01",   # May 1965, man: m = 5, 2 months
        make_id("19700430", "002"): "2025-05-30",   # a woman born 1970-04-30: m = 4, 1 month, 55 years
        make_id("19691231", "002"): "2024-12-31",   # December 1969, woman: no delay
        make_id("19661031", "001"): "2027-04-30",   # m = 22, 6 months: the 31st lands in a 30-day month
        make_id("19660531", "001"): "2026-10-31",   # m = 17, 5 months
        make_id("19660601", "001"): "2026-11-01",   # m = 18, 5 months
        make_id("19800101", "001"): "2043-01-01",   # m = 181: capped at 36 months
        make_id("19840229", "002"): "2042-02-28",   # a woman, m = 170, capped at 36: 1984-02-29 + 55 years + 36 months
    }
    got = dict(zip(cases, _retirement_sql(list(cases))))
    assert got == cases


def test_over_retirement_age_on_the_first_day_of_the_period_is_not_a_finding(tmp_path):
    due = make_id("19660601", "001")      # retires 2026-11-01: the first day of 2026-11, not before it
    late = make_id("19660531", "001")     # retires 2026-10-31: the day before
    findings, _, _ = build(tmp_path, clean_person(due) + clean_person(late), period="2026-11")
    assert findings[findings.code == "OVER_RETIREMENT_AGE"].id_number.tolist() == [late]
    d = details(findings, "OVER_RETIREMENT_AGE", late)
    assert (d["birth_date"], d["sex"], d["retirement_date"]) == ("1966-05-31", "M", "2026-10-31")
    assert findings[findings.code == "OVER_RETIREMENT_AGE"].severity.tolist() == ["high"]


def test_over_retirement_age_who_counts(tmp_path):
    dec64, jan65 = make_id("19641215", "001"), make_id("19650115", "001")
    woman = make_id("19700430", "002")
    retired = make_id("19641201", "011")      # HR has them 退休 (even with a date after M): not a finding
    paid_only = make_id("19641202", "011")    # paid as 编外, not in staffing: a finding
    pensioner = make_id("19641203", "011")    # paid as 离退休 only: not a finding
    young = make_id("19700501", "002")        # a woman born May 1970: m = 5, 2 months: 2025-07-01, a finding
    records = (clean_person(dec64) + clean_person(jan65) + clean_person(woman) + clean_person(young)
               + [staffing(retired), pay(retired), hr(retired, status="退休", retired_on="2026-12-31")]
               + [pay(paid_only, rylb="编外"), hr(paid_only)] + [pay(pensioner, rylb="离退休")])
    findings, _, _ = build(tmp_path, records)
    assert sorted(findings[findings.code == "OVER_RETIREMENT_AGE"].id_number) == sorted([dec64, jan65, woman, young, paid_only])
    assert details(findings, "OVER_RETIREMENT_AGE", dec64)["retirement_date"] == "2024-12-15"
    assert details(findings, "OVER_RETIREMENT_AGE", jan65)["retirement_date"] == "2025-02-15"
    assert details(findings, "OVER_RETIREMENT_AGE", woman)["retirement_date"] == "2025-05-30"


def test_leader_rank_mismatch_above_the_limit_only(tmp_path):
    # U1 and U2 are `section` units: 正职 at most 正科, 副职 at most 副科.
    high_p, high_d, at_limit, low, not_leader, two = (make_id(seq=s) for s in ("201", "203", "205", "207", "209", "211"))
    records = (
        clean_person(high_p) + [org(high_p, sfld="1", ldlb="正职", zwcc="正处")]      # a 正处 principal of a 正科 unit
        + clean_person(high_d, unit=U2, dwbm="300002", emp="E2") + [org(high_d, unit=U2, sfld="1", ldlb="副职", zwcc="正科")]
        + clean_person(at_limit) + [org(at_limit, sfld="1", ldlb="副职", zwcc="副科")]
        + clean_person(low) + [org(low, sfld="1", ldlb="正职", zwcc="科员")]            # 低配: not a finding
        + clean_person(not_leader) + [org(not_leader, zwcc="正处")]                     # not a leadership post
        + clean_person(two) + [org(two, sfld="1", ldlb="正职", zwcc="副处"), org(two, unit=U2, sfld="1", ldlb="副职", zwcc="正厅")]
    )
    findings, _, _ = build(tmp_path, records, leader_posts=[
        {"unit_code": u, "level": lv, "approved": 5} for u in (U1, U2) for lv in ("principal", "deputy")])
    got = findings[findings.code == "LEADER_RANK_MISMATCH"]
    assert sorted(got.id_number) == sorted([high_p, high_d, two])
    assert details(findings, "LEADER_RANK_MISMATCH", high_p)["posts"] == [
        {"unit_code": U1, "ldlb": "正职", "zwcc": "正处", "limit": "正科"}]
    assert details(findings, "LEADER_RANK_MISMATCH", two)["posts"] == [
        {"unit_code": U1, "ldlb": "正职", "zwcc": "副处", "limit": "正科"},
        {"unit_code": U2, "ldlb": "副职", "zwcc": "正厅", "limit": "副科"}]
    assert set(got.unit_code) == {U1, U2} and set(got.severity) == {"medium"}


def test_leader_rank_mismatch_needs_a_staffing_unit_of_any_status(tmp_path):
    unknown = "12150204MA0000009X"   # not a staffing unit
    a, b = make_id(seq="301"), make_id(seq="303")
    units = [
        {"unit_code": U1, "name": "财政局", "parent_code": None, "region_code": REGION, "kind": "government",
         "rank": "deputy_section", "funding": "full", "status": "revoked"},
        {"unit_code": U2, "name": "教育局", "parent_code": None, "region_code": REGION, "kind": "government",
         "rank": "section", "funding": "full", "status": "active"},
    ]
    records = (clean_person(a) + [org(a, sfld="1", ldlb="副职", zwcc="副科")]      # deputy_section: 副职 at most 科员
               + clean_person(b, unit=U2, dwbm="300002", emp="E2") + [org(b, unit=unknown, sfld="1", ldlb="正职", zwcc="正厅")])
    findings, _, _ = build(tmp_path, records, units=units)
    assert findings[findings.code == "LEADER_RANK_MISMATCH"].id_number.tolist() == [a]


def test_funding_mismatch_budget_pay_for_a_self_funded_unit(tmp_path):
    # 300003 is the budget unit of U3, a `self` funded unit.
    paid, own_funds, pensioner = make_id(seq="401"), make_id(seq="403"), make_id(seq="405")
    records = (clean_person(paid, unit=U3, dwbm="300003", emp="E3", quota="institution")
               + clean_person(own_funds, unit=U3, emp="E3", quota="institution")[:1]
               + [pay(own_funds, dwbm="300003", jfly="单位自筹"), hr(own_funds, emp="E3")]
               + [pay(pensioner, dwbm="300003", rylb="离退休")])
    findings, _, _ = build(tmp_path, records)
    assert findings[findings.code == "FUNDING_MISMATCH"].id_number.tolist() == [paid]
    assert details(findings, "FUNDING_MISMATCH", paid)["self_funded_payers"] == [
        {"dwbm": "300003", "unit_code": U3, "rylb": "在编"}]


def test_duplicate_identity_joins_sets_transitively_on_the_lowest_id(tmp_path):
    a, b, c = make_id("19850303", "101"), make_id("19850303", "213"), make_id("19850303", "325")
    other_name = make_id("19850303", "437")            # same birthplace and date, another name
    elsewhere = make_id("19850303", "101", "150205")   # same name and date, born elsewhere
    records = (clean_person(a, name="刘洋") + [pay(b, dwbm="300002", name="刘洋"), hr(b, emp="E2", name="刘 洋")]
               + [pay(b, dwbm="300002", name="刘阳")]   # b is also written 刘阳 ...
               + [pay(c, dwbm="300003", name="刘阳"), hr(c, emp="E3", name="刘阳")]   # ... as c is: A~B~C
               + clean_person(other_name, name="王芳") + clean_person(elsewhere, name="刘洋"))
    findings, roster, _ = build(tmp_path, records)
    got = findings[findings.code == "DUPLICATE_IDENTITY"]
    assert got.id_number.tolist() == [min(a, b, c)]
    d = details(findings, "DUPLICATE_IDENTITY")
    assert d["others"] == sorted({a, b, c} - {min(a, b, c)}) and d["names"] == ["刘洋", "刘阳"]
    assert got.severity.tolist() == ["high"]
    assert "DUPLICATE_IDENTITY" in roster.set_index("id_number").alert_codes[min(a, b, c)]


def test_unregistered_non_establishment(tmp_path):
    unregistered, registered, left = make_id(seq="501"), make_id(seq="503"), make_id(seq="505")
    records = ([pay(unregistered, rylb="编外"), hr(unregistered)]
               + [staffing(registered, klass="non_establishment"), pay(registered, rylb="编外"), hr(registered)]
               + [pay(left, rylb="在编"), hr(left)])
    findings, _, _ = build(tmp_path, records)
    assert findings[findings.code == "UNREGISTERED_NON_ESTABLISHMENT"].id_number.tolist() == [unregistered]
    assert findings[findings.code == "PAID_WITHOUT_ESTABLISHMENT"].id_number.tolist() == [left]


def test_a_fact_of_one_record_is_its_aggregate_over_that_record():
    """Fact.single gives what its aggregate gives over a one-row group (reconcile projects the
    persons with one record in a source instead of grouping them): every kind, with the value,
    the key and the filter each null, false or set, in every combination."""
    import duckdb

    from include.pipeline.reconcile import Fact

    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT row_number() OVER () AS person_id, * FROM
                   (SELECT * FROM (VALUES ('a'), (NULL)) x(x), (VALUES ('1'), (NULL)) k(k),
                                  (VALUES (true), (false), (NULL)) w(w), (VALUES (2.5::DOUBLE), (NULL)) n(n),
                                  (VALUES (true), (false), (NULL)) b(b))""")
    facts = [Fact("c", "count", "*"), Fact("c_w", "count", "*", where="w"), Fact("c_x", "count", "x"),
             Fact("c_xw", "count", "x", where="w"), Fact("lo", "min", "x"), Fact("lo_w", "min", "x", where="w"),
             Fact("hi", "max", "x"), Fact("hi_w", "max", "hash(x)", where="w AND x IS NOT NULL"),
             Fact("s", "sum", "n"), Fact("s_w", "sum", "n", where="w"), Fact("any", "bool_or", "b"),
             Fact("any_w", "bool_or", "b AND x = 'a'", where="w"), Fact("first", "arg_min", "x", by="k"),
             Fact("first_w", "arg_min", "x || n", by="k || x", where="w"), Fact("several", "varies", "x"),
             Fact("several_w", "varies", "x || k", where="w")]
    single = con.execute(f"SELECT person_id, {', '.join(f.single() for f in facts)} FROM t ORDER BY person_id")
    single_types = [d[1] for d in single.description]
    single = single.fetchall()
    grouped = con.execute(f"SELECT person_id, {', '.join(f.grouped() for f in facts)} FROM t GROUP BY person_id ORDER BY person_id")
    assert [d[1] for d in grouped.description] == single_types
    assert single == grouped.fetchall()
    assert len(single) == 72 and {r[1] for r in single} == {1}
    with pytest.raises(ValueError, match="arg_min"):
        Fact("bad", "arg_min", "x")
    with pytest.raises(ValueError, match="no single-row form"):
        Fact("bad", "avg", "n")


def test_a_varies_fact_tells_one_value_from_several():
    """``varies``: true where a person's records hold two different values, false where they hold
    one (however often), null where they hold none; nulls beside a value do not count."""
    import duckdb

    from include.pipeline.reconcile import Fact

    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (1, 'b'), (2, 'a'), (2, 'a'), (3, NULL), (3, 'a'),
                                                         (4, NULL), (4, NULL)) t(person_id, x)""")
    fact = Fact("several", "varies", "x")
    got = dict(con.execute(f"SELECT person_id, {fact.grouped()} FROM t GROUP BY person_id").fetchall())
    assert got == {1: True, 2: False, 3: False, 4: None}


def test_the_six_codes_give_the_same_answers_split_by_region(tmp_path):
    """DUPLICATE_IDENTITY crosses persons: the plan finds the sets, each partition reads them."""
    from include.pipeline.reconcile import reconcile_by_region

    a, b = make_id("19850303", "101"), make_id("19850303", "213")
    records = clean_person(a, name="刘洋") + [pay(b, dwbm="300003", name="刘洋", rylb="编外")]
    whole, _, summary = build(tmp_path, records)
    split = reconcile_by_region(f"{summary['dir']}/std", f"{tmp_path}/split", level="county")
    found = pd.read_parquet(f"{split['dir']}/findings.parquet")
    key = ["code", "id_number", "unit_code", "region_code"]
    assert found[key].sort_values(key).values.tolist() == whole[key].sort_values(key).values.tolist()
    assert "DUPLICATE_IDENTITY" in set(found.code) and "UNREGISTERED_NON_ESTABLISHMENT" in set(found.code)



# --- evidence (OUTPUTS.md "Evidence") ------------------------------------------------------------------

def evidence_of(summary, findings, code, **key) -> set[str]:
    ev = pd.read_parquet(f"{summary['dir']}/evidence.parquet")
    ev = ev[ev.code == code]
    for k, v in key.items():
        ev = ev[ev[k] == v]
    assert ev.facts.notna().all(), ev[ev.facts.isna()]
    return set(ev.record_key)


def keys_of(records, pid=None, source=None, period=PERIOD, **match) -> set[str]:
    """The keys of the hand-built records that match: the expected evidence, read off the input."""
    rows = pd.DataFrame([dict(r) for r in records])
    rows["rec_no"] = rows.groupby("source").cumcount()
    out = set()
    for r in rows.to_dict("records"):
        if (pid is None or r["raw_id"] == pid) and (source is None or r["source"] in source) \
                and all(r.get(k) == v for k, v in match.items()):
            out.add(record_key({**r, "unit_code": r.get("unit_code")}, period))
    return out


def test_every_person_code_rests_on_the_records_the_contract_names(tmp_path):
    p = {code: make_id("19850101", f"{i:02d}1") for i, code in enumerate([
        "PAID_WITHOUT_ESTABLISHMENT", "ESTABLISHED_NOT_PAID", "DUPLICATE_PAY", "MULTIPLE_ESTABLISHMENT",
        "RETIRED_STILL_ACTIVE", "UNIT_MISMATCH", "CLASS_MISMATCH", "RESTRICTED_POST", "CADRE_WITHOUT_ESTABLISHMENT",
        "MISSING_SLIP", "NOT_INSURED", "IDENTITY_CONFLICT", "LEADER_RANK_MISMATCH", "FUNDING_MISMATCH",
        "UNREGISTERED_NON_ESTABLISHMENT"])}
    old = make_id("19641215", "001")
    q = p["PAID_WITHOUT_ESTABLISHMENT"]
    records = (
        [pay(q), hr(q)]
        + [staffing(p["ESTABLISHED_NOT_PAID"]), hr(p["ESTABLISHED_NOT_PAID"])]
        + clean_person(p["DUPLICATE_PAY"]) + [pay(p["DUPLICATE_PAY"], dwbm="300002")]
        + clean_person(p["MULTIPLE_ESTABLISHMENT"]) + [staffing(p["MULTIPLE_ESTABLISHMENT"], unit=U2)]
        + [staffing(p["RETIRED_STILL_ACTIVE"]), pay(p["RETIRED_STILL_ACTIVE"]),
           hr(p["RETIRED_STILL_ACTIVE"], status="退休", retired_on="2026-10-01")]
        + [staffing(p["UNIT_MISMATCH"]), pay(p["UNIT_MISMATCH"], dwbm="300002"), hr(p["UNIT_MISMATCH"])]
        + [staffing(p["CLASS_MISMATCH"]), pay(p["CLASS_MISMATCH"], rylb="编外"), hr(p["CLASS_MISMATCH"])]
        + [staffing(p["RESTRICTED_POST"], unit=U2, klass="non_establishment", post_category="finance"),
           pay(p["RESTRICTED_POST"], dwbm="300002", rylb="编外"), hr(p["RESTRICTED_POST"], emp="E2")]
        + [staffing(p["CADRE_WITHOUT_ESTABLISHMENT"], unit=U2, klass="non_establishment"),
           pay(p["CADRE_WITHOUT_ESTABLISHMENT"], dwbm="300002", rylb="编外"), hr(p["CADRE_WITHOUT_ESTABLISHMENT"], emp="E2"),
           org(p["CADRE_WITHOUT_ESTABLISHMENT"], unit=U2, sfld="1", ldlb="副职", zwcc="科员")]
        + clean_person(p["MISSING_SLIP"], slip_no=None)
        + [staffing(p["NOT_INSURED"]), pay(p["NOT_INSURED"])]
        + clean_person(p["IDENTITY_CONFLICT"]) + [org(p["IDENTITY_CONFLICT"], csrq="19850111")]
        + clean_person(p["LEADER_RANK_MISMATCH"]) + [org(p["LEADER_RANK_MISMATCH"], sfld="1", ldlb="正职", zwcc="正处")]
        + clean_person(p["FUNDING_MISMATCH"], unit=U3, dwbm="300003", emp="E3", quota="institution")
        + [pay(p["UNREGISTERED_NON_ESTABLISHMENT"], rylb="编外"), hr(p["UNREGISTERED_NON_ESTABLISHMENT"])]
        + clean_person(old)
    )
    quotas = [{"unit_code": u, "quota_type": t, "approved": 50} for u in (U1, U2) for t in ("admin", "non_establishment_cap")]
    quotas.append({"unit_code": U3, "quota_type": "institution", "approved": 5})
    findings, _, summary = build(tmp_path, records, quotas=quotas)
    names = {"PAID_WITHOUT_ESTABLISHMENT": "finance", "DUPLICATE_PAY": "finance", "UNREGISTERED_NON_ESTABLISHMENT": "finance",
             "ESTABLISHED_NOT_PAID": "staffing", "MULTIPLE_ESTABLISHMENT": "staffing", "RESTRICTED_POST": "staffing",
             "MISSING_SLIP": "staffing", "CLASS_MISMATCH": ("staffing", "finance"), "NOT_INSURED": ("finance", "hr"),
             "CADRE_WITHOUT_ESTABLISHMENT": ("org", "staffing"), "RETIRED_STILL_ACTIVE": ("staffing", "finance", "hr"),
             "UNIT_MISMATCH": ("staffing", "finance", "org"), "IDENTITY_CONFLICT": ("staffing", "org", "finance", "hr"),
             "LEADER_RANK_MISMATCH": ("org",), "FUNDING_MISMATCH": ("finance",)}
    for code, sources in names.items():
        sources = (sources,) if isinstance(sources, str) else sources
        expected = keys_of(records, p[code], sources)
        expected |= {"LEADER_RANK_MISMATCH": {f"units|{U1}"}, "FUNDING_MISMATCH": {f"units|{U3}"}}.get(code, set())
        assert evidence_of(summary, findings, code, id_number=p[code]) == expected, code
    assert evidence_of(summary, findings, "OVER_RETIREMENT_AGE", id_number=old) == keys_of(records, old)
    assert len(keys_of(records, p["DUPLICATE_PAY"], ("finance",))) == 2
    ev = pd.read_parquet(f"{summary['dir']}/evidence.parquet")
    paid = ev[(ev.code == "DUPLICATE_PAY") & (ev.record_key.str.endswith("300002|" + p["DUPLICATE_PAY"]))]
    assert json.loads(paid.facts.iloc[0]) == {"raw_id": p["DUPLICATE_PAY"], "name": name_of(p["DUPLICATE_PAY"]),
                                             "dwbm": "300002", "rylb": "在编", "jfly": "财政拨款", "yfgz": 8000.0}
    unit = ev[ev.record_key == f"units|{U3}"]
    assert json.loads(unit.facts.iloc[0])["funding"] == "self"


def test_unit_codes_rest_on_their_item_and_every_record_counted(tmp_path):
    est = [make_id(seq=f"{i:02d}1") for i in range(7)]
    ne = [make_id(seq=f"{i:02d}3") for i in range(3)]
    lead = [make_id(seq=f"{i:02d}5") for i in range(2)]
    records = ([r for x in est for r in clean_person(x)]
               + [r for x in ne for r in [staffing(x, klass="non_establishment"), pay(x, rylb="编外"), hr(x)]]
               + [org(x, sfld="1", ldlb="正职", zwcc="科员") for x in lead])
    quotas = [{"unit_code": U1, "quota_type": "admin", "approved": 5}, {"unit_code": U1, "quota_type": "non_establishment_cap", "approved": 2},
              {"unit_code": U2, "quota_type": "admin", "approved": 20}]
    findings, _, summary = build(tmp_path, records, quotas=quotas)
    est_keys = keys_of(records, source=("staffing",), personnel_class="establishment")
    assert evidence_of(summary, findings, "OVER_QUOTA", unit_code=U1) == {f"quotas|{U1}|admin"} | est_keys
    assert evidence_of(summary, findings, "NON_ESTABLISHMENT_OVER_CAP", unit_code=U1) == (
        {f"quotas|{U1}|non_establishment_cap"} | keys_of(records, source=("staffing",), personnel_class="non_establishment"))
    assert evidence_of(summary, findings, "LEADER_OVER_LIMIT", unit_code=U1) == (
        {f"leader_posts|{U1}|principal"} | keys_of(records, source=("org",)))
    assert evidence_of(summary, findings, "HIGH_VACANCY", unit_code=U2) == {f"quotas|{U2}|admin"}   # T 20, nobody


def test_a_revoked_unit_and_an_invalid_id_rest_on_their_records(tmp_path):
    a, b = make_id(seq="601"), make_id(seq="603")
    typo = A[:15] + str((int(A[15]) + 5) % 10) + A[16:]
    units = [{"unit_code": U1, "name": "财政局", "parent_code": None, "region_code": REGION, "kind": "government",
              "rank": "section", "funding": "full", "status": "revoked"}]
    records = clean_person(a) + clean_person(b) + clean_person(A) + [pay(typo, dwbm="300001", name="张三")]
    findings, _, summary = build(tmp_path, records, units=units)
    assert evidence_of(summary, findings, "REVOKED_UNIT_STAFFED", unit_code=U1) == (
        {f"units|{U1}"} | keys_of(records, source=("staffing", "finance")))
    assert evidence_of(summary, findings, "INVALID_ID", source="finance") == {f"gz_ff|202610|300001|{typo}"}


def test_a_duplicate_identity_rests_on_every_record_of_every_person_of_the_set(tmp_path):
    a, b = make_id("19850303", "101"), make_id("19850303", "213")
    records = clean_person(a, name="刘洋") + [pay(b, dwbm="300002", name="刘洋"), hr(b, emp="E2", name="刘洋")]
    findings, _, summary = build(tmp_path, records)
    assert evidence_of(summary, findings, "DUPLICATE_IDENTITY", id_number=min(a, b)) == keys_of(records)
