"""The column-wise XLSX writer: what it writes, openpyxl reads back the same, with its styles."""

import datetime as dt
import io

import pandas as pd
import pyarrow as pa
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
    assert rows[1] == ("买买提·艾力", 1.5, True, dt.datetime(2026, 10, 31))
    assert rows[2] == ("a < b & c > d", None, False, None)
    assert rows[3][0] is None and rows[3][1] == 3
    assert rows[4] == ("ctrlchar", 7029.86, False, dt.datetime(2000, 2, 29))


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
    wb = load_workbook(io.BytesIO(buf.getvalue()))
    assert all(ws.freeze_panes == "A2" and ws.auto_filter.ref for ws in wb.worksheets), "each part keeps its header"


def test_an_empty_table_has_its_header():
    buf = io.BytesIO()
    xlsx.write_xlsx(pd.DataFrame({"a": pd.Series([], dtype="string")}), buf)
    assert read(buf.getvalue())["roster"] == [("a",)]


def test_formats_styles_and_layout_for_people():
    df = pd.DataFrame({
        "id": ["110105194805211234", "650102200001011234", None],
        "pay": [7029.856, 100.0, None],
        "n": [1200, 3, 45],
        "born": pd.to_datetime(["1948-05-21", "2000-01-01", None]),
        "名称": ["内蒙古自治区包头市青山区财政局", "x", "y"],
    })
    buf = io.BytesIO()
    xlsx.write_workbook([xlsx.Sheet("花名册", [xlsx.Table(df, {"id": "text", "pay": "money", "n": "int"},
                                                       {"id": "身份证号", "pay": "应发（元）"})], freeze_columns=1)], buf)
    wb = load_workbook(io.BytesIO(buf.getvalue()))
    ws = wb["花名册"]
    assert [c.value for c in ws[1]] == ["身份证号", "应发（元）", "n", "born", "名称"]
    assert all(c.font.b and c.fill.fgColor.rgb.endswith("DDE7F3") for c in ws[1])
    assert ws.freeze_panes == "B2" and ws.auto_filter.ref == "A1:E4" and ws.print_title_rows == "$1:$1"
    assert ws["A2"].value == "110105194805211234" and ws["A2"].data_type == "s" and ws["A2"].number_format == "@"
    assert ws["B2"].value == 7029.86 and ws["B2"].number_format == "#,##0.00"
    assert ws["C2"].value == 1200 and ws["C2"].number_format == "#,##0"
    assert ws["D2"].value == dt.datetime(1948, 5, 21) and ws["D2"].number_format == "yyyy-mm-dd"
    assert ws["A4"].value is None and ws["D4"].value is None
    widths = {k: v.width for k, v in ws.column_dimensions.items()}
    assert widths["A"] >= 18 + 2, "the ID fits"
    assert widths["E"] >= 2 * 15, "a Chinese character counts two"
    assert ws.page_setup.orientation == "landscape" and ws.sheet_properties.pageSetUpPr.fitToPage


def test_tables_one_under_the_other_with_titles():
    a = pd.DataFrame({"类别": ["编制内", "合计"], "人数": [3, 3]})
    b = pd.DataFrame({"单位": ["001", "002"], "人数": [1, 2], "金额": [1.5, 2.25]})
    buf = io.BytesIO()
    xlsx.write_workbook([xlsx.Sheet("汇总", [xlsx.Table(a, title="按类别"), xlsx.Table(b, {"单位": "text"}, title="按单位")])], buf)
    ws = load_workbook(io.BytesIO(buf.getvalue()))["汇总"]
    rows = [tuple(v for v in r if v is not None) for r in ws.iter_rows(values_only=True)]
    assert rows == [("按类别",), ("类别", "人数"), ("编制内", 3), ("合计", 3), (), ("按单位",), ("单位", "人数", "金额"),
                    ("001", 1, 1.5), ("002", 2, 2.25)]
    assert ws["A1"].font.b and ws["A2"].font.b and ws["A7"].font.b
    assert ws.freeze_panes is None and ws.auto_filter.ref is None, "several tables: no single header to freeze"


def _plain_cell(v, fmt: str) -> str:
    """One cell's XML by its plain definition, value by value (what the vectorised writer must match)."""
    import math
    import re
    from xml.sax.saxutils import escape
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return "<c/>"
    if fmt == "bool":
        return f'<c t="b"><v>{int(bool(v))}</v></c>'
    style = xlsx.STYLE[fmt]
    if fmt in ("int", "money", "number", "date"):
        if fmt == "date":
            v = (pd.Timestamp(v) - xlsx.EXCEL_EPOCH) / pd.Timedelta(days=1)
        v = round(float(v), 2) if fmt == "money" else float(v)
        return f"<c{f' s={chr(34)}{style}{chr(34)}' if style else ''}><v>{{}}</v></c>"
    text = v.isoformat() if hasattr(v, "isoformat") else str(v)
    return (f'<c t="inlineStr" s="{style}"><is><t xml:space="preserve">'
            f'{escape(re.sub(xlsx._INVALID_XML, "", text))}</t></is></c>')


def test_rows_match_the_plain_definition_cell_by_cell():
    """The Arrow-joined rows of a chunk (an offset slice, as the writer cuts them) are, byte for byte,
    each cell built on its own: text escaped and stripped of control characters, numbers whole
    without a point and others as ``repr``, booleans with missing ones empty, dates as serials."""
    df = pd.DataFrame({
        # two Arrow chunks, as a column read from a Parquet file of several row groups arrives
        "text": pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(
            [["a<b&c>d", None, "ctrl\x01\x1f"], ["买买提·艾力", "=1+2", "tab\there"]], type=pa.large_string()))),
        "objects": pd.Series([12, "x", None, 3.5, dt.date(2026, 1, 2), "y"], dtype=object),
        "whole": [1.0, 2.0, None, 4.0, 5.0, -6.0],
        "money": [7029.856, 0.1, None, 1e7, 12.0, 0.25],
        "count": [1, 2, 3, 4, 5, 6],
        "flag": pd.array([True, None, False, True, False, None], dtype="boolean"),
        "day": [dt.date(1948, 5, 21), None, dt.date(2000, 2, 29), dt.date(2026, 10, 31), None, dt.date(1970, 1, 1)],
    })
    fmts = ["text", "text", "number", "money", "int", "bool", "date"]
    part = df.iloc[2:]              # a chunk that does not start at the frame's first row
    got = xlsx._data_rows(part, fmts, first_row=7).decode()
    whole_columns = {"whole": True, "count": True, "money": False}
    want = []
    for i, (_, r) in enumerate(part.iterrows()):
        cells = []
        for col, fmt in zip(part.columns, fmts):
            cell = _plain_cell(r[col], fmt)
            if "{}" in cell:        # a number: whole columns without a point, others as repr
                value = r[col]
                if fmt == "date":
                    value = (pd.Timestamp(value) - xlsx.EXCEL_EPOCH) / pd.Timedelta(days=1)
                value = round(float(value), 2) if fmt == "money" else float(value)
                cell = cell.format(str(int(value)) if whole_columns.get(col, True) else repr(value))
            cells.append(cell)
        want.append(f'<row r="{7 + i}">{"".join(cells)}</row>')
    want = "".join(want)
    assert got == want, next((got[max(0, k - 60):k + 60], want[max(0, k - 60):k + 60]) for k in range(len(got)) if got[k] != want[k])


def test_csv_is_what_pandas_writes(monkeypatch):
    """Finance's CSV: Arrow writes it when nothing needs quoting, pandas when something does; the
    bytes are ``to_csv(index=False)``'s with a BOM either way."""
    import numpy as np

    from include.report.finance import write_csv

    rng = np.random.default_rng(7)
    n = 2_000
    plain = pd.DataFrame({
        "id_number": pd.array([f"{i:018d}" for i in range(n)], dtype="string"),
        "name": pd.Series(np.array(["买买提·艾力", "'=SUM(A1)", "O'Neil", "张 三", None], dtype=object)[rng.integers(0, 5, n)]),
        "pay": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.random(n) * 1e5, 2)),
        "whole": np.resize([100.0, 1e16, 1e-5, 0.1 + 0.2, -0.0, np.inf, -2.5e-7, 123456789012345.6], n),
        "count": rng.integers(-5, 10**12, n),
        "maybe": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
        "flag": rng.random(n) < 0.5,
        "day": [dt.date(1948, 5, 21) if i % 3 else None for i in range(n)],
    })
    quoted = plain.assign(name=plain.name.where(plain.index != 7, 'a, "b"\nc'))
    to_csv = pd.DataFrame.to_csv
    cases = [(plain, "arrow"), (plain.head(0), "arrow"), (quoted, "pandas"),
             (plain.assign(flag=pd.array([True, None] * (n // 2), dtype="boolean")), "pandas"),
             (pd.DataFrame({"one": ["", None, "x"]}), "pandas"),
             (pd.DataFrame([[1, 2]], columns=["a", "a"]), "pandas")]
    for frame, writer in cases:
        want = to_csv(frame, index=False).encode("utf-8-sig")
        used = []
        monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, *a, **k: used.append(1) or to_csv(self, *a, **k))
        buf = io.BytesIO()
        write_csv(frame, buf)
        monkeypatch.undo()
        assert buf.getvalue() == want
        assert ("pandas" if used else "arrow") == writer


def test_floats_are_spelled_as_repr_at_every_magnitude():
    """The CSV's floats: Arrow's text, mended, is ``repr`` for every value, whole or not, tiny or huge."""
    import numpy as np

    from include.report.finance import _float_text

    rng = np.random.default_rng(3)
    xs = np.concatenate([rng.random(2_000) * 10.0 ** k for k in range(-30, 30)]
                        + [np.round(rng.random(2_000) * 10.0 ** k, 2) for k in range(-3, 15)])
    xs = np.concatenate([xs, -xs, [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1.7976931348623157e308]])
    spelled = _float_text(pd.Series(xs)).to_pylist()
    assert spelled[-3] is None, "a missing value is left empty"
    assert [s for x, s in zip(xs, spelled) if s != repr(float(x)) and not np.isnan(x)] == []


def test_a_sheets_next_rows_are_built_while_the_last_are_written():
    """The chunks of a sheet are made one ahead, on a thread, and come out in order: the next chunk
    is being made while the consumer still holds the one before (made one after the other, chunk 1
    would not start until chunk 0 was written). A chunk that fails raises where it is used."""
    import threading

    import pytest

    started = {i: threading.Event() for i in range(4)}

    def make(i):
        started[i].set()
        if i == 3:
            raise ValueError("chunk 3 could not be made")
        return f"chunk {i}"

    made = xlsx._made_ahead(make, range(4))
    assert next(made) == "chunk 0" and started[1].wait(10)
    assert [next(made), next(made)] == ["chunk 1", "chunk 2"]
    with pytest.raises(ValueError, match="chunk 3"):
        next(made)
    assert list(xlsx._made_ahead(make, range(0))) == []


def test_a_workbook_of_many_chunks_keeps_its_rows_in_order(monkeypatch):
    monkeypatch.setattr(xlsx, "CHUNK", 7)
    df = pd.DataFrame({"n": range(100), "s": [f"行{i}" for i in range(100)]})
    buf = io.BytesIO()
    xlsx.write_xlsx(df, buf)
    assert read(buf.getvalue())["roster"][1:] == [(i, f"行{i}") for i in range(100)]
