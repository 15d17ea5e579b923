"""Alerts that reach the office that must act, and the monthly report (issue 6).

A generated province of seven jurisdictions (the province's and two cities' own units,
four counties) runs through the pipeline for two periods; digests go through the SMTP
provider to a real SMTP server on loopback.
"""

import json
import os
import re
import types

import pandas as pd
import pytest
import sqlalchemy as sa

from include.alerts import digest, mail, ops, routing
from include.pipeline.local import run_local
from include.simulators.cluster import Simulators
from tests.db import table
from tests.id_scan import full_ids_in, known_ids
from tests.smtp import SmtpServer, attachment_text

P1, P2 = "2026-10", "2026-11"
D1, D2 = "2026-10-31", "2026-11-30"
CONFIG = {
    "offices": {
        "150000": {"name": "自治区编办", "region": "内蒙古自治区", "to": ["prov@bb.example.gov.cn"]},
        "150100": {"name": "呼和浩特市编办", "region": "呼和浩特市", "to": ["hhht@bb.example.gov.cn"],
                   "cc": ["hhht-smz@bb.example.gov.cn"]},
        "150102": {"name": "第1区编办", "to": ["c102@bb.example.gov.cn"]},
        "150202": {"name": "包头第1区编办", "to": ["c202@bb.example.gov.cn"]},
    },
    "engineers": ["ops@example.org"],
}
# Written out by hand: the office each region's findings must reach (150103 -> its city;
# 150200 has no office of its own, so it and its county 150203 -> the province).
EXPECTED_OFFICE = {"150000": "150000", "150100": "150100", "150102": "150102", "150103": "150100",
                   "150200": "150000", "150202": "150202", "150203": "150000", None: "150000"}
RECIPIENTS = {"150000": ["prov@bb.example.gov.cn"], "150100": ["hhht-smz@bb.example.gov.cn", "hhht@bb.example.gov.cn"],
              "150102": ["c102@bb.example.gov.cn"], "150202": ["c202@bb.example.gov.cn"]}


def office_of(region):
    return EXPECTED_OFFICE[None if region is None or pd.isna(region) else region]


def by_office(messages):
    out = {}
    for m in messages:
        out.setdefault(m["msg"]["X-Roster-Sync-Office"], []).append(m)
    return out


def new_lines(text: str) -> list[str]:
    section = text.split("== 新增问题", 1)[1].split("\n== ", 1)[0] if "== 新增问题" in text else ""
    return [ln for ln in section.splitlines() if ln.startswith("     - ")]


def resolved_lines(text: str) -> list[str]:
    section = text.split("== 已整改", 1)[1].split("\n== ", 1)[0] if "== 已整改" in text else ""
    return [ln for ln in section.splitlines() if ln.startswith("     - ")]


def body(m) -> str:
    return m["msg"].get_body(("plain",)).get_content()


@pytest.fixture(scope="module")
def province(province_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("province")
    world = province_world
    url = f"sqlite:///{tmp / 'roster.db'}"
    root = str(tmp / "lake")
    routes = routing.parse(CONFIG)
    inbox = {}
    with SmtpServer() as smtp:
        saved = {k: os.environ.get(k) for k in smtp.env()}
        os.environ.update(smtp.env())
        try:
            with Simulators(world, ports={"staffing": 0, "org": 0, "hr": 0},
                            finance_url=f"sqlite:///{tmp / 'finance.db'}") as sims:
                first = run_local(sims.connections(), sims.finance_url, url, root, D1, routes=routes)
                inbox["first"] = list(smtp.inbox.messages)
                smtp.inbox.clear()
                alerts_1 = table(url, "SELECT * FROM reconciliation_alert")
                rerun = run_local(sims.connections(), sims.finance_url, url, root, D1, routes=routes)
                again = digest.send_digests(url, P1, routes, mail.open_outbox(tmp / "unused"), first["reconcile"]["dir"])
                inbox["rerun"] = list(smtp.inbox.messages)
                sims.advance(P2)
                second = run_local(sims.connections(), sims.finance_url, url, root, D2, routes=routes)
                inbox["second"] = list(smtp.inbox.messages[len(inbox["rerun"]):])
                smtp.inbox.clear()
                third = digest.send_digests(url, P2, routes, mail.open_outbox(tmp / "unused"), second["reconcile"]["dir"])
                inbox["after_second"] = list(smtp.inbox.messages)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return {"world": world, "url": url, "root": root, "routes": routes, "inbox": inbox, "runs": (first, rerun, second),
            "again": (again, third), "alerts_1": alerts_1, "tmp": tmp}


def test_the_province_has_findings_in_several_counties(province):
    alerts = province["alerts_1"]
    assert alerts.region_code.nunique() >= 6
    assert {"150102", "150103", "150202", "150203"} <= set(alerts.region_code)


def test_each_office_gets_one_digest_with_its_own_findings(province):
    alerts = province["alerts_1"].assign(office=lambda d: d.region_code.map(office_of))
    got = by_office(province["inbox"]["first"])
    assert set(got) == set(alerts.office), "every office with findings is told, and only those"
    for office, msgs in got.items():
        assert len(msgs) == 1, f"office {office} got {len(msgs)} digests"
        m = msgs[0]
        assert m["rcpt"] == RECIPIENTS[office]
        assert m["from"] == "roster-sync@example.org"
        mine = alerts[alerts.office == office]
        text = body(m)
        assert f"新增 {len(mine)}，仍未整改 0，已整改 0" in m["msg"]["Subject"]
        assert len(new_lines(text)) == len(mine)
        assert m["msg"].get_body(("html",)) is not None, "an HTML part beside the text"
        for code, n in mine.code.value_counts().items():
            assert sum(f" {code}" in ln for ln in new_lines(text)) == n, code
        for pid in mine.id_number.dropna():
            assert pid not in text and f"{pid[:6]}********{pid[-4:]}" in text


def test_high_severity_comes_first_and_findings_are_grouped_by_unit(province):
    for m in province["inbox"]["first"]:
        text = body(m)
        heads = re.findall(r"-- 严重程度：(\S+?)（", text)
        order = {"高": 0, "中": 1, "提示": 2}
        assert heads == sorted(heads, key=order.get) and len(set(heads)) == len(heads)


def test_nothing_is_sent_twice_on_rerun(province):
    assert province["inbox"]["rerun"] == [], "a rerun of the same logical date sent mail again"
    assert province["again"] == ({}, {})
    assert province["inbox"]["after_second"] == []
    log = table(province["url"], "SELECT * FROM digest_log")
    assert len(log) == len(province["inbox"]["first"]) + len(province["inbox"]["second"])
    items = table(province["url"], "SELECT * FROM digest_item")
    assert not items.duplicated(["office_code", "alert_key", "event", "event_period"]).any()


def test_the_next_period_tells_new_and_resolved_once(province):
    url = province["url"]
    events = table(url, "SELECT * FROM alert_event WHERE period = :p", p=P2).assign(
        office=lambda d: d.region_code.map(office_of))
    alerts = table(url, "SELECT * FROM reconciliation_alert").assign(office=lambda d: d.region_code.map(office_of))
    assert (events.event == "resolved").any() and events.event.isin(["opened", "reopened"]).any()
    got = by_office(province["inbox"]["second"])
    expected_offices = set(events.office)
    assert set(got) == expected_offices
    for office, msgs in got.items():
        assert len(msgs) == 1
        text, subject = body(msgs[0]), msgs[0]["msg"]["Subject"]
        new = events[(events.office == office) & events.event.isin(["opened", "reopened"])]
        resolved = events[(events.office == office) & (events.event == "resolved")]
        still = alerts[(alerts.office == office) & (alerts.status == "open")]
        assert f"新增 {len(new)}，仍未整改 {len(still) - len(new)}，已整改 {len(resolved)}" in subject
        assert len(new_lines(text)) == len(new)
        assert len(resolved_lines(text)) == len(resolved)
        for line in resolved_lines(text):   # a resolved person keeps their name (from the roster they were on)
            assert not re.search(r"[A-Z_]+：\d{6}\*{8}[\dX]{4}", line), line


def attachments(m) -> list:
    return [(p.get_filename(), p.get_content()) for p in m["msg"].iter_attachments()]


def test_every_line_gives_the_records_to_look_up_and_the_workbook_lists_every_open_finding(province):
    import io

    from openpyxl import load_workbook

    url = province["url"]
    evidence = table(url, "SELECT * FROM alert_evidence")
    for stage in ("first", "second"):
        for office, msgs in by_office(province["inbox"][stage]).items():
            m = msgs[0]
            text = body(m)
            section = text.split("== 新增问题", 1)[1].split("\n== ", 1)[0] if "== 新增问题" in text else ""
            lines = section.splitlines()
            for i, ln in enumerate(lines):   # each new finding is followed by its records, masked
                if ln.startswith("     - "):
                    assert lines[i + 1].startswith("       记录："), ln
            [(name, data)] = attachments(m)
            period = m["msg"]["X-Roster-Sync-Period"]
            assert name == f"未整改问题_{office}_{period}.xlsx"
            assert re.search(r"\d{6}\*{8}[\dX]{4}", attachment_text(data)), "the ID scans read the attachment: masked IDs"
            wb = load_workbook(io.BytesIO(data))
            open_now = table(url, "SELECT * FROM reconciliation_alert WHERE status = 'open'").assign(
                office=lambda d: d.region_code.map(office_of))
            if stage == "second":
                mine = open_now[open_now.office == office]
                listed = [r[-1] for r in wb["未整改问题"].iter_rows(min_row=4, values_only=True)]
                assert sorted(listed) == sorted(mine.alert_key), "the workbook lists every open finding of the office"
                sheets = set(wb.sheetnames) - {"未整改问题"}
                assert sheets, "the records are on the sheets after the first"
                keyed = {r[0] for t in sheets for r in wb[t].iter_rows(min_row=2, values_only=True)}
                assert keyed == set(evidence[evidence.alert_key.isin(mine.alert_key)].alert_key)
                assert keyed == set(mine.alert_key), "every open finding has its records in the workbook"


def test_an_invalid_id_line_names_the_record_and_where_the_number_fails(province):
    lines = [ln for m in province["inbox"]["first"] for ln in body(m).splitlines() if "INVALID_ID" in ln]
    assert lines
    for line in lines:
        assert "记录姓名" in line, line
        assert re.search(r"第 (18 位校验码|11-12 位出生月份|13-14 位出生日|\d+ 位为)", line), line


def test_a_region_that_gets_its_own_office_hears_of_its_open_findings(province, tmp_path):
    url, first = province["url"], province["runs"][2]
    config = json.loads(json.dumps(CONFIG))
    config["offices"]["150203"] = {"name": "包头第2区编办", "to": ["c203@bb.example.gov.cn"]}
    outbox = mail.FileOutbox(tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    src = sa.create_engine(url)
    with src.connect() as a, engine.begin() as b:   # work on a copy: the module's database stays as it is
        for name in ("reconciliation_alert", "alert_event", "alert_evidence", "digest_item", "digest_log", "roster"):
            pd.read_sql(sa.text(f"SELECT * FROM {name}"), a).to_sql(name, b, index=False)
    src.dispose()
    engine.dispose()
    sent = digest.send_digests(f"sqlite:///{tmp_path / 'copy.db'}", P2, routing.parse(config), outbox,
                               first["reconcile"]["dir"])
    open_203 = table(url, "SELECT * FROM reconciliation_alert WHERE status = 'open' AND region_code = '150203'")
    assert set(sent) == ({"150203"} if len(open_203) else set())
    if len(open_203):
        assert sent["150203"]["new"] == len(open_203)


def test_no_full_id_in_any_mail_or_digest_file(province):
    known = known_ids(province["world"], [P1, P2])
    assert len(known) > 1000
    from tests.smtp import Inbox

    box = Inbox()
    box.messages = province["inbox"]["first"] + province["inbox"]["second"]
    for text in box.texts():
        assert full_ids_in(text, known) == []


# --- the monthly report -------------------------------------------------------------------------

def test_a_report_for_every_jurisdiction(province):
    reports = province["runs"][2]["reports"]
    assert set(reports) == {"150000", "150100", "150102", "150103", "150200", "150202", "150203"}
    assert reports["150100"]["name"] == "呼和浩特市" and reports["150203"]["name"] == "区划 150203"
    for r in reports.values():
        assert os.path.getsize(r["html"]) > 20_000 and os.path.getsize(r["xlsx"]) > 4_000


def test_report_totals_add_up_from_the_units_and_match_the_findings(province):
    from openpyxl import load_workbook

    second = province["runs"][2]
    work = second["reconcile"]["dir"]
    quotas = pd.read_parquet(f"{work}/std/quotas.parquet")
    units = pd.read_parquet(f"{work}/std/units.parquet")
    q = quotas[quotas.quota_type != "non_establishment_cap"].merge(units[["unit_code", "region_code"]], on="unit_code")
    rows = table(province["url"], "SELECT * FROM monthly_report WHERE period = :p", p=P2)
    findings = pd.read_parquet(f"{work}/findings.parquet")
    for region, covers in {"150000": lambda r: True, "150200": lambda r: r.startswith("1502"),
                           "150203": lambda r: r == "150203"}.items():
        mine = rows[rows.region_code == region].set_index(["section", "item"])
        assert mine.loc[("quota", "total"), "approved"] == q[q.region_code.map(covers)].approved.sum(), region
        over = findings[(findings.code == "OVER_QUOTA") & findings.region_code.map(lambda r: isinstance(r, str) and covers(r))]
        assert (mine.loc[("findings", "OVER_QUOTA"), "actual"] if ("findings", "OVER_QUOTA") in mine.index else 0) == len(over)
        wb = load_workbook(second["reports"][region]["xlsx"])
        assert wb.sheetnames == ["概览", "编制", "超编单位", "编外人员", "超控制数单位", "领导职数", "超职数单位", "单位明细", "核查问题"]
        total = [r for r in wb["编制"].iter_rows(values_only=True) if r[0] == "合计"][0]
        assert total[1] == mine.loc[("quota", "total"), "approved"] and total[2] == mine.loc[("quota", "total"), "actual"]
        assert all(c.number_format == "0.0%" for c in wb["编制"]["F"][1:]), "the vacancy rate reads as a percentage"
        # the drill-down: the units over the cap and over leader posts are the findings' units
        mine_f = findings[findings.region_code.map(lambda r: isinstance(r, str) and covers(r))]
        for sheet, code in (("超控制数单位", "NON_ESTABLISHMENT_OVER_CAP"), ("超职数单位", "LEADER_OVER_LIMIT"),
                            ("超编单位", "OVER_QUOTA")):
            listed = sorted(r[0] for r in wb[sheet].iter_rows(min_row=2, values_only=True))
            assert listed == sorted(mine_f[mine_f.code == code].unit_code), (region, sheet)
        per_unit = pd.DataFrame(list(wb["单位明细"].iter_rows(min_row=2, values_only=True)),
                                columns=[c.value for c in wb["单位明细"][1]])
        assert per_unit["核定编制"].sum() == mine.loc[("quota", "total"), "approved"]
        assert per_unit["实有在编"].sum() == mine.loc[("quota", "total"), "actual"]
        with_unit = mine_f.dropna(subset=["unit_code"])
        assert (per_unit["高"] + per_unit["中"] + per_unit["提示"]).sum() == len(with_unit), "each unit's findings"
        # the two 在编 figures, reconciled: the staffing count less the roster's is the
        # self-funded units' establishment plus the rest
        overview = {r[0]: r[1] for r in wb["概览"].iter_rows(min_row=4, values_only=True) if r[0]}
        self_funded = q[q.region_code.map(covers) & q.unit_code.isin(units[units.funding == "self"].unit_code)]
        stats = pd.read_parquet(f"{work}/unit_stats.parquet")
        est = stats[(stats.measure == "quota") & stats.region_code.map(lambda r: isinstance(r, str) and covers(r))]
        assert overview["两个在编数之差：自收自支单位在编"] == est[est.unit_code.isin(self_funded.unit_code)].actual.sum()
        assert (overview["实有在编（编办实名制口径）"] - overview["财政供养人员：编制内（花名册口径）"]
                == overview["两个在编数之差：自收自支单位在编"] + overview["两个在编数之差：其他"])
    # a city covers its own units and its counties: the sum of the parts
    city = rows[(rows.section == "quota") & (rows.item == "total")].set_index("region_code").approved
    own = q[q.region_code == "150200"].approved.sum()
    assert city["150200"] == own + city["150202"] + city["150203"]


def test_report_charts_are_real_pictures(province):
    from PIL import Image

    charts = province["runs"][2]["reports"]["150000"]["charts"]
    assert set(charts) == {"quota", "non_establishment", "leaders", "trend", "codes"}
    for name, path in charts.items():
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width >= 500 and im.height >= 250, name
            assert len(im.convert("RGB").getcolors(1 << 20)) > 20, f"{name} looks blank"


def test_report_rerun_replaces_its_rows(province, monkeypatch, caplog):
    """A rebuild replaces the period's rows with the same ones, and tells how far it is as it goes
    (every PROGRESS_EVERY seconds: here after each jurisdiction)."""
    from include.report import monthly

    second = province["runs"][2]
    before = table(province["url"], "SELECT * FROM monthly_report ORDER BY 1, 2, 3, 4").drop(columns="generated_at")
    monkeypatch.setattr(monthly, "PROGRESS_EVERY", 0.0)
    caplog.set_level("INFO", logger="roster_sync")
    built = monthly.build(second["reconcile"]["dir"], province["url"], P2, province["root"], province["routes"])
    after = table(province["url"], "SELECT * FROM monthly_report ORDER BY 1, 2, 3, 4").drop(columns="generated_at")
    pd.testing.assert_frame_equal(before, after)
    assert set(after.period) == {P1, P2}
    told = [r.getMessage().split(" jurisdictions written")[0] for r in caplog.records if " jurisdictions written, " in r.getMessage()]
    assert told == [f"monthly reports for {P2}: {n} of {len(built)}" for n in range(1, len(built) + 1)]


def test_reports_built_in_batches_are_the_reports_built_at_once(province):
    """The DAG maps the reports over batches of jurisdictions: the same rows and files as one build."""
    from include.report.monthly import build, report_batches

    second = province["runs"][2]
    work = second["reconcile"]["dir"]
    batches = report_batches(work, 3)
    assert len(batches) == 3 and sorted(sum(batches, [])) == sorted(second["reports"])
    assert report_batches(work, 50) == [[j] for j in sorted(second["reports"])], "never an empty batch"
    before = table(province["url"], "SELECT * FROM monthly_report ORDER BY 1, 2, 3, 4").drop(columns="generated_at")
    xlsx_before = {j: open(r["xlsx"], "rb").read() for j, r in second["reports"].items()}
    built = {}
    for batch in batches:
        built.update(build(work, province["url"], P2, province["root"], province["routes"], only=batch))
    after = table(province["url"], "SELECT * FROM monthly_report ORDER BY 1, 2, 3, 4").drop(columns="generated_at")
    pd.testing.assert_frame_equal(before, after)
    assert set(built) == set(second["reports"])
    from openpyxl import load_workbook
    import io
    for j, r in built.items():
        old, new = load_workbook(io.BytesIO(xlsx_before[j])), load_workbook(r["xlsx"])
        for name in old.sheetnames:
            assert list(old[name].values) == list(new[name].values), (j, name)


# --- routing -----------------------------------------------------------------------------------

def test_routing_goes_up_the_hierarchy():
    r = routing.parse(CONFIG)
    for region, office in EXPECTED_OFFICE.items():
        assert r.office_code(region) == office, region
    assert r.route(pd.Series(["150103", None, "150202"])).tolist() == ["150100", "150000", "150202"]
    assert routing.lineage("150204") == ["150204", "150200", "150000"] and routing.lineage("1502") == []


@pytest.mark.parametrize("bad, message", [
    ({"offices": {}}, "at least one region"),
    ({"offices": {"15020": {"to": ["a@b.cn"]}}}, "not a 6-digit region code"),
    ({"offices": {"150204": {"to": []}}}, "no recipients"),
    ({"offices": {"150204": {"to": ["not-an-address"]}}}, "not an e-mail address"),
    ({"offices": {"150204": {"to": "a@b.cn"}}}, "lists of addresses"),
    ({"offices": {"150204": {"to": ["a@b.cn"]}}, "default_office": "150000"}, "default_office"),
])
def test_a_bad_recipients_config_is_a_clear_error(bad, message):
    with pytest.raises(routing.RoutingConfigError, match=message):
        routing.parse(bad, "test.json")


def test_the_shipped_config_and_the_variable_override(tmp_path, monkeypatch):
    shipped = routing.load()
    assert shipped.office_code("150204") == "150204" and shipped.engineers
    override = tmp_path / "r.json"
    override.write_text(json.dumps(CONFIG))
    monkeypatch.setenv(routing.ENV_CONFIG, str(override))
    assert routing.load().office_code("150204") == "150000"
    assert routing.load(text=json.dumps({"offices": {"150200": {"to": ["x@y.cn"]}}})).office_code("150204") == "150200"
    with pytest.raises(routing.RoutingConfigError, match="not valid JSON"):
        routing.load(text="{")


# --- the engineers -----------------------------------------------------------------------------

FULL_ID = "150204199001011234"   # shaped like an ID; must never leave unmasked


def fake_ti(**kw):
    ti = types.SimpleNamespace(dag_id="roster_sync", task_id="standardise", run_id="scheduled__2026-11-30T06:00:00+00:00",
                               try_number=3, log_url="http://airflow.example.org/dags/roster_sync/runs/x/tasks/standardise")
    ti.xcom_pull = lambda task_ids: "2026-11"
    ti.__dict__.update(kw)
    return ti


def test_a_failed_task_mails_the_engineers_a_short_summary(monkeypatch, tmp_path):
    import datetime as dt

    monkeypatch.setenv(routing.ENV_CONFIG, str(tmp_path / "r.json"))
    (tmp_path / "r.json").write_text(json.dumps(CONFIG))
    with SmtpServer() as smtp:
        for k, v in smtp.env().items():
            monkeypatch.setenv(k, v)
        exc = ValueError(f"person {FULL_ID} has two payroll rows\nTraceback (most recent call last): ...")
        ops.task_failed({"ti": fake_ti(), "exception": exc, "logical_date": dt.datetime(2026, 11, 30), "params": {}})
        assert len(smtp.inbox.messages) == 1
        m = smtp.inbox.messages[0]
        text = smtp.inbox.texts()[0]
    assert m["rcpt"] == ["ops@example.org"]
    assert "FAILED roster_sync.standardise (2026-11)" in m["msg"]["Subject"]
    assert "error: ValueError: person 150204********1234 has two payroll rows" in text
    assert "Traceback" not in text and FULL_ID not in text
    assert "log: http://airflow.example.org/dags/roster_sync/runs/x/tasks/standardise" in text
    assert "period: 2026-11" in text and "logical date: 2026-11-30" in text


def test_a_day_without_a_published_roster_mails_the_engineers(province, monkeypatch, tmp_path):
    import datetime as dt

    monkeypatch.setenv(routing.ENV_CONFIG, str(tmp_path / "r.json"))
    (tmp_path / "r.json").write_text(json.dumps(CONFIG))
    with SmtpServer() as smtp:
        for k, v in smtp.env().items():
            monkeypatch.setenv(k, v)
        on_time = ops.check_published(province["url"], dt.date(2026, 11, 30))
        assert on_time["published"] and on_time["latest"]["period"] == P2
        assert smtp.inbox.messages == []
        late = ops.check_published(province["url"], dt.date(2026, 12, 1))
        assert not late["published"] and late["told"] == "smtp:alerts_smtp"
        assert len(smtp.inbox.messages) == 1
        m, text = smtp.inbox.messages[0], smtp.inbox.texts()[0]
    assert m["rcpt"] == ["ops@example.org"]
    assert "LATE: the roster of 2026-12-01 is not published" in m["msg"]["Subject"]
    assert "latest roster: period 2026-11 as of 2026-11-30" in text and "deadline: 0 12 * * *" in text


def test_engineer_mail_never_raises(monkeypatch, tmp_path, caplog):
    """With no SMTP server listening, the alert is logged instead, and the callback returns."""
    import logging

    monkeypatch.setenv(routing.ENV_CONFIG, str(tmp_path / "r.json"))
    (tmp_path / "r.json").write_text(json.dumps(CONFIG))
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": 1, "extra": {"from_email": "a@b.cn", "disable_ssl": True,
                                                                        "disable_tls": True, "retry_limit": 0, "timeout": 2}}))
    caplog.set_level(logging.ERROR)
    assert ops.notify_engineers("[roster-sync] LATE: test", [("what", "a test")], key="k") is None
    assert "could not mail the engineers" in caplog.text and "LATE" in caplog.text


def test_the_deadline_is_configuration(monkeypatch):
    monkeypatch.delenv(ops.DEADLINE_ENV, raising=False)
    assert ops.deadline_schedule() == "0 12 * * *"
    monkeypatch.setenv(ops.DEADLINE_ENV, "30 9 * * 1-5")
    assert ops.deadline_schedule() == "30 9 * * 1-5"
    monkeypatch.setenv(ops.DEADLINE_ENV, "noon")
    with pytest.raises(ValueError, match="not a cron expression"):
        ops.deadline_schedule()
