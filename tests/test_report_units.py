"""The monthly report's unit list (单位明细), built for every jurisdiction at once (issue 17).

A province with a city (150200) of two counties: unit A in 150202 with establishment and both leader
levels, unit B in 150203 with another quota type and deputies only, unit C with no counts
but a finding. One of A's findings carries 150203 as its region (a finding's region is the
person's, which need not be the unit's), so A is listed in 150203's report too.
"""

import pandas as pd
import pytest

from include.report import monthly

PROVINCE, CITY, A_COUNTY, B_COUNTY = "150000", "150200", "150202", "150203"
ROWS = [  # measure, unit, region, item, approved, actual
    ("quota", "A", A_COUNTY, "admin", 10, 12), ("leader_posts", "A", A_COUNTY, "principal", 1, 1),
    ("leader_posts", "A", A_COUNTY, "deputy", 2, 3), ("non_establishment", "A", A_COUNTY, "total", 5, 6),
    ("non_establishment", "A", A_COUNTY, "teacher", None, 6),
    ("quota", "B", B_COUNTY, "institution", 20, 15), ("leader_posts", "B", B_COUNTY, "deputy", 1, 2),
]
FINDINGS = [  # code, severity, region, unit
    ("OVER_QUOTA", "high", A_COUNTY, "A"), ("PAID_WITHOUT_ESTABLISHMENT", "high", B_COUNTY, "A"),
    ("RETIRED_STILL_ACTIVE", "high", B_COUNTY, "C"), ("INVALID_ID", "medium", B_COUNTY, None),
]


@pytest.fixture(scope="module")
def spread():
    stats = pd.DataFrame(ROWS, columns=["measure", "unit_code", "region_code", "item", "approved", "actual"]).astype(
        {"measure": "str", "unit_code": "str", "region_code": "str", "item": "str", "approved": "float64"})
    findings = pd.DataFrame(FINDINGS, columns=["code", "severity", "region_code", "unit_code"]).astype("str")
    findings["unit_code"] = findings.unit_code.where(findings.unit_code != "None")
    juris = monthly.jurisdictions(pd.concat([stats.region_code, findings.region_code]))
    assert juris == [PROVINCE, CITY, A_COUNTY, B_COUNTY]
    return monthly._spread(stats, juris, [PROVINCE]), monthly._spread(findings, juris, [PROVINCE])


def units_of(table: pd.DataFrame, j: str) -> pd.DataFrame:
    return monthly._units_of(table[table.jurisdiction == j])


def test_each_jurisdiction_lists_its_units_with_its_own_findings(spread):
    stats, findings = spread
    names = pd.Series({"A": "甲局", "B": "乙中心", "C": "丙所"})
    table = monthly._per_unit(stats, findings, names)
    county_a, county_b, city = units_of(table, A_COUNTY), units_of(table, B_COUNTY), units_of(table, CITY)

    assert list(county_a["单位代码"]) == ["A"]
    a = county_a.iloc[0]
    assert (a["核定编制"], a["实有在编"], a["超编"], a["编外人员"], a["编外控制数"]) == (10, 12, 2, 6, 5.0)
    assert (a["领导正职 核定/实配"], a["领导副职 核定/实配"], a["行政编制 核定/实有"]) == ("1 / 1", "2 / 3", "10 / 12")
    assert (a["高"], a["中"], a["问题"]) == (1, 0, "超编 1"), "A's finding of its own county only"
    assert "事业编制 核定/实有" not in county_a.columns, "no column for a quota type the county has no unit of"

    # county B: A listed for the finding with B's region, C for its finding; the findings first
    assert list(county_b["单位代码"]) == ["A", "C", "B"]
    assert list(county_b["事业编制 核定/实有"]) == ["", "", "20 / 15"]
    assert "行政编制 核定/实有" not in county_b.columns
    assert list(county_b["领导正职 核定/实配"]) == ["", "", ""], "no unit of county B has principal posts"
    assert list(county_b["领导副职 核定/实配"]) == ["", "", "1 / 2"]
    assert list(county_b["核定编制"]) == [0, 0, 20] and list(county_b["高"]) == [1, 1, 0]
    assert county_b["编外控制数"].isna().tolist() == [True, True, True]

    # the city covers both counties: a type or level some unit has shows 0 / 0 for the others
    # with counts, blank for the unit with none
    assert list(city["单位代码"]) == ["A", "C", "B"]
    assert list(city["行政编制 核定/实有"]) == ["10 / 12", "", "0 / 0"]
    assert list(city["事业编制 核定/实有"]) == ["0 / 0", "", "20 / 15"]
    assert list(city["领导正职 核定/实配"]) == ["1 / 1", "", "0 / 0"]
    assert list(city["问题"]) == ["超编 1、有薪无编 1", "退休未减员 1", ""]
    assert list(city["高"]) == [2, 1, 0] and list(city["单位名称"]) == ["甲局", "丙所", "乙中心"]
    assert list(city.columns[-2:]) == ["行政编制 核定/实有", "事业编制 核定/实有"], "types in the quota order, last"
    pd.testing.assert_frame_equal(units_of(table, PROVINCE), city)
    assert units_of(table, "150300").empty


def test_the_table_of_all_jurisdictions_is_each_jurisdictions_own(spread):
    """Built at once, a jurisdiction's rows are those built from its rows alone."""
    stats, findings = spread
    names = pd.Series({"A": "甲局", "B": "乙中心", "C": "丙所"})
    table = monthly._per_unit(stats, findings, names)
    for j in (PROVINCE, CITY, A_COUNTY, B_COUNTY):
        alone = monthly._per_unit(stats[stats.jurisdiction == j], findings[findings.jurisdiction == j], names)
        pd.testing.assert_frame_equal(units_of(table, j), units_of(alone, j))
