"""组织部 cadre system (SOURCES.md §2): the whole list every sync, every row exactly once.

The list can change while it is read (a row moves to another page), so a single pass
can skip a row or read one twice. Pages are written as they arrive (``pages.parquet``,
with the pass and page number); only a 16-byte digest per distinct row is kept in
memory. A sync makes passes until the distinct rows equal ``total``; ``gbxx.parquet``
then holds each distinct row once.
"""

from __future__ import annotations

import hashlib
import json
import logging

import pyarrow as pa

from include.pipeline.extract.http import SourceAuthError, SourceConn, SourceContractError, SourceError, check, json_body, make_session
from include.pipeline.store import Progress, RunStore, bounded_duckdb, lands

log = logging.getLogger("roster_sync.extract.org")

FIELDS = ["sfzh", "xm", "xb", "csrq", "dwdm", "dwmc", "zwmc", "zwcc", "sfld", "ldlb", "rzsj"]
SCHEMA = pa.schema([(f, pa.string()) for f in FIELDS] + [("_extra", pa.string()), ("_missing", pa.string()),
                                                          ("_pass", pa.int32()), ("_page", pa.int32())])


def _digest(row: dict) -> bytes:
    return hashlib.blake2b("\x1f".join("" if row.get(f) is None else str(row[f]) for f in FIELDS).encode(), digest_size=16).digest()


@lands("org")
def extract_org(conn: SourceConn, root: str, ds: str, size: int = 500, max_passes: int = 8) -> dict:
    if not 1 <= size <= 500:
        raise ValueError("size is 1-500 (SOURCES.md)")
    store = RunStore(root, "org", ds)
    store.begin()
    session = make_session()
    session.auth = (conn.login or "", conn.password or "")
    url = f"{conn.base_url}/gbxx/list"
    seen: set[bytes] = set()
    total = None
    passes = 0
    progress = Progress("org gbxx", logger=log)
    with store.parquet_writer("pages.parquet", SCHEMA) as out:
        while passes < max_passes:
            passes += 1
            page = 1
            while True:
                resp = session.get(url, params={"page": page, "size": size}, timeout=120)
                if resp.status_code == 401:
                    raise SourceAuthError(f"connection {conn.conn_id!r}: the organisation department refused the "
                                          "credentials (HTTP 401); check its login and password")
                body = json_body(check(resp, conn, "/gbxx/list"), conn, "/gbxx/list")
                if not isinstance(body, dict) or not isinstance(body.get("rows"), list) or not isinstance(body.get("total"), int):
                    raise SourceContractError(f"{conn.conn_id}: a /gbxx/list page lacks rows or total (SOURCES.md §2)")
                total = body["total"]
                progress.total = total
                rows = []
                for r in body["rows"]:
                    row = {f: (None if r.get(f) is None else str(r.get(f))) for f in FIELDS}
                    extra = {k: v for k, v in r.items() if k not in FIELDS}
                    missing = [f for f in FIELDS if f not in r]
                    row.update(_extra=json.dumps(extra, ensure_ascii=False) if extra else None,
                               _missing=",".join(missing) if missing else None, _pass=passes, _page=page)
                    rows.append(row)
                    seen.add(_digest(row))
                out.write_rows(rows)
                progress.add(len(rows))
                if not rows or page * size >= total:
                    break
                page += 1
            if len(seen) >= total:
                break
            log.info("org: pass %d ended with %d of %d distinct rows (rows moved while reading); reading again",
                     passes, len(seen), total)
    stats = progress.done()
    if total is None or len(seen) != total:
        raise SourceError(f"{conn.conn_id}: after {passes} passes the list had {len(seen)} distinct rows, "
                          f"total says {total}: the list keeps changing; try again later")
    src, dst = store.path("pages.parquet"), store.path("gbxx.parquet")
    cols = ", ".join(FIELDS + ["_extra", "_missing"])
    with bounded_duckdb(store) as con:
        con.execute(f"COPY (SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY {', '.join(FIELDS)} "
                    f"ORDER BY _pass, _page) AS _n FROM read_parquet('{src}')) WHERE _n = 1 ORDER BY sfzh, dwdm) "
                    f"TO '{dst}' (FORMAT parquet, COMPRESSION zstd)")
    store.record_file("gbxx.parquet", total)
    stats.update(passes=passes, total=total)
    path = store.commit({"state": {}, "stats": stats})
    return {"source": "org", "manifest": path, "stats": stats}
