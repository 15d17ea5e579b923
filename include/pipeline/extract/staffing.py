"""编办 real-name system (SOURCES.md §1): token, cursor paging, incremental sync, tombstones.

Each run lands what the API returned (``raw/staffing/<ds>/<collection>.parquet``, items as
received) and the resulting current state (``<collection>__state.parquet``): the previous
run's state with this run's items upserted by key. Items are never deleted by the
source, so ended ones (tombstones: ``status`` left, ``approved`` 0) simply replace their
earlier version. A full resync reads everything again: on the first run, when the last
full one is older than ``full_resync_days``, or when asked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import pyarrow as pa

from include.pipeline.extract.http import SourceAuthError, SourceConn, SourceContractError, SourceError, check, json_body, make_session
from include.pipeline.store import Progress, RunStore, bounded_duckdb, lands

log = logging.getLogger("roster_sync.extract.staffing")

# The contract's fields per collection, with their key; every field is kept as received.
COLLECTIONS = {
    "units": (["unit_code", "name", "parent_code", "region_code", "kind", "rank", "funding", "status", "updated_at"], ["unit_code"]),
    "quotas": (["unit_code", "quota_type", "approved", "updated_at"], ["unit_code", "quota_type"]),
    "leader_posts": (["unit_code", "level", "approved", "updated_at"], ["unit_code", "level"]),
    "persons": (["record_id", "id_number", "name", "sex", "birth_date", "unit_code", "personnel_class", "quota_type",
                 "non_establishment_category", "post_category", "position", "entered_on", "slip_no", "status", "left_on",
                 "updated_at"], ["record_id"]),
}
INT_FIELDS = {"approved"}


def schema_for(collection: str) -> pa.Schema:
    fields, _ = COLLECTIONS[collection]
    cols = [(f, pa.int64() if f in INT_FIELDS else pa.string()) for f in fields]
    # _extra: fields the contract does not name (kept, as JSON); _missing: contract fields absent from the item
    return pa.schema(cols + [("_extra", pa.string()), ("_missing", pa.string()), ("_page", pa.int32())])


def _page_table(items: list[dict], collection: str, page: int) -> pa.Table:
    """One page as an Arrow table. Fast path when every item has exactly the contract's
    fields with the contract's types; otherwise field by field (extra and missing fields kept)."""
    fields, _ = COLLECTIONS[collection]
    schema = schema_for(collection)
    known = set(fields)
    if all(it.keys() == known for it in items):
        try:
            table = pa.Table.from_pylist(items, schema=pa.schema([schema.field(f) for f in fields]))
            n = len(items)
            return table.append_column("_extra", pa.nulls(n, pa.string())).append_column(
                "_missing", pa.nulls(n, pa.string())).append_column("_page", pa.array([page] * n, pa.int32()))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.Table.from_pylist(_shape(items, collection, page), schema=schema)


def _shape(items: list[dict], collection: str, page: int) -> list[dict]:
    fields, _ = COLLECTIONS[collection]
    known = set(fields)
    out = []
    for it in items:
        row = {}
        for f in fields:
            v = it.get(f)
            if f in INT_FIELDS:
                row[f] = v if isinstance(v, int) and not isinstance(v, bool) else (int(v) if isinstance(v, str) and v.strip().lstrip("-").isdigit() else None)
            else:
                row[f] = None if v is None else str(v)
        extra = {k: v for k, v in it.items() if k not in known}
        missing = [f for f in fields if f not in it]
        row["_extra"] = json.dumps(extra, ensure_ascii=False) if extra else None
        row["_missing"] = ",".join(missing) if missing else None
        row["_page"] = page
        out.append(row)
    return out


class StaffingClient:
    def __init__(self, conn: SourceConn, session=None, page_size: int = 1000):
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size is 1-1000 (SOURCES.md)")
        self.conn, self.page_size = conn, page_size
        self.session = session or make_session()
        self.token: str | None = None
        self.token_refreshes = 0
        self._token_lock = threading.Lock()   # the collections are read side by side: one token for them all

    def authenticate(self) -> None:
        resp = self.session.post(f"{self.conn.base_url}/api/v1/auth/token",
                                 json={"client_id": self.conn.login, "client_secret": self.conn.password}, timeout=60)
        if resp.status_code in (401, 403):
            raise SourceAuthError(f"connection {self.conn.conn_id!r}: the staffing office refused the credentials "
                                  f"(HTTP {resp.status_code}); check its login (client_id) and password (client_secret)")
        check(resp, self.conn, "token endpoint")
        body = json_body(resp, self.conn, "the token endpoint")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise SourceContractError(f"{self.conn.conn_id}: the token endpoint answered without an access_token (SOURCES.md §1)")
        self.token = body["access_token"]
        self.token_refreshes += 1

    def current_token(self) -> str:
        with self._token_lock:
            if self.token is None:
                self.authenticate()
            return self.token

    def _expire(self, token: str) -> None:
        """Forget ``token`` if it is still the current one (another thread may have renewed it already)."""
        with self._token_lock:
            if self.token == token:
                self.token = None

    def get(self, path: str, params: dict) -> dict:
        """GET with a token; a 401 ``token_expired`` gets a new token and the same request again.
        Safe from several threads: they share one token, renewed once when it expires."""
        for attempt in range(3):
            token = self.current_token()
            resp = self.session.get(f"{self.conn.base_url}{path}", params=params,
                                    headers={"Authorization": f"Bearer {token}"}, timeout=120)
            if resp.status_code == 401:
                self._expire(token)
                continue
            check(resp, self.conn, path)
            body = json_body(resp, self.conn, path)
            if not isinstance(body, dict):
                raise SourceContractError(f"{self.conn.conn_id}: {path} answered a JSON {type(body).__name__}, "
                                          "not the page object of SOURCES.md §1")
            return body
        raise SourceError(f"{self.conn.conn_id}: {path} kept answering 401 with fresh tokens")

    def page(self, collection: str, params: dict) -> dict:
        """One page of ``collection``, its shape checked (SOURCES.md §1)."""
        body = self.get(f"/api/v1/{collection}", params)
        if not isinstance(body.get("items", []), list):
            raise SourceContractError(f"{self.conn.conn_id}: a {collection} page's items is not a list (SOURCES.md §1)")
        for key in ("items", "next_cursor", "snapshot_at"):
            if key not in body:
                raise SourceContractError(f"{self.conn.conn_id}: a {collection} page has no {key!r} (SOURCES.md §1)")
        return body

    def pages(self, collection: str, updated_since: str | None):
        """Yield (page number, body) to the end of the cursor chain.

        The next page is asked for, on a thread, as soon as this page's cursor is known, and
        this page is yielded meanwhile: the office's server prepares the next page while the
        caller lands this one. One request is in flight at a time, as a cursor chain has it."""
        params = {"page_size": self.page_size}
        if updated_since:
            params["updated_since"] = updated_since
        page, seen_cursors = 0, set()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"staffing-{collection}") as ahead:
            pending = ahead.submit(self.page, collection, params)
            while pending is not None:
                body = pending.result()
                page += 1
                cursor, pending = body["next_cursor"], None
                if cursor:
                    if cursor in seen_cursors:
                        raise SourceError(f"{self.conn.conn_id}: the {collection} cursor chain loops")
                    seen_cursors.add(cursor)
                    pending = ahead.submit(self.page, collection, {"cursor": cursor})
                yield page, body


@lands("staffing")
def extract_staffing(conn: SourceConn, root: str, ds: str, full_resync_days: int = 7, force_full: bool = False,
                     page_size: int = 1000) -> dict:
    """Pull the four collections into the raw layer. Returns the manifest."""
    store = RunStore(root, "staffing", ds)
    prev = store.previous_manifest()
    prev_state = (prev or {}).get("state", {})
    last_full = prev_state.get("last_full_ds")
    full = force_full or prev is None or last_full is None or \
        (dt.date.fromisoformat(ds) - dt.date.fromisoformat(last_full)).days >= full_resync_days
    store.begin()
    client = StaffingClient(conn, page_size=page_size)
    client.current_token()   # once, before the collections' threads ask for it
    watermarks, stats = {}, {}
    stop = threading.Event()

    def read(collection: str) -> None:
        since = None if full else prev_state.get("watermarks", {}).get(collection)
        progress = Progress(f"staffing {collection}{' (full)' if since is None else ' since ' + since}", logger=log)
        with store.parquet_writer(f"{collection}.parquet", schema_for(collection)) as out:
            for page, body in client.pages(collection, since):
                if stop.is_set():   # another collection failed: this run lands nothing
                    return
                if page == 1:
                    watermarks[collection] = body["snapshot_at"]
                out.write_table(_page_table(body["items"], collection, page))
                progress.add(len(body["items"]))
        stats[collection] = {**progress.done(), "missing": _missing_fields(store, collection)}
        _merge_state(store, collection, None if full else prev, full)

    # persons, nearly all the pages, on one thread; the three small collections one after another
    # on a second, side by side with it (each collection is one cursor chain, read in order; the
    # office's server answers two chains at once). Each collection has its own files.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="staffing") as pool:
        reads = [pool.submit(read, c) for c in ("persons", *[c for c in COLLECTIONS if c != "persons"])]
        wait(reads, return_when=FIRST_EXCEPTION)
        failed = next((r for r in reads if r.done() and r.exception() is not None), None)
        if failed is not None:   # the first failure, at once: the others stop at their next page
            stop.set()
            for r in reads:
                r.cancel()
            raise failed.exception()
    # the manifest lists the collections in the contract's order, however their reads interleaved
    order = [f"{c}{suffix}.parquet" for c in COLLECTIONS for suffix in ("", "__state")]
    store.files = {name: store.files[name] for name in sorted(store.files, key=lambda n: (order.index(n) if n in order else len(order), n))}
    watermarks = {c: watermarks[c] for c in COLLECTIONS if c in watermarks}
    stats = {c: stats[c] for c in COLLECTIONS}
    state = {"watermarks": watermarks, "last_full_ds": ds if full else last_full}
    mode = "full" if full else "incremental"
    path = store.commit({"mode": mode, "state": state, "stats": stats, "token_requests": client.token_refreshes})
    return {"source": "staffing", "manifest": path, "mode": mode, "stats": stats}


def _missing_fields(store: RunStore, collection: str) -> dict[str, int]:
    """How many of the items received this run lacked each contract field (standardise's gate
    judges a schema break on what was received, not on the merged state)."""
    received = store.path(f"{collection}.parquet")
    with bounded_duckdb(store) as con:
        rows = con.execute(f"SELECT f, count(*) FROM (SELECT unnest(string_split(_missing, ',')) AS f "
                           f"FROM read_parquet('{received}') WHERE _missing IS NOT NULL) GROUP BY f ORDER BY f").fetchall()
    return {f: int(n) for f, n in rows}


def _merge_state(store: RunStore, collection: str, prev: dict | None, full: bool) -> None:
    """``<collection>__state.parquet``: the previous state with this run's items upserted by key."""
    _, key = COLLECTIONS[collection]
    received = store.path(f"{collection}.parquet")
    out = store.path(f"{collection}__state.parquet")
    if full or prev is None:
        # A full read is the state: every item, in key order already (the API pages by key).
        # The file is copied as received (rewriting it in DuckDB took 3.4 s for 1M persons): the
        # same bytes, so the same rows, size and checksum as the manifest records for it.
        store.fs.copy(received, out)
        store.files[f"{collection}__state.parquet"] = dict(store.files[f"{collection}.parquet"])
        return
    before = f"{prev['dir']}/{collection}__state.parquet"
    keys = ", ".join(key)
    # The latest version of each item wins; a page read twice (never expected) cannot duplicate.
    sql = f"""
        SELECT * EXCLUDE (_rank, _order) FROM (
          SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _order DESC) AS _rank FROM (
            SELECT *, 0 AS _order FROM read_parquet('{before}')
            UNION ALL BY NAME
            SELECT *, 1 + _page AS _order FROM read_parquet('{received}')))
        WHERE _rank = 1 ORDER BY {keys}"""
    with bounded_duckdb(store) as con:
        con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    store.record_file(f"{collection}__state.parquet", rows)
