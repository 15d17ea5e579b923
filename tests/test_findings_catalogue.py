"""The catalogue of findings (include/findings.py) is the one home of every code: these tests
fail when anything that lists codes (the guide, the findings suite, publish's keys, the
digests' words, the generator and its oracle) disagrees with it."""

import json
import re
from pathlib import Path

import pytest

from include import findings as F
from include.alerts import codes as C
from include.generator import oracle
from include.generator import problems as PR
from include.pipeline import publish, reconcile
from include.quality.gates import load_suite

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "contracts" / "OUTPUTS.md"


def test_the_catalogue_holds_the_codes_of_the_contract_in_its_order():
    if not CONTRACT.exists():
        pytest.skip("the contracts are not beside this checkout")
    table = CONTRACT.read_text(encoding="utf-8").split("## The codes", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (high|medium|info) \| ([^|]+) \| (\S+?)[:：]", table, re.M)
    assert [r[0] for r in rows] == list(F.CODES)
    for code, severity, _key, term in rows:
        assert F.SEVERITY[code] == severity, code
        assert F.TERM[code] == term, code


def test_the_guide_prints_the_catalogue():
    guide = (ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    assert F.guide_table() in guide, "docs/OPERATIONS.md §9: paste the output of python -m include.findings"
    assert F.thresholds_table() in guide, "docs/OPERATIONS.md §9: paste the output of python -m include.findings"
    assert F.details_table() in guide, "docs/OPERATIONS.md §9: paste the output of python -m include.findings"


def test_the_findings_suite_takes_its_codes_from_the_catalogue():
    suite = load_suite("findings")
    stale = [e for e in suite["expectations"] if e["kwargs"].get("column") == "code" and "value_set" in e["kwargs"]]
    assert stale == [], "expectations/findings.json must not list the codes: audit_period adds the catalogue's"
    source = (ROOT / "include" / "quality" / "gates.py").read_text(encoding="utf-8")
    assert '"value_set": list(CODES)' in source


def test_publish_keys_and_digest_words_read_the_catalogue():
    for code, finding in F.CATALOGUE.items():
        assert publish.CODE_KEYS.get(code, publish.PERSON_KEY) == list(finding.keys), code
        assert C.LABEL[code] == finding.term and C.ACTION[code] == finding.action
        assert reconcile.SEVERITY[code] == finding.severity
        assert (finding.scope == "person") == (finding.keys == ("id_number",)), code


def test_the_generator_injects_and_the_oracle_knows_every_code():
    assert PR.CODES == list(F.CODES)
    # The oracle copies the contract instead of importing the catalogue: compared here only.
    assert oracle.SEVERITY == dict(F.SEVERITY)


def test_every_code_reads_in_one_line_without_a_full_id():
    other = "150204198503032136"
    samples = {
        "IDENTITY_CONFLICT": {"id_birth_date": "1980-01-01", "id_sex": "M",
                              "conflicts": [{"source": "org", "field": "csrq", "value": "19800110"}], "names": []},
        "OVER_RETIREMENT_AGE": {"birth_date": "1964-12-15", "sex": "M", "retirement_date": "2024-12-15", "paid_as": ["在编"]},
        "LEADER_RANK_MISMATCH": {"posts": [{"unit_code": "U", "ldlb": "正职", "zwcc": "正处", "limit": "正科"}]},
        "FUNDING_MISMATCH": {"self_funded_payers": [{"dwbm": "300003", "unit_code": "U", "rylb": "在编"}]},
        "DUPLICATE_IDENTITY": {"others": [other], "names": ["刘洋"]},
    }
    for code in F.CODES:
        line = C.describe(code, json.dumps(samples.get(code, {"paid_by": ["300001"], "gross_pay": 1.5})))
        assert line and other not in line, code
    assert "150204********2136" in C.describe("DUPLICATE_IDENTITY", json.dumps(samples["DUPLICATE_IDENTITY"]))
    assert "2024-12-15" in C.describe("OVER_RETIREMENT_AGE", json.dumps(samples["OVER_RETIREMENT_AGE"]))


def test_a_duplicate_pay_line_names_each_paying_unit_and_what_it_paid():
    details = {"staffing_units": ["U1"], "staffing_records": 1, "paid_by": ["300110", "300125"], "gross_pay": 8235.79,
               "org_units": None, "retired_on": None, "insured": True, "paid_as": ["在编"],
               "payments": [{"dwbm": "300110", "name": "第一中学", "unit_code": "U1", "rylb": "在编", "jfly": "财政拨款",
                             "gross_pay": 5760.48},
                            {"dwbm": "300125", "name": "教育局", "unit_code": "U2", "rylb": "在编", "jfly": "单位自筹",
                             "gross_pay": 2475.31}],
               "units": [{"unit_code": "U1", "name": "第一中学", "sources": ["finance", "staffing"]},
                         {"unit_code": "U2", "name": "教育局", "sources": ["finance"]}]}
    assert F.check_details("DUPLICATE_PAY", details) == []
    assert C.describe("DUPLICATE_PAY", json.dumps(details)) == (
        "实名制单位 第一中学（U1），发薪 300110 第一中学 5,760.48 元（在编）、300125 教育局 2,475.31 元（在编，单位自筹），"
        "合计应发 8,235.79 元")


def test_a_threshold_is_named_once_and_the_sql_is_built_from_it():
    vacancy = F.CATALOGUE["HIGH_VACANCY"]
    assert vacancy.thresholds["min_approved"] == 10 and vacancy.thresholds["share"] == F.Fraction(3, 10)
    assert "approved >= 10" in vacancy.sql and "10 * (approved - actual) >= 3 * approved" in vacancy.sql
    assert F.RETIREMENT["max_delay_months"] == 36 and "least(36, " in F.retirement_macro_sql()[0]


def test_details_are_checked_against_their_code_schema():
    good = {"approved": 5, "actual": 6, "excess": 1}
    assert F.check_details("OVER_QUOTA", good) == []
    assert F.check_details("OVER_QUOTA", {**good, "excess": 1.5}) == ["OVER_QUOTA: excess = 1.5 is not int"]
    assert F.check_details("OVER_QUOTA", {"approved": 5, "actual": 6}) == ["OVER_QUOTA: field 'excess' missing"]
    assert "not in the schema" in F.check_details("OVER_QUOTA", {**good, "extra": 1})[0]
    person = {"staffing_units": None, "staffing_records": 0, "paid_by": ["300001"], "gross_pay": 8235.79,
              "org_units": None, "retired_on": None, "insured": False, "paid_as": ["在编"],
              "payments": [{"dwbm": "300001", "name": "某某小学", "unit_code": None, "rylb": "在编", "jfly": "财政拨款",
                            "gross_pay": 8235.79}], "units": None}
    assert F.check_details("PAID_WITHOUT_ESTABLISHMENT", person) == []
    assert F.check_details("PAID_WITHOUT_ESTABLISHMENT", {**person, "payments": [{"dwbm": "300001"}]})[0].startswith(
        "PAID_WITHOUT_ESTABLISHMENT: payments entry {'dwbm': '300001'} has not the fields")
    assert F.check_details("PAID_WITHOUT_ESTABLISHMENT", {**person, "gross_pay": 8235.789999999999}) == [
        "PAID_WITHOUT_ESTABLISHMENT: gross_pay = 8235.789999999999 is not money?"]
    assert F.check_details("OVER_RETIREMENT_AGE", {**person, "birth_date": "1964-12-15", "sex": "M",
                                                   "retirement_date": "2024/12/15", "hr_status": None}) == [
        "OVER_RETIREMENT_AGE: retirement_date = '2024/12/15' is not date"]
