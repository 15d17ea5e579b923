"""Standardise: the raw layer of one run into one typed model for one period.

Reads what the run's extracts landed (``raw/<source>/<ds>/``) and writes, under
``work/<ds>/<period>/std/``:

* ``units``, ``quotas``, ``leader_posts``: the staffing office's current state;
* ``budget_units``: finance's ``ys_dw`` with the credit code trimmed (blank means none);
* ``records``: every record the period uses (OUTPUTS.md "Who a person is"), one wide
  table over the four sources: the ID cleaned (upper-case, whitespace and U+3000 removed,
  15-digit IDs converted) and checked (and, for an invalid one only, as written: what linking
  reads), the normalised name, the unit's credit code, and each source's own columns (null
  where a source has none).

Each source's rows as received (a finding's evidence: its records' fields) are not copied: the
summary's ``received`` names the raw file of each, with its fingerprint, and reconcile reads the
few rows its findings rest on from there, with their keys in their own systems
(:func:`include.pipeline.received.received_records`).

Records used: staffing ``persons`` with ``status`` active, every organisation row, the
payroll rows of ``M``, and the rows of the latest HR export whose period is not after ``M``.

Quality (issue 5): each source's rows are screened (:func:`screen`): a row that breaks a
row-level rule is quarantined with the reason (``quarantine_rows.parquet``) and the run
goes on, and rows in = rows used + rows quarantined is checked. Batch-level failures
stop the run before anything is reconciled or published (:class:`QualityGateFailed`):
an empty source, a source that shrank by more than the row band since the last run, a
missing column, or a failed critical expectation of the input suites in
``expectations/`` (one per raw source and one for the standardised model).

The input suites run in a worker process beside this one (:mod:`include.quality.input_suites`),
on the raw files as received: sent at the start, decided with the batch gates at the end.

Memory: the sources are taken one at a time (read, screened, their records written, the
writes on a thread beside the next source) and let go before the next
is read, but for one source's kept rows, given their ID columns on a thread of their own while
the next source is read and screened. Every file is written under a ``.partial`` name and
named as the model's only when the run has passed every gate, so a failed run leaves the last
complete model as it was.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd

from include import identifiers as ids
from include import periods as P
from include.memory import made_before_not_collected, release_unused
from include.pipeline.errors import NotRetryable
from include.pipeline.extract.finance import GZ_FF, YS_DW
from include.pipeline.extract.hr import COLUMNS as HR_COLUMNS
from include.pipeline.extract.org import FIELDS as ORG_FIELDS
from include.pipeline.extract.staffing import COLLECTIONS as STAFFING_COLLECTIONS
from include.pipeline.received import AMOUNTS, DECIMAL, INTEGER, LEFT, fingerprint
from include.pipeline.store import latest_manifest, path_lock
from include.quality.gates import QualityGateFailed
from include.threads import per_core, spans

log = logging.getLogger("roster_sync.standardise")

RECORD_COLUMNS = [
    "source", "rec_no", "raw_id", "raw_trim", "id_clean", "id_valid", "birth8", "name", "name_norm", "unit_code",
    # staffing
    "record_id", "sex", "birth_date", "personnel_class", "quota_type", "non_establishment_category", "post_category",
    "position", "entered_on", "slip_no",
    # organisation
    "sfld", "ldlb", "zwcc", "xb", "csrq",
    # finance
    "dwbm", "rylb", "yfgz", "jfly",
    # HR
    "emp_no", "insured_status", "hr_status", "retired_on",
]
HR_PERSON_COLUMNS = {"公民身份号码": "raw_id", "姓名": "name", "单位编号": "emp_no", "参保状态": "insured_status",
                     "人员状态": "hr_status", "退休日期": "retired_on"}


class MissingExtractError(RuntimeError, NotRetryable):
    """A source's extract for the run is missing or does not cover the period."""


@dataclass(frozen=True)
class Inputs:
    """The raw files a run's period is built from."""

    staffing_dir: str
    org_file: str
    ys_dw_file: str
    gz_ff_file: str
    hr_persons_file: str | None
    hr_employers_file: str | None
    hr_period: str | None
    staffing_snapshot: str | None = None
    staffing_stats: dict | None = None


def locate(root: str, ds: str, period: str) -> Inputs:
    manifests = {s: latest_manifest(root, s, at=ds) for s in ("staffing", "org", "finance", "hr")}
    missing = [s for s, m in manifests.items() if m is None]
    if missing:
        raise MissingExtractError(f"no complete extract for {ds} from: {', '.join(missing)} (run the extract tasks first)")
    base = manifests["finance"]["dir"].rsplit("/raw/finance/", 1)[0]
    month = P.to_ffyf(period)
    read_in = manifests["finance"]["state"]["months"].get(month)
    if read_in is None:
        raise MissingExtractError(f"the finance extract has no payroll rows for {period}: "
                                  f"months read {', '.join(sorted(manifests['finance']['state']['months'])) or 'none'}")
    files = manifests["hr"]["state"]["files"]
    persons = [(f["period"], name) for name, f in files.items() if f["kind"] == "persons" and f["period"] <= period]
    hr_p = hr_e = hr_period = None
    if persons:
        hr_period, name = max(persons)
        hr_p = f"{base}/raw/hr/{files[name]['ds']}/{name}.parquet"
        employers = [n for n, f in files.items() if f["kind"] == "employers" and f["period"] == hr_period]
        if not employers:
            raise MissingExtractError(f"the HR export of {hr_period} has a persons file but no employers file")
        hr_e = f"{base}/raw/hr/{files[employers[0]]['ds']}/{employers[0]}.parquet"
    else:
        log.warning("no HR export on or before %s: every payroll row will count as not insured", period)
    return Inputs(
        staffing_dir=manifests["staffing"]["dir"],
        org_file=f"{manifests['org']['dir']}/gbxx.parquet",
        ys_dw_file=f"{manifests['finance']['dir']}/ys_dw.parquet",
        gz_ff_file=f"{base}/raw/finance/{read_in}/gz_ff_{month}.parquet",
        hr_persons_file=hr_p, hr_employers_file=hr_e, hr_period=hr_period,
        staffing_snapshot=manifests["staffing"].get("state", {}).get("watermarks", {}).get("persons"),
        staffing_stats=manifests["staffing"].get("stats"),
    )


def _read(path: str, columns=None) -> pd.DataFrame:
    """A raw file as a frame, each text column one Arrow array (``pd.read_parquet`` reads a file as a
    dataset, an array per row group: each later step that wants one array copied it, or all of it to
    take a few rows)."""
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as fh:
        return pq.ParquetFile(fh).read(columns=columns).to_pandas()


def crosswalk(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``keys.map(table).astype("string")`` (``table``'s index unique): each key's value in ``table``,
    missing where the key is missing or not there (a missing key matches a missing index
    entry, as in pandas). Looked up by Arrow's ``index_in`` and ``take``: at 2.2M payroll rows and
    55k budget units, 0.16-0.21 s where ``map`` took 0.61-0.68 s."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.index.has_duplicates:
        raise ValueError("crosswalk: a key twice in the table")
    found = pc.index_in(pa.array(keys.astype("string").array), value_set=pa.array(table.index.astype("string").array))
    values = pc.take(pa.array(table.astype("string").array), found)
    return pd.Series(pd.array(values, dtype="string"), index=keys.index, name=keys.name)


def _code(s: pd.Series) -> pd.Series:
    """A credit/unit code as text: trimmed, blank means none."""
    s = s.astype("string").str.strip()
    return s.where(s != "", pd.NA)


def _identify(df: pd.DataFrame, period: str) -> pd.DataFrame:
    """The ID columns every record gets: the ID cleaned (``id_clean``) and checked (``id_valid``),
    and the normalised name. For a record whose ID is invalid, also the ID as written (``raw_id``),
    trimmed (``raw_trim``: the value INVALID_ID and the quarantine report) and the birth date it
    states (``birth8``): what linking the record to a person reads (reconcile). A record with a valid
    ID has those three null: its person is its cleaned ID, and nothing reads them (at 2M persons
    they were a third of the records file, 186 of 508 MB, and 1.5 s of writing it)."""
    raw = df["raw_id"].astype("string")
    cleaned = ids.clean_id_series(raw)
    valid, birth = ids.id_facts(cleaned, not_after=P.last_day(period))
    invalid = np.flatnonzero(~valid)
    df["raw_id"] = _only_at(raw, invalid)
    df["raw_trim"] = _only_at(raw, invalid, trim=True)
    df["id_clean"] = cleaned
    df["id_valid"] = valid
    df["birth8"] = _only_at(birth, invalid)
    df["name_norm"] = ids.normalise_name_series(df["name"])
    return df


def _only_at(values: pd.Series, rows: np.ndarray, trim: bool = False) -> pd.Series:
    """Text ``values`` at the positions ``rows`` (trimmed, if ``trim``: ``str.strip``), null elsewhere.
    Placed by Arrow's ``take`` with a null index elsewhere (a column of nulls set by ``iloc``: 0.6 s
    at 6.7M records)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = ids.arrow_text(values)
    if not len(rows):   # (most parts: every ID valid)
        return pd.Series(pd.arrays.ArrowStringArray(pa.nulls(len(values), text.type)), index=values.index)
    kept = text.take(pa.array(rows, type=pa.int64()))
    if trim:
        kept = pc.utf8_trim_whitespace(kept)
    at = np.zeros(len(values), dtype=np.int64)
    at[rows] = np.arange(len(rows))
    missing = np.ones(len(values), dtype=bool)
    missing[rows] = False
    return pd.Series(pd.arrays.ArrowStringArray(kept.take(pa.array(at, mask=missing))), index=values.index)


# Row-level rules: a row that breaks one is set aside with the reason, and the run goes on,
# unless so many rows of a source are set aside that the source itself is broken
# (:func:`quarantine_gates`).
ENUMS = {
    "staffing": {"personnel_class": {"establishment", "non_establishment"}, "status": {"active"}, "sex": {"M", "F"}},
    "org": {"sfld": {"0", "1"}},
    "finance": {"rylb": {"在编", "编外", "离退休"}, "jfly": {"财政拨款", "单位自筹"}},
    "hr": {"insured_status": {"参保缴费", "暂停缴费", "终止参保"}, "hr_status": {"在职", "退休"}},
}
REQUIRED = {"staffing": ["record_id", "unit_code"], "org": [], "finance": ["dwbm"], "hr": ["emp_no"]}
ROW_BAND = float(os.environ.get("ROSTER_SYNC_ROW_BAND", "0.3"))   # a source shrinking by more than this fails

# The fields of SOURCES.md per source, as received (raw names; the extracts declare them),
# and those that may be null or blank: every other one must carry a value. A JSON item that
# lacks a key is quarantined ("missing field(s)"); a file or table that lacks a column stops the run.
CONTRACT = {
    "staffing": (STAFFING_COLLECTIONS["persons"][0], {"quota_type", "non_establishment_category", "slip_no", "left_on"}),
    "org": (ORG_FIELDS, {"ldlb"}),
    "finance": (GZ_FF, set()),
    "hr": (HR_COLUMNS["persons"], {"退休日期", "缴费基数"}),
    "units": (STAFFING_COLLECTIONS["units"][0], {"parent_code"}),
    "quotas": (STAFFING_COLLECTIONS["quotas"][0], set()),
    "leader_posts": (STAFFING_COLLECTIONS["leader_posts"][0], set()),
    "ys_dw": (YS_DW, {"tyshxydm"}),
}
TABLE_ENUMS = {
    "units": {"kind": {"party", "government", "congress", "cppcc", "judicial", "mass_org", "institution", "dev_zone", "township"},
              "rank": {"department", "bureau", "deputy_bureau", "section", "deputy_section", "unit_level"},
              "funding": {"full", "partial", "self"}, "status": {"active", "revoked"}},
    "quotas": {"quota_type": {"admin", "political_legal", "logistics", "institution", "school", "turnover",
                              "non_establishment_cap"}},
    "leader_posts": {"level": {"principal", "deputy"}},
}


# The field of each source's rows that holds the ID number, as the source names it (SOURCES.md).
ID_FIELDS = {"staffing": "id_number", "org": "sfzh", "finance": "sfzh", "hr": "公民身份号码"}
# The input suite (expectations/) of each source's rows as received.
RAW_SUITES = {"staffing": "raw_staffing_persons", "org": "raw_org", "finance": "raw_finance_payroll", "hr": "raw_hr_persons"}


def _storable_lengths() -> dict:
    """The longest value each received field may have: the width of the ``roster_db`` column
    it ends up in (:mod:`include.pipeline.publish` owns the schema). A longer value is held
    back here, so that publish never fails on a value (PostgreSQL refuses what SQLite takes)."""
    from include.pipeline.publish import alert_table, roster_table

    r, a = roster_table.c, alert_table.c
    name, raw_id, position = r.name.type.length, a.raw_value.type.length, r.position.type.length
    return {
        "staffing": {ID_FIELDS["staffing"]: raw_id, "name": name, "position": position, "quota_type": r.quota_type.type.length,
                     "non_establishment_category": r.non_establishment_category.type.length,
                     "post_category": r.post_category.type.length},
        "org": {ID_FIELDS["org"]: raw_id, "xm": name, "zwcc": r.cadre_rank.type.length},
        "finance": {ID_FIELDS["finance"]: raw_id, "xm": name},
        "hr": {ID_FIELDS["hr"]: raw_id, "姓名": name},
        "units": {"name": r.unit_name.type.length, "region_code": r.region_code.type.length},
        "ys_dw": {"dwmc": r.unit_name.type.length, "qhdm": r.region_code.type.length},
    }


CONTROL = r"[\x00-\x1f\x7f]"     # NUL and the other control characters: no text column stores them safely


def _text_chunks(col: pd.Series) -> list:
    """A column as Arrow string arrays, the chunks of a pandas text column as it holds them (no copy; at
    least one, possibly empty), or :func:`include.identifiers.arrow_text` of any other."""
    import pyarrow as pa

    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
        chunks = pa.array(col.array)
        chunks = chunks.chunks if isinstance(chunks, pa.ChunkedArray) else [chunks]
        return chunks or [pa.array([], pa.large_string())]
    return [ids.arrow_text(col)]


CONTROL_BYTES = frozenset([*range(0x20), 0x7F])


def has_control(text) -> np.ndarray:
    """Which values of an Arrow string array hold a character of :data:`CONTROL` (boolean array).

    In UTF-8 a byte below 0x80 is always a whole ASCII character, so a control character is a
    byte below 0x20 or 0x7F anywhere in the values' data (a regular expression per value took
    7 times as long)."""
    bad = np.zeros(len(text), dtype=bool)
    bad[ids.rows_with_bytes(text, CONTROL_BYTES)] = True
    return bad


_BEGINS_WHITESPACE = np.zeros(256, dtype=bool)
_BEGINS_WHITESPACE[list(ids.WHITESPACE_BYTES)] = True


def _blank(text, size: np.ndarray) -> np.ndarray:
    """Which values of an Arrow string array are null, empty or whitespace only (boolean array).
    Only a value whose first byte can begin a whitespace character can be whitespace only, so
    only those are looked at (a name or code begins with a letter or digit: at 2M staffing
    rows, Arrow's whitespace test over every value was most of the contract check)."""
    import pyarrow.compute as pc

    blank = size == 0   # empty, or null (a null's slot is empty as Arrow writes them; not promised, so also:)
    if text.null_count:
        blank |= ~text.is_valid().to_numpy(zero_copy_only=False)
    at = np.zeros(0, dtype=np.int64)
    if text.buffers()[2] is not None and len(text.buffers()[2]) and not blank.all():
        starts = ids.arrow_offsets(text)[:-1]
        data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
        # each value's first byte, taken for every value (an empty one's is another's: it is blank anyway;
        # picking the others' out by a mask and placing them back was most of this check)
        maybe = _BEGINS_WHITESPACE.take(data.take(starts, mode="clip"))
        maybe &= ~blank
        at = np.flatnonzero(maybe)
    if len(at):
        blank[at] = pc.fill_null(pc.utf8_is_space(text.take(at)), True).to_numpy(zero_copy_only=False)
    return blank


class _Reasons:
    """The first reason each row breaks, if any (vectorised: one pass per rule)."""

    def __init__(self, n: int):
        self.reasons = np.full(n, None, dtype=object)
        self.bad = np.zeros(n, dtype=bool)

    def flag(self, mask, reason) -> None:
        """``reason`` (text, or one per row) for the rows of ``mask`` that have none yet."""
        mask = np.asarray(pd.Series(mask).fillna(False), dtype=bool) if not isinstance(mask, np.ndarray) else mask
        first = mask & ~self.bad
        if first.any():
            self.reasons[first] = reason[first] if isinstance(reason, np.ndarray) else reason
            self.bad |= first

    def contract(self, source: str, raw: pd.DataFrame) -> None:
        """Missing keys, nulls where the contract wants a value, control characters, values too long to store."""
        import pyarrow.compute as pc

        fields, nullable = CONTRACT[source]
        limits = _storable_lengths().get(source, {})
        if "_missing" in raw.columns:   # a JSON item that lacked contract fields
            missing = raw["_missing"].astype("string")
            self.flag(missing.notna().to_numpy(), ("missing field(s): " + missing).to_numpy(dtype=object))
        for f in fields:
            if f not in raw.columns:
                continue
            limit = limits.get(f)
            blank, control, long = [], [], []
            for text in _text_chunks(raw[f]):   # each chunk as read (one array of them copied every value again)
                size = np.diff(ids.arrow_offsets(text))   # bytes
                if f not in nullable:   # blank: null, empty or whitespace only (what trimming leaves empty)
                    blank.append(_blank(text, size))
                control.append(has_control(text))
                if limit:   # only a value of more bytes than the limit can have more characters once trimmed
                    long.append(size > limit)
                    if long[-1].any():
                        at = np.flatnonzero(long[-1])
                        trimmed = pc.utf8_length(pc.utf8_trim_whitespace(text.take(at)))
                        long[-1][at] = pc.fill_null(pc.greater(trimmed, limit), False).to_numpy(zero_copy_only=False)
            if blank:
                self.flag(np.concatenate(blank), f"no {f}")
            self.flag(np.concatenate(control), f"{f} contains a control character")
            if long:
                self.flag(np.concatenate(long), f"{f} longer than {limit} characters")

    def quarantined(self, part: str, raw: pd.DataFrame, rec_no) -> tuple[np.ndarray, pd.DataFrame]:
        """``part``: the source, or a table of one (``units``, ``quotas``, ``leader_posts`` of staffing,
        ``ys_dw`` of finance); a table's reasons name it."""
        bad = self.bad
        rec_no = np.asarray(rec_no)
        system = TABLE_OF.get(part)
        reasons = self.reasons[bad]
        quarantined = pd.DataFrame({
            "source": system or part, "part": part, "rec_no": rec_no[bad],
            "reason": (f"{part} item: " + pd.Series(reasons, dtype="string")).to_numpy() if system else reasons,
            "record": _as_json(raw.loc[bad]) if bad.any() else np.array([], dtype=object),
        })
        return bad, quarantined


TABLE_OF = {"units": "staffing", "quotas": "staffing", "leader_posts": "staffing", "ys_dw": "finance"}


def _as_json(rows: pd.DataFrame) -> np.ndarray:
    """Quarantined rows as received, one JSON object each (control characters escaped by JSON)."""
    rows = rows.drop(columns=[c for c in rows.columns if c.startswith("_")]).astype("string")
    return rows.apply(lambda r: json.dumps({k: (None if pd.isna(v) else v) for k, v in r.items()}, ensure_ascii=False),
                      axis=1).to_numpy()


def to_number(col: pd.Series) -> pd.Series:
    """``pd.to_numeric(col, errors="coerce")``, the same values and dtype (int64 when every value is a
    whole number, else float64, NaN for what is not a number): values written as plain decimals
    are parsed by Arrow (at 1M rows, 0.1 s instead of 0.9 s; both round correctly), the others
    (blank, spaced, exponents, words) by pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = ids.arrow_text(col)
    try:
        if pc.all(pc.fill_null(pc.match_substring_regex(text, INTEGER), False)).as_py() and len(text):
            return pd.Series(pc.cast(text, pa.int64()).to_numpy(), index=col.index)
        plain = pc.fill_null(pc.match_substring_regex(text, DECIMAL), False).to_numpy(zero_copy_only=False)
        out = np.full(len(text), np.nan)
        out[plain] = pc.cast(text.filter(pa.array(plain)), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, OverflowError):   # a whole number beyond int64, say: pandas decides the dtype
        return pd.to_numeric(col, errors="coerce")
    if not plain.all():
        out[~plain] = pd.to_numeric(col[~plain], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(out, index=col.index)


def _write_parquet(fs, path: str, df: pd.DataFrame, statistics=True) -> None:
    """A frame of the standardised model as Parquet: LZ4 (written and read faster than Snappy here,
    a few % larger), min/max statistics only for ``statistics`` (the columns readers filter on)."""
    with fs.open(path, "wb") as fh:
        df.to_parquet(fh, index=False, compression="lz4", write_statistics=statistics)


def duplicate_rows(raw: pd.DataFrame, key: str) -> np.ndarray:
    """Rows equal in every field to an earlier row (``DataFrame.duplicated``, first kept; fields
    starting with ``_`` are ours, not the source's). Two equal rows have the same ``key``, so the
    whole rows are compared only among the rows whose ``key`` is repeated: at 1M rows half the
    time of comparing every row; the repeated keys found by :func:`include.identifiers.repeated_values`)."""
    cols = [c for c in raw.columns if not str(c).startswith("_")]
    if key not in cols:
        return raw.duplicated(cols, keep="first").to_numpy()
    candidates = ids.repeated_values(raw[key])
    duplicate = np.zeros(len(raw), dtype=bool)
    if candidates.any():
        duplicate[candidates] = raw.loc[candidates, cols].duplicated(keep="first").to_numpy()
    return duplicate


def screen(source: str, df: pd.DataFrame, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a source's rows into (kept, quarantined); ``raw`` holds the rows as received, for the record."""
    r = _Reasons(len(df))
    r.contract(source, raw)
    for col in REQUIRED[source]:
        r.flag(df[col].isna().to_numpy(), f"no {col}")
    if source == "staffing":
        r.flag(df["unit_code"].notna().to_numpy() & ~ids.valid_credit_mask(df["unit_code"]),
               "unit_code fails the GB 32100 check")
    for col, allowed in ENUMS[source].items():
        r.flag((~df[col].isin(allowed)).to_numpy(), f"{col} is not one of {', '.join(sorted(allowed))}")
    if source in ("finance", "hr"):
        r.flag(duplicate_rows(raw, ID_FIELDS[source]), "duplicate of an earlier row of the same source")
    bad, quarantined = r.quarantined(source, raw, df["rec_no"])
    return (df[~bad] if bad.any() else df), quarantined   # (a mask of all True still copies every column)


def screen_table(source: str, raw: pd.DataFrame, key: str | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows of a staffing collection or of ``ys_dw`` that cannot be used: (kept mask, quarantined)."""
    raw = raw.reset_index(drop=True)
    r = _Reasons(len(raw))
    if source in CONTRACT:
        r.contract(source, raw)
    if key == "unit_code":
        code = _code(raw["unit_code"])
        r.flag(code.isna().to_numpy(), "no unit_code")
        r.flag(code.notna().to_numpy() & ~ids.valid_credit_mask(code), "unit_code fails the GB 32100 check")
    for col, allowed in TABLE_ENUMS.get(source, {}).items():
        r.flag((~raw[col].isin(allowed)).to_numpy(), f"{col} is not one of {', '.join(sorted(allowed))}")
    if source == "units":
        r.flag(~raw["region_code"].astype("string").str.fullmatch(r"\d{6}").fillna(False).to_numpy(dtype=bool),
               "region_code is not 6 digits")
    bad, quarantined = r.quarantined(source, raw, np.arange(len(raw)))
    return ~bad, quarantined


def usable_rows(source: str, raw: pd.DataFrame, key: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of a staffing collection or of ``ys_dw`` that can be used, and the others quarantined
    (:func:`screen_table`): what standardise keeps, and what the input suite of ``ys_dw`` is given."""
    kept, bad = screen_table(source, raw, key)
    return raw.reset_index(drop=True)[kept].reset_index(drop=True), bad


def active_persons(persons: pd.DataFrame) -> pd.DataFrame:
    """Staffing's ``persons`` without the tombstones of those who left (not used, not checked)."""
    used = (persons.status.astype("string").fillna("") != LEFT).to_numpy()
    return persons if used.all() else persons[used].reset_index(drop=True)


def read_active_persons(path: str) -> pd.DataFrame:
    """:func:`active_persons` of the persons file ``path``, the tombstones left out as it is read (at
    2M persons, 1.0 s where reading it all and dropping 4 rows took 2.4 s: pandas copies every
    column to drop a row)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as fh:
        if "status" not in pq.read_schema(fh).names:   # as before: the frame is refused where status is read
            return active_persons(_read(path))
        fh.seek(0)
        return pd.read_parquet(fh, filters=pc.field("status").is_null() | (pc.field("status") != LEFT))


def received_gates(staffing_stats: dict) -> list[str]:
    """Batch-level failures on what the staffing office sent this run: a contract field that
    more than the limit of the items received lacked. An incremental sync receives only the
    items that changed, so a field dropped from every item shows here first, while the
    merged state still holds last month's complete items."""
    from include.settings import quarantine_limit

    limit = quarantine_limit("staffing")
    failures = []
    for collection, stats in (staffing_stats or {}).items():
        received = stats.get("rows") or 0
        for field, n in (stats.get("missing") or {}).items():
            if received and n / received > limit:
                failures.append(f"staffing: {n:,} of {received:,} {collection} items received lack {field} "
                                f"({n / received:.0%}, limit {limit:.0%}; SOURCES.md §1)")
    return failures


def quarantine_gates(accounting: dict, quarantined: pd.DataFrame) -> list[str]:
    """Batch-level failures: a source of which more than its limit
    (:func:`include.settings.quarantine_limit`) was quarantined, for any one reason or in all.

    Quarantine is for a few bad rows; a field missing from every item, or renamed, is a
    broken source, and publishing what is left of it would flood the offices."""
    from include.settings import quarantine_limit

    failures = []
    for source, acc in accounting.items():
        n, q = acc["rows_in"], acc["rows_quarantined"]
        limit = quarantine_limit(source)
        if not n or q / n <= limit:
            continue
        mine = quarantined[quarantined.part == source].reason.value_counts()
        reasons = ", ".join(f"{reason} ({count:,})" for reason, count in mine.head(4).items())
        failures.append(f"{source}: {q:,} of {n:,} rows quarantined ({q / n:.0%}, limit {limit:.0%}): {reasons}")
    return failures


def _previous_counts(base: str, fs, ds: str) -> dict:
    """Rows in per source at the latest earlier run (for the row-count band)."""
    root = f"{base}/work"
    if not fs.exists(root):
        return {}
    days = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False))
    for d in reversed([d for d in days if d < ds]):
        for summary in sorted(fs.glob(f"{root}/{d}/*/std/_summary.json"), reverse=True):
            with fs.open(summary) as fh:
                return {k: v["rows_in"] for k, v in json.load(fh).get("accounting", {}).items()}
    return {}


# Freshness limits (configuration): how old each source may be relative to the run.
MAX_STAFFING_AGE_DAYS = int(os.environ.get("ROSTER_SYNC_MAX_STAFFING_AGE_DAYS", "7"))
MAX_PAYROLL_LAG_MONTHS = int(os.environ.get("ROSTER_SYNC_MAX_PAYROLL_LAG_MONTHS", "2"))
MAX_HR_LAG_MONTHS = int(os.environ.get("ROSTER_SYNC_MAX_HR_LAG_MONTHS", "1"))


def freshness_gates(ds: str, period: str, staffing_snapshot: str | None, hr_period: str | None) -> list[str]:
    """Batch-level failures for stale sources: the staffing snapshot, the payroll month, the HR export."""
    import datetime as _dt

    run_day = _dt.date.fromisoformat(ds)
    failures = []
    if staffing_snapshot:
        age = (run_day - P.parse_timestamp(staffing_snapshot).date()).days
        if age > MAX_STAFFING_AGE_DAYS:
            failures.append(f"the staffing snapshot is {age} days old (limit {MAX_STAFFING_AGE_DAYS})")
    lag = P.months_between(period, f"{run_day:%Y-%m}")
    if lag > MAX_PAYROLL_LAG_MONTHS:
        failures.append(f"the period {period} is {lag} months behind the run (limit {MAX_PAYROLL_LAG_MONTHS})")
    if hr_period is None:
        failures.append(f"there is no HR export on or before {period}")
    else:
        hr_lag = P.months_between(hr_period, period)
        if hr_lag > MAX_HR_LAG_MONTHS:
            failures.append(f"the HR export used ({hr_period}) is {hr_lag} months older than the period (limit {MAX_HR_LAG_MONTHS})")
    return failures


def batch_gates(accounting: dict, previous: dict, band: float = ROW_BAND) -> list[str]:
    """Batch-level failures: an empty source, or one that shrank by more than ``band`` since the last run."""
    failures = []
    for source, acc in accounting.items():
        if acc["rows_in"] == 0:
            failures.append(f"{source} is empty")
        before = previous.get(source)
        if before and acc["rows_in"] < (1 - band) * before:
            failures.append(f"{source} has {acc['rows_in']:,} rows, {1 - acc['rows_in'] / before:.0%} fewer than "
                            f"the last run's {before:,} (band {band:.0%})")
    return failures



def _records_schema():
    """The Arrow schema of ``records.parquet``: :data:`RECORD_COLUMNS` as text but for the record's
    number, the ID's validity and the amount, with pandas' metadata (a reader gets ``string`` columns)."""
    template = pd.DataFrame({c: pd.Series([], dtype={"rec_no": "int64", "id_valid": "bool", "yfgz": "float64"}.get(c, "string"))
                             for c in RECORD_COLUMNS})
    import pyarrow as pa

    return pa.Schema.from_pandas(template, preserve_index=False)


# The least rows of a slice of a source's records given its ID columns on a thread of its own
# (:meth:`_RecordsWriter._add`): a smaller part is made whole. At 2M persons HR's 2.2M records took
# 0.39 s in two slices side by side against 0.74 s whole.
SLICE_ROWS = 200_000


def _slicing():
    """``(count, pool)``: as many slices as Arrow counts cores, and threads for all but the first
    (:func:`include.threads.per_core`)."""
    return per_core("standardise-ids", spare=1)


class _Staged:
    """Files of the model written under a partial name as the run goes, and named as the model's
    only once the run has passed every gate: a run that fails leaves the last complete model."""

    def __init__(self, fs):
        self.fs, self.files = fs, []

    def path(self, final: str) -> str:
        self.files.append((f"{final}.partial", final))
        return self.files[-1][0]

    def commit(self) -> None:
        for partial, final in self.files:
            self.fs.mv(partial, final)

    def abort(self) -> None:
        for partial, _ in self.files:
            if self.fs.exists(partial):
                self.fs.rm(partial)


class _Writes:
    """The model's large files written on a thread beside the next source's reading and screening:
    Arrow's Parquet writer works outside the GIL, on the other core. At most ``depth`` writes wait,
    so at most that many parts of sources already taken are held beside the one being screened.
    Written to by :class:`_RecordsWriter`, which makes its parts on a thread of its own (``name``
    ``standardise-records``: one part waiting at most), in the order they come."""

    def __init__(self, depth: int = 1, name: str = "standardise-writes"):
        import threading
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self.pool, self.pending, self.depth = ThreadPoolExecutor(1, thread_name_prefix=name), deque(), depth
        self.lock = threading.Lock()

    def submit(self, write, *args) -> None:
        with self.lock:
            while len(self.pending) >= self.depth:
                self.pending.popleft().result()
            self.pending.append(self.pool.submit(write, *args))

    def wait(self) -> None:
        """Every write done (its error raised here)."""
        with self.lock:
            while self.pending:
                self.pending.popleft().result()

    def stop(self) -> None:
        """No write left running (the run is failing: its files are about to be removed)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class _RecordsWriter:
    """``records.parquet`` written a source at a time, as each source's rows are screened (the wide
    table of every source's rows, held until the end, was most of the task's memory: 1.5 GB at 1M
    persons). Each part gets its ID columns (:func:`_identify`) on the way. Keeps the rows written
    and each source's rows and invalid IDs."""

    def __init__(self, fs, path: str, period: str, writes: _Writes):
        self.fs, self.path, self.period, self.writes = fs, path, period, writes
        self.schema = _records_schema()
        self.suite_parts = None   # the records' suite, given each part as it is written (SuiteParts)
        self.rows, self.by_source = 0, {}
        self._fh = self._writer = None
        self._adding = _Writes(name="standardise-records")   # one part at a time, on a thread of its own

    def add(self, part: pd.DataFrame) -> None:
        """Hand over a source's kept rows: their ID columns are made, and the part written and given to
        the records' suite, on a thread of its own while this one reads and screens the next source
        (the ID columns were a quarter of the main thread's work, the worker idle meanwhile). One
        part at a time: the previous one is finished (its error raised here) before this one goes."""
        self._adding.submit(self._add, part)

    def flush(self) -> None:
        """Every part handed over is written or queued to be (its error raised here)."""
        self._adding.wait()

    def _add(self, part: pd.DataFrame) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._fh = self.fs.open(self.path, "wb")
            # A record's number (its row as received) counts up in each source: written as the differences
            # of neighbours (DELTA_BINARY_PACKED) it takes next to nothing, where a dictionary of its values
            # was tried and given up on every page. At 1M persons the writes took 1.17-1.18 s of CPU against
            # 1.23 s (best of 7), the file 107 MB against 121 MB, and DuckDB reads the column in half the time.
            self._writer = pq.ParquetWriter(self._fh, self.schema, compression="lz4", write_statistics=["source", "rec_no"],
                                            use_dictionary=[n for n in self.schema.names if n != "rec_no"],
                                            column_encoding={"rec_no": "DELTA_BINARY_PACKED"})
        part = part.drop(columns=["status"], errors="ignore").reset_index(drop=True)
        # the ID columns made a slice of the part per core, side by side (numpy and Arrow hold no GIL for
        # most of it), each slice written in order as a row group of its own: the last source's are the
        # stage's tail, while the main thread waits for them (:data:`SLICE_ROWS`)
        cores, pool = _slicing()
        count = max(1, min(cores, len(part) // SLICE_ROWS))
        slices = [part.iloc[a:b].reset_index(drop=True) for a, b in spans(len(part), count)] if count > 1 else [part]
        del part
        made = [pool.submit(_identify, one, self.period) for one in slices[1:]]
        self._write_slice(_identify(slices[0], self.period))   # (written while the others are still made)
        for one in made:
            self._write_slice(one.result())

    def _write_slice(self, part: pd.DataFrame) -> None:
        import pyarrow as pa

        arrays, absent = [], {}
        for field in self.schema:
            if field.name not in part.columns:   # the other sources' fields: one null array per type, shared
                if field.type not in absent:     # (each its own: ~20 x 17 MB at 2M)
                    absent[field.type] = pa.nulls(len(part), field.type)
                arrays.append(absent[field.type])
            elif pa.types.is_large_string(field.type):
                arrays.append(pa.array(part[field.name].astype("string"), type=field.type, from_pandas=True))
            else:
                arrays.append(pa.array(part[field.name].astype(field.type.to_pandas_dtype()), type=field.type))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self.writes.submit(self._writer.write_table, table)
        if self.suite_parts is not None and len(table):   # (none at all: the suite gets an empty part)
            self.suite_parts.add(table)
        self.rows += len(part)
        for source, valid in part.groupby("source", sort=False).id_valid:
            mine = self.by_source.setdefault(str(source), {"rows": 0, "invalid_ids": 0})
            mine["rows"] += len(valid)
            mine["invalid_ids"] += int((~valid.astype(bool)).sum())

    def close(self) -> None:
        """Finish the file."""
        self.flush()
        if self._writer is None:   # no source had a row: the file still has the schema
            self._add(pd.DataFrame({"source": pd.Series([], dtype="string"), "raw_id": pd.Series([], dtype="string"),
                                    "name": pd.Series([], dtype="string")}))
        self._adding.stop()
        self.writes.wait()
        self._writer.close()
        self._fh.close()
        self._writer = self._fh = None

    def abort(self) -> None:
        """Close the file, whatever state it is in (the run is failing; :class:`_Staged` removes it)."""
        # (the writes are stopped first: a part being made fails at its next write)
        self._adding.stop()
        for closing in (self._writer, self._fh):
            try:
                if closing is not None:
                    closing.close()
            except Exception:   # noqa: BLE001 - already failing; the file goes anyway
                pass


def standardise(root: str, ds: str, period: str, out_dir: str | None = None, validate_inputs: bool = True) -> dict:
    """Write the standardised model of ``period`` from run ``ds``'s extracts. Returns a summary.

    Holds the lock of its output directory: a second run of the same date waits."""
    P.parse_period(period)
    fs, base = fsspec.core.url_to_fs(root)
    out = out_dir or f"{base.rstrip('/')}/work/{ds}/{period}/std"
    with path_lock(out), made_before_not_collected():
        return _standardise(root, ds, period, out, validate_inputs, fs, base)


def _standardise(root: str, ds: str, period: str, out: str, validate_inputs: bool, fs, base: str) -> dict:
    inputs = locate(root, ds, period)
    fs.makedirs(out, exist_ok=True)
    staged, writes = _Staged(fs), _Writes()
    records = _RecordsWriter(fs, staged.path(f"{out}/records.parquet"), period, writes)
    suites = None
    if validate_inputs:
        from include.quality.gates import gx_root
        from include.quality.input_suites import InputSuites

        suites = InputSuites(gx_root(root), f"{out.rsplit('/std', 1)[0]}/quality", f"{ds}_{period}")
        records.suite_parts = suites.parts("standardised_records", records.schema)
    try:
        return _standardise_sources(ds, period, out, fs, base, inputs, records, staged, writes, suites)
    except BaseException:
        if suites is not None:
            suites.cancel()
        writes.stop()
        records.abort()
        staged.abort()
        raise
    finally:
        if records.suite_parts is not None:   # the scratch parts go, if the worker was not sent them to remove
            records.suite_parts.remove()


def _standardise_sources(ds: str, period: str, out: str, fs, base: str, inputs: Inputs, records: _RecordsWriter,
                         staged: _Staged, writes: _Writes, suites) -> dict:
    quarantine, accounting, received = [], {}, {}
    # The input suites (Great Expectations: schema, enumerations, keys, ID and credit-code shapes) run
    # in a worker process on each source's rows as received (:mod:`include.quality.input_suites`):
    # each handed over as soon as it is read, before the checks here that can stop the run (a
    # failing run's suites still write their results; ys_dw's once screened, as its suite is given
    # it), run while this process screens and writes the sources and lets each go before reading
    # the next (no source waits in memory for the others).
    # The suites' verdict is taken with the batch gates' once every source is in; until then every
    # file is partial.
    persons_file = f"{inputs.staffing_dir}/persons__state.parquet"
    # each source told as it is taken (rows, rate, how far): a province's sources are 10 s of work
    # here before the suites' verdict, more on a slower machine, and an operator must tell slow from stuck
    started = last = time.monotonic()
    sources = ["staffing", "org", "finance"] + (["hr"] if inputs.hr_persons_file else [])

    def told(source):
        nonlocal last
        now, acc = time.monotonic(), accounting[source]
        log.info("standardise %s: %s %s rows read and screened in %.1fs (%s rows/s), %s quarantined; %d of %d sources, "
                 "%.1fs in", period, source, f"{acc['rows_in']:,}", now - last, f"{acc['rows_in'] / max(now - last, 1e-9):,.0f}",
                 f"{acc['rows_quarantined']:,}", sources.index(source) + 1, len(sources), now - started)
        last = now

    def check(suite, frame):
        if suites is not None:
            suites.frame(suite, frame)

    def keep_table(source, raw, key=None):
        """A staffing collection or ys_dw: the rows that can be used; the others quarantined."""
        kept, bad = usable_rows(source, raw, key)
        quarantine.append(bad)
        accounting[source] = {"rows_in": len(raw), "rows_used": len(kept), "rows_quarantined": len(bad)}
        return kept

    units = keep_table("units", _read(f"{inputs.staffing_dir}/units__state.parquet"), key="unit_code")
    units = units.assign(unit_code=_code(units.unit_code))[["unit_code", "name", "parent_code", "region_code", "kind", "rank", "funding", "status"]]
    quotas = keep_table("quotas", _read(f"{inputs.staffing_dir}/quotas__state.parquet"))
    quotas = quotas[["unit_code", "quota_type", "approved"]]
    leader_posts = keep_table("leader_posts", _read(f"{inputs.staffing_dir}/leader_posts__state.parquet"))
    leader_posts = leader_posts[["unit_code", "level", "approved"]]
    ys = _read(inputs.ys_dw_file)
    missing = [c for c in CONTRACT["ys_dw"][0] if c not in ys.columns]
    if missing:
        raise QualityGateFailed(f"not published: finance's ys_dw lacks column(s) {', '.join(missing)} (SOURCES.md §3)")
    ys = keep_table("ys_dw", ys)
    check("raw_finance_budget_units", ys)   # its usable rows (ROWS["ys_dw_usable"])
    credit = _code(ys.tyshxydm)
    broken = {"budget_units": int((credit.notna().to_numpy() & ~ids.valid_credit_mask(credit)).sum())}
    # A credit code that fails its check links to nothing: the crosswalk is empty for that budget unit.
    credit = credit.where(ids.valid_credit_mask(credit) | credit.isna().to_numpy(), pd.NA)
    budget_units = pd.DataFrame({"dwbm": ys.dwbm.astype("string").str.strip(), "credit": credit,
                                 "dwmc": ys.dwmc, "qhdm": _code(ys.qhdm)})

    def take(source, frame, raw, path):
        raw = raw.reset_index(drop=True)
        # (a record's key in its own system is made from its row as received when a finding needs it:
        # include.pipeline.received.received_records; made here for every record, 0.5-1 s of the task's CPU at 2M)
        frame = frame.assign(rec_no=np.arange(len(frame)))
        kept, bad = screen(source, frame, raw)
        accounting[source] = {"rows_in": len(frame), "rows_used": len(kept), "rows_quarantined": len(bad)}
        told(source)
        # an amount the record keeps under its own name (payroll's yfgz) is already a number, row for row
        parsed = {a: frame[a].to_numpy() for a in AMOUNTS.get(source, ()) if a in frame.columns}
        del frame
        quarantine.append(bad)
        # the evidence's facts: each source's rows as received, read back from the raw file when a
        # finding needs them (:func:`include.pipeline.received.received_records`); what reading them needs is noted here: the file,
        # its fingerprint, and each amount's type (decided over the whole column, as to_number does)
        amounts = {a: str((parsed[a] if a in parsed else to_number(raw[a])).dtype)
                   for a in AMOUNTS.get(source, ()) if a in raw.columns}
        received[source] = {"file": path, "fingerprint": fingerprint(fs, path), "rows": len(raw),
                            "active_only": source == "staffing", "amounts": amounts}
        del raw
        records.add(kept)
        del kept
        release_unused()   # what this source's frames held, before the next is read

    sp = read_active_persons(persons_file)   # tombstones are not used, nor checked (ROWS["staffing_active"])
    check(RAW_SUITES["staffing"], sp)
    take("staffing", pd.DataFrame({
        "source": "staffing", "raw_id": sp.id_number, "name": sp["name"],
        "unit_code": _code(sp.unit_code), "record_id": sp.record_id, "sex": sp.sex, "birth_date": sp.birth_date,
        "personnel_class": sp.personnel_class, "quota_type": sp.quota_type,
        "non_establishment_category": sp.non_establishment_category, "post_category": sp.post_category,
        "position": sp.position, "entered_on": sp.entered_on, "slip_no": sp.slip_no, "status": sp.status,
    }), sp, persons_file)
    del sp   # written and checked: let go before the next source is read
    org = _read(inputs.org_file)
    check(RAW_SUITES["org"], org)
    take("org", pd.DataFrame({
        "source": "org", "raw_id": org.sfzh, "name": org.xm, "unit_code": _code(org.dwdm),
        "sfld": org.sfld, "ldlb": org.ldlb, "zwcc": org.zwcc, "xb": org.xb, "csrq": org.csrq,
    }), org, inputs.org_file)
    del org
    pay = _read(inputs.gz_ff_file)
    check(RAW_SUITES["finance"], pay)
    credit = budget_units.set_index("dwbm").credit
    credit = credit[~credit.index.duplicated()]
    dwbm = _code(pay.dwbm)
    take("finance", pd.DataFrame({
        "source": "finance", "raw_id": pay.sfzh, "name": pay.xm,
        "unit_code": crosswalk(dwbm, credit), "dwbm": dwbm, "rylb": pay.rylb,
        "yfgz": to_number(pay.yfgz), "jfly": pay.jfly,
    }), pay, inputs.gz_ff_file)
    del pay, dwbm
    if inputs.hr_persons_file:
        hr = _read(inputs.hr_persons_file)
        check(RAW_SUITES["hr"], hr)
        missing = [c for c in CONTRACT["hr"][0] if c not in hr.columns]
        if missing:
            raise QualityGateFailed(f"not published: the HR persons export of {inputs.hr_period} lacks column(s) "
                                    f"{', '.join(missing)} (it has {', '.join(map(str, hr.columns))})")
        emp = _read(inputs.hr_employers_file)
        if not {"单位编号", "统一社会信用代码"} <= set(emp.columns):
            raise QualityGateFailed(f"not published: the HR employers export of {inputs.hr_period} lacks its key columns")
        emp_code = _code(emp["统一社会信用代码"])
        broken["hr_employers"] = int((emp_code.notna().to_numpy() & ~ids.valid_credit_mask(emp_code)).sum())
        emp_code = emp_code.where(ids.valid_credit_mask(emp_code) | emp_code.isna().to_numpy(), pd.NA)
        emp_credit = pd.Series(emp_code.to_numpy(), index=emp["单位编号"].astype("string").str.strip())
        emp_credit = emp_credit[~emp_credit.index.duplicated()]
        named = hr.rename(columns=HR_PERSON_COLUMNS)
        emp_no = _code(named.emp_no)
        retired = named.retired_on.astype("string").str.strip()
        take("hr", pd.DataFrame({
            "source": "hr", "raw_id": named.raw_id, "name": named["name"],
            "unit_code": crosswalk(emp_no, emp_credit), "emp_no": emp_no,
            "insured_status": named.insured_status, "hr_status": named.hr_status,
            "retired_on": retired.where(retired != "", pd.NA),
        }), hr, inputs.hr_persons_file)
        del hr, named, emp_no, retired
    quarantined = pd.concat(quarantine, ignore_index=True)
    failures = batch_gates(accounting, _previous_counts(base.rstrip("/"), fs, ds))
    failures += received_gates(inputs.staffing_stats)
    failures += quarantine_gates(accounting, quarantined)
    failures += freshness_gates(ds, period, inputs.staffing_snapshot, inputs.hr_period)
    if failures:
        raise QualityGateFailed("not published: " + "; ".join(failures))
    for source, acc in accounting.items():
        assert acc["rows_in"] == acc["rows_used"] + acc["rows_quarantined"], source
    if suites is not None:   # every record's part is handed over: the suite runs while the last parts are written
        records.flush()
        suites.file_parts(records.suite_parts)
    records.close()
    writes.stop()
    release_unused()   # the last source's parts, held by their writes until now
    written, by_source = {"records": records.rows}, records.by_source
    # the small tables too, while the suites' worker finishes (still partial: a failed verdict removes them)
    for name, df in (("units", units), ("quotas", quotas), ("leader_posts", leader_posts),
                     ("budget_units", budget_units), ("quarantine_rows", quarantined)):
        _write_parquet(fs, staged.path(f"{out}/{name}.parquet"), df)
        written[name] = len(df)
    quality = None
    if suites is not None:   # the input suites decide with the batch gates passed; every file is still partial
        log.info("standardise %s: every source written, %.1fs in; waiting for the input suites' verdict", period,
                 time.monotonic() - started)
        quality = suites.verdict()
    staged.commit()
    summary = {"ds": ds, "period": period, "dir": out, "rows": written, "hr_period": inputs.hr_period,
               "sources": by_source,
               "accounting": accounting, "quality": quality, "invalid_credit_codes": broken, "received": received,
               "inputs": inputs.__dict__}
    with fs.open(f"{out}/_summary.json", "w") as fh:
        json.dump(summary, fh, ensure_ascii=False, indent=1)
    if any(broken.values()):
        log.warning("credit codes failing the GB 32100 check, treated as none: %s",
                    ", ".join(f"{k} {v}" for k, v in broken.items() if v))
    log.info("standardised %s for %s: %s", period, ds, ", ".join(
        f"{s} {a['rows_in']:,} rows in, {a['rows_used']:,} used, {a['rows_quarantined']:,} quarantined "
        f"({summary['sources'].get(s, {}).get('invalid_ids', 0)} invalid IDs)" for s, a in accounting.items()))
    return summary
