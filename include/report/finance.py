"""Finance's files of a published period: one workbook for people, Parquet and CSV for programs.

``roster_<period>.xlsx`` opens ready to read and filter (:mod:`include.pipeline.xlsx`):

* 花名册: the roster, Chinese headers (:mod:`include.dictionary`), coded values by their
  Chinese labels, IDs and codes as text, dates as dates, pay with two decimals; the ID
  and name stay in view while scrolling right;
* 汇总: persons and gross pay by class and by paying budget unit;
* 本期变动: who came, who left and whose unit, class, quota type, budget units or pay
  changed since the previous published period (人员增减变动);
* 数据字典: each column's contract name, Chinese header, meaning and allowed values.

``roster_changes_<period>.xlsx`` holds the changes and their dictionary. The Parquet
and CSV files keep the contract's column names and values (CSV in UTF-8 with a BOM; a
text cell a spreadsheet would take for a formula starts with an apostrophe).
"""

from __future__ import annotations

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from include import dictionary as D
from include import identifiers as ids
from include.pipeline.changes import CHANGE_COLUMNS
from include.pipeline.xlsx import Sheet, Table, write_workbook

# Characters a spreadsheet reads as the start of a formula (CSV injection): such a text cell
# is written with a leading apostrophe, which Excel and LibreOffice show as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The roster sheet's column order: the person first, the period last.
PEOPLE_ORDER = ["id_number", "name", "sex", "birth_date", "region_code", "unit_code", "unit_name", "personnel_class",
                "quota_type", "non_establishment_category", "post_category", "position", "leader_level", "cadre_rank",
                "gross_pay", "budget_unit_codes", "insured_status", "hr_status", "in_staffing", "in_org", "in_finance",
                "in_hr", "alert_codes", "period", "as_of"]
NO_PAY = "（本期未发放）"


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that a spreadsheet would read as a formula
    (``=``, ``+``, ``-``, ``@``, tab, carriage return first) prefixed by an apostrophe."""
    out = df.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.infer_dtype(values, skipna=True) != "string":
            continue            # numbers, dates, booleans: never a formula
        risky = values.str.startswith(FORMULA_START).fillna(False).astype(bool)
        if risky.any():
            out.loc[risky, col] = "'" + values[risky]
    return out


def for_people(frame: pd.DataFrame, columns: tuple[D.Column, ...], title: str | None = None) -> Table:
    """``frame`` as a table a person reads: the dictionary's headers, labels for coded values."""
    data, formats = {}, {}
    for c in columns:
        values = frame[c.name]
        if c.labels is not None:
            labelled = values.map(dict(c.labels))
            values = labelled.where(labelled.notna(), values.astype(object).where(values.notna(), None))
            formats[c.name] = "text"
        else:
            formats[c.name] = c.format
        data[c.name] = values
    return Table(pd.DataFrame(data, index=frame.index), formats, {c.name: c.header for c in columns}, title)


def _class_summary(roster: pd.DataFrame) -> pd.DataFrame:
    pay = pd.to_numeric(roster.gross_pay)
    g = pd.DataFrame({"cls": roster.personnel_class, "paid": pay.notna(), "pay": pay}).groupby("cls", dropna=False)
    t = pd.DataFrame({"persons": g.size(), "paid": g.paid.sum(), "pay": g.pay.sum()})
    order = [k for k in D.PERSONNEL_CLASS if k in t.index] + [k for k in t.index if k not in D.PERSONNEL_CLASS]
    t = t.reindex(order)
    out = pd.DataFrame({"类别": [D.PERSONNEL_CLASS.get(k, k) for k in t.index], "人数": t.persons.to_numpy(),
                        "其中本期发薪": t.paid.to_numpy(), "应发工资合计（元）": t.pay.round(2).to_numpy()})
    total = pd.DataFrame({"类别": ["合计"], "人数": [len(roster)], "其中本期发薪": [int(pay.notna().sum())],
                          "应发工资合计（元）": [round(float(pay.sum()), 2)]})
    return pd.concat([out, total], ignore_index=True)


def _budget_unit_summary(roster: pd.DataFrame, budget_unit_names: dict) -> pd.DataFrame:
    """Persons and pay per paying budget unit; a person paid by several units counts once, on
    the row of that set of units (so that the rows add up to the roster)."""
    pay = pd.to_numeric(roster.gross_pay)
    codes = roster.budget_unit_codes.astype("string").fillna(NO_PAY)
    g = pd.DataFrame({"codes": codes, "pay": pay}).groupby("codes")
    t = pd.DataFrame({"persons": g.size(), "pay": g.pay.sum()}).sort_index()
    names = ["" if k == NO_PAY else "；".join(budget_unit_names.get(c, "") or "（名称未知）" for c in k.split(";"))
             for k in t.index]      # one per distinct set of units: thousands, not millions
    out = pd.DataFrame({"预算单位编码": t.index.to_numpy(), "预算单位名称": names, "人数": t.persons.to_numpy(),
                        "应发工资合计（元）": t.pay.round(2).to_numpy()})
    total = pd.DataFrame({"预算单位编码": ["合计"], "预算单位名称": [""], "人数": [len(roster)],
                          "应发工资合计（元）": [round(float(pay.sum()), 2)]})
    return pd.concat([out, total], ignore_index=True)


def headline(roster: pd.DataFrame, view: pd.DataFrame, previous_period: str | None) -> str:
    period = roster.period.iloc[0] if len(roster) else ""
    as_of = pd.to_datetime(roster.as_of.iloc[0]).date().isoformat() if len(roster) else ""
    pay = pd.to_numeric(roster.gross_pay).sum()
    text = f"{period} 花名册（数据日期 {as_of}）：{len(roster):,} 人，应发工资合计 {pay:,.2f} 元。"
    if previous_period is None:
        return text + "首个发布期间，无上期可比。"
    counts = view.change.value_counts()
    return text + f"与 {previous_period} 相比：" + "，".join(f"{v} {int(counts.get(k, 0)):,} 人" for k, v in D.CHANGE.items()) + "。"


def _dictionary_sheet(*sections: tuple[str, tuple[D.Column, ...]]) -> Sheet:
    tables = []
    for title, columns in sections:
        frame = pd.DataFrame({"列名（程序用）": [c.name for c in columns], "表头": [c.header for c in columns],
                              "含义": [c.meaning for c in columns], "取值": [c.allowed() for c in columns]})
        tables.append(Table(frame, {"含义": "wrap", "取值": "wrap"}, title=title))
    return Sheet("数据字典", tables)


def changes_sheet(view: pd.DataFrame, previous_period: str | None, name: str = "本期变动") -> Sheet:
    title = None
    if previous_period is None:
        title = "首个发布期间：无上期可比，无变动记录。"
    return Sheet(name, [for_people(view, D.CHANGE_VIEW, title)], freeze_columns=4)


def _changed_items(changes: pd.DataFrame) -> pd.DataFrame:
    """How many persons changed in each compared column (a person may count under several)."""
    fields = changes.fields.astype("string").fillna("")
    return pd.DataFrame({"变动项目": [D.BY_NAME[c].header for c in CHANGE_COLUMNS],
                         "人数": [int(fields.str.contains(f'"{c}":', regex=False).sum()) for c in CHANGE_COLUMNS]})


def roster_sheets(roster: pd.DataFrame, changes: pd.DataFrame, view: pd.DataFrame, previous_period: str | None,
                  budget_unit_names: dict | None = None) -> list[Sheet]:
    """The sheets of ``roster_<period>.xlsx``."""
    cols = tuple(D.BY_NAME[c] for c in PEOPLE_ORDER)
    by_item = []
    if previous_period is not None:
        by_item = [Table(_changed_items(changes), {"人数": "int"},
                         title=f"与 {previous_period} 相比变动的人员，按变动项目（一人可有几项）：")]
    summary = Sheet("汇总", [
        Table(_class_summary(roster), {"人数": "int", "其中本期发薪": "int", "应发工资合计（元）": "money"},
              title=headline(roster, view, previous_period) + " 按人员类别："),
        *by_item,
        Table(_budget_unit_summary(roster, budget_unit_names or {}), {"人数": "int", "应发工资合计（元）": "money",
                                                                     "预算单位编码": "text"},
              title="按发放工资的预算单位（一人由几个预算单位发放的，按其单位组合计一行）："),
    ])
    return [Sheet("花名册", [for_people(roster, cols)], freeze_columns=2), summary,
            changes_sheet(view, previous_period),
            _dictionary_sheet(("花名册（roster）", D.ROSTER), ("本期变动（roster_change）", D.CHANGE_VIEW))]


def write_table_files(fs, base: str, frame: pd.DataFrame) -> list[str]:
    """``<base>.parquet`` and ``<base>.csv`` (programs): the contract's columns and values."""
    with fs.open(f"{base}.parquet", "wb") as fh:
        frame.to_parquet(fh, index=False)
    with fs.open(f"{base}.csv", "wb") as fh:
        write_csv(csv_safe(frame), fh)
    return [f"{base}.parquet", f"{base}.csv"]


CSV_SPECIAL = b',"\r\n'      # what makes pandas quote a value; all ASCII, so found byte by byte


def _float_text(values: pd.Series) -> pa.Array:
    """A float column as pandas' CSV spells it (Python's ``repr``), vectorised. Both write the shortest
    digits that read back as the same number; they differ only in form: Arrow leaves ``.0`` off
    whole numbers (put back here) and chooses the exponent form by its own rules, so every value
    that either writes with an exponent (``repr``: below 1e-4 or from 1e16 on) is spelled by ``repr``."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    text = pc.cast(pa.array(numbers, from_pandas=True), pa.string())
    whole = pc.invert(pc.match_substring_regex(text, "[.en]"))
    text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    size = np.abs(numbers)
    exponent = pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False)
    odd = np.flatnonzero(exponent | (np.isfinite(numbers) & (size != 0) & ((size < 1e-4) | (size >= 1e16))))
    if len(odd):
        spelled = text.to_numpy(zero_copy_only=False).astype(object)
        spelled[odd] = [repr(float(x)) for x in numbers[odd]]
        text = pa.array(spelled, type=pa.string())
    return text


def _csv_text(values: pd.Series) -> pa.Array | None:
    """A column as pandas' ``to_csv`` spells its values (missing: null), or None for a kind this
    does not spell (pandas writes those frames)."""
    kind = pd.api.types.infer_dtype(values, skipna=True) if values.dtype == object else None
    if pd.api.types.is_bool_dtype(values) and not isinstance(values.dtype, pd.BooleanDtype):
        return pa.array(np.where(values.to_numpy(), "True", "False"))
    if pd.api.types.is_float_dtype(values) and not isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        return _float_text(values)
    if pd.api.types.is_integer_dtype(values) or kind in ("string", "empty") or (
            pd.api.types.is_string_dtype(values) and values.dtype != object):
        return ids.arrow_text(values).cast(pa.string())
    if kind == "date":          # datetime.date objects: Arrow's ISO form is str(date)'s
        return pc.cast(pa.array(values, from_pandas=True, type=pa.date32()), pa.string())
    return None


def write_csv(frame: pd.DataFrame, fh) -> None:
    """``frame`` as pandas' ``to_csv(index=False)`` writes it, UTF-8 with a BOM, to the binary ``fh``.

    When no value or header holds a character that needs quoting (``, " CR LF``: pandas then
    quotes nothing), every column is spelled as pandas spells it (floats as ``repr``, booleans
    ``True``/``False``, missing values empty) and Arrow's CSV writer writes the text unquoted:
    the same bytes, a 1M roster in a few seconds where ``to_csv`` took twenty. Otherwise, and
    for a column of another kind, ``to_csv`` writes it."""
    spelled = {}
    # one column: Python's csv quotes an empty value there (a row of one empty field); repeated names:
    # an Arrow table holds a name once. pandas writes both.
    plain = len(frame.columns) > 1 and not frame.columns.has_duplicates
    for col in frame.columns if plain else [None]:
        text = None if col is None else _csv_text(frame[col])
        if (text is None or len(ids.rows_with_bytes(text, CSV_SPECIAL))
                or any(b in str(col).encode() for b in CSV_SPECIAL)):
            fh.write(frame.to_csv(index=False).encode("utf-8-sig"))
            return
        spelled[str(col)] = text
    fh.write("\ufeff".encode("utf-8"))
    pacsv.write_csv(pa.table(spelled), fh, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))


def write_period_exports(directory: str, period: str, roster: pd.DataFrame, changes: pd.DataFrame,
                         view: pd.DataFrame, previous_period: str | None, budget_unit_names: dict | None = None) -> list[str]:
    """A published period's files in ``directory`` (a local path or fsspec URL)."""
    fs, _ = fsspec.core.url_to_fs(directory)
    fs.makedirs(directory, exist_ok=True)
    written = []
    base = f"{directory.rstrip('/')}/roster_{period}"
    written += write_table_files(fs, base, roster)
    with fs.open(f"{base}.xlsx", "wb") as fh:
        write_workbook(roster_sheets(roster, changes, view, previous_period, budget_unit_names), fh)
    written.append(f"{base}.xlsx")
    written += _changes_files(fs, f"{directory.rstrip('/')}/roster_changes_{period}", changes, view, previous_period)
    return written


def _changes_files(fs, base: str, changes: pd.DataFrame, view: pd.DataFrame, previous_period: str | None) -> list[str]:
    written = write_table_files(fs, base, changes)
    with fs.open(f"{base}.xlsx", "wb") as fh:
        write_workbook([changes_sheet(view, previous_period, "变动明细"),
                        _dictionary_sheet(("变动明细（roster_change）", D.CHANGE_VIEW))], fh)
    return [*written, f"{base}.xlsx"]


def export_changes(changes: pd.DataFrame, view: pd.DataFrame, directory: str, period: str,
                   previous_period: str) -> list[str]:
    """The changes of ``period`` against ``previous_period`` as
    ``roster_changes_<period>_vs_<previous_period>.{parquet,csv,xlsx}`` in ``directory``."""
    fs, _ = fsspec.core.url_to_fs(directory)
    fs.makedirs(directory, exist_ok=True)
    return _changes_files(fs, f"{directory.rstrip('/')}/roster_changes_{period}_vs_{previous_period}", changes, view,
                          previous_period)
