"""人社 file exports (SOURCES.md §4): index, verified downloads, GB18030 decoded.

Every export in the index not fetched before (by name and sha256) is downloaded; a file
whose size or sha256 does not match the index, or whose download breaks off, is fetched
again and is never loaded in part. The bytes are kept as received
(``files/<name>``) beside their decoded form (``<name>.parquet``, every value text).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import requests

from include.pipeline.extract.http import SourceAuthError, SourceConn, SourceContractError, SourceError, check, json_body, make_session
from include.pipeline.store import Progress, RunStore, lands

log = logging.getLogger("roster_sync.extract.hr")

COLUMNS = {
    "persons": ["公民身份号码", "姓名", "单位编号", "参保状态", "人员状态", "退休日期", "缴费基数"],
    "employers": ["单位编号", "统一社会信用代码", "单位名称"],
}


def _get(session, conn, url, what):
    resp = session.get(url, headers={"X-Api-Key": conn.password or ""}, timeout=300)
    if resp.status_code == 401:
        raise SourceAuthError(f"connection {conn.conn_id!r}: the HR bureau refused the API key (HTTP 401); "
                              "check the connection's password")
    return check(resp, conn, what)


def download(session, conn: SourceConn, entry: dict, store: RunStore, attempts: int = 8, wait: float = 0.05) -> str:
    """Stream a file to ``files/<name>``, verified against the index's size and sha256.

    The bytes go to ``files/<name>.part`` while they arrive (memory stays at one chunk);
    only a file that matches the index is renamed into place. A broken or mismatched
    download is discarded and fetched again.
    """
    url = f"{conn.base_url}/exports/{entry['name']}"
    final, part = store.path(f"files/{entry['name']}"), store.path(f"files/{entry['name']}.part")
    store.fs.makedirs(store.path("files"), exist_ok=True)
    for attempt in range(1, attempts + 1):
        digest, size = hashlib.sha256(), 0
        try:
            resp = session.get(url, headers={"X-Api-Key": conn.password or ""}, timeout=300, stream=True)
            if resp.status_code == 401:
                raise SourceAuthError(f"connection {conn.conn_id!r}: the HR bureau refused the API key (HTTP 401); "
                                      "check the connection's password")
            check(resp, conn, entry["name"])
            with store.fs.open(part, "wb") as fh:
                for chunk in resp.iter_content(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as exc:
            log.warning("hr: download of %s broke off after %d bytes (%s), attempt %d of %d",
                        entry["name"], size, type(exc).__name__, attempt, attempts)
        else:
            if size == entry["bytes"] and digest.hexdigest() == entry["sha256"]:
                store.fs.mv(part, final)
                store.record_file(f"files/{entry['name']}", entry["rows"])
                return final
            log.warning("hr: %s arrived with %d bytes, index says %d (or its sha256 differs), attempt %d of %d",
                        entry["name"], size, entry["bytes"], attempt, attempts)
        if store.fs.exists(part):
            store.fs.rm(part)
        time.sleep(min(wait * 2 ** attempt, 10))
    raise SourceError(f"{conn.conn_id}: {entry['name']} never arrived whole in {attempts} attempts; nothing of it was loaded")


def decode(store: RunStore, entry: dict, block_size: int = 8 << 20) -> list[str]:
    """GB18030 CSV to ``<name>.parquet`` (every value text, an empty field an empty string), read
    by Arrow's streaming CSV reader block by block (pandas' reader took 9 s of a 9.5 s
    extract at 1M). Returns the header."""
    src = store.path(f"files/{entry['name']}")
    name = f"{entry['name']}.parquet"
    with store.fs.open(src, "rb") as raw:
        first = raw.readline()
    try:
        header = next(csv.reader([first.decode("gb18030")]), []) if first.strip() else []
    except UnicodeDecodeError as exc:
        raise SourceContractError(f"hr: {entry['name']} is not GB18030 text (byte {exc.start})") from None
    schema = pa.schema([(c, pa.string()) for c in header])
    rows = 0
    with store.parquet_writer(name, schema) as writer:
        if header:
            convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False,
                                           quoted_strings_can_be_null=False)
            try:
                with store.fs.open(src, "rb") as raw:
                    reader = pacsv.open_csv(raw, read_options=pacsv.ReadOptions(encoding="gb18030", block_size=block_size),
                                            convert_options=convert)
                    for batch in reader:
                        writer.write_table(pa.Table.from_batches([batch]).cast(schema))
                        rows += batch.num_rows
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                if "decode" in str(exc).lower() or isinstance(exc, UnicodeDecodeError):
                    raise SourceContractError(f"hr: {entry['name']} is not GB18030 text") from None
                raise SourceContractError(f"hr: {entry['name']} is not a CSV file Arrow can read: "
                                          f"{str(exc).splitlines()[0][:160]}") from None
    if rows != entry["rows"]:
        raise SourceError(f"hr: {entry['name']} has {rows} data rows, the index says {entry['rows']}")
    return header


@lands("hr")
def extract_hr(conn: SourceConn, root: str, ds: str, attempts: int = 8, wait: float = 0.05) -> dict:
    """Fetch every export not fetched before. A file that never arrives whole after ``attempts``
    downloads (waiting ``wait`` x 2^n seconds between them) fails the extract."""
    store = RunStore(root, "hr", ds)
    prev = store.previous_manifest()
    fetched = dict((prev or {}).get("state", {}).get("files", {}))
    session = make_session()
    index = json_body(_get(session, conn, f"{conn.base_url}/exports/index.json", "index.json"), conn, "/exports/index.json")
    if not isinstance(index, list) or not all(isinstance(e, dict) and {"name", "kind", "period", "rows", "bytes", "sha256"} <= set(e) for e in index):
        raise SourceContractError(f"{conn.conn_id}: index.json is not the list of SOURCES.md §4")
    store.begin()
    store.write_bytes("index.json", _canonical(index), rows=len(index))
    todo = [e for e in index if fetched.get(e["name"], {}).get("sha256") != e["sha256"]]
    progress = Progress("hr exports", total=sum(e["rows"] for e in todo), logger=log)
    for entry in todo:
        download(session, conn, entry, store, attempts=attempts, wait=wait)
        header = decode(store, entry)
        fetched[entry["name"]] = {"sha256": entry["sha256"], "ds": ds, "kind": entry["kind"], "period": entry["period"],
                                  "rows": entry["rows"], "columns": header}
        progress.add(entry["rows"])
    stats = progress.done()
    stats["files"] = len(todo)
    path = store.commit({"state": {"files": fetched}, "stats": stats})
    return {"source": "hr", "manifest": path, "stats": stats, "fetched": [e["name"] for e in todo]}


def _canonical(index: list) -> bytes:
    import json
    return json.dumps(index, ensure_ascii=False, sort_keys=True, indent=1).encode()
