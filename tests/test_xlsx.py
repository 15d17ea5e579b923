"""The column-wise XLSX writer: what it writes, openpyxl reads back the same."""

import datetime as dt
import io

import pandas as pd
from openpyxl import load_workbook

from include.pipeline import xlsx


def read(data: bytes):
    wb = load_workbook(io.BytesIO(data), read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def test_values_types_and_escaping_round_trip():
    df = pd.DataFrame({
        "text": pd.array(["买买提·艾力", "a < b & c > d", None, "ctrl\x01char"], dtype="string"),
        "number": [1.5, None, 3.0, 7029.86],
        "flag": [True, False, True, False],
        "day": [dt.date(2026, 10, 31), None, dt.date(1948, 1, 15), dt.date(2000, 2, 29)],
    })
    buf = io.BytesIO()
    xlsx.write_xlsx(df, buf)
    rows = read(buf.getvalue())["roster"]
    assert rows[0] == ("text", "number", "flag", "day")
    assert rows[1] == ("买买提·艾力", 1.5, True, "2026-10-31")
    assert rows[2] == ("a < b & c > d", None, False, None)
    assert rows[3][0] is None and rows[3][1] == 3
    assert rows[4] == ("ctrlchar", 7029.86, False, "2000-02-29")


def test_a_table_longer_than_a_sheet_continues_on_the_next(monkeypatch):
    monkeypatch.setattr(xlsx, "ROWS_PER_SHEET", 3)
    monkeypatch.setattr(xlsx, "CHUNK", 2)
    df = pd.DataFrame({"n": range(7)})
    buf = io.BytesIO()
    xlsx.write_xlsx(df, buf)
    sheets = read(buf.getvalue())
    assert list(sheets) == ["roster", "roster_2", "roster_3"]
    assert [r[0] for s in sheets.values() for r in s[1:]] == list(range(7))
    assert all(s[0] == ("n",) for s in sheets.values())


def test_an_empty_table_has_its_header():
    buf = io.BytesIO()
    xlsx.write_xlsx(pd.DataFrame({"a": pd.Series([], dtype="string")}), buf)
    assert read(buf.getvalue())["roster"] == [("a",)]
