"""The workspace's rules (issue 15): who sees which finding, what an answer may say, what is
recorded, and what the answers do to the digests across published periods.

Findings come from hand-built records reconciled and published for real
(tests/test_reconcile_rules.py's ``build``), into SQLite and into PostgreSQL.
"""

import datetime as dt
import email
import email.policy
import json
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from include.alerts import digest, mail, routing
from include.pipeline.publish import publish
from include.workspace import service as W
from tests.test_reconcile_rules import A, B, C, D, U3, build, clean_person, pay

P1, P2, P3 = "2026-10", "2026-11", "2026-12"
CONFIG = {"offices": {
    "150000": {"name": "自治区编办", "to": ["prov@bb.example.gov.cn"], "users": ["prov"]},
    "150204": {"name": "青山区编办", "to": ["qs@bb.example.gov.cn"], "users": ["qs"]},
    "150205": {"name": "第5区编办", "to": ["c205@bb.example.gov.cn"], "users": ["other"]},
}}
ROUTES = routing.parse(CONFIG)
QS, OTHER, PROV = (W.Caller.of(n, False, ROUTES) for n in ("qs", "other", "prov"))
ADMIN = W.Caller("admin", admin=True)
ACCEPT = {"by": "test", "reason": "a hand-built jurisdiction of four persons"}


def records(period: str) -> list:
    """A, C: paid twice (150204) every period; B: a self-funded unit paid from the budget
    (150205); D: paid twice in the first and the third period only."""
    out = clean_person(A) + [pay(A, dwbm="300002")]
    out += clean_person(B, unit=U3, dwbm="300003", emp="E3")
    out += clean_person(C) + [pay(C, dwbm="300002")]
    out += clean_person(D) + ([pay(D, dwbm="300002")] if period in (P1, P3) else [])
    return out


def publish_period(tmp_path, url, period):
    _, _, summary = build(tmp_path / period, records(period), period=period)
    publish(summary["dir"], url, period, f"{period}-28", accept=ACCEPT)
    return summary["dir"]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'roster.db'}"
    return request.getfixturevalue("pg").create_database(f"ws_{uuid.uuid4().hex[:8]}")


def key_of(url, pid, code="DUPLICATE_PAY"):
    with sa.create_engine(url).connect() as c:
        return c.execute(sa.text("SELECT alert_key FROM reconciliation_alert WHERE id_number = :i AND code = :c"),
                         {"i": pid, "c": code}).scalar_one()


def counts(url) -> dict:
    with sa.create_engine(url).connect() as c:
        return {t: c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("alert_disposition", "workspace_audit")}


def masked(pid: str) -> str:
    return f"{pid[:6]}********{pid[-4:]}"


def test_each_office_sees_its_region_and_the_regions_under_it(tmp_path, url):
    publish_period(tmp_path, url, P1)
    engine = sa.create_engine(url)
    with engine.connect() as c:
        mine = W.list_alerts(c, QS)
        assert mine["total"] == len(mine["alerts"]) >= 3
        assert {a["region_code"] for a in mine["alerts"]} == {"150204"}
        ids = {a["id_number"] for a in mine["alerts"]}
        assert masked(A) in ids and A not in json.dumps(mine, ensure_ascii=False)
        assert {a["unit_name"] for a in mine["alerts"] if a["id_number"] == masked(A)} == {"财政局"}
        assert {a["name"] for a in mine["alerts"] if a["id_number"] == masked(A)} == {"张三"}
        theirs = W.list_alerts(c, OTHER)
        assert {a["region_code"] for a in theirs["alerts"]} == {"150205"}
        everything = W.list_alerts(c, ADMIN)
        assert everything["total"] == W.list_alerts(c, PROV)["total"] + \
            sum(1 for a in everything["alerts"] if a["region_code"] is None)   # no region: the admin's only
        assert everything["total"] >= mine["total"] + theirs["total"]
        # filters and paging
        dup = W.list_alerts(c, QS, {"code": "DUPLICATE_PAY", "period": P1, "status": "open", "disposition": "none"})
        assert {a["code"] for a in dup["alerts"]} == {"DUPLICATE_PAY"} and dup["total"] == 3
        page = W.list_alerts(c, QS, {"code": "DUPLICATE_PAY", "limit": "2", "offset": "2"})
        assert page["total"] == 3 and len(page["alerts"]) == 1
        assert W.list_alerts(c, QS, {"period": "2026-09"})["total"] == 0
        with pytest.raises(W.Forbidden, match="region: 150205"):
            W.list_alerts(c, QS, {"region": "150205"})
        for params, field in (({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"code": "NOPE"}, "code"),
                              ({"period": "2026-13"}, "period"), ({"colour": "red"}, "colour"),
                              ({"disposition": "maybe"}, "disposition")):
            with pytest.raises(W.BadRequest, match=f"^{field}:"):
                W.list_alerts(c, QS, params)


def test_a_finding_its_evidence_and_who_looked(tmp_path, url):
    publish_period(tmp_path, url, P1)
    key = key_of(url, A)
    engine = sa.create_engine(url)
    with engine.begin() as c:
        with pytest.raises(W.NotFound):
            W.get_alert(c, QS, "0" * 32)
        with pytest.raises(W.Forbidden, match="150204"):
            W.get_alert(c, OTHER, key)
    assert counts(url)["workspace_audit"] == 0, "a refused view writes nothing"
    with engine.begin() as c:
        got = W.get_alert(c, QS, key)
    assert got["id_number"] == A, "unmasked for the office whose region covers it"
    assert {e["source"] for e in got["evidence"]} == {"finance"} and len(got["evidence"]) == 2
    assert sorted(p["gross_pay"] for p in got["details"]["payments"]) == [8000.0, 8000.0]
    assert got["dispositions"] == []
    with engine.connect() as c:
        audit = c.execute(sa.text("SELECT actor, action, alert_key FROM workspace_audit")).all()
    assert [tuple(r) for r in audit] == [("qs", "view_id", key)]


BAD = [
    ({"status": "fine"}, "status"),
    ({"status": "explained", "reason": "holiday", "until": P1}, "reason"),
    ({"status": "explained", "reason": "secondment"}, "until"),
    ({"status": "explained", "reason": "secondment", "until": "2026-09"}, "until"),      # before last_seen
    ({"status": "explained", "reason": "secondment", "until": "2027-11"}, "until"),      # more than 12 months after
    ({"status": "explained", "reason": "secondment", "until": "2026/12"}, "until"),
    ({"status": "explained", "reason": "other", "until": P1}, "note"),
    ({"status": "disputed", "reason": "other", "note": "x" * 2001}, "note"),
    ({"status": "acknowledged", "reason": "secondment"}, "reason"),
    ({"status": "acknowledged", "until": P1}, "until"),
    ({"status": "acknowledged", "by": "me"}, "by"),
    (["acknowledged"], "body"),
]


def test_an_answer_is_checked_before_anything_is_written(tmp_path, url):
    publish_period(tmp_path, url, P1)
    key = key_of(url, A)
    engine = sa.create_engine(url)
    before = counts(url)
    for body, field in BAD:
        with engine.begin() as c, pytest.raises(W.BadRequest, match=f"^{field}:"):
            W.dispose(c, QS, key, body)
    with engine.begin() as c, pytest.raises(W.Forbidden):
        W.dispose(c, OTHER, key, {"status": "acknowledged"})
    with engine.begin() as c, pytest.raises(W.NotFound):
        W.dispose(c, QS, "f" * 32, {"status": "acknowledged"})
    assert counts(url) == before, "no error writes anything"
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT disposition FROM reconciliation_alert WHERE alert_key = :k"), {"k": key}).scalar_one() is None

    with engine.begin() as c:
        row = W.dispose(c, QS, key, {"status": "explained", "reason": "secondment", "until": "2027-10",
                                     "note": "借调至市委组织部，2027年10月回原单位"})
    assert row["status"] == "explained" and row["office_code"] == "150204" and row["actor"] == "qs" and row["id"]
    with engine.begin() as c:
        W.dispose(c, ADMIN, key, {"status": "cleared"})
    with engine.begin() as c:
        got = W.get_alert(c, QS, key)
    assert [d["status"] for d in got["dispositions"]] == ["explained", "cleared"]
    assert got["dispositions"][1]["office_code"] is None
    assert got["disposition"] is None and got["disposition_until"] is None
    with engine.connect() as c:
        assert W.list_alerts(c, QS, {"disposition": "explained"})["total"] == 0
        actions = [r[0] for r in c.execute(sa.text("SELECT action FROM workspace_audit ORDER BY id"))]
    assert actions == ["disposition", "disposition", "view_id"]


def _told(url) -> pd.DataFrame:
    with sa.create_engine(url).connect() as c:
        return pd.read_sql(sa.text("SELECT * FROM digest_item"), c)


def _digest(url, period, work, tmp_path) -> dict:
    out = tmp_path / f"mail-{period}"
    sent = digest.send_digests(url, period, ROUTES, mail.FileOutbox(out), work)
    texts = {}
    for path in out.glob("*.eml"):
        m = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        texts[m["X-Roster-Sync-Office"]] = m.get_body(("plain",)).get_content()
    return {"sent": sent, "texts": texts}


def test_answers_across_periods_explained_expired_and_reopened(tmp_path, url, monkeypatch):
    monkeypatch.setenv("ROSTER_SYNC_WORKSPACE_URL", "https://ws.example.gov.cn/roster-sync/")
    engine = sa.create_engine(url)
    work = publish_period(tmp_path, url, P1)
    first = _digest(url, P1, work, tmp_path)
    assert first["sent"]["150204"]["new"] == 3
    a, c_, d = key_of(url, A), key_of(url, C), key_of(url, D)
    for key in (a, c_, d):   # each line links to its finding's page, and the mail says how to answer
        assert f"       查看与答复：https://ws.example.gov.cn/roster-sync/alerts/{key}" in first["texts"]["150204"]
    assert "如何答复" in first["texts"]["150204"]
    now = dt.datetime(2026, 11, 5, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        W.dispose(conn, QS, a, {"status": "explained", "reason": "secondment", "until": P1}, now=now)
        W.dispose(conn, QS, c_, {"status": "explained", "reason": "turnover_pool", "until": P2}, now=now)
        W.dispose(conn, QS, d, {"status": "acknowledged"}, now=now)

    work = publish_period(tmp_path, url, P2)       # A's explanation ran to P1; C's covers P2; D resolves
    second = _digest(url, P2, work, tmp_path)
    told = _told(url)
    assert set(told[(told.event == "explanation_expired")].alert_key) == {a}
    assert set(told[(told.event == "explanation_expired")].event_period) == {P2}
    text = second["texts"]["150204"]
    assert "== 说明已到期，请重新处理（1）" in text and "有效至 2026-10" in text
    assert "已说明（1）" in text and masked(C) not in text, "C's explanation covers P2: no line asks of it"
    assert "仍未整改 0" in text, "C is counted apart, A is told as expired, not as still open"
    with engine.connect() as conn:
        status = dict(conn.execute(sa.text("SELECT alert_key, status FROM reconciliation_alert")).all())
    assert status[a] == status[c_] == "open" and status[d] == "resolved"

    from include.report import monthly           # the monthly report counts C apart too
    reports = monthly.build(work, url, P2, str(tmp_path / "lake"), ROUTES)
    with engine.connect() as conn:
        apart = conn.execute(sa.text("SELECT region_code, item, actual FROM monthly_report WHERE period = :p "
                                     "AND section = 'findings_explained'"), {"p": P2}).all()
    assert ("150204", "DUPLICATE_PAY", 1) in [tuple(r) for r in apart]
    assert "本期已说明" in open(reports["150204"]["html"], encoding="utf-8").read()

    again = _digest(url, P2, work, tmp_path)       # a rerun tells nothing again
    assert again["sent"] == {}

    work = publish_period(tmp_path, url, P3)       # C's explanation ran to P2; D reopens
    third = _digest(url, P3, work, tmp_path)
    told = _told(url)
    assert set(told[(told.event == "explanation_expired")].alert_key) == {a, c_}, "A is not told twice"
    assert set(told[(told.event == "reopened")].alert_key) == {d}
    with engine.begin() as conn:
        got = W.get_alert(conn, ADMIN, d)
    assert got["disposition"] is None and got["disposition_by"] is None, "a reopened finding starts clean"
    assert [x["status"] for x in got["dispositions"]] == ["acknowledged"], "its history stays"
    assert "仍未整改 1" in third["texts"]["150204"], "A, expired and told, is open like any other"


def test_a_roster_db_of_an_earlier_version_gains_the_new_columns(url):
    """Tables created before dispositions existed: publish and the digests add what is missing."""
    from include.pipeline.publish import ensure_schema

    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE reconciliation_alert (alert_key VARCHAR(32) PRIMARY KEY, code VARCHAR(40) NOT NULL, "
                          "severity VARCHAR(10) NOT NULL, region_code VARCHAR(6), first_seen VARCHAR(7) NOT NULL, "
                          "last_seen VARCHAR(7) NOT NULL, status VARCHAR(10) NOT NULL)"))
        c.execute(sa.text("INSERT INTO reconciliation_alert VALUES ('k1', 'OVER_QUOTA', 'high', '150204', :p, :p, 'open')"),
                  {"p": P1})
        c.execute(sa.text("CREATE TABLE digest_item (office_code VARCHAR(6), alert_key VARCHAR(32), event VARCHAR(10), "
                          "event_period VARCHAR(7), digest_id VARCHAR(24) NOT NULL, "
                          "PRIMARY KEY (office_code, alert_key, event, event_period))"))
    ensure_schema(engine)
    ensure_schema(engine)    # twice: nothing left to do
    cols = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("reconciliation_alert")}
    assert {"disposition", "disposition_until", "unit_name", "details"} <= set(cols)
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO digest_item VALUES ('150204', 'k1', 'explanation_expired', :p, 'd1')"), {"p": P2})
        assert W.list_alerts(c, QS)["total"] == 1


def test_the_engineers_see_runs_findings_quarantine_and_what_offices_dispute(tmp_path, url):
    publish_period(tmp_path, url, P1)
    b = key_of(url, B, "FUNDING_MISMATCH")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        W.dispose(c, OTHER, b, {"status": "disputed", "reason": "source_error", "note": "经费形式在实名制系统中登记错误"})
        with pytest.raises(W.Forbidden):
            W.engineers_view(c, QS)
        view = W.engineers_view(c, ADMIN)
    assert [r["period"] for r in view["runs"]] == [P1] and view["runs"][0]["roster_rows"] >= 4
    assert {"period": P1, "code": "DUPLICATE_PAY", "findings": 3} in view["findings_per_code"]
    [d] = view["disputed"]
    assert d["alert_key"] == b and d["dispute_reason"] == "source_error" and d["dispute_note"].startswith("经费形式")
    assert d["id_number"] == masked(B)


def test_a_unit_its_numbers_over_the_periods_and_its_findings(tmp_path, url):
    from tests.test_reconcile_rules import U1

    publish_period(tmp_path, url, P1)
    publish_period(tmp_path, url, P2)
    engine = sa.create_engine(url)
    with engine.connect() as c:
        view = W.unit_view(c, QS, U1)
        with pytest.raises(W.Forbidden):
            W.unit_view(c, OTHER, U1)
        with pytest.raises(W.NotFound):
            W.unit_view(c, QS, "11150204MA0000099X")
    assert view["unit_name"] == "财政局" and view["region_code"] == "150204" and view["periods"] == [P1, P2]
    # U1: admin quota 5; A, C, D placed there in both periods
    assert view["measures"]["quota"]["admin"] == {P1: {"approved": 5, "actual": 3}, P2: {"approved": 5, "actual": 3}}
    assert view["measures"]["leader_posts"]["principal"][P2]["approved"] == 1
    assert sorted(a["id_number"] for a in view["alerts"]) == sorted(masked(p) for p in (A, C, D))
