"""Extract (issue 3): every source lands in the raw layer exactly, whatever the sources do."""

import hashlib
import json
import time
from pathlib import Path

import pandas as pd
import pytest

from include.pipeline.extract.finance import extract_finance
from include.pipeline.extract.hr import extract_hr
from include.pipeline.extract.http import SourceAuthError, SourceConn, SourceError
from include.pipeline.extract.org import extract_org
from include.pipeline.extract.staffing import COLLECTIONS, extract_staffing
from include.simulators.base import Faults
from include.simulators.cluster import Simulators

FREE = {"staffing": 0, "org": 0, "hr": 0}
D1, D2 = "2026-10-31", "2026-11-30"


def conns(sims):
    c = sims.connections()
    return {
        "staffing": SourceConn("staffing_api", c["staffing_api"]["host"], c["staffing_api"]["login"], c["staffing_api"]["password"]),
        "org": SourceConn("org_api", c["org_api"]["host"], c["org_api"]["login"], c["org_api"]["password"]),
        "hr": SourceConn("hr_exports", c["hr_exports"]["host"], None, c["hr_exports"]["password"]),
    }


@pytest.fixture()
def faulty(small_world, tmp_path):
    """Every fault on at 5%, tokens that expire within a second."""
    with Simulators(small_world, faults=Faults.all_on(0.05, token_ttl=0.4, seed=3), ports=FREE,
                    finance_url=f"sqlite:///{tmp_path / 'finance.db'}") as sims:
        yield sims


def served(world, period, *parts):
    return pd.read_parquet(Path(world, "periods", period, *parts))


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame, key: list[str]):
    cols = list(want.columns)
    got = got[cols].astype(object).where(got[cols].notna(), None).sort_values(key, ignore_index=True)
    want = want[cols].astype(object).where(want[cols].notna(), None).sort_values(key, ignore_index=True)
    assert not got.duplicated(key).any(), "duplicate rows in the extract"
    assert len(got) == len(want), f"{len(got)} rows extracted, {len(want)} served"
    pd.testing.assert_frame_equal(got.astype(str), want.astype(str), check_dtype=False)


def test_every_extract_equals_the_source_under_faults(faulty, small_world, tmp_path):
    root = str(tmp_path / "lake")
    c = conns(faulty)
    s = extract_staffing(c["staffing"], root, D1, page_size=50)
    o = extract_org(c["org"], root, D1, size=25)
    f = extract_finance("finance_db", faulty.finance_url, root, D1, chunk=1000)
    h = extract_hr(c["hr"], root, D1)
    raw = Path(root) / "raw"
    for name, (fields, key) in COLLECTIONS.items():
        got = pd.read_parquet(raw / "staffing" / D1 / f"{name}__state.parquet")
        assert_same_rows(got, served(small_world, "2026-10", "staffing", f"{name}.parquet"), key)
        assert got._missing.isna().all() and got._extra.isna().all()
        # a full read is the state: the items as received, in the order received
        pd.testing.assert_frame_equal(got, pd.read_parquet(raw / "staffing" / D1 / f"{name}.parquet"))
        state = raw / "staffing" / D1 / f"{name}__state.parquet"
        assert json.loads(Path(s["manifest"]).read_text())["files"][state.name] == {
            "rows": len(got), "bytes": state.stat().st_size, "sha256": hashlib.sha256(state.read_bytes()).hexdigest()}
    org = pd.read_parquet(raw / "org" / D1 / "gbxx.parquet")
    want = served(small_world, "2026-10", "org", "gbxx.parquet").fillna("")
    assert_same_rows(org, want, list(want.columns))
    assert o["stats"]["total"] == len(want)
    payroll = served(small_world, "2026-10", "finance", "gz_ff.parquet")
    for month in ("202609", "202610"):
        got = pd.read_parquet(raw / "finance" / D1 / f"gz_ff_{month}.parquet")
        want = payroll[payroll.ffyf == month].copy()
        assert (got.yfgz.astype(float).round(2).to_numpy() == got.yfgz.astype(float).to_numpy()).all()
        got["yfgz"], want["yfgz"] = got.yfgz.astype(float).round(2), want.yfgz.round(2)
        assert_same_rows(got, want, ["sfzh", "dwbm", "yfgz"])
    assert_same_rows(pd.read_parquet(raw / "finance" / D1 / "ys_dw.parquet"),
                     served(small_world, "2026-10", "finance", "ys_dw.parquet"), ["dwbm"])
    for name in ("cbry_202610.csv", "cbdw_202610.csv"):
        got = pd.read_parquet(raw / "hr" / D1 / f"{name}.parquet")
        want = pd.read_csv(Path(small_world) / "hr" / name, encoding="gb18030", dtype=str, keep_default_na=False)
        assert_same_rows(got, want, list(want.columns))
        assert (raw / "hr" / D1 / "files" / name).read_bytes() == (Path(small_world) / "hr" / name).read_bytes()
    counters = faulty.counters()
    faults_seen = sum(v for app in counters.values() for k, v in app.items() if k not in ("requests", "tokens"))
    assert faults_seen >= 5, counters      # the faults really happened
    assert counters["staffing"]["tokens"] >= 2 or counters["staffing"].get("401", 0) >= 1
    for m in (s, o, f, h):
        assert json.loads(Path(m["manifest"]).read_text())["files"]


def test_incremental_sync_applies_tombstones_and_matches_the_next_period(faulty, small_world, tmp_path):
    root = str(tmp_path / "lake")
    c = conns(faulty)
    first = extract_staffing(c["staffing"], root, D1, page_size=200)
    extract_finance("finance_db", faulty.finance_url, root, D1)
    faulty.advance("2026-11")
    second = extract_staffing(c["staffing"], root, D2, page_size=200, full_resync_days=60)
    assert first["mode"] == "full" and second["mode"] == "incremental"
    persons = served(small_world, "2026-11", "staffing", "persons.parquet")
    received = pd.read_parquet(Path(root, "raw", "staffing", D2, "persons.parquet"))
    assert 0 < len(received) < len(persons) / 5, "an incremental sync reads only what changed"
    assert (received.status == "left").any()
    for name, (fields, key) in COLLECTIONS.items():
        got = pd.read_parquet(Path(root, "raw", "staffing", D2, f"{name}__state.parquet"))
        assert_same_rows(got, served(small_world, "2026-11", "staffing", f"{name}.parquet"), key)
    manifest = json.loads(Path(second["manifest"]).read_text())
    assert manifest["state"]["watermarks"]["persons"].startswith("2026-11-30T20:00:00")
    assert manifest["state"]["last_full_ds"] == D1
    # the periodic full resync: the last full one is older than full_resync_days
    third = extract_staffing(c["staffing"], root, "2026-12-01", page_size=200, full_resync_days=7)
    assert third["mode"] == "full"
    # finance: the months not read yet plus the last one again
    again = extract_finance("finance_db", faulty.finance_url, root, D2)
    assert again["months_read"] == ["202610", "202611"]


def test_rerunning_a_logical_date_reuses_its_raw_layer_and_a_fresh_extract_keeps_the_earlier_attempt(faulty, tmp_path):
    root = str(tmp_path / "lake")
    c = conns(faulty)
    first = extract_staffing(c["staffing"], root, D1, page_size=300)
    before = pd.read_parquet(Path(root, "raw", "staffing", D1, "persons__state.parquet"))
    again = extract_staffing(c["staffing"], root, D1, page_size=300)          # a rerun: what the date saw
    assert (first["reused"], again["reused"]) == (False, True) and again["manifest"] == first["manifest"]
    assert not Path(root, "raw", "staffing", "_superseded").exists()
    fresh = extract_staffing(c["staffing"], root, D1, page_size=300, fresh=True)
    assert fresh["reused"] is False
    after = pd.read_parquet(Path(root, "raw", "staffing", D1, "persons__state.parquet"))
    pd.testing.assert_frame_equal(before, after)
    superseded = list(Path(root, "raw", "staffing", "_superseded", D1).iterdir())
    assert len(superseded) == 1 and (superseded[0] / "_manifest.json").exists()
    h1 = extract_hr(c["hr"], root, D1)
    h2 = extract_hr(c["hr"], root, D1, fresh=True)
    assert h1["fetched"] == h2["fetched"] and h1["fetched"]
    assert extract_hr(c["hr"], root, D1)["reused"] is True


def test_two_extracts_of_the_same_date_at_once_never_mix_their_files(faulty, tmp_path):
    """A second deployment or a `tasks test` beside the scheduler: the second waits for the
    first's lock, then reuses what it landed."""
    import threading
    root = str(tmp_path / "lake")
    c = conns(faulty)
    results, start = [], threading.Barrier(2)

    def go():
        start.wait()
        results.append(extract_staffing(c["staffing"], root, D1, page_size=100))
    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["reused"] for r in results) == [False, True]
    assert not Path(root, "raw", "staffing", "_superseded").exists()
    state = pd.read_parquet(Path(root, "raw", "staffing", D1, "persons__state.parquet"))
    assert not state.record_id.duplicated().any()


def test_a_lock_held_too_long_fails_naming_the_holder(tmp_path):
    import fcntl
    from include.pipeline.store import LockTimeout, run_lock
    held = tmp_path / "locks" / "raw-staffing-2026-10-31.lock"
    held.parent.mkdir()
    with open(held, "w") as fh:
        fh.write("pid 4242 on host-a since 2026-11-30T22:00:00Z")
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_EX)
        import multiprocessing
        # flock is per open file: a forked child tries to take it
        q = multiprocessing.get_context("fork").Queue()

        def child():
            try:
                with run_lock(str(tmp_path), "raw-staffing-2026-10-31", wait=0.5):
                    q.put("taken")
            except LockTimeout as exc:
                q.put(str(exc))
        p = multiprocessing.get_context("fork").Process(target=child)
        p.start()
        p.join(30)
        msg = q.get(timeout=5)
    assert msg.startswith("raw-staffing-2026-10-31: still held after 0.5 s by pid 4242 on host-a"), msg


def test_a_broken_download_never_lands(small_world, tmp_path):
    with Simulators(small_world, faults=Faults(truncate=1.0), ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        with pytest.raises(SourceError, match="never arrived whole"):
            extract_hr(conns(sims)["hr"], str(tmp_path / "lake"), D1, attempts=4, wait=0.01)
        assert sims.counters()["hr"]["truncated"] == 4
    day = tmp_path / "lake" / "raw" / "hr" / D1
    assert not (day / "_manifest.json").exists()
    assert not any(p.suffix == ".csv" or p.name.endswith(".part") for p in (day / "files").iterdir()) if (day / "files").exists() else True


def test_org_reads_again_when_rows_move(small_world, tmp_path):
    with Simulators(small_world, faults=Faults(page_drift=0.6, seed=1), ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        result = extract_org(conns(sims)["org"], str(tmp_path / "lake"), D1, size=20)
    assert result["stats"]["passes"] >= 2
    got = pd.read_parquet(tmp_path / "lake" / "raw" / "org" / D1 / "gbxx.parquet")
    want = served(small_world, "2026-10", "org", "gbxx.parquet").fillna("")
    assert_same_rows(got, want, list(want.columns))


@pytest.mark.parametrize("source", ["staffing", "org", "hr"])
def test_wrong_credentials_fail_at_once_without_showing_the_secret(small_world, tmp_path, source):
    with Simulators(small_world, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        good = conns(sims)[source]
        bad = SourceConn(good.conn_id, good.host, good.login, "Wr0ng-S3cret")
        fn = {"staffing": extract_staffing, "org": extract_org, "hr": extract_hr}[source]
        t0 = time.monotonic()
        with pytest.raises(SourceAuthError) as exc:
            fn(bad, str(tmp_path / "lake"), D1)
        assert time.monotonic() - t0 < 5
        assert good.conn_id in str(exc.value) and "Wr0ng-S3cret" not in str(exc.value)
        assert "Wr0ng-S3cret" not in repr(bad)
        assert sims.counters()[source]["requests"] <= 2, "credentials errors are not retried"


def test_the_staffing_collections_are_read_side_by_side(small_world, tmp_path, monkeypatch):
    """persons on one thread and the small collections on another, at the same time; the manifest
    still lists files, statistics and watermarks in the contract's order."""
    import threading

    from include.pipeline.extract import staffing

    meet = threading.Barrier(2, timeout=20)
    pages = staffing.StaffingClient.pages

    def meeting(self, collection, since):
        for page, body in pages(self, collection, since):
            if page == 1 and collection in ("persons", "units"):
                meet.wait()   # read one after the other, the first of the two waits here in vain
            yield page, body

    monkeypatch.setattr(staffing.StaffingClient, "pages", meeting)
    with Simulators(small_world, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        s = extract_staffing(conns(sims)["staffing"], str(tmp_path / "lake"), D1, page_size=200)
        assert sims.counters()["staffing"]["tokens"] == 1, "the collections share one token"
    manifest = json.loads(Path(s["manifest"]).read_text())
    assert list(manifest["files"]) == [f"{c}{suffix}.parquet" for c in COLLECTIONS for suffix in ("", "__state")]
    assert list(manifest["stats"]) == list(manifest["state"]["watermarks"]) == list(COLLECTIONS)
    for name, (fields, key) in COLLECTIONS.items():
        got = pd.read_parquet(tmp_path / "lake" / "raw" / "staffing" / D1 / f"{name}__state.parquet")
        assert_same_rows(got, served(small_world, "2026-10", "staffing", f"{name}.parquet"), key)
    assert not list((tmp_path / "lake" / "raw" / "staffing" / D1).glob("_duckdb_tmp*")), "each spill directory removed"


def test_a_staffing_collection_that_fails_stops_the_others_and_lands_nothing(small_world, tmp_path, monkeypatch):
    """units fails on its first page: the run fails with units' error at once, persons stops at its
    next page, and no manifest is written."""
    from include.pipeline.extract import staffing
    from include.pipeline.extract.http import SourceContractError

    pages, persons_pages = staffing.StaffingClient.pages, []

    def failing(self, collection, since):
        for page, body in pages(self, collection, since):
            if collection == "units":
                raise SourceContractError("staffing_api: a units page is broken")
            persons_pages.append(page)
            time.sleep(0.05)   # persons is the long read
            yield page, body

    monkeypatch.setattr(staffing.StaffingClient, "pages", failing)
    with Simulators(small_world, ports=FREE, finance_url=f"sqlite:///{tmp_path / 'f.db'}") as sims:
        with pytest.raises(SourceContractError, match="a units page is broken"):
            extract_staffing(conns(sims)["staffing"], str(tmp_path / "lake"), D1, page_size=20)
    total = -(-len(served(small_world, "2026-10", "staffing", "persons.parquet")) // 20)
    assert len(persons_pages) < total / 4, f"persons read {len(persons_pages)} of at least {total} pages after units failed"
    assert not (tmp_path / "lake" / "raw" / "staffing" / D1 / "_manifest.json").exists()


def test_a_json_body_is_parsed_as_the_standard_library_parses_it():
    """orjson reads the pages; what it refuses and the standard library takes (NaN, an integer past
    64 bits, UTF-16, a byte-order mark) is read as before; what neither takes is the contract error."""
    import requests

    from include.pipeline.extract.http import SourceContractError, json_body

    def response(body: bytes, content_type: str = "application/json") -> requests.Response:
        r = requests.Response()
        r.status_code, r._content, r.encoding = 200, body, None
        r.headers["Content-Type"] = content_type
        return r

    page = {"items": [{"name": "买买提·艾力", "approved": 3, "share": 0.1, "left_on": None, "ok": True}],
            "next_cursor": "c2", "snapshot_at": "2026-10-31T20:00:00+08:00"}
    conn = SourceConn("staffing_api", "localhost")
    for body in (json.dumps(page, ensure_ascii=False).encode(), json.dumps(page).encode(),
                 b'{"n": NaN, "big": 123456789012345678901234567890, "neg": -Infinity}',
                 json.dumps(page, ensure_ascii=False).encode("utf-16"), b"\xef\xbb\xbf" + json.dumps(page).encode()):
        assert repr(json_body(response(body), conn, "/api/v1/persons")) == repr(response(body).json())
    assert json_body(response(json.dumps(page).encode()), conn, "/api/v1/persons") == page
    with pytest.raises(SourceContractError, match="answered 200 with text/html, not the JSON"):
        json_body(response(b"<html>login</html>", "text/html"), conn, "/api/v1/persons")


def test_a_payroll_chunk_is_each_value_as_text():
    """Every column of a finance chunk is the text of each value (a Decimal without exponent, a float
    as Python writes it, None as null), whatever mix of types a column holds."""
    from decimal import Decimal

    from include.pipeline.extract.finance import _as_text, _schema, _text_columns

    columns = {"amounts": [7597.83, 0.1 + 0.2, 1e16, 1e-05, -0.0, 12352.49],
               "amounts_and_ints": [7597.83, 3, 0.5, 10**20, 2.0, 1],
               "with_null": [7597.83, None, 0.5, 1.0, None, 2.5],
               "decimals": [Decimal("1E+3"), Decimal("7597.830"), Decimal("0.1"), None, Decimal("-2"), Decimal("5E-7")],
               "text": ["01", "张三", None, "", " x ", "X"],
               "flags": [True, False, 1, 0, None, 2.0]}
    rows = list(zip(*columns.values()))
    got = _text_columns(rows, _schema(list(columns))).to_pydict()
    assert got == {name: [_as_text(v) for v in values] for name, values in columns.items()}
    assert got["amounts"][:4] == ["7597.83", "0.30000000000000004", "1e+16", "1e-05"]
    assert got["decimals"][:2] == ["1000", "7597.830"]


def test_a_page_with_missing_and_extra_fields_keeps_everything_as_received():
    from include.pipeline.extract.staffing import _page_table
    good = {"unit_code": "U1", "quota_type": "admin", "approved": 3, "updated_at": "2026-10-01T10:00:00+08:00"}
    odd = {"unit_code": "U2", "quota_type": "admin", "approved": "4", "note": "新增"}   # no updated_at, a text count, an extra field
    fast = _page_table([good], "quotas", 1).to_pylist()
    assert fast == [{**good, "_extra": None, "_missing": None, "_page": 1}]
    rows = _page_table([good, odd], "quotas", 2).to_pylist()
    assert rows[1]["approved"] == 4 and rows[1]["updated_at"] is None
    assert rows[1]["_missing"] == "updated_at" and json.loads(rows[1]["_extra"]) == {"note": "新增"}
    assert rows[0]["_missing"] is None


def test_hr_decode_reads_every_value_as_text_and_refuses_a_body_in_another_encoding(tmp_path):
    """Arrow's CSV reader keeps leading zeros, empty fields as "", quoted commas; a UTF-8 body under a
    GB18030 header is refused by name, never loaded in part."""
    from include.pipeline.extract.hr import decode
    from include.pipeline.extract.http import SourceContractError
    from include.pipeline.store import RunStore

    store = RunStore(str(tmp_path), "hr", "2026-10-31")
    store.begin()
    store.fs.makedirs(store.path("files"), exist_ok=True)
    text = '公民身份号码,姓名,缴费基数\n011010519480521123,"买买提·艾力, 阿",\n11010519480521123X,张三,08000.50\n'
    with store.fs.open(store.path("files/ok.csv"), "wb") as fh:
        fh.write(text.encode("gb18030"))
    assert decode(store, {"name": "ok.csv", "rows": 2}) == ["公民身份号码", "姓名", "缴费基数"]
    got = pd.read_parquet(store.path("ok.csv.parquet"))
    assert got.values.tolist() == [["011010519480521123", "买买提·艾力, 阿", ""], ["11010519480521123X", "张三", "08000.50"]]
    bad = "公民身份号码,姓名\n".encode("gb18030") + ("110105194805211234,买买提·艾力\n" * 3000).encode("utf-8")
    with store.fs.open(store.path("files/bad.csv"), "wb") as fh:
        fh.write(bad)
    with pytest.raises(SourceContractError, match="bad.csv is not GB18030 text"):
        decode(store, {"name": "bad.csv", "rows": 3000})


def test_a_stream_lands_in_large_row_groups_in_the_order_it_came(tmp_path, monkeypatch):
    """Pages are gathered into row groups of about ROW_GROUP rows (not one a page), in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.pipeline.store import RunStore, StreamingParquet

    monkeypatch.setattr(StreamingParquet, "ROW_GROUP", 2_500)
    store = RunStore(str(tmp_path / "lake"), "staffing", D1)
    store.begin()
    schema = pa.schema([("n", pa.int64())])
    with store.parquet_writer("pages.parquet", schema) as out:
        for page in range(10):
            out.write_table(pa.table({"n": range(page * 1000, page * 1000 + 1000)}, schema=schema))
        out.write_table(schema.empty_table())
    landed = pq.ParquetFile(store.path("pages.parquet"))
    assert [landed.metadata.row_group(i).num_rows for i in range(landed.num_row_groups)] == [3000, 3000, 3000, 1000]
    assert landed.read().column("n").to_pylist() == list(range(10_000))
    assert store.files["pages.parquet"]["rows"] == 10_000
