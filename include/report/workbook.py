"""Small workbooks people open in a spreadsheet: one styled sheet per table (openpyxl).

For the workbook attached to a digest (the monthly report's and the roster's, which can be
large, have a column-wise writer, :mod:`include.pipeline.xlsx`, with the same look): a bold, shaded header row
that stays in view (frozen) with a filter on it, columns as wide as their content (a
Chinese character counts two), numbers right-aligned with their format (``int``:
``#,##0``, ``money``: ``#,##0.00``, ``rate``: ``0.0%``), and codes kept as text so that a
credit code or a budget unit code never turns into a number.
"""

from __future__ import annotations

import io
import re

import pandas as pd

FORMATS = {"int": "#,##0", "money": "#,##0.00", "rate": "0.0%", "text": "@"}
MAX_WIDTH = 48
HEADER_FILL = "DDE7F3"


# Characters that take two columns on screen: CJK (and its extensions), Hangul, full-width
# forms, emoji. One definition for both writers; the streaming one applies it vectorised.
WIDE = ("[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
        "\U0001f300-\U0001f64f\U0001f900-\U0001f9ff\U00020000-\U0003fffd]")
_WIDE = re.compile(WIDE)


def _width(value) -> int:
    s = "" if value is None else str(value)
    return len(s) + len(_WIDE.findall(s))


def _cell(v):
    if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
        return None
    if hasattr(v, "item"):          # numpy scalars
        return v.item()
    if isinstance(v, (list, dict)):
        import json
        return json.dumps(v, ensure_ascii=False)
    return v


def add_sheet(wb, title: str, frame: pd.DataFrame, formats: dict | None = None, note: str | None = None):
    """Append ``frame`` as a sheet called ``title``; ``formats`` maps columns to a key of
    :data:`FORMATS`. ``note`` is a line above the table (the table then starts on row 3)."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title[:31])
    formats = formats or {}
    top = 1
    if note:
        ws.append([note])
        ws.append([])
        top = 3
    ws.append([str(c) for c in frame.columns])
    for c in ws[top]:
        c.font = Font(bold=True)
        c.fill = PatternFill("solid", fgColor=HEADER_FILL)
        c.alignment = Alignment(vertical="center", wrap_text=False)
    for row in frame.itertuples(index=False, name=None):
        ws.append([_cell(v) for v in row])
    for j, col in enumerate(frame.columns, start=1):
        letter = get_column_letter(j)
        fmt = FORMATS.get(formats.get(col, ""))
        if fmt:
            for (cell,) in ws.iter_rows(min_row=top + 1, min_col=j, max_col=j):
                cell.number_format = fmt
        sample = [col, *frame[col].head(500).tolist()]
        widest = max(_width(_cell(v)) for v in sample) + 2
        ws.column_dimensions[letter].width = min(MAX_WIDTH, max(8, widest))
        if widest > MAX_WIDTH:   # long text wraps inside its column instead of running over the next ones
            for (cell,) in ws.iter_rows(min_row=top + 1, min_col=j, max_col=j):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = ws.cell(row=top + 1, column=1)
    # printed: landscape, all columns on one page's width, the header row on every page
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.print_title_rows = f"{top}:{top}"
    if len(frame.columns):
        ws.auto_filter.ref = f"A{top}:{get_column_letter(len(frame.columns))}{top + max(len(frame), 1)}"
    return ws


def new_workbook():
    """An empty workbook (its default sheet removed: every sheet is added by :func:`add_sheet`)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    return wb


def to_bytes(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
