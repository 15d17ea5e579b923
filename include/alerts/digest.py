"""One digest per staffing office per run: what is new, what is still open, what was resolved.

An office is told of a finding once, when it opens (or reopens), and once more when it is
resolved; in between it is only counted under "still open", with its age. What each office
was told is recorded in ``roster_db`` (tables ``digest_log`` and ``digest_item``), so a
rerun of a run, or a retry of the task, finds nothing new to tell and sends nothing.

Who is told what:

* **new**: open alerts routed to the office (:mod:`include.alerts.routing`) whose latest
  ``opened``/``reopened`` event the office has not been told;
* **resolved**: alerts whose ``resolved`` event the office has not been told, and whose
  opening it *was* told (an office hears of the end of what it heard of, even when the
  routing changed since);
* **still open**: the other open alerts routed to it, counted by severity and code, with
  the age in periods since ``first_seen``.

An office with nothing new and nothing resolved gets no mail: a digest that says nothing
new every day is a digest nobody reads.

Delivery is at least once: the digests are sent, then recorded, in one transaction that
holds the writers' lock of ``roster_db`` (two digest runs never both send). A crash
between sending and the commit resends them on the retry, with the same Message-ID (a
function of the digest's content), which mail systems show once.

Person IDs appear masked (first 6 and last 4 characters); the mail builder redacts any
ID-shaped number left in the text as a second line of defence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import logging
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from include import periods as P
from include import settings
from include.alerts import codes as C
from include.alerts import evidence as E
from include.alerts import mail
from include.alerts.routing import Routing
from include.identifiers import mask_id, mask_id_series, why_invalid
from include.workspace.service import REASON_LABEL, answer_words
from include.pipeline.publish import alert_table, ensure_schema, event_table, metadata, roster_table

log = logging.getLogger("roster_sync.alerts")

digest_log = sa.Table(
    "digest_log", metadata,
    sa.Column("digest_id", sa.String(24), primary_key=True), sa.Column("office_code", sa.String(6), nullable=False),
    sa.Column("period", sa.String(7), nullable=False), sa.Column("run_id", sa.String(250)),
    sa.Column("sent_at", sa.DateTime(timezone=True)), sa.Column("channel", sa.String(10)),
    sa.Column("location", sa.Text), sa.Column("recipients", sa.Text),
    sa.Column("new", sa.Integer), sa.Column("still_open", sa.Integer), sa.Column("resolved", sa.Integer),
)
digest_item = sa.Table(
    "digest_item", metadata,
    sa.Column("office_code", sa.String(6), primary_key=True), sa.Column("alert_key", sa.String(32), primary_key=True),
    sa.Column("event", sa.String(24), primary_key=True), sa.Column("event_period", sa.String(7), primary_key=True),
    sa.Column("digest_id", sa.String(24), nullable=False),
)
OPENING = ("opened", "reopened")
TOLD = ("new", "expired", "resolved")     # the parts of a plan whose items a digest tells (and records)


def plan(conn, routing: Routing, period: str | None = None) -> dict[str, dict]:
    """What each office is to be told now: ``{office: {"new", "expired", "resolved", "open",
    "explained"}}`` (data frames).

    An open finding the office explained (disposition ``explained``) is counted apart while
    its ``until`` is not before ``period`` and is not asked of the office; in the first
    period after ``until`` in which it still holds it is told again once, as
    ``explanation_expired`` (OUTPUTS.md "What the offices say")."""
    alerts = pd.read_sql(sa.select(alert_table), conn)
    events = pd.read_sql(sa.select(event_table), conn)
    told = pd.read_sql(sa.select(digest_item), conn)
    if alerts.empty:
        return {}
    alerts["office_code"] = routing.route(alerts.region_code)
    ev = events.sort_values("period", kind="stable")
    latest = {kind: (ev[sel].groupby("alert_key").last().reset_index()[["alert_key", "event", "period"]]
                     .rename(columns={"period": "event_period"}))
              for kind, sel in (("opening", ev.event.isin(OPENING)), ("closing", ev.event == "resolved"))}
    item = ["office_code", "alert_key", "event", "event_period"]

    def untold(df: pd.DataFrame):
        hit = df[item].merge(told[item].drop_duplicates().assign(_told=True), on=item, how="left")._told
        return hit.isna().to_numpy()

    open_ = alerts[alerts.status == "open"].merge(latest["opening"], on="alert_key", how="left")
    # An open alert without an opening event (written before events existed) is told as opened.
    open_["event"] = open_.event.fillna("opened")
    open_["event_period"] = open_.event_period.fillna(open_.first_seen)
    open_["is_new"] = untold(open_)
    # Explained: covered while until >= period; after it, told once more (explanation_expired).
    period = period or (open_.last_seen.max() if len(open_) else None)
    explained = (open_.disposition == "explained").to_numpy() & open_.disposition_until.notna().to_numpy()
    covered = explained & (open_.disposition_until.fillna("") >= (period or "")).to_numpy()
    lapsed = explained & ~covered
    # told of the lapse already: an explanation_expired item after the current until
    lapse = told[told.event == "explanation_expired"].merge(open_[["alert_key", "disposition_until"]], on="alert_key")
    lapse = lapse[lapse.event_period > lapse.disposition_until][["office_code", "alert_key"]].assign(_told=True)
    lapse_told = open_[["office_code", "alert_key"]].merge(lapse.drop_duplicates(), how="left")._told.notna().to_numpy()
    open_["is_expired"] = lapsed & ~lapse_told
    open_["is_covered"] = covered

    heard = told.loc[told.event.isin(OPENING), ["office_code", "alert_key"]].drop_duplicates()
    resolved = (alerts[alerts.status == "resolved"].drop(columns="office_code")
                .merge(latest["closing"], on="alert_key").merge(heard, on="alert_key"))
    resolved = resolved[untold(resolved)]

    out = {}
    for office in sorted(set(open_.office_code) | set(resolved.office_code)):
        mine = open_[open_.office_code == office]
        expired = mine[mine.is_expired]
        expired = expired.assign(opening_event=expired.event, opening_period=expired.event_period,
                                 event="explanation_expired", event_period=period)
        rest = mine[~mine.is_expired & ~mine.is_covered]
        out[office] = {"new": rest[rest.is_new], "expired": expired, "open": rest[~rest.is_new],
                       "explained": mine[mine.is_covered], "resolved": resolved[resolved.office_code == office]}
    return out


def digest_id(office: str, items: pd.DataFrame) -> str:
    keys = sorted(f"{k}|{e}|{p}" for k, e, p in zip(items.alert_key, items.event, items.event_period))
    return hashlib.sha256("\n".join([office, *keys]).encode()).hexdigest()[:24]


def send_digests(roster_url, period: str, routing: Routing, outbox, work_dir: str | None = None,
                 run_id: str | None = None, report_links: dict | None = None) -> dict:
    """Send each office its digest for ``period``; returns ``{office: {...counts, channel, location}}``.

    ``work_dir`` (the reconciled period's directory) supplies unit names; ``report_links``
    maps an office's region to its monthly report, linked from the digest.
    """
    from include.pipeline import database

    t0 = time.perf_counter()
    engine = database.engine(roster_url)
    ensure_schema(engine, tables=[alert_table, digest_log, digest_item, E.evidence_table])   # a roster_db of an earlier version
    sent = {}
    try:
        # One writer at a time (the publish lock): a second digest run, from a retry or a
        # second deployment, waits, then finds everything told and sends nothing.
        with database.writer(engine) as conn:
            todo = plan(conn, routing, period)
            workspace = settings.workspace_url()
            wanted = {i for parts in todo.values() for k in TOLD for i in parts[k].id_number.dropna()}
            names = _person_names(conn, period, wanted)
            lines = any(len(p[k]) for p in todo.values() for k in TOLD)   # else no line is written
            units = _unit_names(work_dir) if lines else {}
            records = _record_names(work_dir) if lines else {}
            for office_code, parts in todo.items():
                if all(parts[k].empty for k in TOLD):
                    continue
                office = routing.offices[office_code]
                # an explanation that lapses before the office heard of the opening: the opening is told with it
                heard_now = parts["expired"][parts["expired"].is_new][["alert_key", "opening_event", "opening_period"]] \
                    .rename(columns={"opening_event": "event", "opening_period": "event_period"})
                items = pd.concat([*[parts[k][["alert_key", "event", "event_period"]] for k in TOLD], heard_now],
                                  ignore_index=True)
                did = digest_id(office_code, items)
                # the records behind every finding the mail lists or attaches (open and resolved)
                ev = E.load(conn, pd.concat([parts[k][["alert_key", "last_seen"]] for k in (*TOLD, "open", "explained")]))
                msg = compose(office, period, parts, units, names, did, (report_links or {}).get(office_code), records, ev,
                              workspace)
                where = outbox.send(msg, f"digest_{period}_{office_code}_{did}")
                counts = {"new": len(parts["new"]), "still_open": len(parts["open"]), "resolved": len(parts["resolved"]),
                          "expired": len(parts["expired"]), "explained": len(parts["explained"])}
                conn.execute(digest_log.insert(), [{
                    "digest_id": did, "office_code": office_code, "period": period, "run_id": run_id,
                    "sent_at": dt.datetime.now(dt.timezone.utc), "channel": outbox.channel, "location": where,
                    "recipients": ", ".join([*office.to, *office.cc]),
                    **{k: counts[k] for k in ("new", "still_open", "resolved")}}])
                conn.execute(digest_item.insert(), [
                    {"office_code": office_code, "alert_key": k, "event": e, "event_period": p, "digest_id": did}
                    for k, e, p in zip(items.alert_key, items.event, items.event_period)])
                sent[office_code] = {**counts, "channel": outbox.channel, "location": where, "digest_id": did}
                log.info("digest %s to %s (%s): %d new, %d still open, %d resolved", did, office_code, office.name,
                         counts["new"], counts["still_open"], counts["resolved"])
    finally:
        outbox.close()
        engine.dispose()
    log.info("digests for %s: %d offices told in %.1fs; %d offices had nothing new", period, len(sent),
             time.perf_counter() - t0, len(todo) - len(sent))
    return sent


# --- content --------------------------------------------------------------------------------

def _unit_names(work_dir: str | None) -> dict:
    if not work_dir:
        return {}
    std = Path(work_dir) / "std"
    names = {}
    if (std / "budget_units.parquet").exists():
        b = pd.read_parquet(std / "budget_units.parquet", columns=["credit", "dwmc"]).dropna()
        names.update(zip(b.credit, b.dwmc))
    if (std / "units.parquet").exists():
        u = pd.read_parquet(std / "units.parquet", columns=["unit_code", "name"]).dropna()
        names.update(zip(u.unit_code, u.name))
    return names


def _person_names(conn, period: str, ids: set) -> dict:
    """Names for the persons a digest mentions only: from the period's roster, else from the
    latest earlier roster that has them (a resolved finding's person may have left the roster).

    One period at a time, latest first, each by the roster's key (period, id_number): asked for
    every period up to ``period`` at once, SQLite walked every earlier roster row through the
    (period, region) index, 6 s for 80 persons at 2M persons a period."""
    r = roster_table.c
    out, left = {}, sorted(ids)
    on = conn.execute(sa.select(sa.func.max(r.period)).where(r.period <= period)).scalar()
    while left and on is not None:
        for i in range(0, len(left), 500):
            out.update(conn.execute(sa.select(r.id_number, r.name).where(r.period == on, r.id_number.in_(left[i:i + 500]))).all())
        left = [i for i in left if i not in out]
        on = conn.execute(sa.select(sa.func.max(r.period)).where(r.period < on)).scalar()
    return out


def _record_names(work_dir: str | None) -> dict:
    """(source, raw value) -> the name on the record, for INVALID_ID lines (from the links)."""
    path = Path(work_dir) / "links.parquet" if work_dir else None
    if path is None or not path.exists():
        return {}
    links = pd.read_parquet(path)
    if "name_norm" not in links:
        return {}
    links = links.dropna(subset=["name_norm"]).sort_values(["source", "raw_trim", "rec_no"])
    return {(s, r): n for s, r, n in zip(links.source, links.raw_trim, links.name_norm)}


LINE_COLUMNS = ["severity", "unit", "code", "who", "what", "since", "alert_key", "records"]


def _lines(df: pd.DataFrame, units: dict, names: dict, records: dict | None = None,
           keys: dict | None = None) -> pd.DataFrame:
    """One display row per alert: severity, unit, code, who, what, and the records to look up
    (``keys``: alert key -> masked record keys). An INVALID_ID line names the record's name
    and where the number fails (``records``: the names on the records)."""
    if df.empty:
        return pd.DataFrame(columns=LINE_COLUMNS)
    records, keys = records or {}, keys or {}
    who = mask_id_series(df.id_number).where(df.id_number.notna(), "")
    who = [f"{names.get(i, '')} {w}".strip() if w else "" for i, w in zip(df.id_number, who)]
    raw = [mask_id(r) if isinstance(r, str) else None for r in df.raw_value]
    record_name = [records.get((s, r)) if isinstance(r, str) else None for s, r in zip(df.source, df.raw_value)]
    why = [why_invalid(r) if c == "INVALID_ID" and isinstance(r, str) else None for c, r in zip(df.code, df.raw_value)]
    what = [C.describe(c, d, q, lv, s, r, n, w, u if isinstance(u, str) else None) for c, d, q, lv, s, r, n, w, u in
            zip(df.code, df.details, df.quota_type, df.level, df.source, raw, record_name, why, df.unit_code)]
    unit = [f"{units.get(u, '')}（{u}）" if isinstance(u, str) else "（无单位）" for u in df.unit_code]
    out = pd.DataFrame({"severity": df.severity.to_numpy(), "unit": unit, "code": df.code.to_numpy(), "who": who,
                        "what": what, "since": df.first_seen.to_numpy(), "alert_key": df.alert_key.to_numpy(),
                        "records": [keys.get(k, "") for k in df.alert_key]})
    return out.sort_values(["severity", "unit", "code", "who"], key=lambda s: s.map(C.SEVERITY_ORDER) if s.name == "severity" else s)


def _age(first_seen: pd.Series, period: str) -> pd.Series:
    return first_seen.map(lambda f: P.months_between(f, period) + 1 if isinstance(f, str) else 1)


def compose(office, period: str, parts: dict, units: dict, names: dict, did: str, report_link: str | None,
            records: dict | None = None, evidence: pd.DataFrame | None = None, workspace: str | None = None):
    new, resolved, still = parts["new"], parts["resolved"], parts["open"]
    expired = parts.get("expired", new.iloc[0:0])
    explained = parts.get("explained", new.iloc[0:0])
    subject = (f"[全口径财政供养人员] {office.name} {period} 核查提醒：新增 {len(new)}，"
               f"仍未整改 {len(still)}，已整改 {len(resolved)}"
               + (f"，说明到期 {len(expired)}" if len(expired) else "") + (f"，已说明 {len(explained)}" if len(explained) else ""))
    evidence = evidence if evidence is not None else pd.DataFrame(columns=["alert_key", "source", "record_key", "facts"])
    keys = E.keys_line(evidence)
    new_l, res_l = _lines(new, units, names, records, keys), _lines(resolved, units, names, records, keys)
    exp_l = _lines(expired, units, names, records, keys)
    if len(exp_l):   # say until when the explanation ran, and why it was given
        until = dict(zip(expired.alert_key, expired.disposition_until))
        reason = dict(zip(expired.alert_key, expired.disposition_reason))
        exp_l["what"] = [f"{w}；原说明（{REASON_LABEL.get(reason.get(k), reason.get(k) or '')}）有效至 {until.get(k)}，已到期"
                         for w, k in zip(exp_l.what, exp_l.alert_key)]
    still_counts = pd.DataFrame(columns=["severity", "code", "n", "oldest"])
    if not still.empty:
        s = still.assign(age=_age(still.first_seen, period).to_numpy())
        still_counts = (s.groupby(["severity", "code"]).agg(n=("alert_key", "size"), oldest=("age", "max")).reset_index()
                        .sort_values(["severity", "code"], key=lambda c: c.map(C.SEVERITY_ORDER) if c.name == "severity" else c))
    text = [f"{office.name}：", "",
            f"{period} 期全口径财政供养人员核查结果（roster-sync）：新增 {len(new)} 条，仍未整改 {len(still)} 条，"
            f"自上次通知以来已整改 {len(resolved)} 条。", ""]
    h = [f"<html><body style='font-family:sans-serif;font-size:14px'><p>{html.escape(office.name)}：</p>",
         f"<p>{period} 期全口径财政供养人员核查结果：<b>新增 {len(new)}</b> 条，仍未整改 {len(still)} 条，"
         f"自上次通知以来已整改 {len(resolved)} 条。</p>"]

    def section(title: str, lines: pd.DataFrame, with_action: bool):
        if lines.empty:
            return
        text.append(f"== {title}（{len(lines)}）")
        h.append(f"<h3>{html.escape(title)}（{len(lines)}）</h3>")
        for sev, by_sev in lines.groupby("severity", sort=False):
            text.append(f"-- 严重程度：{C.SEVERITY_LABEL.get(sev, sev)}（{len(by_sev)}）")
            h.append(f"<h4>严重程度：{C.SEVERITY_LABEL.get(sev, sev)}（{len(by_sev)}）</h4><table border='1' cellspacing='0' "
                     "cellpadding='4' style='border-collapse:collapse'><tr><th>单位</th><th>问题</th><th>人员</th>"
                     "<th>情况</th><th>源系统记录</th><th>首次发现</th></tr>")
            for unit, by_unit in by_sev.groupby("unit", sort=False):
                text.append(f"   {unit}")
                for r in by_unit.itertuples():
                    label = f"{C.LABEL.get(r.code, r.code)} {r.code}"
                    text.append(f"     - {label}{'：' + r.who if r.who else ''}；{r.what}（首次发现 {r.since}）")
                    if r.records:
                        text.append(f"       记录：{r.records}")
                    link = f"{workspace}/alerts/{r.alert_key}" if workspace else None
                    if link:
                        text.append(f"       查看与答复：{link}")
                    shown = (f"<a href='{html.escape(link)}'>{html.escape(label)}</a>" if link else html.escape(label))
                    h.append(f"<tr><td>{html.escape(unit)}</td><td>{shown}</td><td>{html.escape(r.who)}</td>"
                             f"<td style='min-width:320px'>{html.escape(r.what)}</td><td style='font-size:12px;max-width:300px'>{html.escape(r.records)}</td>"
                             f"<td>{r.since}</td></tr>")
            h.append("</table>")
        if with_action:
            todo = [c for c in C.LABEL if c in set(lines.code)]
            text.append("   处理要求：")
            h.append("<p>处理要求：</p><ul>")
            for c in todo:
                text.append(f"     {C.LABEL[c]}：{C.ACTION[c]}")
                h.append(f"<li><b>{html.escape(C.LABEL[c])}</b>：{html.escape(C.ACTION[c])}</li>")
            h.append("</ul>")
        text.append("")

    section("新增问题", new_l, True)
    section("说明已到期，请重新处理", exp_l, True)
    if len(explained):   # counted apart while the explanation covers the period: nothing is asked
        counts = explained.groupby("code").size()
        shown = "、".join(f"{C.LABEL.get(c, c)} {n} 条" for c, n in counts.items())
        text += [f"== 已说明（{len(explained)}），说明有效期内不再提醒：{shown}", ""]
        h.append(f"<h3>已说明（{len(explained)}）</h3><p>说明有效期内不再提醒：{html.escape(shown)}</p>")
    if not still_counts.empty:
        text.append(f"== 仍未整改（{len(still)}），按问题计数")
        h.append(f"<h3>仍未整改（{len(still)}）</h3><table border='1' cellspacing='0' cellpadding='4' "
                 "style='border-collapse:collapse'><tr><th>严重程度</th><th>问题</th><th>条数</th><th>最长已持续（期）</th></tr>")
        for r in still_counts.itertuples():
            text.append(f"   {C.SEVERITY_LABEL.get(r.severity, r.severity)} {C.LABEL.get(r.code, r.code)} {r.code}：{r.n} 条，最长已持续 {r.oldest} 期")
            h.append(f"<tr><td>{C.SEVERITY_LABEL.get(r.severity, r.severity)}</td><td>{html.escape(C.LABEL.get(r.code, r.code))} {r.code}</td>"
                     f"<td>{r.n}</td><td>{r.oldest}</td></tr>")
        h.append("</table>")
        text.append("")
    section("已整改（不再发现）", res_l, False)
    attachment = None
    open_all = pd.concat([new, expired, still, explained], ignore_index=True)
    if not open_all.empty:
        name = f"未整改问题_{office.region_code}_{period}.xlsx"
        attachment = (name, open_findings_workbook(open_all, set(new.alert_key), units, names, records, evidence, period))
        text.append(f"附件《{name}》列出全部 {len(open_all)} 条未整改问题及其源系统记录（每种记录一页）。")
        h.append(f"<p>附件《{html.escape(name)}》列出全部 {len(open_all)} 条未整改问题及其源系统记录（每种记录一页）。</p>")
    how = ("如何答复：在编办工作台打开问题，选择“已知悉”（正在处理）、“已说明”（合理例外，选择理由并填写有效至，"
           "有效期内不再提醒）或“有异议”（源系统数据有误）。")
    if workspace:
        text.append(f"{how}编办工作台：{workspace}/")
        h.append(f"<p>{html.escape(how)}编办工作台：<a href='{html.escape(workspace)}/'>{html.escape(workspace)}/</a></p>")
    footer = ("身份证号仅显示前6位和后4位。本邮件由全口径财政供养人员数据库（roster-sync）自动发送；"
              "问题明细见 roster_db 的 reconciliation_alert 表，源系统记录见 alert_evidence 表。")
    if report_link:
        text.append(f"本期数据月报：{report_link}")
        h.append(f"<p>本期数据月报：{html.escape(report_link)}</p>")
    text.append(footer)
    h.append(f"<p style='color:#666'>{html.escape(footer)}</p></body></html>")
    return mail.build(subject, "\n".join(text), "".join(h), office.to, office.cc, message_id=f"digest-{did}",
                      headers={"X-Roster-Sync-Digest": did, "X-Roster-Sync-Office": office.region_code,
                               "X-Roster-Sync-Period": period},
                      attachments=[attachment] if attachment else [])


def open_findings_workbook(open_all: pd.DataFrame, new_keys: set, units: dict, names: dict, records: dict,
                           evidence: pd.DataFrame, period: str) -> bytes:
    """The office's open findings, one row each, and their records, one sheet per kind of
    record with the record's fields as received; every ID masked (:mod:`include.alerts.evidence`)."""
    from include.report import workbook as W

    lines = _lines(open_all, units, names, records)
    answers = ({k: answer_words(d, r, u) for k, d, r, u in zip(open_all.alert_key, open_all.disposition,
                                                                open_all.disposition_reason, open_all.disposition_until)}
               if "disposition" in open_all else {})
    counts = evidence.groupby("alert_key").size() if len(evidence) else pd.Series(dtype=int)
    age = dict(zip(open_all.alert_key, _age(open_all.first_seen, period)))
    table = pd.DataFrame({
        "严重程度": lines.severity.map(C.SEVERITY_LABEL).to_numpy(), "问题": lines.code.map(C.LABEL).to_numpy(),
        "代码": lines.code.to_numpy(), "单位": lines.unit.to_numpy(), "人员": lines.who.to_numpy(),
        "情况": lines.what.to_numpy(), "首次发现": lines.since.to_numpy(),
        "已持续（期）": lines.alert_key.map(age).to_numpy(),
        "本期新增": ["是" if k in new_keys else "" for k in lines.alert_key],
        "源系统记录（条）": lines.alert_key.map(counts).fillna(0).astype(int).to_numpy(),
        "编办答复": [answers.get(k, "") for k in lines.alert_key],
        "问题编号": lines.alert_key.to_numpy(),
    })
    wb = W.new_workbook()
    W.add_sheet(wb, "未整改问题", table, {"已持续（期）": "int", "源系统记录（条）": "int"},
                note=f"{period} 期仍未整改的问题（{len(table)} 条）。身份证号仅显示前6位和后4位；"
                     "各问题的源系统记录见后面各页，按“问题编号”对应。")
    about = {k: {"问题编号": k, "问题": C.LABEL.get(c, c), "单位": u, "人员": w}
             for k, c, u, w in zip(lines.alert_key, lines.code, lines.unit, lines.who)}
    mine = evidence[evidence.alert_key.isin(set(open_all.alert_key))]
    for title, sheet in E.sheets(mine, about).items():
        W.add_sheet(wb, title, sheet)
    return W.to_bytes(wb)
