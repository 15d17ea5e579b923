"""Contract tests: the simulators driven over HTTP and SQL exactly as SOURCES.md describes."""

import hashlib
import io
import json
import time

import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from include import periods as P
from include.simulators.base import Faults
from include.simulators.cluster import Simulators

FREE = {"staffing": 0, "org": 0, "hr": 0}


@pytest.fixture()
def sims(small_world, tmp_path):
    with Simulators(small_world, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'finance.db'}") as s:
        yield s


def token(s, sims):
    r = s.post(sims.url("staffing") + "/api/v1/auth/token", json={"client_id": "roster-sync", "client_secret": "staffing-secret"})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    return body["access_token"]


def staffing_session(sims):
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + token(s, sims)
    return s


def read_all(s, url, **params):
    items, cursor, pages = [], None, 0
    while True:
        body = s.get(url, params={"cursor": cursor} if cursor else params).json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages, body


# --- staffing ---------------------------------------------------------------------------------

def test_staffing_token_and_auth_errors(sims):
    url = sims.url("staffing")
    assert requests.post(url + "/api/v1/auth/token", json={"client_id": "roster-sync", "client_secret": "wrong"}).status_code == 403
    r = requests.get(url + "/api/v1/units")
    assert r.status_code == 401 and r.json() == {"error": "token_expired"}
    r = requests.get(url + "/api/v1/units", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401 and r.json()["error"] == "token_expired"


@pytest.mark.parametrize("collection", ["units", "quotas", "leader_posts", "persons"])
def test_staffing_cursor_paging_returns_every_item_once(sims, small_world, collection):
    s = staffing_session(sims)
    items, pages, last = read_all(s, sims.url("staffing") + f"/api/v1/{collection}", page_size=97)
    expected = pd.read_parquet(small_world / "periods" / "2026-10" / "staffing" / f"{collection}.parquet")
    assert len(items) == len(expected) and pages == -(-len(expected) // 97)
    assert set(items[0]) == set(expected.columns)
    key = {"units": ["unit_code"], "quotas": ["unit_code", "quota_type"], "leader_posts": ["unit_code", "level"], "persons": ["record_id"]}[collection]
    got = pd.DataFrame(items)
    assert not got.duplicated(key).any()
    assert last["snapshot_at"] == P.snapshot_at("2026-10").isoformat()
    assert all(i["updated_at"].endswith("+08:00") for i in items)


def test_staffing_page_size_and_cursor_errors(sims):
    s = staffing_session(sims)
    url = sims.url("staffing") + "/api/v1/persons"
    for bad in (0, 1001, "abc"):
        assert s.get(url, params={"page_size": bad}).status_code == 400
    assert s.get(url, params={"cursor": "not-a-cursor"}).status_code == 400
    body = s.get(url, params={"page_size": 5}).json()
    forged = body["next_cursor"][:-2] + ("AA" if body["next_cursor"][-2:] != "AA" else "BB")
    assert s.get(url, params={"cursor": forged}).status_code == 400
    assert len(s.get(url).json()["items"]) == 500  # default page size
    # a cursor carries its whole query: other parameters sent with it are ignored
    page2 = s.get(url, params={"cursor": body["next_cursor"], "page_size": 1000, "updated_since": "2100-01-01T00:00:00+08:00"}).json()
    assert len(page2["items"]) == 5


def test_staffing_incremental_sync_and_tombstones(sims, small_world):
    s = staffing_session(sims)
    url = sims.url("staffing") + "/api/v1/persons"
    full, _, first = read_all(s, url, page_size=1000)
    watermark = first["snapshot_at"]
    sims.advance("2026-11")
    changed, _, _ = read_all(s, url, page_size=1000, updated_since=watermark)
    now = pd.read_parquet(small_world / "periods" / "2026-11" / "staffing" / "persons.parquet")
    expected = now[now.updated_at > watermark]
    assert 0 < len(changed) == len(expected) < len(now)
    assert {i["record_id"] for i in changed} == set(expected.record_id)
    tombstones = [i for i in changed if i["status"] == "left"]
    assert tombstones and all(i["left_on"] for i in tombstones)
    before = {i["record_id"] for i in full}
    assert before <= set(now.record_id)
    # a value without an offset means +08:00
    naive, _, _ = read_all(s, url, page_size=1000, updated_since=watermark.replace("+08:00", ""))
    assert len(naive) == len(changed)


def test_staffing_token_expiry_mid_paging(small_world, tmp_path):
    faults = Faults(token_ttl=0.3)
    with Simulators(small_world, faults=faults, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        s = staffing_session(sims)
        url = sims.url("staffing") + "/api/v1/persons"
        r = s.get(url, params={"page_size": 10})
        assert r.status_code == 200
        time.sleep(0.4)
        r2 = s.get(url, params={"cursor": r.json()["next_cursor"]})
        assert r2.status_code == 401 and r2.json()["error"] == "token_expired"
        s.headers["Authorization"] = "Bearer " + token(s, sims)
        r3 = s.get(url, params={"cursor": r.json()["next_cursor"]})
        assert r3.status_code == 200 and r3.json()["items"][0]["record_id"] > r.json()["items"][-1]["record_id"]


def test_rate_limit_and_transient_errors_everywhere(small_world, tmp_path):
    with Simulators(small_world, faults=Faults(rate_429=1.0, retry_after=3), ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        r = requests.post(sims.url("staffing") + "/api/v1/auth/token", json={})
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert requests.get(sims.url("org") + "/gbxx/list", auth=("roster", "org-secret")).status_code == 429
        sims.set_faults(Faults(rate_5xx=1.0))
        statuses = {requests.post(sims.url("staffing") + "/api/v1/auth/token", json={}).status_code for _ in range(30)}
        assert statuses <= {502, 503, 504} and len(statuses) > 1
        assert requests.get(sims.url("org") + "/gbxx/list", auth=("roster", "org-secret")).status_code == 503
        assert requests.get(sims.url("hr") + "/exports/index.json", headers={"X-Api-Key": "hr-secret-key"}).status_code == 503


# --- organisation ---------------------------------------------------------------------------------

def test_org_paging_fields_and_errors(sims, small_world):
    url = sims.url("org") + "/gbxx/list"
    assert requests.get(url).status_code == 401
    assert requests.get(url, auth=("roster", "wrong")).status_code == 401
    s = requests.Session()
    s.auth = ("roster", "org-secret")
    for bad in ({"size": 0}, {"size": 501}, {"page": 0}, {"size": "x"}):
        assert s.get(url, params=bad).status_code == 400
    first = s.get(url).json()
    assert first["page"] == 1 and len(first["rows"]) == 100 and isinstance(first["total"], int)
    rows, page = [], 1
    while True:
        body = s.get(url, params={"page": page, "size": 500}).json()
        if not body["rows"]:
            break
        rows += body["rows"]
        page += 1
    expected = pd.read_parquet(small_world / "periods" / "2026-10" / "org" / "gbxx.parquet")
    assert len(rows) == first["total"] == len(expected)
    assert set(rows[0]) == {"sfzh", "xm", "xb", "csrq", "dwdm", "dwmc", "zwmc", "zwcc", "sfld", "ldlb", "rzsj"}
    assert all(isinstance(v, str) for r in rows for v in r.values())
    assert {r["sfld"] for r in rows} == {"0", "1"} and {r["xb"] for r in rows} <= {"1", "2"}


def test_org_rows_move_between_pages(small_world, tmp_path):
    with Simulators(small_world, faults=Faults(page_drift=1.0), ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        s = requests.Session()
        s.auth = ("roster", "org-secret")
        seen, page = [], 1
        while True:
            body = s.get(sims.url("org") + "/gbxx/list", params={"page": page, "size": 20}).json()
            if not body["rows"]:
                break
            seen += [r["sfzh"] for r in body["rows"]]
            page += 1
        # a naive reader sees duplicates or misses rows; the total never changes
        assert len(set(seen)) < body["total"] or len(seen) != len(set(seen))
        assert sims.counters()["org"]["drift"] >= page - 1


# --- HR -------------------------------------------------------------------------------------------

def test_hr_index_files_and_encoding(sims, small_world):
    url = sims.url("hr")
    assert requests.get(url + "/exports/index.json").status_code == 401
    assert requests.get(url + "/exports/index.json", headers={"X-Api-Key": "nope"}).status_code == 401
    s = requests.Session()
    s.headers["X-Api-Key"] = "hr-secret-key"
    index = s.get(url + "/exports/index.json").json()
    assert {(e["kind"], e["period"]) for e in index} == {("persons", "2026-09"), ("employers", "2026-09"), ("persons", "2026-10"), ("employers", "2026-10")}
    for e in index:
        data = s.get(url + "/exports/" + e["name"]).content
        assert len(data) == e["bytes"] and hashlib.sha256(data).hexdigest() == e["sha256"]
        df = pd.read_csv(io.BytesIO(data), encoding="gb18030", dtype=str, keep_default_na=False)
        assert len(df) == e["rows"]
        cols = ["公民身份号码", "姓名", "单位编号", "参保状态", "人员状态", "退休日期", "缴费基数"] if e["kind"] == "persons" else ["单位编号", "统一社会信用代码", "单位名称"]
        assert list(df.columns) == cols
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    assert s.get(url + "/exports/cbry_209912.csv").status_code == 404
    sims.advance("2026-11")
    assert any(e["period"] == "2026-11" for e in s.get(url + "/exports/index.json").json())


def test_hr_download_breaks_off(small_world, tmp_path):
    with Simulators(small_world, faults=Faults(truncate=1.0), ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        s = requests.Session()
        s.headers["X-Api-Key"] = "hr-secret-key"
        entry = next(e for e in s.get(sims.url("hr") + "/exports/index.json").json() if e["kind"] == "persons")
        broke = 0
        for _ in range(3):
            try:
                data = s.get(sims.url("hr") + "/exports/" + entry["name"]).content
                assert len(data) < entry["bytes"]
            except requests.exceptions.RequestException:
                pass
            broke += 1
        assert broke == 3 and sims.counters()["hr"]["truncated"] == 3


# --- finance ---------------------------------------------------------------------------------------

def test_finance_tables_over_sqlalchemy(sims, small_world):
    engine = sa.create_engine(sims.finance_url)
    with engine.connect() as c:
        cols = [r[1] for r in c.execute(sa.text("PRAGMA table_info(gz_ff)"))]
        assert cols == ["ffyf", "dwbm", "sfzh", "xm", "rylb", "yfgz", "jfly"]
        assert [r[1] for r in c.execute(sa.text("PRAGMA table_info(ys_dw)"))] == ["dwbm", "tyshxydm", "dwmc", "qhdm"]
        months = [r[0] for r in c.execute(sa.text("SELECT DISTINCT ffyf FROM gz_ff ORDER BY 1"))]
        assert months == ["202609", "202610"]
        assert {r[0] for r in c.execute(sa.text("SELECT DISTINCT rylb FROM gz_ff"))} == {"在编", "编外", "离退休"}
        assert {r[0] for r in c.execute(sa.text("SELECT DISTINCT jfly FROM gz_ff"))} <= {"财政拨款", "单位自筹"}
    sims.advance("2026-11")
    engine.dispose()  # the SQLite file was swapped: a new connection sees the new payroll
    with engine.connect() as c:
        months = [r[0] for r in c.execute(sa.text("SELECT DISTINCT ffyf FROM gz_ff ORDER BY 1"))]
    assert months == ["202609", "202610", "202611"]
    engine.dispose()


def test_advance_keeps_ports_and_refuses_unknown_periods(sims):
    before = {n: sims.url(n) for n in ("staffing", "org", "hr")}
    sims.advance("2026-11")
    assert before == {n: sims.url(n) for n in ("staffing", "org", "hr")}
    r = requests.post(sims.url("org") + "/_sim/period", json={"period": "2030-01"})
    assert r.status_code == 400
    with pytest.raises(ValueError):
        sims.advance("2030-01")


def test_connections_are_airflow_json(sims):
    env = sims.env()
    assert set(env) == {"AIRFLOW_CONN_STAFFING_API", "AIRFLOW_CONN_ORG_API", "AIRFLOW_CONN_FINANCE_DB", "AIRFLOW_CONN_HR_EXPORTS"}
    staffing = json.loads(env["AIRFLOW_CONN_STAFFING_API"])
    assert staffing["conn_type"] == "http" and staffing["host"].startswith("http://127.0.0.1:")
    assert json.loads(env["AIRFLOW_CONN_FINANCE_DB"])["conn_type"] == "sqlite"


def test_cli_start_advance_stop(small_world, tmp_path):
    import shutil
    import subprocess
    import sys
    data = tmp_path / "data"
    shutil.copytree(small_world, data)
    run = lambda *a: subprocess.run([sys.executable, "-m", "include.simulators.cli", *a, "--data", str(data)],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    r = run("start", "--staffing-port", "0", "--org-port", "0", "--hr-port", "0")
    assert r.returncode == 0, r.stderr
    try:
        state = json.loads((data / "sim.json").read_text())
        assert requests.get(state["urls"]["org"] + "/gbxx/list", auth=("roster", "org-secret")).status_code == 200
        assert run("advance", "--period", "2026-11").returncode == 0
        assert "2026-11" in run("status").stdout
    finally:
        assert run("stop").returncode == 0
    assert not (data / "sim.json").exists()
