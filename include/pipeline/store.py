"""The raw layer: what each source said, per run, kept as received.

Layout under the data root (a local directory by default; any fsspec URL such as
``s3://bucket/roster`` works the same, since every access goes through fsspec)::

    raw/<source>/<ds>/...parquet          files of one run (ds = the run's logical date)
    raw/<source>/<ds>/_manifest.json      written last: a directory without it is incomplete
    raw/<source>/_superseded/<ds>/<stamp>/   an earlier attempt of the same logical date

A rerun of a logical date moves the earlier attempt aside (never deletes it) and writes
afresh, so a logical date has exactly one current extract and no duplicates. A source's
incremental state (watermark, months read, files fetched) is the ``state`` of the latest
complete manifest *before* the run's logical date, so rerunning a date starts from the
same state and yields the same content.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import inspect
import json
import logging
import os
import socket
import threading
import time

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger("roster_sync.store")

MANIFEST = "_manifest.json"


def data_root() -> str:
    """The data root: ``ROSTER_SYNC_DATA_ROOT``, else ``./var/lake``."""
    return os.environ.get("ROSTER_SYNC_DATA_ROOT") or os.path.abspath(os.path.join("var", "lake"))


class RunStore:
    """One source's raw directory for one run (logical date ``ds``)."""

    def __init__(self, root: str, source: str, ds: str):
        dt.date.fromisoformat(ds)  # a logical date, YYYY-MM-DD
        self.fs, base = fsspec.core.url_to_fs(root)
        self.base = base.rstrip("/")
        self.root, self.source, self.ds = root, source, ds
        self.source_dir = f"{self.base}/raw/{source}"
        self.dir = f"{self.source_dir}/{ds}"
        self.files: dict[str, dict] = {}

    # lifecycle
    def begin(self) -> None:
        """Move an earlier attempt of this logical date aside and start an empty directory."""
        if self.fs.exists(self.dir):
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            dest = f"{self.source_dir}/_superseded/{self.ds}/{stamp}"
            self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(self.dir, dest, recursive=True)
            log.info("%s: an earlier extract of %s was moved to %s", self.source, self.ds, dest)
        self.fs.makedirs(self.dir, exist_ok=True)

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def commit(self, manifest: dict) -> str:
        """Write the manifest last: from now on the extract counts as complete."""
        body = {"source": self.source, "ds": self.ds, "root": self.root,
                "written_at": dt.datetime.now(dt.timezone.utc).isoformat(), "files": self.files, **manifest}
        with self.fs.open(self.path(MANIFEST), "w") as fh:
            json.dump(body, fh, ensure_ascii=False, indent=1, default=str)
        return self.path(MANIFEST)

    # writing
    def record_file(self, name: str, rows: int) -> None:
        self.files[name] = {"rows": rows, "bytes": self.fs.size(self.path(name)), "sha256": self.sha256(name)}

    def sha256(self, name: str) -> str:
        h = hashlib.sha256()
        with self.fs.open(self.path(name), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def write_bytes(self, name: str, data: bytes, rows: int) -> None:
        with self.fs.open(self.path(name), "wb") as fh:
            fh.write(data)
        self.record_file(name, rows)

    def parquet_writer(self, name: str, schema: pa.Schema) -> "StreamingParquet":
        return StreamingParquet(self, name, schema)

    # reading the history
    def previous_manifest(self) -> dict | None:
        """The latest complete manifest of this source strictly before this run's logical date."""
        return latest_manifest(self.root, self.source, before=self.ds)


class StreamingParquet:
    """Append record batches as pages arrive, written in row groups of about ``ROW_GROUP`` rows:
    memory stays at one row group whatever the source's size. (A row group a page, as
    written before, made 2,000 groups of 1,000 rows for the persons of a 2M-person province:
    a write call each, and a file read three times slower.)"""

    ROW_GROUP = 65_536

    def __init__(self, store: RunStore, name: str, schema: pa.Schema):
        self.store, self.name, self.schema = store, name, schema
        self.fh = store.fs.open(store.path(name), "wb")
        self.writer = pq.ParquetWriter(self.fh, schema, compression="zstd")
        self.rows = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def write_rows(self, rows: list[dict]) -> None:
        if rows:
            self.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows:
            self.pending.append(table)
            self.pending_rows += table.num_rows
            self.rows += table.num_rows
            if self.pending_rows >= self.ROW_GROUP:
                self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=max(self.pending_rows, 1))
            self.pending, self.pending_rows = [], 0

    def close(self) -> int:
        self._flush()
        self.writer.close()
        self.fh.close()
        self.store.record_file(self.name, self.rows)
        return self.rows

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *a):
        if exc_type is None:
            self.close()
        else:
            self.writer.close()
            self.fh.close()


def latest_manifest(root: str, source: str, before: str | None = None, at: str | None = None) -> dict | None:
    fs, base = fsspec.core.url_to_fs(root)
    src = f"{base.rstrip('/')}/raw/{source}"
    if not fs.exists(src):
        return None
    days = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(src, detail=False))
    days = [d for d in days if len(d) == 10 and d[4] == "-" and (before is None or d < before) and (at is None or d == at)]
    for d in reversed(days):
        path = f"{src}/{d}/{MANIFEST}"
        if fs.exists(path):
            with fs.open(path) as fh:
                manifest = json.load(fh)
            manifest["dir"] = f"{src}/{d}"
            return manifest
    return None


class LockTimeout(RuntimeError):
    """Another run held a lock for longer than ``ROSTER_SYNC_LOCK_WAIT_SECONDS``."""


@contextlib.contextmanager
def run_lock(root: str, name: str, wait: float | None = None):
    """Hold the lock ``name`` of the data root (``<root>/locks/<name>.lock``) while writing.

    Two runs of the same logical date (a second deployment, ``dags test`` beside the
    scheduler, ``tasks test``) must never write the same raw or work directory at once: the
    second waits for the first, up to ``ROSTER_SYNC_LOCK_WAIT_SECONDS``, then fails naming
    the holder. The lock is an ``flock`` on a local (or NFS) file: the kernel drops it when
    its holder dies, even by ``kill -9``. On an object store (``s3://``...) there is no file
    lock; one deployment per data root is then the operator's rule (docs/OPERATIONS.md).
    """
    fs, base = fsspec.core.url_to_fs(root)
    with _flock(fs, os.path.join(base, "locks", f"{name}.lock"), name, wait):
        yield


@contextlib.contextmanager
def path_lock(path: str, wait: float | None = None):
    """The same lock for one work directory: ``<path>.lock`` beside it."""
    fs, local = fsspec.core.url_to_fs(path)
    with _flock(fs, local.rstrip("/") + ".lock", local.rstrip("/"), wait):
        yield


def holds_lock(path_of):
    """Decorate a step that writes a work directory: it holds :func:`path_lock` of
    ``path_of(arguments)`` while it runs (arguments by name, defaults applied)."""
    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            with path_lock(path_of(bound.arguments)):
                return fn(*args, **kwargs)
        return run
    return wrap


@contextlib.contextmanager
def _flock(fs, path: str, label: str, wait: float | None):
    from include.settings import lock_wait_seconds

    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        log.debug("no file lock for %s (%s): one deployment per data root", label, fs.protocol)
        yield
        return
    wait = lock_wait_seconds() if wait is None else wait
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fh = open(path, "a+")
    try:
        start = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                if time.monotonic() - start >= wait:
                    raise LockTimeout(f"{label}: still held after {wait:g} s by {holder}; "
                                      "is another run of the same logical date still going?") from None
                if not told:
                    log.info("%s: held by %s; waiting (up to %g s)", label, holder, wait)
                    told = True
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}")
        fh.flush()
        yield
    finally:
        fh.close()   # closing the file releases the flock


def lands(source: str):
    """Decorate a source's extract: it holds the lock of ``raw/<source>/<ds>`` while it runs,
    and a logical date whose raw layer landed complete is reused, not fetched again.

    A rerun (a retry, a cleared task, a backfill of a past date) thus sees what that date
    saw (OUTPUTS.md "The period"), not today's sources. ``fresh=True`` fetches again; the
    earlier attempt is moved aside, never deleted (:meth:`RunStore.begin`).
    """
    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args, fresh: bool = False, **kwargs):
            bound = sig.bind(*args, **kwargs)
            root, ds = bound.arguments["root"], bound.arguments["ds"]
            with run_lock(root, f"raw-{source}-{ds}"):
                landed = None if fresh else latest_manifest(root, source, at=ds)
                if landed is not None:
                    log.info("%s: the raw layer of %s landed complete at %s; reusing it (fresh extract: the run "
                             "parameter fresh_extract)", source, ds, landed.get("written_at"))
                    return {"source": source, "manifest": f"{landed['dir']}/{MANIFEST}", "reused": True,
                            "stats": landed.get("stats", {}), "mode": landed.get("mode"), "fetched": [], "months_read": []}
                return {"reused": False, **fn(*args, **kwargs)}
        return run
    return wrap


class Progress:
    """Logs how far a long step is (rows, steps, rate) every few seconds, so slow is not mistaken for stuck:
    an extract's rows and pages, a bulk insert's rows and chunks (``unit``: what a step is called in the line)."""

    def __init__(self, what: str, every: float = 5.0, total: int | None = None, logger=log, unit: str = "pages"):
        self.what, self.every, self.total, self.log, self.unit = what, every, total, logger, unit
        self.rows = self.pages = 0
        self.start = self.last = time.monotonic()

    def add(self, rows: int, pages: int = 1) -> None:
        self.rows += rows
        self.pages += pages
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.log.info("%s", self.line())

    def line(self) -> str:
        secs = max(time.monotonic() - self.start, 1e-9)
        of = f" of {self.total:,}" if self.total else ""
        return f"{self.what}: {self.rows:,}{of} rows, {self.pages:,} {self.unit}, {self.rows / secs:,.0f} rows/s, {secs:.1f}s"

    def done(self) -> dict:
        self.log.info("%s (done)", self.line())
        secs = max(time.monotonic() - self.start, 1e-9)
        return {"rows": self.rows, "pages": self.pages, "seconds": round(secs, 3)}


@contextlib.contextmanager
def bounded_duckdb(store: "RunStore", memory_limit: str | None = None):
    """A DuckDB connection whose memory is bounded: beyond the limit it spills to a directory
    of the run, removed when the connection closes.

    Extract steps must keep memory flat whatever the source's size
    (``ROSTER_SYNC_EXTRACT_MEMORY``, default 256MB).
    """
    import duckdb

    # a directory of this connection's own: a run may hold several at once (staffing's collections
    # are read side by side), and each removes its directory as it closes
    spill = store.path(f"_duckdb_tmp_{threading.get_ident()}")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")   # a bar of carriage returns is noise in a task log
    try:
        con.execute(f"SET memory_limit = '{memory_limit or os.environ.get('ROSTER_SYNC_EXTRACT_MEMORY', '256MB')}'")
        con.execute(f"SET temp_directory = '{spill}'")
        con.execute("SET threads = 2")
        yield con
    finally:
        con.close()
        if store.fs.exists(spill):
            store.fs.rm(spill, recursive=True)
