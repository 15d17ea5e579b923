"""The workspace API through a real Airflow api-server on loopback (issue 15): the plugin is
loaded from plugins/, users log in with the simple auth manager and call the API with
their bearer token, as OUTPUTS.md "The workspace API" says."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from include.localstack import free_port
from tests.pages import airflow_login
from tests.test_workspace import A, CONFIG, P1, counts, key_of, masked, publish_period

ROOT = Path(__file__).resolve().parents[1]
PASSWORDS = {"admin": "admin-pw", "qs": "qs-pw", "other": "other-pw"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api-server")
    url = f"sqlite:///{tmp / 'roster.db'}"
    publish_period(tmp, url, P1)
    (tmp / "passwords.json").write_text(json.dumps(PASSWORDS))
    (tmp / "recipients.json").write_text(json.dumps(CONFIG, ensure_ascii=False), encoding="utf-8")
    port = free_port()
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(ROOT),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"), "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,qs:viewer,other:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp / "passwords.json"),
        "AIRFLOW_CONN_ROSTER_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp / "roster.db")}),
        "ROSTER_SYNC_RECIPIENTS": str(tmp / "recipients.json"),
    })
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    log = open(tmp / "api-server.log", "w")
    proc = subprocess.Popen([airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{base}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the api-server did not start:\n" + (tmp / "api-server.log").read_text()[-3000:])
            time.sleep(1)
        yield {"base": base, "url": url, "tmp": tmp}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def token(server, user: str) -> dict:
    r = requests.post(f"{server['base']}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=10)
    assert r.status_code in (200, 201), r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_no_token_no_findings(server):
    r = requests.get(f"{server['base']}/roster-sync/api/alerts", timeout=10)
    assert r.status_code == 401


def test_each_user_sees_their_region_only_and_ids_masked(server):
    api = f"{server['base']}/roster-sync/api/alerts"
    qs = requests.get(api, headers=token(server, "qs"), timeout=10)
    assert qs.status_code == 200
    body = qs.json()
    assert body["total"] == len(body["alerts"]) >= 3 and {a["region_code"] for a in body["alerts"]} == {"150204"}
    assert masked(A) in qs.text and A not in qs.text
    other = requests.get(api, headers=token(server, "other"), timeout=10).json()
    assert {a["region_code"] for a in other["alerts"]} == {"150205"}
    admin = requests.get(api, headers=token(server, "admin"), timeout=10).json()
    assert admin["total"] >= body["total"] + other["total"]
    bad = requests.get(api, params={"limit": "5000"}, headers=token(server, "qs"), timeout=10)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("limit:")


def test_a_finding_opens_for_its_office_and_is_403_for_another(server):
    key = key_of(server["url"], A)
    api = f"{server['base']}/roster-sync/api/alerts/{key}"
    before = counts(server["url"])
    r = requests.get(api, headers=token(server, "other"), timeout=10)
    assert r.status_code == 403 and "150204" in r.json()["detail"]
    assert counts(server["url"]) == before, "a refused view writes nothing"
    r = requests.get(api, headers=token(server, "qs"), timeout=10)
    assert r.status_code == 200
    got = r.json()
    assert got["id_number"] == A and len(got["evidence"]) == 2 and got["dispositions"] == []
    assert requests.get(f"{server['base']}/roster-sync/api/alerts/{'0' * 32}", headers=token(server, "qs"),
                        timeout=10).status_code == 404


def test_an_answer_is_201_a_bad_one_400_and_writes_nothing(server):
    key = key_of(server["url"], A)
    api = f"{server['base']}/roster-sync/api/alerts/{key}/disposition"
    qs = token(server, "qs")
    before = counts(server["url"])
    for body, field in ((b"not json", "body"), (json.dumps({"status": "explained", "reason": "secondment"}), "until"),
                        (json.dumps({"status": "explained", "reason": "other", "until": P1}), "note")):
        r = requests.post(api, data=body, headers={**qs, "Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 400 and r.json()["detail"].startswith(f"{field}:"), r.text
    r = requests.post(api, json={"status": "acknowledged"}, headers=token(server, "other"), timeout=10)
    assert r.status_code == 403
    assert counts(server["url"]) == before, "no error writes anything"
    r = requests.post(api, json={"status": "explained", "reason": "secondment", "until": "2027-03", "note": "借调"},
                      headers=qs, timeout=10)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "explained" and r.json()["actor"] == "qs" and r.json()["office_code"] == "150204"
    listed = requests.get(f"{server['base']}/roster-sync/api/alerts", params={"disposition": "explained"},
                          headers=qs, timeout=10).json()
    assert [a["alert_key"] for a in listed["alerts"]] == [key]
    with sa.create_engine(server["url"]).connect() as c:
        audit = [tuple(r) for r in c.execute(sa.text("SELECT actor, action FROM workspace_audit ORDER BY id"))]
    assert ("qs", "disposition") in audit and ("qs", "view_id") in audit


def test_the_plugin_is_in_airflow_s_menu(server):
    r = requests.get(f"{server['base']}/api/v2/plugins", headers=token(server, "admin"), timeout=10)
    assert r.status_code == 200
    plugin = [p for p in r.json()["plugins"] if p["name"] == "roster_sync_workspace"]
    assert plugin and plugin[0]["fastapi_apps"][0]["url_prefix"] == "/roster-sync"
    assert plugin[0]["external_views"][0]["href"].startswith("/roster-sync")


# --- the pages, in a real browser (conftest's `browser`) ------------------------------------------
# Screenshots of every page are kept under var/screenshots/workspace/ to be looked at.
SHOTS = ROOT / "var" / "screenshots" / "workspace"
SHOTS.mkdir(parents=True, exist_ok=True)


def login(browser, server, user: str):
    """A fresh browser session, logged in through Airflow's own login page."""
    page = airflow_login(browser, f"{server['base']}/roster-sync/", user, PASSWORDS[user],
                         viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page.wait_for_selector("#alerts")
    return page


def test_a_clerk_filters_opens_a_finding_and_explains_it(browser, server):
    from tests.test_workspace import C

    page = login(browser, server, "qs")
    page.screenshot(path=str(SHOTS / "1_list.png"), full_page=True)
    page.select_option("select[name=code]", "DUPLICATE_PAY")
    page.click("form.filters button")
    page.wait_for_url("**code=DUPLICATE_PAY**")
    assert page.inner_text("#total") == "共 3 条"
    assert masked(C) in page.inner_text("#alerts") and C not in page.content()
    page.screenshot(path=str(SHOTS / "2_filtered.png"), full_page=True)

    key = key_of(server["url"], C)
    page.click(f"a[href$='/alerts/{key}']")
    page.wait_for_selector("#evidence")
    assert C in page.inner_text("dl"), "the full ID for the office whose region covers it"
    evidence = page.inner_text("#evidence")
    assert "gz_ff|" in evidence and "300002" in evidence and "8000" in evidence
    page.screenshot(path=str(SHOTS / "3_finding.png"), full_page=True)

    before = counts(server["url"])
    page.select_option("select[name=status]", "explained")
    page.select_option("select[name=reason]", "explained:other")
    page.fill("input[name=until]", "2027-02")
    page.click("#answer button")                          # "other" without a note
    page.wait_for_selector("#error")
    assert page.inner_text("#error") == "理由为“其他”时，请填写说明", "the clerk's own words, naming the field"
    assert counts(server["url"])["alert_disposition"] == before["alert_disposition"], "a bad form writes nothing"
    assert page.input_value("input[name=until]") == "2027-02", "what the clerk typed is kept"
    page.screenshot(path=str(SHOTS / "4_bad_form.png"), full_page=True)

    page.select_option("select[name=reason]", "explained:turnover_pool")
    page.fill("textarea[name=note]", "占用周转池编制，2027年2月前核销")
    page.click("#answer button")
    page.wait_for_selector("#message")
    assert "已说明（周转池） 至 2027-02" in page.inner_text("dl")
    assert "占用周转池编制" in page.inner_text("#history")
    page.screenshot(path=str(SHOTS / "5_explained.png"), full_page=True)

    page.goto(f"{server['base']}/roster-sync/?code=DUPLICATE_PAY")
    assert "其中已说明" in page.inner_text(".pager"), "counted apart"
    page.goto(f"{server['base']}/roster-sync/?disposition=explained")
    assert masked(C) in page.inner_text("#alerts")
    page.goto(f"{server['base']}/roster-sync/search?q=王五")
    assert masked(C) in page.inner_text("#alerts")
    page.screenshot(path=str(SHOTS / "6_search.png"), full_page=True)
    page.goto(f"{server['base']}/roster-sync/?code=DUPLICATE_PAY")
    page.click("#alerts a[href*='/units/']")                # the unit: its quotas and its findings
    page.wait_for_selector("#quota")
    assert "5 / 3" in page.inner_text("#quota") and "行政编制" in page.inner_text("#quota")
    assert masked(C) in page.inner_text("#alerts")
    page.screenshot(path=str(SHOTS / "10_unit.png"), full_page=True)
    page.context.close()


def test_another_county_cannot_see_or_open_it_and_an_admin_sees_both(browser, server):
    from tests.test_workspace import B, C

    key = key_of(server["url"], C)
    other = login(browser, server, "other")
    assert masked(C) not in other.inner_text("#alerts") and masked(B) in other.inner_text("#alerts")
    response = other.goto(f"{server['base']}/roster-sync/alerts/{key}")
    assert response.status == 403 and "150204" in other.inner_text("#error")
    other.screenshot(path=str(SHOTS / "7_forbidden.png"), full_page=True)
    other.context.close()
    admin = login(browser, server, "admin")
    listed = admin.inner_text("#alerts")
    assert masked(B) in listed and masked(C) in listed
    admin.screenshot(path=str(SHOTS / "8_admin.png"), full_page=True)
    admin.goto(f"{server['base']}/roster-sync/ops")
    assert "2026-10" in admin.inner_text("#runs") and "DUPLICATE_PAY" in admin.inner_text("#per_code")
    admin.screenshot(path=str(SHOTS / "9_engineers.png"), full_page=True)
    admin.context.close()
    clerk = login(browser, server, "qs")
    assert "运维视图" not in clerk.inner_text("header")
    assert clerk.goto(f"{server['base']}/roster-sync/ops").status == 403
    clerk.context.close()
