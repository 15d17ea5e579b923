"""A source's rows as received, read back from the raw layer: a finding's evidence (OUTPUTS.md "Evidence").

Standardise does not copy each source's rows as received into the model: it notes, in
``std/_summary.json`` ``received``, the raw file of each source, its :func:`fingerprint`, whether
only its active rows are numbered, and the type of each amount; reconcile makes the facts and
the keys of the few rows its findings rest on from there (:func:`received_records`). Light on
purpose (DuckDB, NumPy, Arrow's compute functions): reconcile imports it, and pandas is only
imported for an amount written in an unusual way.
"""

from __future__ import annotations

import hashlib
import json

import fsspec
import numpy as np

from include.pipeline.errors import NotRetryable

LEFT = "left"   # the status of a staffing tombstone: a person who left (SOURCES.md), not used, not checked

# The amounts among the fields as received (written as numbers in the evidence's facts), and the
# ways of writing one that are read without pandas (standardise.to_number: the whole column; _amount: a few rows).
AMOUNTS = {"finance": ("yfgz",), "hr": ("缴费基数",)}
WHOLE, PLAIN = r"[+-]?[0-9]+", r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
INTEGER, DECIMAL = f"^{WHOLE}$", f"^{PLAIN}$"   # (as Arrow matches them: the whole text)


# A record's key in its own system (OUTPUTS.md "Evidence"): a prefix and the fields of its row as
# received joined by ``|``, each trimmed of whitespace (as the source wrote it otherwise; a missing
# one empty); an HR row's key is its file's name and the row's number in the file instead (1 after the header).
RECORD_KEYS = {"staffing": ("persons", ("record_id",)), "org": ("gbxx", ("sfzh", "dwdm", "zwmc")),
               "finance": ("gz_ff", ("ffyf", "dwbm", "sfzh"))}


class ReceivedChanged(RuntimeError, NotRetryable):
    """A raw file the model was standardised from has been written again since (its extract rerun
    alone), or is gone: its rows are no longer the model's, so a finding's facts cannot be read from it."""


def fingerprint(fs, path: str) -> str:
    """A raw file's identity: a hash of its Parquet footer (rows, row groups, each column chunk's
    sizes and statistics). The same file has the same one; a file written again with other rows
    has another."""
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as fh:
        footer = pq.read_metadata(fh).to_dict()
    return hashlib.sha256(json.dumps(footer, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _located(entry: dict, rec_nos, fs) -> tuple[str, list]:
    """The query of the rows ``rec_nos`` of ``entry``'s raw file (every column, and ``rec_no``) and
    its parameters, once the file is known to be the one the model was standardised from. Lists as
    parameters, not Arrow tables: building an Arrow array from Python or NumPy values imports pandas
    (pyarrow looks for pandas objects among them), which reconcile
    otherwise never does (0.4 s of its task)."""
    path = entry["file"]
    fs = fs or fsspec.core.url_to_fs(path)[0]
    try:
        changed = fingerprint(fs, path) != entry["fingerprint"]
    except FileNotFoundError:
        raise ReceivedChanged(f"{path}, which the period was standardised from, is gone: extract and standardise the "
                              "period again, then reconcile it") from None
    if changed:
        raise ReceivedChanged(f"{path} has been written again since the period was standardised from it (its extract "
                              "rerun alone?): standardise the period again, then reconcile it")
    import duckdb

    rec_no = np.unique(np.asarray(rec_nos, dtype=np.int64))
    quoted = "'" + path.replace("'", "''") + "'"
    file_row = rec_no
    if entry.get("active_only"):   # numbered among the rows that are not tombstones (read_active_persons):
        # the k-th such row is the least f with f = k + (tombstones at or before f), found by iterating from k
        with duckdb.connect() as con:
            left = np.sort(con.sql(f"SELECT file_row_number FROM read_parquet({quoted}, file_row_number = true) "
                                   f"WHERE status = '{LEFT}'").fetchnumpy()["file_row_number"].astype(np.int64))
        while not np.array_equal(step := rec_no + np.searchsorted(left, file_row, side="right"), file_row):
            file_row = step
    query = f"""SELECT t.* EXCLUDE (file_row_number), t.file_row_number AS _file_row, w.rec_no
                FROM read_parquet({quoted}, file_row_number = true) t
                JOIN (SELECT unnest($1::BIGINT[]) AS file_row_number, unnest($2::BIGINT[]) AS rec_no) w USING (file_row_number)"""
    return query, [file_row.tolist(), rec_no.tolist()]


def received_records(source: str, entry: dict, rec_nos, fs=None) -> list[tuple[int, str, str]]:
    """``(rec_no, record_key, facts)`` of the rows ``rec_nos`` of ``source``, in ``rec_no`` order, read
    from the raw file the model was standardised from: what the evidence shows of each record
    (OUTPUTS.md "Evidence"). ``entry`` is the summary's ``received`` entry of the source: the file,
    its :func:`fingerprint`, whether only its active rows are numbered (staffing's persons: the
    tombstones of those who left are not records), the amounts' types.

    * ``record_key``: the record's key in its own system (:data:`RECORD_KEYS`; an HR row's number
      is its row in the file). Made here for the few records a finding rests on: made for every
      record in standardise and carried through reconcile, it was 0.5-1 s of standardise's CPU
      and a fifth of the records file at 2M persons.
    * ``facts``: the record's fields as received, made by DuckDB as reconcile made them from a
      copy of the rows: ``to_json`` of the fields in the file's order (not ours, ``_``-prefixed),
      each amount a number of the type :func:`include.pipeline.standardise.to_number` gave the
      whole column.

    The model keeps a reference, not a copy: the raw layer is kept anyway, and copying every row
    of every source (to read a few hundred back) was 2.4 s of standardise's CPU and 210 MB a night
    at 2M persons. A file written again since, or gone, raises :class:`ReceivedChanged`. Without
    pandas (:func:`_located`)."""
    import duckdb

    query, params = _located(entry, rec_nos, fs)
    amounts = entry.get("amounts", {})
    with duckdb.connect() as con:
        con.execute(f"CREATE TEMP TABLE received AS {query}", params)
        fields = [r[0] for r in con.execute("DESCRIBE received").fetchall() if not r[0].startswith("_") and r[0] != "rec_no"]
        read = con.execute("SELECT " + ", ".join(["rec_no", *(f'"{a}"' for a in amounts)])
                           + " FROM received ORDER BY rec_no").fetchall()
        keys = [r[0] for r in read]
        joins, values, parsed = "", [], {}
        for i, (amount, dtype) in enumerate(amounts.items(), start=1):
            sql_type = {"int64": "BIGINT", "float64": "DOUBLE", "uint64": "UBIGINT"}.get(dtype, "DOUBLE")
            joins += (f" LEFT JOIN (SELECT unnest(${2 * i - 1}::BIGINT[]) AS rec_no, unnest(${2 * i}::{sql_type}[]) AS v) "
                      f"a{i} USING (rec_no)")
            values += [keys, _amount([r[i] for r in read], dtype)]
            parsed[amount] = f"a{i}.v"
        columns = ", ".join(f'{parsed[c]} AS "{c}"' if c in parsed else f'r."{c}"' for c in fields)
        facts = con.execute(f"""
            SELECT x.file_row_number, CAST(json_merge_patch(to_json(x), '{{"file_row_number": null}}') AS VARCHAR)
            FROM (SELECT {columns}, r.rec_no AS file_row_number FROM received r{joins}) x
            ORDER BY x.file_row_number""", values).fetchall()
        record_keys = _record_keys(con, source, fields, entry["file"].rsplit("/", 1)[-1].removesuffix(".parquet"))
    return [(rec_no, key, fact) for (rec_no, fact), key in zip(facts, record_keys)]


def _record_keys(con, source: str, fields: list[str], file_name: str) -> list[str]:
    """The keys (:data:`RECORD_KEYS`) of the rows of the table ``received`` (:func:`received_records`),
    in ``rec_no`` order. Trimmed by Arrow (``utf8_trim_whitespace``: every Unicode space, where
    DuckDB's ``trim`` takes only the ASCII one), a missing value and the separator given as
    columns (a Python value handed to Arrow imports pandas)."""
    import pyarrow.compute as pc

    if source == "hr":
        return [f"{file_name}|{row + 1}" for row, in con.execute("SELECT _file_row FROM received ORDER BY rec_no").fetchall()]
    if source not in RECORD_KEYS:
        raise ValueError(f"no record key for source {source!r}")
    prefix, parts = RECORD_KEYS[source]
    text = {p: f'coalesce(CAST("{p}" AS VARCHAR), \'\')' if p in fields else "''" for p in parts}
    values = ", ".join(f'{text[p]} AS "{p}"' for p in parts)
    table = con.sql(f"SELECT '{prefix}' AS _prefix, '|' AS _separator, {values} FROM received ORDER BY rec_no").to_arrow_table()
    key = pc.binary_join_element_wise(table.column("_prefix"), *(pc.utf8_trim_whitespace(table.column(p)) for p in parts),
                                      table.column("_separator"))
    return key.to_pylist()


def _amount(texts: list, dtype: str) -> list:
    """Amounts written as text (a few rows' worth), as the numbers :func:`include.pipeline.standardise.to_number`
    made of them parsing their whole column, whose type was ``dtype``: a whole column of whole
    numbers is ``int64`` (each read by ``int``); otherwise a plain decimal is read by ``float``
    (correctly rounded, as Arrow's cast is), a null stays null, and anything else goes through
    ``to_number`` (pandas), one value as in the column. Python values, without pandas (or Arrow:
    an Arrow array made from Python or NumPy values imports pandas) unless an amount is written oddly."""
    import re

    if dtype in ("int64", "float64"):   # (a whole number past int64 makes pandas choose another: its path below)
        plain = re.compile(WHOLE if dtype == "int64" else PLAIN)
        if all(t is None or plain.fullmatch(t) for t in texts):
            parse = int if dtype == "int64" else float
            return [None if t is None else parse(t) for t in texts]
    import pandas as pd

    from include.pipeline.standardise import to_number

    values = to_number(pd.Series(texts, dtype="string")).astype(dtype)
    return [None if pd.isna(v) else v.item() if hasattr(v, "item") else v for v in values]
