"""A column-wise XLSX writer for large tables (the roster export), styled for people.

openpyxl (53 s) and XlsxWriter (30 s) both build every cell as a Python object: for the
106k-row roster of a 100k jurisdiction that is half a minute or more, several minutes for
a province. A roster is one flat table of text and numbers, so the sheet's XML is built
here column by column with pandas' vectorised string operations and streamed into the
zip in chunks: plain SpreadsheetML (inline strings, numbers, booleans, one style sheet),
which Excel, LibreOffice and openpyxl read.

What a person sees on opening it: a bold shaded header row that stays in view (and the
first ``freeze_columns`` columns), a filter on the header, columns as wide as their
content (a Chinese character counts two), IDs and codes as text (an 18-digit ID never
turns into ``1.10105E+17``), dates as dates (``yyyy-mm-dd``), money with two decimals;
printed landscape, one page wide, the header on every page. The formats are those of
the small workbooks (:mod:`include.report.workbook`): ``text``, ``int``, ``money``,
``rate``, plus ``date``, ``wrap`` (long text wrapped in its column) and ``number``.

A sheet holds one or more tables, one under the other, each with an optional title
line. A single table longer than a sheet continues on the next sheet (``roster``,
``roster_2``...), its header repeated.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from typing import Mapping
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from openpyxl.utils import get_column_letter

from include.identifiers import arrow_offsets, arrow_text
from include.report.workbook import FORMATS as NUMBER_FORMATS
from include.report.workbook import HEADER_FILL, MAX_WIDTH, WIDE, _width

ROWS_PER_SHEET = 1_000_000          # Excel holds 1,048,576 rows a sheet
CHUNK = 50_000
WIDTH_SAMPLE = 5_000                # rows read to size a column
SMALL = 500                         # a column measured value by value up to this many rows
LINE_HEIGHT = 15                    # points: one line of 11-point text
_INVALID_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
EXCEL_EPOCH = pd.Timestamp("1899-12-30")

# The cell styles (cellXfs) of every workbook this writes, by format name; cells sit at the top
# of their row, beside a wrapped cell several lines high.
STYLE = {"number": 0, "header": 1, "title": 2, "text": 3, "int": 4, "money": 5, "rate": 6, "date": 7, "wrap": 8}
STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    f'<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    f'<numFmt numFmtId="165" formatCode="{NUMBER_FORMATS["rate"]}"/></numFmts>'
    '<fonts count="3"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="12"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    f'<fill><patternFill patternType="solid"><fgColor rgb="FF{HEADER_FILL}"/><bgColor indexed="64"/></patternFill></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="9">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="49" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1" applyNumberFormat="1" applyAlignment="1">'
    '<alignment vertical="center"/></xf>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1">'
    '<alignment wrapText="1" vertical="top"/></xf>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')

CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                 '<Default Extension="xml" ContentType="application/xml"/>'
                 '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                 '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                 '{sheets}</Types>')
SHEET_TYPE = ('<Override PartName="/xl/worksheets/sheet{n}.xml" '
              'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
ROOT_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
             '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
             'Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets>{sheets}</sheets>{names}</workbook>')
WORKBOOK_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}'
                 '<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
                 'Target="styles.xml"/></Relationships>')
SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
              '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr><dimension ref="{dimension}"/>{views}<sheetFormatPr defaultRowHeight="15"/>{cols}<sheetData>')
SHEET_TAIL = ('</sheetData>{filter}<pageMargins left="0.4" right="0.4" top="0.5" bottom="0.5" header="0.3" footer="0.3"/>'
              '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/></worksheet>')


@dataclass
class Table:
    """A frame as a table: ``formats`` maps columns to a format (others are inferred from
    the dtype), ``headers`` maps columns to the header shown (others show their name)."""
    frame: pd.DataFrame
    formats: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    title: str | None = None


@dataclass
class Sheet:
    """A sheet of one or more tables, one under the other (a blank row between). With one
    table, its header is frozen with the first ``freeze_columns`` columns and filtered."""
    name: str
    tables: list[Table]
    freeze_columns: int = 0


def infer_format(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if values.dtype == object:
        first = values.dropna().head(1)
        if len(first) and hasattr(first.iloc[0], "isoformat"):
            return "date"
    return "text"


def _arrow_strings(values: pd.Series) -> pa.Array:
    """``values`` as one Arrow string array, a missing value null (each value as ``str`` shows it)."""
    return arrow_text(values).cast(pa.string())


def _escaped(values: pd.Series) -> pa.Array:
    """Text as XML character data: characters XML cannot hold dropped, ``& < >`` escaped (RE2, in Arrow)."""
    s = pc.replace_substring_regex(_arrow_strings(values), _INVALID_XML, "")
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        s = pc.replace_substring(s, char, entity)
    return s


def _wrapped(before: str, values: pa.Array, after: str) -> pa.Array:
    """Each value between ``before`` and ``after``; a missing value an empty cell."""
    return pc.fill_null(pc.binary_join_element_wise(before, values, after, ""), "<c/>")


def _text_cells(values: pd.Series, style: int) -> pa.Array:
    return _wrapped(f'<c t="inlineStr" s="{style}"><is><t xml:space="preserve">', _escaped(values), "</t></is></c>")


def _serial(values: pd.Series) -> pd.Series:
    """Dates (datetime64, or ``datetime.date`` objects) as spreadsheet day numbers."""
    d = pd.to_datetime(values, errors="coerce")
    return ((d - EXCEL_EPOCH) / pd.Timedelta(days=1)).astype("float64")


def _numbers(values: pd.Series) -> np.ndarray:
    """A column as float64 numbers, a missing or non-numeric value NaN (numpy for a numeric column:
    pandas' to_numeric costs 0.1 ms a call, and a report writes some 40 small columns)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _number_text(num: np.ndarray) -> pa.Array:
    """Numbers (float64, NaN missing) as the text of a cell's value: integers without a decimal
    point, others as Python's ``repr`` writes them (Arrow's float formatting differs in exponents)."""
    missing = np.isnan(num)
    if bool((num[~missing] % 1 == 0).all()):
        return pa.array(num, mask=missing).cast(pa.int64()).cast(pa.string())
    return pa.array([None if m else repr(float(v)) for v, m in zip(num, missing)], type=pa.string())


def _cells(values: pd.Series, fmt: str) -> pa.Array:
    """One column's cells as XML, vectorised (an Arrow string array, one cell a value)."""
    if fmt == "bool":
        flags = pa.array(values.to_numpy(dtype=bool, na_value=False))
        cells = pc.if_else(flags, '<c t="b"><v>1</v></c>', '<c t="b"><v>0</v></c>')
        return pc.if_else(pa.array(values.notna().to_numpy()), cells, "<c/>").cast(pa.string())
    style = STYLE.get(fmt, STYLE["text"])
    if fmt in ("number", "int", "money", "rate", "date"):
        num = _serial(values).to_numpy(dtype="float64", na_value=np.nan) if fmt == "date" else _numbers(values)
        if fmt == "money":
            num = num.round(2)
        attr = f' s="{style}"' if style else ""
        return _wrapped(f"<c{attr}><v>", _number_text(num), "</v></c>")
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        values = values.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v, na_action="ignore")
    return _text_cells(values, style)


def display_widths(values: pd.Series) -> pd.Series:
    """Each value's width on screen, a Chinese character counting two (missing: 0). A short column is
    measured value by value with the pattern compiled once (:func:`include.report.workbook._width`):
    pandas compiles it anew for every column, a few ms that add up over a report's small tables."""
    s = values.astype("string").fillna("")
    if len(s) <= SMALL:
        return pd.Series([_width(v) for v in s], index=s.index, dtype="int64")
    return s.str.len() + s.str.count(WIDE)


def display_width(values: pd.Series) -> int:
    """The widest value's width on screen (a short column value by value, without a frame's overhead:
    a report sizes some 4,000 columns and headers)."""
    if len(values) <= SMALL:
        strings = values if values.dtype == object or isinstance(values.dtype, pd.StringDtype) else values.astype("string")
        return max((_width(v) for v in strings.tolist() if not (v is None or v is pd.NA or v != v)), default=0)
    return int(display_widths(values).max()) if len(values) else 0


def _shown(values: pd.Series, fmt: str) -> pd.Series:
    """Values as a person sees them (to size the column)."""
    if fmt == "date":
        return pd.Series(["0000-00-00"] if values.notna().any() else [], dtype="string")
    if fmt in ("money", "int", "number", "rate"):
        num = _numbers(values)
        num = num[~np.isnan(num)]
        if not len(num):
            return pd.Series([], dtype="string")
        top = float(np.abs(num).max())
        return pd.Series([f"-{top:,.2f}" if fmt == "money" else f"-{top:,.0f}" if fmt == "int" else repr(top)])
    if fmt == "bool":
        return pd.Series(["FALSE"])
    return values


def _layout(tables: list[Table]) -> tuple[list[tuple[Table, list[str], int, int]], int]:
    """Each table with its formats, the row of its header, of its first data row; the last row."""
    row, placed = 1, []
    for t in tables:
        fmts = [t.formats.get(c) or infer_format(t.frame[c]) for c in t.frame.columns]
        if t.title:
            row += 1
        placed.append((t, fmts, row, row + 1))
        row += 1 + len(t.frame) + 1
    return placed, row - 2


def _widths(placed) -> list[float]:
    widths: dict[int, int] = {}
    for t, fmts, _, _ in placed:
        sample = t.frame.head(WIDTH_SAMPLE)
        for j, (col, fmt) in enumerate(zip(t.frame.columns, fmts)):
            header = str(t.headers.get(col, col))
            w = max(_width(header) + 4, display_width(_shown(sample[col], fmt)) + 3)   # +4: filter button
            widths[j] = max(widths.get(j, 0), w)
    return [min(MAX_WIDTH, max(6, widths[j])) for j in range(len(widths))]


def _header_row(t: Table, r: int) -> str:
    cells = "".join(f'<c t="inlineStr" s="{STYLE["header"]}"><is><t>{escape(str(t.headers.get(c, c)))}</t></is></c>'
                    for c in t.frame.columns)
    return f'<row r="{r}">{cells}</row>'


def _row_heights(frame: pd.DataFrame, fmts: list[str], widths: list[float]) -> pd.Series | None:
    """Each row's height when a ``wrap`` column runs over lines (Excel and LibreOffice keep a
    row one line high unless told), else None."""
    lines = None
    for j, (col, fmt) in enumerate(zip(frame.columns, fmts)):
        if fmt != "wrap":
            continue
        n = np.ceil(display_widths(frame[col]).to_numpy(dtype=float) / max(widths[j] - 2, 1)).clip(1)
        lines = n if lines is None else np.maximum(lines, n)
    return None if lines is None else pd.Series((lines * LINE_HEIGHT).round(1), index=frame.index)


def _data_rows(frame: pd.DataFrame, fmts: list[str], first_row: int, widths: list[float] | None = None) -> bytes:
    """The rows' XML: each column's cells, then the rows joined in one pass in Arrow (joining
    Python strings column by column took most of a roster workbook's time)."""
    if not len(frame.columns):
        return b""
    cells = [_cells(frame[col], fmt) for col, fmt in zip(frame.columns, fmts)]
    rows = pa.array(np.arange(first_row, first_row + len(frame))).cast(pa.string())
    heights = _row_heights(frame, fmts, widths) if widths else None
    if heights is not None:
        rows = pc.binary_join_element_wise(rows, _arrow_strings(heights.astype(str)), '" ht="')
        rows = pc.binary_join_element_wise(rows, '" customHeight="1', "")
    xml = pc.binary_join_element_wise('<row r="', rows, '">', *cells, "</row>", "")
    return _concatenated(xml)


def _concatenated(strings: pa.Array) -> bytes:
    """Every value of a string array without nulls, one after another: the array's own data buffer."""
    if not len(strings):
        return b""
    offsets = arrow_offsets(strings)
    return strings.buffers()[2][int(offsets[0]):int(offsets[-1])].to_pybytes()   # only the values' bytes copied


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _pages(sheets: list[Sheet]):
    """(sheet name, tables, freeze_columns) per worksheet: a long single table split over sheets."""
    for s in sheets:
        if len(s.tables) == 1 and len(s.tables[0].frame) > ROWS_PER_SHEET:
            t = s.tables[0]
            for i, start in enumerate(range(0, len(t.frame), ROWS_PER_SHEET)):
                part = Table(t.frame.iloc[start:start + ROWS_PER_SHEET], t.formats, t.headers, t.title)
                yield (s.name if i == 0 else f"{s.name}_{i + 1}"), [part], s.freeze_columns
        else:
            yield s.name, s.tables, s.freeze_columns


def _made_ahead(make, items):
    """``make(item)`` for each item, in order, each made on a thread while the one before it is used:
    a sheet's next rows are built (Arrow, outside the GIL) while the zip compresses the last ones
    (zlib, outside the GIL too), instead of one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="xlsx-rows") as pool:
        ahead = None
        for item in items:
            made = pool.submit(make, item)
            if ahead is not None:
                yield ahead.result()
            ahead = made
        if ahead is not None:
            yield ahead.result()


def write_workbook(sheets: list[Sheet], fh) -> None:
    """Write ``sheets`` as an XLSX workbook to the binary file object ``fh``."""
    pages = list(_pages(sheets))
    names = []
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES.format(sheets="".join(SHEET_TYPE.format(n=i + 1) for i in range(len(pages)))))
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/styles.xml", STYLES)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.format(rels="".join(
            f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            f'Target="worksheets/sheet{i + 1}.xml"/>' for i in range(len(pages)))))
        for i, (name, tables, freeze_columns) in enumerate(pages):
            placed, last = _layout(tables)
            ncols = max((len(t.frame.columns) for t in tables), default=0)
            single = len(placed) == 1
            pane = filt = ""
            if single and ncols:   # one table: its header frozen (and the first columns), filtered, printed on every page
                header_row = placed[0][2]
                top_left = f"{get_column_letter(freeze_columns + 1)}{header_row + 1}"
                split = f'xSplit="{freeze_columns}" ' if freeze_columns else ""
                active = "bottomRight" if freeze_columns else "bottomLeft"
                pane = (f'<pane {split}ySplit="{header_row}" topLeftCell="{top_left}" activePane="{active}" state="frozen"/>'
                        f'<selection pane="{active}" activeCell="{top_left}" sqref="{top_left}"/>')
                ref = f"$A${header_row}:${get_column_letter(ncols)}${max(last, header_row + 1)}"
                filt = f'<autoFilter ref="{ref.replace("$", "")}"/>'
                names.append(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">{escape(_quoted(name))}!{ref}</definedName>')
                names.append(f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">{escape(_quoted(name))}!${header_row}:${header_row}</definedName>')
            selected = 'tabSelected="1" ' if i == 0 else ""
            views = f'<sheetViews><sheetView {selected}workbookViewId="0">{pane}</sheetView></sheetViews>'
            widths = _widths(placed)
            cols = "".join(f'<col min="{j + 1}" max="{j + 1}" width="{w}" customWidth="1"/>' for j, w in enumerate(widths))
            with zf.open(f"xl/worksheets/sheet{i + 1}.xml", "w", force_zip64=True) as out:
                dimension = f"A1:{get_column_letter(max(ncols, 1))}{max(last, 1)}"
                out.write(SHEET_HEAD.format(dimension=dimension, views=views, cols=f"<cols>{cols}</cols>" if cols else "").encode())
                for t, fmts, header_row, first in placed:
                    if t.title:
                        out.write(f'<row r="{header_row - 1}"><c t="inlineStr" s="{STYLE["title"]}"><is><t>'
                                  f'{escape(t.title)}</t></is></c></row>'.encode())
                    out.write(_header_row(t, header_row).encode())
                    for xml in _made_ahead(lambda a: _data_rows(t.frame.iloc[a:a + CHUNK], fmts, first + a, widths),
                                           range(0, len(t.frame), CHUNK)):
                        out.write(xml)
                out.write(SHEET_TAIL.format(filter=filt).encode())
        zf.writestr("xl/workbook.xml", WORKBOOK.format(
            sheets="".join(f'<sheet name="{escape(nm)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, (nm, _, _) in enumerate(pages)),
            names=f"<definedNames>{''.join(names)}</definedNames>" if names else ""))


def write_xlsx(df: pd.DataFrame, fh, sheet: str = "roster", formats: Mapping[str, str] | None = None) -> None:
    """Write ``df`` as a one-sheet XLSX workbook to the binary file object ``fh``."""
    write_workbook([Sheet(sheet, [Table(df, formats or {})])], fh)
