"""Finance's changes between two rosters (人员增减变动; OUTPUTS.md "Changes between periods").

A person is ``added`` (on the later roster only), ``removed`` (on the earlier one only)
or ``changed`` (on both, with a different unit, class, quota type, budget units or gross
pay). Publishing a period writes its changes against the latest published period before
it into ``roster_change`` (:mod:`include.pipeline.publish`); :func:`between` compares any
two published periods, for a question the monthly table does not answer ("since the
start of the year").

    python -m include.pipeline.changes 2026-12 2026-10          # counts and the first changes (IDs masked)
    python -m include.pipeline.changes 2026-12 2026-10 --export out/   # the workbook, CSV and Parquet

The command reads ``roster_db`` from ``--db URL``, else from the Airflow connection
``roster_db`` (an ``AIRFLOW_CONN_ROSTER_DB`` variable, a secrets backend or the metadata
database), as the DAG does.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from include import dictionary as D

# The columns whose difference makes a person ``changed``, in the contract's order.
CHANGE_COLUMNS = ["unit_code", "personnel_class", "quota_type", "budget_unit_codes", "gross_pay"]
CONTRACT_COLUMNS = ["period", "previous_period", "id_number", "change", "fields"]
# What the readable view needs of each roster (the person's name and unit name besides).
VIEW_COLUMNS = ["id_number", "name", "unit_name", *CHANGE_COLUMNS]


def _side(frame: pd.DataFrame) -> pd.DataFrame:
    """One roster's compared columns with plain types (pay as a float, whatever the database returned)."""
    out = pd.DataFrame({c: frame[c].astype("string") if c in frame.columns else pd.Series(pd.NA, index=frame.index, dtype="string")
                        for c in VIEW_COLUMNS if c != "gross_pay"})
    out["gross_pay"] = pd.to_numeric(frame["gross_pay"]).astype("float64")
    return out


def compare(current: pd.DataFrame, previous: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.Series]:
    """The persons who differ between the two rosters, joined on ID in DuckDB (a full join of
    two million-row rosters takes pandas seconds): the later roster's columns, the earlier
    one's ending in ``_before``, each compared column's differences, and the kind of change
    per row. Pay is compared to the fen; two missing values are equal."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")   # a bar of carriage returns is noise in a task log
    try:
        con.register("cur", _side(current))
        con.register("prev", _side(previous))
        differs_sql = {c: (f"round(a.{c}, 2) IS DISTINCT FROM round(b.{c}, 2)" if c == "gross_pay"
                           else f"a.{c} IS DISTINCT FROM b.{c}") for c in CHANGE_COLUMNS}
        m = con.execute(f"""
            SELECT coalesce(a.id_number, b.id_number) AS id_number,
                   CASE WHEN b.id_number IS NULL THEN 'added' WHEN a.id_number IS NULL THEN 'removed'
                        ELSE 'changed' END AS change,
                   {", ".join(f"a.{c} AS {c}, b.{c} AS {c}_before" for c in VIEW_COLUMNS if c != "id_number")},
                   {", ".join(f"a.id_number IS NOT NULL AND b.id_number IS NOT NULL AND {d} AS d_{c}"
                              for c, d in differs_sql.items())}
            FROM cur a FULL JOIN prev b ON a.id_number = b.id_number
            WHERE a.id_number IS NULL OR b.id_number IS NULL OR {" OR ".join(differs_sql.values())}
        """).df()
    finally:
        con.close()
    differs = {c: m.pop(f"d_{c}").fillna(False).to_numpy(dtype=bool) for c in CHANGE_COLUMNS}
    return m, differs, m.pop("change")


def _json_values(values: pd.Series, money: bool) -> pd.Series:
    """Each value as a JSON literal (``null`` when missing); pay rounded to the fen."""
    if money:
        num = pd.to_numeric(values).round(2).astype("float64")
        return num.map(repr, na_action="ignore").astype("string").fillna("null")
    s = values.astype("string")
    if s.str.contains(r"[\x00-\x1f]", regex=True).any():   # not in a code standardise let through; json then escapes it
        return s.map(lambda v: json.dumps(v, ensure_ascii=False), na_action="ignore").astype("string").fillna("null")
    return ('"' + s.str.replace("\\", "\\\\", regex=False).str.replace('"', '\\"', regex=False) + '"').fillna("null")


def _joined(parts: list[pd.Series], sep: str) -> pd.Series:
    """Row-wise join of the non-empty parts, vectorised."""
    out = None
    for p in parts:
        if out is None:
            out = p
        else:
            out = out + pd.Series(np.where((out != "") & (p != ""), sep, ""), index=p.index) + p
    return out


def roster_changes(current: pd.DataFrame, previous: pd.DataFrame, period: str, previous_period: str | None) -> pd.DataFrame:
    """The ``roster_change`` rows of ``period`` against ``previous_period``: ``fields`` holds,
    for a change, each differing column's value before and after (JSON). No previous
    period: no rows."""
    if previous_period is None:
        return pd.DataFrame(columns=CONTRACT_COLUMNS)
    return _rows(compare(current, previous), period, previous_period)


def _rows(compared, period: str, previous_period: str) -> pd.DataFrame:
    m, differs, kind = compared
    fragments = []
    for c in CHANGE_COLUMNS:
        money = c == "gross_pay"
        body = (f'"{c}": {{"before": ' + _json_values(m[f"{c}_before"], money) + ', "after": '
                + _json_values(m[c], money) + "}")
        fragments.append(body.where(differs[c], ""))
    fields = ("{" + _joined(fragments, ", ") + "}").where(kind == "changed", None).astype(object)
    out = pd.DataFrame({"period": period, "previous_period": previous_period, "id_number": m.id_number.to_numpy(),
                        "change": kind.to_numpy(), "fields": fields.to_numpy()})
    return out.sort_values("id_number", ignore_index=True)[CONTRACT_COLUMNS]


def _shown(values: pd.Series, column: str) -> pd.Series:
    """A compared column's values as a person reads them (labels, pay with two decimals)."""
    if column == "gross_pay":
        return pd.to_numeric(values).map("{:,.2f}".format, na_action="ignore").astype("string").fillna("—")
    labels = D.BY_NAME[column].labels
    s = values.astype("string")
    if labels is not None:
        s = s.map(dict(labels), na_action="ignore").astype("string").fillna(s)
    return s.fillna("—")


def changes_for_people(current: pd.DataFrame, previous: pd.DataFrame, period: str, previous_period: str | None) -> pd.DataFrame:
    """The changes as finance reads them (:data:`include.dictionary.CHANGE_VIEW`): one row per
    person, the person's name, unit and class (the later roster's, the earlier one's for
    a person removed), what changed in words, and the pay before, after and the difference.
    Added first, then removed, then changed; within each by unit and ID."""
    if previous_period is None:
        return pd.DataFrame(columns=[c.name for c in D.CHANGE_VIEW])
    return _view(compare(current, previous), period, previous_period)


def period_changes(current: pd.DataFrame, previous: pd.DataFrame, period: str,
                   previous_period: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`roster_changes` and :func:`changes_for_people` from one comparison."""
    if previous_period is None:
        return roster_changes(current, previous, period, None), changes_for_people(current, previous, period, None)
    compared = compare(current, previous)
    return _rows(compared, period, previous_period), _view(compared, period, previous_period)


def _view(compared, period: str, previous_period: str) -> pd.DataFrame:
    m, differs, kind = compared
    gone = (kind == "removed").to_numpy()

    def latest(c: str) -> pd.Series:
        return m[c].where(~gone, m[f"{c}_before"])
    parts = []
    for c in CHANGE_COLUMNS:
        before, after = _shown(m[f"{c}_before"], c), _shown(m[c], c)
        if c == "unit_code":   # the unit by name, its code beside
            before = m.unit_name_before.astype("string").fillna("") + "（" + before + "）"
            after = m.unit_name.astype("string").fillna("") + "（" + after + "）"
        text = D.BY_NAME[c].header + "：" + before + " → " + after
        parts.append(text.where(differs[c], ""))
    pay_before = pd.to_numeric(m.gross_pay_before).round(2)
    pay_after = pd.to_numeric(m.gross_pay).round(2)
    out = pd.DataFrame({
        "period": period, "previous_period": previous_period, "change": kind.to_numpy(),
        "id_number": m.id_number.to_numpy(), "name": latest("name").to_numpy(),
        "unit_code": latest("unit_code").to_numpy(), "unit_name": latest("unit_name").to_numpy(),
        "personnel_class": latest("personnel_class").to_numpy(),
        "fields": _joined(parts, "；").where(kind == "changed", None).to_numpy(),
        "gross_pay_before": pay_before.to_numpy(), "gross_pay": pay_after.to_numpy(),
        "gross_pay_delta": (pay_after.fillna(0) - pay_before.fillna(0)).round(2).to_numpy(),
    })
    order = out.change.map({k: i for i, k in enumerate(D.CHANGE)})
    return out.assign(_o=order).sort_values(["_o", "unit_code", "id_number"], ignore_index=True)[[c.name for c in D.CHANGE_VIEW]]


def read_roster(conn, period: str) -> pd.DataFrame:
    """What :func:`compare` reads of a published period's roster in ``roster_db``."""
    import sqlalchemy as sa

    from include.pipeline.publish import roster_table
    r = roster_table.c
    return pd.read_sql(sa.select(*[r[c] for c in VIEW_COLUMNS]).where(r.period == period), conn)


def between(url, period: str, previous_period: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The changes of ``period`` against any earlier (or later) published ``previous_period``:
    the ``roster_change``-shaped rows and the readable view. Raises ``ValueError`` naming a
    period that is not published."""
    import sqlalchemy as sa

    from include.pipeline import database
    from include.pipeline.publish import publish_log

    engine = database.engine(url)
    try:
        with engine.connect() as conn:
            published = set(conn.execute(sa.select(publish_log.c.period).distinct()).scalars())
            missing = [p for p in (period, previous_period) if p not in published]
            if missing:
                raise ValueError(f"not published in roster_db: {', '.join(missing)} "
                                 f"(published: {', '.join(sorted(published)) or 'none'})")
            current, previous = read_roster(conn, period), read_roster(conn, previous_period)
    finally:
        engine.dispose()
    return period_changes(current, previous, period, previous_period)


def main(argv: list[str] | None = None) -> int:
    from include.identifiers import mask_id
    from include.report import finance

    ap = argparse.ArgumentParser(prog="python -m include.pipeline.changes", description=__doc__.split("\n\n")[0])
    ap.add_argument("period", help="the later period, YYYY-MM")
    ap.add_argument("previous_period", help="the period compared with, YYYY-MM")
    ap.add_argument("--db", help="roster_db's SQLAlchemy URL (default: the Airflow connection roster_db)")
    ap.add_argument("--export", metavar="DIR", help="write roster_changes_<period>_vs_<previous>.{xlsx,csv,parquet} here")
    ap.add_argument("--show", type=int, default=20, help="how many changes to print (IDs masked)")
    a = ap.parse_args(argv)
    try:
        if a.db:
            url = a.db
        else:
            from include.pipeline.airflow_glue import sql_url
            url = sql_url("roster_db")
        rows, view = between(url, a.period, a.previous_period)
    except ValueError as exc:
        ap.error(str(exc))
    counts = rows.change.value_counts()
    print(f"{a.period} against {a.previous_period}: " + ", ".join(f"{D.CHANGE[k]} {int(counts.get(k, 0)):,}" for k in D.CHANGE))
    shown = view.head(a.show).assign(id_number=lambda f: f.id_number.map(mask_id), change=lambda f: f.change.map(D.CHANGE))
    if len(shown):
        print(shown[["change", "id_number", "name", "unit_name", "fields", "gross_pay_delta"]].fillna("").to_string(index=False))
    if a.export:
        paths = finance.export_changes(rows, view, a.export, a.period, a.previous_period)
        print("written: " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
