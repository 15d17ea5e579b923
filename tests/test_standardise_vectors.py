"""The vectorised screens of standardise agree with their plain definitions (issue 17).

Each fast form (bytes scanned, candidates narrowed, Arrow instead of pandas) is checked
against the obvious way of computing the same thing, on values made to sit at its edges.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from include import identifiers as ids
from include.pipeline import standardise as S
from include.quality.gates import suite_frame

WHITESPACE = [c for c in map(chr, range(0x3001)) if c.isspace()]


@pytest.mark.parametrize("block", [None, 1, 3, 64])   # the bytes compared a block at a time: values across blocks
def test_control_characters_found_by_bytes_as_by_the_pattern(block, monkeypatch):
    if block:
        monkeypatch.setattr(ids, "_BLOCK", block)
    values = ["", None, "a", " a ", *WHITESPACE, "x\x00", "\x7f", "é\x1f", "中文", "\u3000中\u3000", "ok\n", "\x85"]
    text = pa.array(values, pa.string())
    for arr in (text, text.slice(5), text.slice(3, 9), pa.array(values, pa.large_string())):
        by_pattern = pc.fill_null(pc.match_substring_regex(arr, S.CONTROL), False).to_numpy(zero_copy_only=False)
        assert list(S.has_control(arr)) == list(by_pattern)
    assert S.has_control(text).sum() == 9 + 4   # \t \n \v \f \r \x1c-\x1f; NUL, DEL, U+001F, "ok\\n"


def test_duplicate_rows_as_pandas_finds_them():
    rng = np.random.default_rng(3)
    n = 5000
    frame = pd.DataFrame({"sfzh": rng.integers(0, 800, n).astype(str), "dwbm": rng.integers(0, 3, n).astype(str),
                          "yfgz": rng.integers(0, 2, n).astype(str), "_missing": rng.integers(0, 9, n).astype(str)})
    frame.loc[::97, "dwbm"] = None
    frame.loc[5::89, "sfzh"] = None   # a missing key is a value like any other (rows equal but for it are not equal)
    expected = frame[["sfzh", "dwbm", "yfgz"]].duplicated(keep="first").to_numpy()
    assert expected.sum() > 100
    assert list(S.duplicate_rows(frame, "sfzh")) == list(expected)
    assert list(S.duplicate_rows(frame, "no such key")) == list(expected)


def test_repeated_values_as_pandas_finds_them():
    """:func:`repeated_values` is ``duplicated(keep=False)``: IDs as received read as numbers (the
    check character in either case, which differ), and every other value as text: 17 or 19
    characters, 18 bytes that are not ASCII digits (six 3-byte characters, a letter, a space, a
    full-width digit), blanks, missing values (one value among themselves), of both pandas string
    kinds and object, sliced and empty."""
    rng = np.random.default_rng(11)
    base = [f"{x:017d}" for x in rng.integers(0, 10 ** 17, 3000)]
    received = [b + c for b, c in zip(base, rng.choice(list("0123456789Xx"), 3000))]
    odd = ["11010119900307123", "1101011990030712345", "一二三四五六", "11010119900307123A", " 1101011990030712",
           "１1010119900307123", "", "   ", None, "110101199003071234", "110101199003071234 "]
    # one digit 1 at each place and 0 elsewhere: two places read with one weight would be one number
    one_hot = ["0" * k + "1" + "0" * (16 - k) + "0" for k in range(17)]
    values = (received + received[::7] + [i[:-1] + ("x" if i[-1] == "X" else "X") for i in received[::11]] + odd + odd[::2]
              + one_hot)
    order = rng.permutation(len(values))
    frame = pd.Series([values[i] for i in order], dtype=object)
    for series in (frame, frame.astype("str"), frame.astype("string"), frame.iloc[5:], frame.iloc[:0],
                   frame[frame.notna()].iloc[:50]):
        expected = series.duplicated(keep=False).to_numpy()
        assert list(ids.repeated_values(series)) == list(expected)
    assert frame.duplicated(keep=False).sum() > 400


def test_crosswalk_as_pandas_maps():
    """Budget unit and employer to credit code: :func:`crosswalk` gives what ``Series.map`` gives,
    with missing keys, a missing key in the table, missing codes, keys not in the table, text of
    both pandas string kinds, a sliced frame's index, and nothing to look up."""
    table = pd.Series(pd.array(["C1", None, "C3", "C4"], dtype="string"),
                      index=pd.Index(pd.array(["001", "002", None, "004"], dtype="string")))
    keys = pd.Series(["001", "002", None, "003", "004", "001", "", " 004"] * 3, dtype="str").iloc[2:]
    for table_ in (table, table.iloc[[0, 1, 3]], table.iloc[:0]):
        for keys_ in (keys, keys.astype("string"), keys.astype(object), keys.iloc[:0]):
            got = S.crosswalk(keys_, table_)
            pd.testing.assert_series_equal(got, keys_.map(table_).astype("string"))
            assert got.index.equals(keys_.index)
    got = S.crosswalk(keys, table)   # a missing key finds the missing entry; "003" is not there
    assert got.iloc[0] == "C3" and got.iloc[1] is pd.NA and got.iloc[2] == "C4"
    with pytest.raises(ValueError, match="twice"):
        S.crosswalk(keys, pd.concat([table, table]))


def test_amounts_parsed_as_pandas_parses_them():
    rng = np.random.default_rng(5)
    decimals = [f"{x:.{k}f}" for x, k in zip(rng.uniform(0, 1e6, 20000), rng.integers(0, 12, 20000))]
    odd = ["1e5", " 12.5", "", None, "-0.10", "+3", ".5", "5.", "abc", "1,000", "123456789012345678901234.5"]
    for values in (decimals + odd, ["5000", "120", "-7"], ["5000", None], ["1.5"], ["+3", "4"],
                   ["99999999999999999999", "1"]):
        col = pd.Series(values, dtype="str")
        expected = pd.to_numeric(col, errors="coerce")
        got = S.to_number(col)
        assert got.dtype == expected.dtype, values[:3]
        assert np.array_equal(got.to_numpy(dtype=float), expected.to_numpy(dtype=float), equal_nan=True)


def test_an_amount_read_back_is_the_number_its_whole_column_made_of_it():
    """The evidence reads a few rows' amounts back from the raw file (:func:`include.pipeline.received._amount`):
    each the number, and of the type, :func:`to_number` gave it parsing the whole column (plain
    decimals by Arrow without pandas; anything else, one value as in the column)."""
    from include.pipeline.received import _amount

    rng = np.random.default_rng(7)
    odd = ["1e5", " 12.5", "", None, "-0.10", "+3", ".5", "5.", "abc", "1,000", "123456789012345678901234.5"]
    columns = ([f"{x:.2f}" for x in rng.uniform(0, 1e5, 300)] + odd, ["5000", "120", "-7"], ["5000", None], ["1.5", "2"],
               [str(x) for x in rng.integers(-9, 10**6, 300)], ["99999999999999999999", "1"], ["18000000000000000000", "7"])
    for values in columns:
        whole = S.to_number(pd.Series(values, dtype="str"))
        for _ in range(20):
            at = np.sort(rng.choice(len(values), size=rng.integers(0, len(values) + 1), replace=False))
            got = _amount([values[i] for i in at], str(whole.dtype))
            expected = whole.iloc[at].tolist()
            assert [type(v) for v in got if v is not None] == [type(v) for v in expected if v == v], values[:3]
            assert [v for v in got if v is not None] == [v for v in expected if v == v], values[:3]
            assert [v is None for v in got] == [v != v for v in expected], values[:3]


def test_blank_as_trimming_leaves_it():
    values = ["", None, "a", " a ", *WHITESPACE, *(c * 3 for c in WHITESPACE), "\u200b", "中"]
    frame = pd.DataFrame({f: values for f in S.CONTRACT["org"][0]})
    reasons = S._Reasons(len(values))
    reasons.contract("org", frame)
    trimmed_empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(pa.array(values, pa.string())), ""), True)
    first_field = next(f for f in S.CONTRACT["org"][0] if f not in S.CONTRACT["org"][1])
    for value, blank, reason in zip(values, trimmed_empty.to_pylist(), reasons.reasons):
        control = value is not None and any(ord(c) < 0x20 or c == "\x7f" for c in value)
        if blank:
            assert reason == f"no {first_field}", repr(value)
        elif control:
            assert reason.endswith("contains a control character"), repr(value)
        else:
            assert reason is None, repr(value)


def test_too_long_to_store_counts_characters_not_bytes():
    """A value is held back when it has more characters than its column takes once trimmed: one of
    more bytes than the limit but no more characters (Chinese: 3 bytes each) is kept."""
    limit = S._storable_lengths()["org"]["xm"]
    values = ["中" * limit, "中" * (limit + 1), " " + "a" * limit + "\u3000", "a" * (limit + 1), None, "", "a" * limit,
              "\u3000" * (limit + 5), "中" * (limit // 3 + 1)]
    frame = pd.DataFrame({f: ["x"] * len(values) for f in S.CONTRACT["org"][0]}).assign(xm=values)
    reasons = S._Reasons(len(values))
    reasons.contract("org", frame.iloc[::-1].iloc[::-1])   # (a frame of sliced columns, read as they are)
    long = [r == f"xm longer than {limit} characters" for r in reasons.reasons]
    assert long == [v is not None and len(v.strip()) > limit for v in values]
    assert long == [False, True, False, True, False, False, False, False, False]
    assert reasons.reasons[4] == reasons.reasons[5] == reasons.reasons[7] == "no xm"


def test_the_contract_screens_a_column_chunk_by_chunk_as_if_it_were_one():
    """A column read from several row groups is screened chunk by chunk, not copied into one array:
    each reason lands on its own row, whatever chunk holds it (and the first reason of a row wins)."""
    limit = S._storable_lengths()["org"]["xm"]
    values = ["张三", "a\x00", "", None, "a" * (limit + 1), " ", "李四", "\x1fb", "中" * limit, "x"] * 3
    whole = pd.DataFrame({f: ["x"] * len(values) for f in S.CONTRACT["org"][0]}).assign(xm=values)
    chunked = whole.assign(xm=pd.array(pa.chunked_array([pa.array(values[:4], pa.large_string()),
                                                         pa.array([], pa.large_string()),
                                                         pa.array(values[4:17], pa.large_string()).slice(0),
                                                         pa.array(values[17:], pa.large_string())]),
                                       dtype="string"))
    assert pa.array(chunked.xm.array).num_chunks == 4
    expected, found = S._Reasons(len(values)), S._Reasons(len(values))
    expected.contract("org", whole)
    found.contract("org", chunked)
    assert list(found.reasons) == list(expected.reasons)
    assert list(found.reasons[:10]) == [None, "xm contains a control character", "no xm", "no xm",
                                        f"xm longer than {limit} characters", "no xm", None,
                                        "xm contains a control character", None, None]


def test_a_raw_file_is_read_with_each_text_column_one_array(tmp_path):
    """Read as pandas reads it (the same frame), each column one Arrow array, not one per row group."""
    frame = pd.DataFrame({"sfzh": [f"{i:018d}" for i in range(1000)], "xm": ["张三", None] * 500, "n": range(1000)})
    path = tmp_path / "gz_ff.parquet"
    frame.to_parquet(path, index=False, row_group_size=100)
    read = S._read(str(path))
    pd.testing.assert_frame_equal(read, pd.read_parquet(path))
    def chunks(column):   # (Arrow gives a column of one chunk as that chunk)
        return getattr(pa.array(column.array), "num_chunks", 1)
    assert chunks(read.sfzh) == chunks(read.xm) == 1
    assert chunks(pd.read_parquet(path).sfzh) == 10   # (what pandas gives)
    assert list(S._read(str(path), columns=["xm"]).columns) == ["xm"]


def test_great_expectations_sees_only_what_the_suite_reads():
    frame = pd.DataFrame({"a": ["1", "2"], "b": ["x", None], "c": ["p", "q"], "d": [1, 2]})
    suite = [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
             {"type": "expect_column_to_exist", "kwargs": {"column": "missing"}},
             {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "b"}},
             {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["b", "d"]}},
             {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]
    seen = suite_frame(suite, frame)
    assert list(seen.columns) == ["a", "b", "d"] and len(seen) == 2
    assert seen["b"].equals(frame["b"]) and seen["d"].equals(frame["d"])
    assert seen["a"].dtype == bool          # present, as a placeholder: no expectation reads its values
    whole = suite + [{"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a"]}}]
    assert suite_frame(whole, frame) is frame


def test_active_persons_read_as_the_frame_keeps_them(tmp_path):
    """Tombstones left out as the file is read: the same rows, in the same order, as reading it all
    and keeping :func:`active_persons` (a null or unknown status is kept: screening sets it aside)."""
    status = ["active", "left", None, "left ", "LEFT", "", "left", "active"] * 5
    persons = pd.DataFrame({"record_id": [f"R{i}" for i in range(len(status))], "status": status,
                            "name": ["张三", None, "李四", "王五", "赵六", "", "x", "y"] * 5})
    path = tmp_path / "persons.parquet"
    persons.to_parquet(path, index=False)
    kept = S.read_active_persons(str(path))
    pd.testing.assert_frame_equal(kept, S.active_persons(pd.read_parquet(path)))
    assert len(kept) == len(persons) - 10 and kept.record_id.iloc[0] == "R0" and kept.index.equals(pd.RangeIndex(len(kept)))
    persons.drop(columns="status").to_parquet(path, index=False)
    with pytest.raises(AttributeError, match="status"):   # as before: no status column, no frame
        S.read_active_persons(str(path))


@pytest.mark.parametrize("environment, expected", [(None, "jemalloc"), ("system", "system")])
def test_a_task_process_allocates_arrow_memory_from_jemalloc_unless_told_otherwise(environment, expected):
    """Arrow's allocator is chosen as pyarrow is imported: a process that imports the package first
    (an Airflow task, the input suites' worker, a benchmark's child) gets jemalloc, and an allocator
    the environment names wins. Read in a fresh process, as a task starts."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if environment:
        env["ARROW_DEFAULT_MEMORY_POOL"] = environment
    code = ("import include.pipeline.standardise, pandas as pd, pyarrow as pa; "
            "pd.DataFrame({'a': ['x'] * 10}).to_parquet('/dev/null'); print(pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("left_at", [[], [0], [0, 1, 2], [1, 2, 5, 9], [3, 4, 5, 6, 7, 8, 9], list(range(10, 40, 3))])
def test_a_record_is_read_back_from_its_row_among_the_rows_that_are_not_tombstones(tmp_path, left_at):
    """:func:`include.pipeline.received.received_records` of staffing's persons: record ``rec_no`` k is the k-th row that is
    not a tombstone (``status`` ``left``), as :func:`read_active_persons` numbers them, wherever the
    tombstones are (first, in runs, last); our ``_`` columns left out, the rows in ``rec_no`` order, each
    with its key in its own system."""
    import fsspec

    from include.pipeline.received import fingerprint, received_records

    n = 40
    status = np.where(np.isin(np.arange(n), left_at), S.LEFT, "active").astype(object)
    status[n - 1] = None if n - 1 not in left_at else status[n - 1]   # a null status is not a tombstone
    path = str(tmp_path / "persons__state.parquet")
    pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "status": status, "_page": np.arange(n) // 7}).to_parquet(path)
    active = S.read_active_persons(path)
    entry = {"file": path, "fingerprint": fingerprint(fsspec.filesystem("file"), path), "active_only": True, "amounts": {}}
    wanted = np.arange(len(active))[::-1]   # asked in any order, with repeats
    rows = received_records("staffing", entry, np.concatenate([wanted, wanted[:3]]))
    facts = [json.loads(f) for _, _, f in rows]
    assert all(list(f) == ["record_id", "status"] for f in facts)
    assert [rec_no for rec_no, _, _ in rows] == list(range(len(active)))
    assert [f["record_id"] for f in facts] == active.record_id.tolist()
    assert [key for _, key, _ in rows] == ["persons|" + r for r in active.record_id]
    assert received_records("staffing", entry, []) == []


def test_a_records_key_is_its_fields_as_received_trimmed(tmp_path):
    """OUTPUTS.md "Evidence": ``gz_ff|<ffyf>|<dwbm>|<sfzh>``, ``gbxx|<sfzh>|<dwdm>|<zwmc>`` (a field the
    file lacks, empty), ``<file>|<n>`` for HR: each field trimmed of every Unicode space (as
    ``str.strip``; DuckDB's ``trim`` takes the ASCII space only), a missing one empty."""
    import fsspec

    from include.pipeline.received import fingerprint, received_records

    spaces = [" ", "\t", "\u3000", "\xa0", "\u2003", "\n"]
    sfzh = [f"{sp}11010119800101{i:03d}X{sp}" for i, sp in enumerate(spaces)] + [None, "中文 名"]
    pay = pd.DataFrame({"ffyf": ["202611"] * len(sfzh), "dwbm": [" 300001", None, "300002\u3000", "", "3", "4", "5", "6"],
                        "sfzh": sfzh, "yfgz": ["1"] * len(sfzh)})

    def read(source, frame, name):
        path = str(tmp_path / name)
        frame.to_parquet(path, index=False)
        entry = {"file": path, "fingerprint": fingerprint(fsspec.filesystem("file"), path), "active_only": False, "amounts": {}}
        return [key for _, key, _ in received_records(source, entry, range(len(frame)))]

    def trimmed(v):
        return v.strip() if isinstance(v, str) else ""   # (a missing value: None or NaN)
    assert read("finance", pay, "gz_ff_202611.parquet") == [
        f"gz_ff|202611|{trimmed(d)}|{trimmed(i)}" for d, i in zip(pay.dwbm, pay.sfzh)]
    assert read("finance", pay, "gz_ff_202611.parquet")[0] == "gz_ff|202611|300001|11010119800101000X"
    org = pd.DataFrame({"sfzh": sfzh, "dwdm": ["\u3000D1 "] * len(sfzh)})   # no zwmc: empty
    assert read("org", org, "gbxx.parquet") == [f"gbxx|{trimmed(i)}|D1|" for i in sfzh]
    assert read("hr", pay.rename(columns={"sfzh": "公民身份号码"}), "cbry_202611.csv.parquet") == [
        f"cbry_202611.csv|{n}" for n in range(1, len(pay) + 1)]
