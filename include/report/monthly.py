"""The monthly data report (数据月报) of each jurisdiction, from a reconciled period.

For each jurisdiction (a region with units of its own, and every level above that
gathers two or more of them: a county, its city, the province), covering its own units
and everything below it:

* approved, actual and vacant establishment by quota type, vacancy rate, units over quota;
* non-establishment headcount by post category against the caps;
* leader posts against the approved numbers;
* findings by code and their trend over the last periods published;
* the roster's headcount by personnel class.

Written under ``<data root>/reports/<period>/<region>/`` as ``monthly_report_<region>_<period>.html``
(self-contained: the charts are embedded), ``.xlsx`` (one sheet per table) and
``charts/*.png``; and as rows of table ``monthly_report`` in ``roster_db`` (one
transaction per period, replaced on rerun). Counts come from ``unit_stats.parquet``,
which reconcile writes with the same counting rules as the codes, so the report and the
alerts never disagree.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from include import dictionary as D
from include import periods as P
from include.alerts import codes as C
from include.alerts.routing import Routing, lineage
from include.pipeline.publish import alert_table, ensure_schema, finding_table, metadata
from include.findings import SEVERITY as C_SEVERITY
from include.report import charts

log = logging.getLogger("roster_sync.report")

report_table = sa.Table(
    "monthly_report", metadata,
    sa.Column("period", sa.String(7), primary_key=True), sa.Column("region_code", sa.String(6), primary_key=True),
    sa.Column("section", sa.String(20), primary_key=True), sa.Column("item", sa.String(40), primary_key=True),
    sa.Column("approved", sa.BigInteger), sa.Column("actual", sa.BigInteger), sa.Column("vacant", sa.BigInteger),
    sa.Column("excess", sa.BigInteger), sa.Column("generated_at", sa.DateTime(timezone=True)),
)
QUOTA_ORDER = ["admin", "political_legal", "logistics", "institution", "school", "turnover"]
POST_LABEL = D.POST_CATEGORY
CLASS_LABEL = D.PERSONNEL_CLASS
EN = {"quota": "Establishment: approved vs actual by quota type", "ne": "Non-establishment staff vs cap",
      "leaders": "Leader posts: approved vs actual", "trend": "Findings per period by severity",
      "codes": "Findings this period by code", "approved": "approved", "actual": "actual", "cap": "cap"}
ZH = {"quota": "编制核定数与实有人数（按编制类型）", "ne": "编外人员与控制数", "leaders": "领导职数：核定与实配",
      "trend": "核查问题数量趋势（按严重程度）", "codes": "本期核查问题（按类型）", "approved": "核定",
      "actual": "实有", "cap": "控制数"}


def jurisdictions(regions: pd.Series) -> list[str]:
    """Regions with units of their own, and each level above that gathers two or more of them."""
    own = sorted(r for r in regions.dropna().astype(str).unique() if lineage(r))
    below: dict[str, set] = {}
    for r in own:
        for a in lineage(r)[1:]:
            below.setdefault(a, set()).add(r)
    return sorted(set(own) | {a for a, rs in below.items() if len(rs | ({a} if a in own else set())) >= 2})


def _roster_counts(work: Path) -> pd.DataFrame:
    """Persons per region and class: a few rows per region, read once from the roster."""
    return (pd.read_parquet(work / "roster.parquet", columns=["region_code", "personnel_class"])
            .value_counts(dropna=False).rename("persons").reset_index())


def report_batches(work_dir: str, batches: int) -> list[list[str]]:
    """The jurisdictions of ``work_dir`` in at most ``batches`` lists of about equal length, for
    the DAG to build in parallel (:func:`build` with ``only``); always one list at least."""
    work = Path(work_dir)
    regions = pd.concat([pd.read_parquet(work / "unit_stats.parquet", columns=["region_code"]).region_code,
                         _roster_counts(work).region_code,
                         pd.read_parquet(work / "findings.parquet", columns=["region_code"]).region_code])
    juris = jurisdictions(regions)
    n = max(1, min(batches, len(juris)))
    return [juris[i::n] for i in range(n)]


def _spread(df: pd.DataFrame, juris: list[str], roots: list[str]) -> pd.DataFrame:
    """Each row once per jurisdiction that covers its region (rows with no region: the roots)."""
    reg = df.region_code.astype("string")
    ok = reg.str.fullmatch(r"\d{6}").fillna(False)
    parts = [df.assign(jurisdiction=level.to_numpy(dtype=object)) for level in
             (reg, reg.str[:4] + "00", reg.str[:2] + "0000")]
    out = pd.concat(parts, ignore_index=False)
    out = out[out.jurisdiction.isin(juris)]
    out = out.reset_index().drop_duplicates(subset=["index", "jurisdiction"]).drop(columns="index")
    if (~ok).any():
        orphans = df[(~ok).to_numpy()]
        out = pd.concat([out, *[orphans.assign(jurisdiction=r) for r in roots]], ignore_index=True)
    return out


def _by_jurisdiction(df: pd.DataFrame, *also: str):
    """``df``'s rows of one jurisdiction (and one value of each column of ``also``), by name: the
    frame grouped once."""
    parts = dict(tuple(df.groupby(["jurisdiction", *also] if also else "jurisdiction", sort=False)))
    empty = df.iloc[:0]
    return lambda *key: parts.get(key if also else key[0], empty)


# How often a build tells how many jurisdictions it has written (seconds): a batch of a province's
# jurisdictions is a minute of tables and charts on a slow machine, and an operator must tell slow from stuck.
PROGRESS_EVERY = 5.0


def build(work_dir: str, roster_url, period: str, out_root: str, routing: Routing | None = None,
          trend_periods: int = 6, only: list[str] | None = None) -> dict:
    """Write the reports of every jurisdiction for ``period`` (of those in ``only`` when given:
    a batch of :func:`report_batches`); returns ``{region: {"html", "xlsx", "charts"}}``."""
    t0 = time.perf_counter()
    work = Path(work_dir)
    stats = pd.read_parquet(work / "unit_stats.parquet", columns=["measure", "unit_code", "region_code", "item", "approved", "actual"])
    findings = pd.read_parquet(work / "findings.parquet")
    roster = _roster_counts(work)
    units = pd.read_parquet(work / "std" / "units.parquet", columns=["unit_code", "name", "funding"])
    # looked up by unit code as Series (a dict handed to Series.map is made into one on every call:
    # 55,000 units at 2M persons, two calls a jurisdiction); a code listed twice keeps its last row
    units = units.drop_duplicates("unit_code", keep="last").set_index("unit_code")
    unit_names = units["name"]
    # once for every row, not in each jurisdiction's tables: the gap each way (quota and leader
    # posts), and whether the unit is self-funded (自收自支)
    stats = stats.assign(vacant=(stats.approved - stats.actual).clip(lower=0), excess=(stats.actual - stats.approved).clip(lower=0),
                         self_funded=stats.unit_code.map(units["funding"]).eq("self"))
    juris = jurisdictions(pd.concat([stats.region_code, roster.region_code, findings.region_code]))
    roots = [j for j in juris if not any(a in juris for a in lineage(j)[1:])]
    if only is not None:
        juris = [j for j in juris if j in set(only)]

    from include.pipeline import database

    engine = database.engine(roster_url)
    try:
        ensure_schema(engine, tables=[report_table, finding_table, alert_table])
        with engine.connect() as conn:
            history = pd.read_sql(sa.select(finding_table.c.period, finding_table.c.code, finding_table.c.severity,
                                            finding_table.c.region_code).where(finding_table.c.period <= period), conn)
            # explained by the office and covered this period: counted apart (已说明), OUTPUTS.md
            a = alert_table.c
            explained = pd.read_sql(sa.select(a.code, a.region_code).where(
                a.status == "open", a.disposition == "explained", a.disposition_until >= period), conn)
        first = P.add_months(period, -(trend_periods - 1))
        history = history[(history.period >= first) & (history.period < period)]
        history = pd.concat([history, findings[["code", "severity", "region_code"]].assign(period=period)], ignore_index=True)
        periods = [P.add_months(first, i) for i in range(trend_periods)]
        periods = [p for p in periods if p >= history.period.min()] or [period]

        # each frame split by jurisdiction once (a mask per jurisdiction re-read every row)
        spread = [_spread(df, juris, roots) for df in (stats, findings, history, roster, explained)]
        f_j, h_j, r_j, x_j = map(_by_jurisdiction, spread[1:])
        s_j = _by_jurisdiction(spread[0], "measure")
        u_j = _by_jurisdiction(_per_unit(spread[0], spread[1], unit_names))
        out, rows = {}, []
        zh = charts.cjk_font() is not None
        told = time.perf_counter()
        for n, j in enumerate(juris, start=1):
            name = routing.region_name(j) if routing else f"区划 {j}"
            tables = _tables(s_j(j, "quota"), s_j(j, "non_establishment"), s_j(j, "leader_posts"), f_j(j), h_j(j), r_j(j),
                             periods, period, unit_names, _units_of(u_j(j)), x_j(j))
            target = Path(out_root) / "reports" / period / j
            (target / "charts").mkdir(parents=True, exist_ok=True)
            pngs = _charts(tables, target / "charts", ZH if zh else EN, zh, periods)
            stem = f"monthly_report_{j}_{period}"
            html_path = target / f"{stem}.html"
            _atomic_write(html_path, _html(name, j, period, tables, pngs).encode("utf-8"))
            _xlsx(target / f"{stem}.xlsx", name, j, period, tables)
            rows.extend(_rows(j, period, tables))
            out[j] = {"name": name, "html": str(html_path), "xlsx": str(target / f"{stem}.xlsx"), "charts": pngs}
            if time.perf_counter() - told >= PROGRESS_EVERY:
                told = time.perf_counter()
                log.info("monthly reports for %s: %d of %d jurisdictions written, %.1fs in", period, n, len(juris), told - t0)
        now = dt.datetime.now(dt.timezone.utc)
        with database.writer(engine) as conn:     # one writer at a time: a second report run waits, then replaces
            if only is not None:
                conn.execute(report_table.delete().where(report_table.c.period == period, report_table.c.region_code.in_(juris)))
            else:
                conn.execute(report_table.delete().where(report_table.c.period == period))
            if rows:
                conn.execute(report_table.insert(), [{**r, "generated_at": now} for r in rows])
    finally:
        engine.dispose()
    log.info("monthly reports for %s: %d jurisdictions in %.1fs under %s", period, len(out), time.perf_counter() - t0,
             Path(out_root) / "reports" / period)
    return out


def _tables(q, ne, ld, findings, history, roster, periods, period, unit_names: pd.Series, per_unit: pd.DataFrame,
            explained=None) -> dict:
    """A jurisdiction's tables; ``q``, ``ne`` and ``ld`` are its rows of unit_stats of each measure
    (quota, non_establishment, leader_posts) with the columns :func:`build` adds."""
    items = set(q.item)
    quota = q.groupby("item")[["approved", "actual", "vacant", "excess"]].sum().reindex(
        [t for t in QUOTA_ORDER if t in items] + sorted(items - set(QUOTA_ORDER)))
    quota.loc["total"] = quota.sum()
    quota["vacancy_rate"] = (quota.vacant / quota.approved.where(quota.approved > 0)).round(4)
    quota["units_over"] = q[q.excess > 0].groupby("item").unit_code.nunique().reindex(quota.index).fillna(0)
    quota.loc["total", "units_over"] = q[q.excess > 0].unit_code.nunique()
    quota = quota.fillna({"units_over": 0}).astype({"units_over": int})

    by_post = ne[ne.item != "total"].groupby("item").actual.sum()
    totals = ne[ne.item == "total"]
    cap = {"cap": int(totals.approved.fillna(0).sum()), "actual": int(totals.actual.sum()),
           "units_over": int((totals.actual > totals.approved.fillna(0)).sum())}

    leaders = ld.groupby("item")[["approved", "actual", "excess"]].sum().reindex(["principal", "deputy"]).fillna(0).astype(int)
    leaders["units_over"] = ld[ld.excess > 0].groupby("item").unit_code.nunique().reindex(leaders.index).fillna(0).astype(int)

    over = findings[findings.code == "OVER_QUOTA"]
    numbers = (pd.json_normalize([json.loads(x) for x in over.details]) if len(over)
               else pd.DataFrame(columns=["approved", "actual"]))
    over_units = pd.DataFrame({
        "unit_code": over.unit_code.to_numpy(),
        "unit_name": over.unit_code.map(unit_names).fillna("").to_numpy(),
        "quota_type": over.quota_type.map(C.QUOTA_LABEL).fillna(over.quota_type).to_numpy(),
        "approved": numbers["approved"].to_numpy(), "actual": numbers["actual"].to_numpy(),
    })
    if len(over_units):
        over_units["excess"] = over_units.actual - over_units.approved
        over_units = over_units.sort_values(["excess", "unit_code"], ascending=[False, True])

    name_of = lambda codes: codes.map(unit_names).fillna("").to_numpy()   # noqa: E731
    over_cap = totals[totals.actual > totals.approved.fillna(0)]
    over_cap = pd.DataFrame({"unit_code": over_cap.unit_code.to_numpy(), "unit_name": name_of(over_cap.unit_code),
                             "cap": over_cap.approved.fillna(0).astype(int).to_numpy(), "actual": over_cap.actual.astype(int).to_numpy()})
    over_cap["excess"] = over_cap.actual - over_cap.cap
    over_cap = over_cap.sort_values(["excess", "unit_code"], ascending=[False, True], ignore_index=True)
    over_ld = ld[ld.excess > 0]
    over_leaders = pd.DataFrame({"unit_code": over_ld.unit_code.to_numpy(), "unit_name": name_of(over_ld.unit_code),
                                 "level": over_ld.item.map(C.LEVEL_LABEL).fillna(over_ld.item).to_numpy(),
                                 "approved": over_ld.approved.astype(int).to_numpy(), "actual": over_ld.actual.astype(int).to_numpy(),
                                 "excess": over_ld.excess.astype(int).to_numpy()}).sort_values(
        ["excess", "unit_code", "level"], ascending=[False, True, True], ignore_index=True)
    # The two 在编 figures: the staffing office's count per unit (实有在编, every unit, a person
    # placed in two units counted in each) against the roster's (each budget-funded person once).
    roster_est = int(roster[roster.personnel_class == "establishment"].persons.sum())
    self_funded = int(q[q.self_funded].actual.sum())
    est_gap = {"staffing": int(q.actual.sum()), "roster": roster_est, "self_funded": self_funded,
               "other": int(q.actual.sum()) - roster_est - self_funded}

    by_code = (history.groupby(["code", "period"]).size().unstack("period").reindex(columns=periods).fillna(0).astype(int)
               if len(history) else pd.DataFrame(0, index=[], columns=periods))
    by_code = by_code.reindex([c for c in C.LABEL if c in by_code.index])
    by_sev = (history.groupby(["severity", "period"]).size().unstack("period").reindex(
        index=["high", "medium", "info"], columns=periods).fillna(0).astype(int))
    classes = roster.groupby("personnel_class").persons.sum().reindex(list(CLASS_LABEL)).fillna(0).astype(int)
    return {"quota": quota, "by_post": by_post, "cap": cap, "leaders": leaders, "over_units": over_units,
            "over_cap": over_cap, "over_leaders": over_leaders, "per_unit": per_unit, "est_gap": est_gap,
            "by_code": by_code, "by_severity": by_sev, "classes": classes, "period": period,
            "explained": (explained.groupby("code").size() if explained is not None and len(explained)
                          else pd.Series(dtype=int)).reindex(by_code.index).fillna(0).astype(int)}


def _per_unit(stats: pd.DataFrame, findings: pd.DataFrame, unit_names: pd.Series) -> pd.DataFrame:
    """The 单位明细 table of every jurisdiction at once, one row per jurisdiction and unit: approved
    and actual by quota type and in all, non-establishment staff and cap, leader posts, and the
    unit's findings this period (those of the jurisdiction) by severity and code; within each
    jurisdiction the units with the most serious findings first. ``stats`` and ``findings`` are
    spread over the jurisdictions (:func:`_spread`); :func:`_units_of` takes one jurisdiction's
    table. Built once per report run: built per jurisdiction, the same steps cost 0.1 s a report
    in pandas' per-call overhead (a province's batch of 68 reports, 7 s)."""
    keys = ["jurisdiction", "unit_code"]
    quota = stats[stats.measure == "quota"]
    q = quota.dropna(subset=["unit_code", "item"])
    ld = stats[stats.measure == "leader_posts"].dropna(subset=["unit_code", "item"])
    ne_total = stats[(stats.measure == "non_establishment") & (stats.item == "total")].set_index(keys)
    # approved and actual per unit and quota type (leader level), a type the unit lacks 0: as
    # pivot_table(aggfunc="sum", fill_value=0) in each jurisdiction
    est = q.groupby(keys + ["item"])[["approved", "actual"]].sum().unstack("item", fill_value=0)
    lead = ld.groupby(keys + ["item"])[["approved", "actual"]].sum().unstack("item", fill_value=0)
    f = findings.dropna(subset=["unit_code"])
    units = pd.MultiIndex.from_frame(pd.concat(
        [est.index.to_frame(), ne_total.index.to_frame(), lead.index.to_frame(), f[keys]], ignore_index=True)
        .drop_duplicates().sort_values(keys))
    juris = units.get_level_values(0)
    totals = quota.groupby(keys)[["approved", "actual"]].sum().reindex(units)   # a row without a type counts here
    approved, actual = totals.approved.fillna(0).astype(int), totals.actual.fillna(0).astype(int)
    sev = (f.groupby(keys + ["severity"]).size().unstack("severity").reindex(index=units, columns=["high", "medium", "info"])
           .fillna(0).astype(int))
    codes = f.groupby(keys).code.agg(lambda c: "、".join(f"{C.LABEL.get(k, k)} {n}" for k, n in c.value_counts().sort_index().items()))

    def pair(counts: pd.DataFrame, item: str, rows: pd.DataFrame) -> np.ndarray:
        """``approved / actual`` of ``item``; blank for a unit without rows in ``counts`` and in a
        jurisdiction without rows of ``item`` (as the jurisdiction's own pivot has no such column)."""
        if ("approved", item) not in counts.columns:
            return np.full(len(units), "", dtype=object)
        a = counts[("approved", item)].reindex(units).fillna(0).astype(int).astype(str)
        b = counts[("actual", item)].reindex(units).fillna(0).astype(int).astype(str)
        shown = units.isin(counts.index) & juris.isin(rows.loc[rows.item == item, "jurisdiction"].unique())
        return (a + " / " + b).where(shown, "").to_numpy(dtype=object)

    table = pd.DataFrame({
        "jurisdiction": juris.to_numpy(dtype=object), "单位代码": units.get_level_values(1).to_numpy(dtype=object),
        "单位名称": unit_names.reindex(units.get_level_values(1)).fillna("").to_numpy(dtype=object),
        "核定编制": approved.to_numpy(), "实有在编": actual.to_numpy(),
        "空编": (approved - actual).clip(lower=0).to_numpy(), "超编": (actual - approved).clip(lower=0).to_numpy(),
        "空编率": ((approved - actual).clip(lower=0) / approved.where(approved > 0)).round(4).to_numpy(),
        "编外人员": ne_total.actual.reindex(units).fillna(0).astype(int).to_numpy(),
        "编外控制数": ne_total.approved.reindex(units).to_numpy(),
        "领导正职 核定/实配": pair(lead, "principal", ld), "领导副职 核定/实配": pair(lead, "deputy", ld),
        "高": sev.high.to_numpy(), "中": sev.medium.to_numpy(), "提示": sev["info"].to_numpy(),
        "问题": codes.reindex(units).fillna("").to_numpy(),
    })
    types = [t for t in QUOTA_ORDER if ("approved", t) in est.columns] + sorted({t for _, t in est.columns} - set(QUOTA_ORDER))
    for t in types:   # each quota type's approved / actual, after the totals; :func:`_units_of` drops a type its jurisdiction lacks
        table[f"{C.QUOTA_LABEL.get(t, t)} 核定/实有"] = pair(est, t, q)
    return table.sort_values(["jurisdiction", "高", "中", "提示", "超编", "单位代码"],
                             ascending=[True, False, False, False, False, True], ignore_index=True)


def _units_of(table: pd.DataFrame) -> pd.DataFrame:
    """One jurisdiction's rows of :func:`_per_unit`'s table: without the jurisdiction, and without
    the quota types it has no unit of (their column blank in every row)."""
    blank = [c for c in table.columns if c.endswith(" 核定/实有") and not table[c].astype(bool).any()]
    return table.drop(columns=["jurisdiction", *blank]).reset_index(drop=True)


def _charts(t: dict, directory: Path, L: dict, zh: bool, periods: list[str]) -> dict:
    q = t["quota"].drop(index="total")
    out = {}
    qlabels = [C.QUOTA_LABEL.get(i, i).replace("编制", "") if zh else i for i in q.index]
    out["quota"] = charts.paired_bars(directory / "quota.png", L["quota"], qlabels, q.approved.tolist(), q.actual.tolist(),
                                      (L["approved"], L["actual"]))
    cats = {(POST_LABEL.get(k, k) if zh else k): float(v) for k, v in t["by_post"].items()}
    out["non_establishment"] = charts.stacked_against_cap(directory / "non_establishment.png", L["ne"], cats,
                                                          t["cap"]["cap"], (L["cap"], L["actual"]))
    ld = t["leaders"]
    out["leaders"] = charts.paired_bars(directory / "leaders.png", L["leaders"],
                                        [C.LEVEL_LABEL[i] if zh else i for i in ld.index], ld.approved.tolist(),
                                        ld.actual.tolist(), (L["approved"], L["actual"]))
    sev = t["by_severity"]
    out["trend"] = charts.trend(directory / "trend.png", L["trend"], periods,
                                {(C.SEVERITY_LABEL[s] if zh else s): sev.loc[s].tolist() for s in sev.index})
    cur = t["by_code"][t["period"]] if t["period"] in t["by_code"].columns else pd.Series(dtype=int)
    cur = cur[cur > 0].sort_values(ascending=False)
    out["codes"] = charts.horizontal_bars(directory / "codes.png", L["codes"],
                                          [(C.LABEL[c] if zh else c) for c in cur.index], cur.tolist(),
                                          [charts.COLOURS[C_SEVERITY[c]] for c in cur.index])
    return out


def _img(path: str) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _pct(x) -> str:
    return "—" if pd.isna(x) else f"{x:.1%}"


UNITS_SHOWN = 30    # units with findings listed in the HTML report; all of them are in the workbook


def _est_gap_note(g: dict) -> str:
    """Why the two 在编 figures of the headline differ, in numbers."""
    gap = g["staffing"] - g["roster"]
    text = (f"“实有在编” {g['staffing']:,} 人是编办实名制口径：各单位在编人数之和，含自收自支单位，一人在两个单位的各计一次；"
            f"“财政供养人员·编制内” {g['roster']:,} 人是花名册口径：由财政供养的每人只计一次。")
    if gap:
        text += (f"两者相差 {gap:,} 人：自收自支单位在编 {g['self_funded']:,} 人"
                 f"（不由财政供养，不入花名册），其他 {g['other']:,} 人（一人多编的重复计数、自收自支单位人员由财政发薪、"
                 "按首个单位归入其他区划的人员）。")
    return text


def _unit_list(df: pd.DataFrame, columns: list[tuple[str, str]]) -> str:
    """A list of units (over the cap, over leader posts) like the list of units over quota."""
    if df.empty:
        return ""
    e = html.escape
    h = ["<table><tr><th class='l'>单位</th>" + "".join(f"<th>{e(label)}</th>" for label, _ in columns) + "</tr>"]
    for r in df.to_dict("records"):
        cells = "".join(f"<td class='{'bad' if col == 'excess' else ''}'>{e(str(r[col]))}</td>" for _, col in columns)
        h.append(f"<tr><td class='l'>{e(r['unit_name'])}（{r['unit_code']}）</td>{cells}</tr>")
    h.append("</table>")
    return "".join(h)


def _html(name: str, region: str, period: str, t: dict, pngs: dict) -> str:
    e = html.escape
    q, ld, cap = t["quota"], t["leaders"], t["cap"]
    total = q.loc["total"]
    classes = t["classes"]
    h = [f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{e(name)} 数据月报 {period}</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px auto;max-width:1000px;color:#222}}
h1{{font-size:22px;border-bottom:3px solid #1f4e79;padding-bottom:6px}} h2{{font-size:17px;color:#1f4e79;margin-top:28px}}
table{{border-collapse:collapse;margin:8px 0;font-size:13px}} th,td{{border:1px solid #bbb;padding:4px 8px;text-align:right}}
th{{background:#eef3f8}} td.l,th.l{{text-align:left}} .kpi{{display:flex;gap:12px;flex-wrap:wrap}}
.kpi div{{border:1px solid #ccd;border-radius:6px;padding:8px 14px;min-width:120px}} .kpi b{{display:block;font-size:20px}}
.bad{{color:#c0392b}} img{{max-width:100%}} .note{{color:#666;font-size:12px}}</style></head><body>
<h1>{e(name)}（{region}）机构编制数据月报 · {period}</h1>
<div class="kpi"><div>核定编制<b>{int(total.approved):,}</b></div><div>实有在编<b>{int(total.actual):,}</b></div>
<div>空编<b>{int(total.vacant):,}</b>空编率 {_pct(total.vacancy_rate)}</div>
<div>超编单位<b class="{'bad' if total.units_over else ''}">{int(total.units_over):,}</b></div>
<div>编外人员<b>{cap['actual']:,}</b>控制数 {cap['cap']:,}</div>
<div>财政供养人员<b>{int(classes.sum()):,}</b>{'，'.join(f'{CLASS_LABEL[k]} {v:,}' for k, v in classes.items() if v)}</div></div>
<p class="note">{e(_est_gap_note(t["est_gap"]))}</p>
<h2>一、编制核定与实有</h2><img src="{_img(pngs['quota'])}" alt="编制核定数与实有人数">
<table><tr><th class="l">编制类型</th><th>核定</th><th>实有</th><th>空编</th><th>超编</th><th>空编率</th><th>超编单位数</th></tr>"""]
    for item, r in q.iterrows():
        label = "合计" if item == "total" else C.QUOTA_LABEL.get(item, item)
        h.append(f"<tr><td class='l'>{e(label)}</td><td>{int(r.approved):,}</td><td>{int(r.actual):,}</td><td>{int(r.vacant):,}</td>"
                 f"<td class='{'bad' if r.excess else ''}'>{int(r.excess):,}</td><td>{_pct(r.vacancy_rate)}</td><td>{int(r.units_over)}</td></tr>")
    h.append("</table><p class='note'>空编、超编按单位逐一计算后汇总：一个单位的空编不抵另一个单位的超编。</p>")
    ou = t["over_units"]
    if len(ou):
        h.append("<h2>二、超编单位</h2><table><tr><th class='l'>单位</th><th class='l'>编制类型</th><th>核定</th><th>实有</th><th>超编</th></tr>")
        for r in ou.itertuples():
            h.append(f"<tr><td class='l'>{e(r.unit_name)}（{r.unit_code}）</td><td class='l'>{e(r.quota_type)}</td>"
                     f"<td>{int(r.approved)}</td><td>{int(r.actual)}</td><td class='bad'>{int(r.excess)}</td></tr>")
        h.append("</table>")
    else:
        h.append("<h2>二、超编单位</h2><p>本期无超编单位。</p>")
    h.append(f"<h2>三、编外人员与控制数</h2><img src=\"{_img(pngs['non_establishment'])}\" alt=\"编外人员与控制数\">"
             "<table><tr><th class='l'>岗位类别</th><th>人数</th></tr>")
    for k, v in t["by_post"].items():
        h.append(f"<tr><td class='l'>{e(POST_LABEL.get(k, k))}</td><td>{int(v):,}</td></tr>")
    h.append(f"<tr><th class='l'>合计 / 控制数</th><th>{cap['actual']:,} / {cap['cap']:,}</th></tr></table>"
             f"<p>超控制数单位：<b class=\"{'bad' if cap['units_over'] else ''}\">{cap['units_over']}</b> 个。"
             "人事、财务、涉密岗位不得使用编外人员。</p>")
    h.append(_unit_list(t["over_cap"], [("控制数", "cap"), ("编外实有", "actual"), ("超控制数", "excess")]))
    h.append(f"<h2>四、领导职数</h2><img src=\"{_img(pngs['leaders'])}\" alt=\"领导职数\"><table><tr><th class='l'>职级</th>"
             "<th>核定职数</th><th>实配</th><th>超配</th><th>超配单位数</th></tr>")
    for item, r in ld.iterrows():
        h.append(f"<tr><td class='l'>{C.LEVEL_LABEL[item]}</td><td>{r.approved:,}</td><td>{r.actual:,}</td>"
                 f"<td class='{'bad' if r.excess else ''}'>{r.excess:,}</td><td>{r.units_over}</td></tr>")
    h.append("</table>")
    h.append(_unit_list(t["over_leaders"], [("职级", "level"), ("核定职数", "approved"), ("实配", "actual"), ("超配", "excess")]))
    h.append(f"<h2>五、核查问题及趋势</h2><img src=\"{_img(pngs['trend'])}\" alt=\"问题趋势\">"
             f"<img src=\"{_img(pngs['codes'])}\" alt=\"本期问题\"><table><tr><th class='l'>问题</th><th class='l'>严重程度</th>")
    bc = t["by_code"]
    h.extend(f"<th>{p}</th>" for p in bc.columns)
    h.append("<th>本期已说明</th></tr>")
    for code, r in bc.iterrows():
        h.append(f"<tr><td class='l'>{e(C.LABEL[code])} <small>{code}</small></td><td class='l'>{C.SEVERITY_LABEL[C_SEVERITY[code]]}</td>"
                 + "".join(f"<td>{v:,}</td>" for v in r) + f"<td>{int(t['explained'].get(code, 0)):,}</td></tr>")
    h.append("</table><p class='note'>本期已说明：编办已说明为合理例外（借调、周转池、弹性延迟退休等）且在说明有效期内的问题，"
             "仍计入各期数字，单列于此，不要求处理。</p>")
    pu = t["per_unit"]
    flagged = pu[(pu["高"] + pu["中"] + pu["提示"]) > 0]
    h.append(f"<h2>六、单位明细</h2><p>本期有核查问题的单位 {len(flagged)} 个（共 {len(pu)} 个单位），按高、中、提示问题数排列"
             + (f"，下表列前 {UNITS_SHOWN} 个" if len(flagged) > UNITS_SHOWN else "") + "；全部单位见 Excel 工作簿“单位明细”页。</p>")
    if len(flagged):
        cols = ["单位", "核定编制", "实有在编", "空编率", "编外人员/控制数", "领导正职 核定/实配", "领导副职 核定/实配", "高", "中", "提示", "问题"]
        h.append("<table><tr>" + "".join(f"<th class='{'l' if c in ('单位', '问题') else ''}'>{c}</th>" for c in cols) + "</tr>")
        for r in flagged.head(UNITS_SHOWN).to_dict("records"):
            cap = r["编外控制数"]
            cap_txt = f"{r['编外人员']:,} / " + ("—" if pd.isna(cap) else f"{int(cap):,}")
            h.append(f"<tr><td class='l'>{e(r['单位名称'])}（{r['单位代码']}）</td><td>{r['核定编制']:,}</td><td>{r['实有在编']:,}</td>"
                     f"<td>{_pct(r['空编率'])}</td><td>{cap_txt}</td><td>{r['领导正职 核定/实配']}</td><td>{r['领导副职 核定/实配']}</td>"
                     f"<td class='{'bad' if r['高'] else ''}'>{r['高']}</td><td>{r['中']}</td><td>{r['提示']}</td>"
                     f"<td class='l'>{e(r['问题'])}</td></tr>")
        h.append("</table>")
    h.append("<p class='note'>各期数字为当期发布时的核查结果。问题明细与处理要求见各编办收到的核查提醒邮件。"
             f"生成于 {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC，roster-sync。</p></body></html>")
    return "".join(h)


def _xlsx(path: Path, name: str, region: str, period: str, t: dict) -> None:
    """The report's workbook, written column by column (:mod:`include.pipeline.xlsx`): a province's
    单位明细 holds every unit of it (27,000 at 1M persons), which openpyxl took 9 s a report to write."""
    import io

    from include.pipeline.xlsx import Sheet, Table, write_workbook

    total = t["quota"].loc["total"]
    g = t["est_gap"]
    overview = pd.DataFrame([
        ["核定编制", int(total.approved)], ["实有在编（编办实名制口径）", int(total.actual)], ["空编", int(total.vacant)],
        ["超编单位数", int(total.units_over)], ["编外人员", t["cap"]["actual"]], ["编外控制数", t["cap"]["cap"]],
        ["超控制数单位", t["cap"]["units_over"]],
        *[[f"财政供养人员：{CLASS_LABEL[k]}（花名册口径）", int(v)] for k, v in t["classes"].items()],
        ["两个在编数之差：自收自支单位在编", g["self_funded"]], ["两个在编数之差：其他", g["other"]],
    ], columns=["项目", "数值"])
    rate = pd.DataFrame({"项目": ["空编率"], "比率": [None if pd.isna(total.vacancy_rate) else float(total.vacancy_rate)]})
    q = t["quota"]
    ou = t["over_units"]
    bc = t["by_code"]
    sheets = [
        Sheet("概览", [Table(overview, {"数值": "int"}, title=f"{name}（{region}）机构编制数据月报 {period}"),
                     Table(rate, {"比率": "rate"}), Table(pd.DataFrame({"说明": [_est_gap_note(g)]}), {"说明": "wrap"})]),
        Sheet("编制", [Table(pd.DataFrame(
            [["合计" if i == "total" else C.QUOTA_LABEL.get(i, i), int(r.approved), int(r.actual), int(r.vacant),
              int(r.excess), None if pd.isna(r.vacancy_rate) else float(r.vacancy_rate), int(r.units_over)]
             for i, r in q.iterrows()],
            columns=["编制类型", "核定", "实有", "空编", "超编", "空编率", "超编单位数"]),
            {"核定": "int", "实有": "int", "空编": "int", "超编": "int", "空编率": "rate", "超编单位数": "int"})]),
        Sheet("超编单位", [Table(pd.DataFrame(
            [[r.unit_code, r.unit_name, r.quota_type, int(r.approved), int(r.actual), int(r.excess)] for r in ou.itertuples()],
            columns=["单位代码", "单位名称", "编制类型", "核定", "实有", "超编"]), {"单位代码": "text"})]),
        Sheet("编外人员", [Table(pd.DataFrame(
            [[POST_LABEL.get(k, k), int(v)] for k, v in t["by_post"].items()]
            + [["合计", t["cap"]["actual"]], ["控制数", t["cap"]["cap"]], ["超控制数单位", t["cap"]["units_over"]]],
            columns=["岗位类别", "人数"]), {"人数": "int"})]),
        Sheet("超控制数单位", [Table(t["over_cap"].rename(columns={
            "unit_code": "单位代码", "unit_name": "单位名称", "cap": "控制数", "actual": "编外实有", "excess": "超控制数"}),
            {"单位代码": "text"})]),
        Sheet("领导职数", [Table(pd.DataFrame(
            [[C.LEVEL_LABEL[i], int(r.approved), int(r.actual), int(r.excess), int(r.units_over)]
             for i, r in t["leaders"].iterrows()],
            columns=["职级", "核定职数", "实配", "超配", "超配单位数"]))]),
        Sheet("超职数单位", [Table(t["over_leaders"].rename(columns={
            "unit_code": "单位代码", "unit_name": "单位名称", "level": "职级", "approved": "核定职数", "actual": "实配",
            "excess": "超配"}), {"单位代码": "text"})]),
        Sheet("单位明细", [Table(t["per_unit"], {"单位代码": "text", "核定编制": "int", "实有在编": "int", "空编": "int",
                                                "超编": "int", "空编率": "rate", "编外人员": "int", "编外控制数": "int"})],
              freeze_columns=2),
        Sheet("核查问题", [Table(pd.DataFrame(
            [[C.LABEL[c], c, C.SEVERITY_LABEL[C_SEVERITY[c]], *map(int, r), int(t["explained"].get(c, 0))]
             for c, r in bc.iterrows()],
            columns=["问题", "代码", "严重程度", *bc.columns, "本期已说明"]))]),
    ]
    buf = io.BytesIO()
    write_workbook(sheets, buf)
    _atomic_write(path, buf.getvalue())


def _rows(region: str, period: str, t: dict) -> list[dict]:
    def row(section, item, approved=None, actual=None, vacant=None, excess=None):
        return {"period": period, "region_code": region, "section": section, "item": item,
                "approved": None if approved is None or pd.isna(approved) else int(approved),
                "actual": None if actual is None else int(actual),
                "vacant": None if vacant is None else int(vacant), "excess": None if excess is None else int(excess)}
    rows = [row("quota", i, r.approved, r.actual, r.vacant, r.excess) for i, r in t["quota"].iterrows()]
    rows += [row("non_establishment", k, None, v) for k, v in t["by_post"].items()]
    rows.append(row("non_establishment", "total", t["cap"]["cap"], t["cap"]["actual"], None,
                    max(0, t["cap"]["actual"] - t["cap"]["cap"])))
    rows += [row("leader_posts", i, r.approved, r.actual, None, r.excess) for i, r in t["leaders"].iterrows()]
    cur = t["by_code"][period] if period in t["by_code"].columns else pd.Series(dtype=int)
    rows += [row("findings", c, None, v) for c, v in cur.items()]
    rows += [row("findings_explained", c, None, v) for c, v in t["explained"].items() if v]
    rows += [row("roster", k, None, v) for k, v in t["classes"].items()]
    return rows


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
