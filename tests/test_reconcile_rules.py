"""Each code of OUTPUTS.md on small hand-built data, boundary cases included."""

import json

import pandas as pd
import pytest

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


def staffing(pid, unit=U1, klass="establishment", quota="admin", **kw):
    row = {"raw_id": pid, "name": kw.pop("name", "张三"), "unit_code": unit, "record_id": kw.pop("record_id", f"SP{pid[-6:]}{unit[-2:]}"),
           "sex": "M", "birth_date": "1980-01-01", "personnel_class": klass,
           "quota_type": quota if klass == "establishment" else None,
           "non_establishment_category": None if klass == "establishment" else "general_support",
           "post_category": "general", "position": "科员", "entered_on": "2020-01-01",
           "slip_no": "HB2020000001" if klass == "establishment" else None}
    row.update(kw)
    return {"source": "staffing", **row}


def pay(pid, dwbm="300001", rylb="在编", jfly="财政拨款", name="张三", yfgz=8000.0):
    return {"source": "finance", "raw_id": pid, "name": name, "dwbm": dwbm, "rylb": rylb, "jfly": jfly, "yfgz": yfgz}


def org(pid, unit=U1, sfld="0", ldlb="", name="张三"):
    return {"source": "org", "raw_id": pid, "name": name, "unit_code": unit, "sfld": sfld, "ldlb": ldlb, "zwcc": "科员"}


def hr(pid, emp="E1", insured="参保缴费", status="在职", retired_on=None, name="张三"):
    return {"source": "hr", "raw_id": pid, "name": name, "emp_no": emp, "insured_status": insured, "hr_status": status,
            "retired_on": retired_on}


BUDGET = {"300001": U1, "300002": U2, "300003": U3, "900001": None}
EMPLOYERS = {"E1": U1, "E2": U2, "E3": U3}


def build(tmp_path, records, quotas=None, leader_posts=None, units=None):
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
    df = _identify(df, PERIOD).reindex(columns=RECORD_COLUMNS)
    for col in RECORD_COLUMNS:
        if col not in ("rec_no", "id_valid", "yfgz"):
            df[col] = df[col].astype("string")
    df["yfgz"] = pd.to_numeric(df["yfgz"])
    df.to_parquet(std / "records.parquet")
    (std / "_summary.json").write_text(json.dumps({"period": PERIOD, "ds": "2026-10-31"}))
    summary = reconcile(str(std))
    findings = pd.read_parquet(f"{summary['dir']}/findings.parquet")
    roster = pd.read_parquet(f"{summary['dir']}/roster.parquet")
    return findings, roster, summary


def clean_person(pid, unit=U1, dwbm="300001", emp="E1", **kw):
    return [staffing(pid, unit, **kw), pay(pid, dwbm), hr(pid, emp)]


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
    records = clean_person(A) + clean_person(twin) + [pay(typo, dwbm="300001")]
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
    findings, roster, _ = build(tmp_path, [staffing(A), pay(dirty), hr(legacy)])
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
