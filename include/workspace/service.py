"""The workspace's rules over ``roster_db``: who sees which finding, what an answer may say,
and what is recorded (OUTPUTS.md "What the offices say", "Who may see and say what",
"The workspace API").

Every function takes an open connection and a :class:`Caller`; errors are
:class:`WorkspaceError` with the HTTP status and a message naming the field. A function
that writes is called inside a transaction and checks everything before it writes, so an
error writes nothing.

Contract readings (the most literal, written down here):

* ``period`` in the list means the findings found in that published period (their rows
  of ``reconciliation_finding``);
* a finding with no region (``region_code`` null) lies under no office's region: only an
  admin sees it;
* ``details`` is returned as the JSON it holds (an object), with any ID number in it masked
  in the list;
* ``office_code`` of a disposition is the caller's office whose region covers the finding
  (the nearest one), null for an admin who is no office's user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping

import sqlalchemy as sa

from include import periods as P
from include.alerts.routing import Routing, covers, region_prefix
from include.findings import CODES
from include.identifiers import mask_id, redact
from include.pipeline.publish import (
    DISPOSITION_COLUMNS, alert_table, audit_table, disposition_table, evidence_table, finding_table, publish_log,
    quarantine_table, unit_stats_table,
)

STATUSES = ("acknowledged", "explained", "disputed", "cleared")
# The reasons each status takes (OUTPUTS.md), with the office's words for them.
REASONS = {
    "explained": {"secondment": "借调/挂职", "turnover_pool": "周转池", "borrowed_quota": "预借编制",
                  "advance_hire": "提前用编", "flexible_retirement": "弹性延迟退休",
                  "pending_procedure": "手续办理中", "other": "其他"},
    "disputed": {"source_error": "源系统数据有误", "other": "其他"},
}
STATUS_LABEL = {"acknowledged": "已知悉，正在处理", "explained": "已说明（合理例外）", "disputed": "有异议（数据有误）",
                "cleared": "撤回答复"}
STATUS_WORD = {"acknowledged": "已知悉", "explained": "已说明", "disputed": "有异议", "cleared": "已撤回"}   # in a table cell
REASON_LABEL = {k: v for reasons in REASONS.values() for k, v in reasons.items()}
NOTE_MAX = 2000
UNTIL_MONTHS = 12           # an explanation covers at most 12 months after the finding's last_seen
LIST_LIMIT, LIST_MAX = 100, 1000
# OUTPUTS.md's filters, and two of ours: severity, and q (a name, or an ID number, for the search page)
LIST_PARAMS = ("period", "status", "code", "region", "unit", "disposition", "limit", "offset", "severity", "q")
DISPOSITION_FILTERS = ("acknowledged", "explained", "disputed", "none")
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_REGION = re.compile(r"\d{6}")
_UNIT = re.compile(r"[0-9A-Z]{1,18}")
_ID_LIKE = re.compile(r"\d{15}|\d{17}[\dX]")
SEVERITY_RANK = sa.case({"high": 0, "medium": 1, "info": 2}, value=alert_table.c.severity, else_=3)


class WorkspaceError(Exception):
    """``detail`` names the field (the API's message); ``zh`` says the same to a clerk, on a page."""
    status = 400

    def __init__(self, detail: str, zh: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.zh = zh or detail


class BadRequest(WorkspaceError):
    status = 400


class Forbidden(WorkspaceError):
    status = 403


class NotFound(WorkspaceError):
    status = 404


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asks: a login name, whether Airflow makes them an admin, and the regions of the
    offices that list them as users."""
    name: str
    admin: bool = False
    regions: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, admin: bool, routing: Routing) -> Caller:
        return cls(name, admin, tuple(routing.offices_of(name)))

    def sees(self, region_code) -> bool:
        return self.admin or any(covers(r, region_code) for r in self.regions)

    def office_for(self, region_code) -> str | None:
        """The caller's nearest office over ``region_code`` (the longest region code prefix)."""
        mine = [r for r in self.regions if covers(r, region_code)]
        return max(mine, key=lambda r: len(region_prefix(r))) if mine else None

    def scope(self):
        """The SQL condition on reconciliation_alert for what the caller sees."""
        if self.admin:
            return sa.true()
        if not self.regions:
            return sa.false()
        return sa.or_(*[alert_table.c.region_code.like(region_prefix(r) + "%") for r in self.regions])


# --- reading --------------------------------------------------------------------------------

def _masked_details(text: str | None):
    """The details as JSON, every ID number in them masked (DUPLICATE_IDENTITY's ``others``)."""
    if not text:
        return None
    d = json.loads(text)
    if isinstance(d, dict) and isinstance(d.get("others"), list):
        d["others"] = [mask_id(o) for o in d["others"]]
    return json.loads(redact(json.dumps(d, ensure_ascii=False)))


def _plain(row: Mapping) -> dict:
    """A database row as JSON-ready values (dates and times in ISO 8601)."""
    return {k: (v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else v) for k, v in row.items()}


def answer_words(disposition, reason, until) -> str:
    """An office's latest word in a few words, for a table cell: 已说明（借调/挂职） 至 2027-03."""
    if not isinstance(disposition, str):
        return ""
    return (STATUS_WORD.get(disposition, disposition) + (f"（{REASON_LABEL.get(reason, reason)}）" if isinstance(reason, str) else "")
            + (f" 至 {until}" if isinstance(until, str) else ""))


def _alert(row: Mapping, unmasked: bool) -> dict:
    out = _plain(row)
    if unmasked:
        out["details"] = json.loads(row["details"]) if row.get("details") else None
    else:
        out["id_number"] = mask_id(row["id_number"]) if row.get("id_number") else None
        out["raw_value"] = mask_id(row["raw_value"]) if row.get("raw_value") else None
        out["details"] = _masked_details(row.get("details"))
    return out


def _params(params: Mapping) -> dict:
    unknown = sorted(set(params) - set(LIST_PARAMS))
    if unknown:
        raise BadRequest(f"{unknown[0]}: not a parameter (use {', '.join(LIST_PARAMS)})")
    p = {k: (str(v).strip() if v is not None else None) for k, v in params.items() if v not in (None, "")}

    def check(name, ok, what):
        if name in p and not ok(p[name]):
            raise BadRequest(f"{name}: {p[name]!r} is not {what}")
    check("period", _PERIOD.fullmatch, "a period YYYY-MM")
    check("status", lambda v: v in ("open", "resolved"), "open or resolved")
    check("code", lambda v: v in CODES, "a finding code of OUTPUTS.md")
    check("region", _REGION.fullmatch, "a 6-digit region code")
    check("unit", _UNIT.fullmatch, "a unit credit code")
    check("disposition", lambda v: v in DISPOSITION_FILTERS, "one of " + ", ".join(DISPOSITION_FILTERS))
    check("severity", lambda v: v in ("high", "medium", "info"), "high, medium or info")
    check("q", lambda v: 0 < len(v) <= 50, "a name or an ID number (at most 50 characters)")
    for name, low, high in (("limit", 1, LIST_MAX), ("offset", 0, None)):
        if name in p:
            try:
                n = int(p[name])
            except ValueError:
                raise BadRequest(f"{name}: {p[name]!r} is not a whole number") from None
            if n < low or (high is not None and n > high):
                raise BadRequest(f"{name}: {n} is out of range ({low}{f'-{high}' if high else ' or more'})")
            p[name] = n
    return p


def list_alerts(conn, caller: Caller, params: Mapping | None = None) -> dict:
    """``{"total", "explained", "alerts"}``: the caller's findings, filtered, the open ones first and
    the most severe first among them, IDs masked."""
    p = _params(params or {})
    a = alert_table.c
    where = [caller.scope()]
    if "region" in p:
        if not caller.admin and not any(covers(r, p["region"]) for r in caller.regions):
            raise Forbidden(f"region: {p['region']} is not under your office's region")
        where.append(a.region_code.like(region_prefix(p["region"]) + "%"))
    if "period" in p:
        where.append(a.alert_key.in_(sa.select(finding_table.c.alert_key).where(finding_table.c.period == p["period"])))
    for name, column in (("status", a.status), ("code", a.code), ("unit", a.unit_code)):
        if name in p:
            where.append(column == p[name])
    if "disposition" in p:
        where.append(a.disposition.is_(None) if p["disposition"] == "none" else a.disposition == p["disposition"])
    if "severity" in p:
        where.append(a.severity == p["severity"])
    if "q" in p:   # an ID number (exactly, as resolved or as written) or part of a name
        q = p["q"].upper()
        where.append(sa.or_(a.id_number == q, a.raw_value == q) if _ID_LIKE.fullmatch(q) else a.name.contains(p["q"], autoescape=True))
    total, explained = conn.execute(sa.select(sa.func.count(), sa.func.count().filter(a.disposition == "explained"))
                                    .select_from(alert_table).where(*where)).one()
    rows = conn.execute(sa.select(alert_table).where(*where)
                        .order_by(a.status, SEVERITY_RANK, a.region_code, a.unit_code, a.code, a.alert_key)   # open first
                        .limit(p.get("limit", LIST_LIMIT)).offset(p.get("offset", 0))).mappings().all()
    # explained: how many of them an office explained (counted apart: OUTPUTS.md "What the offices say")
    return {"total": total, "explained": explained, "alerts": [_alert(r, unmasked=False) for r in rows]}


def _find(conn, caller: Caller, alert_key: str) -> Mapping:
    if not isinstance(alert_key, str) or not re.fullmatch(r"[0-9a-f]{1,32}", alert_key):
        raise NotFound(f"alert_key: {alert_key!r} is no finding")
    row = conn.execute(sa.select(alert_table).where(alert_table.c.alert_key == alert_key)).mappings().first()
    if row is None:
        raise NotFound(f"alert_key: {alert_key} is no finding", "没有这条问题")
    if not caller.sees(row["region_code"]):
        raise Forbidden(f"alert_key: {alert_key} is a finding of region {row['region_code'] or '(none)'}, "
                        "not under your office's region",
                        f"这条问题属于区划 {row['region_code'] or '（无）'}，不在本编办所辖范围内")
    return row


def dispositions(conn, alert_key: str) -> list[dict]:
    rows = conn.execute(sa.select(disposition_table).where(disposition_table.c.alert_key == alert_key)
                        .order_by(disposition_table.c.id)).mappings().all()
    return [_plain(r) for r in rows]


def get_alert(conn, caller: Caller, alert_key: str, now: dt.datetime | None = None) -> dict:
    """The finding (ID unmasked: the caller's region covers it), its evidence of its
    ``last_seen`` period and its dispositions, oldest first. Viewing an unmasked ID is
    recorded in ``workspace_audit``; call inside a transaction."""
    row = _find(conn, caller, alert_key)
    e = evidence_table.c
    evidence = [{"source": r.source, "record_key": r.record_key, "facts": json.loads(r.facts) if r.facts else None}
                for r in conn.execute(sa.select(e.source, e.record_key, e.facts).where(
                    e.alert_key == alert_key, e.period == row["last_seen"]).order_by(e.source, e.record_key))]
    if row["id_number"] or row["raw_value"]:
        conn.execute(audit_table.insert().values(at=now or dt.datetime.now(dt.timezone.utc), actor=caller.name,
                                                 action="view_id", alert_key=alert_key))
    return {**_alert(row, unmasked=True), "evidence": evidence, "dispositions": dispositions(conn, alert_key)}


# --- answering ------------------------------------------------------------------------------

def check_disposition(body, last_seen: str) -> dict:
    """The row a body asks for, or :class:`BadRequest` naming the field."""
    if not isinstance(body, Mapping):
        raise BadRequest("body: must be a JSON object with status, reason, note, until", "表单内容有误")
    unknown = sorted(set(body) - {"status", "reason", "note", "until"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: not a field (use status, reason, note, until)")
    status, reason, note, until = (body.get(k) for k in ("status", "reason", "note", "until"))
    if status not in STATUSES:
        raise BadRequest(f"status: {status!r} is not one of {', '.join(STATUSES)}", "请选择答复")
    allowed = REASONS.get(status, {})
    if allowed:
        if reason not in allowed:
            raise BadRequest(f"reason: {reason!r} is not a reason for {status} ({', '.join(allowed)})",
                             f"请选择{STATUS_WORD[status]}的理由：" + "、".join(allowed.values()))
    elif reason is not None:
        raise BadRequest(f"reason: {status} takes no reason", f"“{STATUS_WORD[status]}”不填理由")
    if note is not None and not isinstance(note, str):
        raise BadRequest("note: must be text", "说明须为文字")
    note = note.strip() if isinstance(note, str) and note.strip() else None
    if note is not None and len(note) > NOTE_MAX:
        raise BadRequest(f"note: {len(note)} characters, at most {NOTE_MAX}", f"说明共 {len(note)} 字，至多 {NOTE_MAX} 字")
    if reason == "other" and note is None:
        raise BadRequest("note: required when the reason is other", "理由为“其他”时，请填写说明")
    if status == "explained":
        if until is None:
            raise BadRequest("until: required for explained (the last period YYYY-MM the explanation covers)",
                             "“已说明”须填写有效至（说明覆盖的最后一个月）")
        if not isinstance(until, str) or not _PERIOD.fullmatch(until):
            raise BadRequest(f"until: {until!r} is not a period YYYY-MM", "有效至须为年月，如 2027-03")
        latest = P.add_months(last_seen, UNTIL_MONTHS)
        if until < last_seen or until > latest:
            raise BadRequest(f"until: {until} is outside {last_seen} (the finding's last period) to {latest}",
                             f"有效至须在 {last_seen}（最近发现）至 {latest} 之间")
    elif until is not None:
        raise BadRequest(f"until: only explained takes until, not {status}", f"“{STATUS_WORD[status]}”不填有效至")
    return {"status": status, "reason": reason, "note": note, "until": until}


def dispose(conn, caller: Caller, alert_key: str, body, now: dt.datetime | None = None) -> dict:
    """Record the caller's word on a finding; returns the new ``alert_disposition`` row.
    Call inside a transaction: every check comes before the first write."""
    row = _find(conn, caller, alert_key)
    word = check_disposition(body, row["last_seen"])
    now = now or dt.datetime.now(dt.timezone.utc)
    record = {"alert_key": alert_key, **word, "actor": caller.name, "office_code": caller.office_for(row["region_code"]),
              "at": now}
    new_id = conn.execute(disposition_table.insert().values(record).returning(disposition_table.c.id)).scalar_one()
    latest = (dict.fromkeys(DISPOSITION_COLUMNS) if word["status"] == "cleared" else
              {"disposition": word["status"], "disposition_reason": word["reason"], "disposition_until": word["until"],
               "disposition_by": caller.name, "disposition_at": now})
    conn.execute(alert_table.update().where(alert_table.c.alert_key == alert_key).values(latest))
    conn.execute(audit_table.insert().values(at=now, actor=caller.name, action="disposition", alert_key=alert_key))
    return {"id": new_id, **_plain(record)}


# --- the data engineers' view ---------------------------------------------------------------

def engineers_view(conn, caller: Caller, runs: int = 30) -> dict:
    """For admins: the last publishes (roster size, findings), findings per code over the
    published periods, quarantined rows per period and source, and the disputed findings
    (OUTPUTS.md: listed for the data engineers), IDs masked."""
    if not caller.admin:
        raise Forbidden("engineers' view: for Airflow admins only", "运维视图仅限管理员")
    log = conn.execute(sa.select(publish_log).order_by(publish_log.c.id.desc()).limit(runs)).mappings().all()
    f = finding_table.c
    per_code = conn.execute(sa.select(f.period, f.code, sa.func.count()).group_by(f.period, f.code)
                            .order_by(f.period, f.code)).all()
    q = quarantine_table.c
    quarantined = conn.execute(sa.select(q.period, q.source, sa.func.count()).group_by(q.period, q.source)
                               .order_by(q.period, q.source)).all()
    a = alert_table.c
    disputed = conn.execute(sa.select(alert_table).where(a.disposition == "disputed")
                            .order_by(a.disposition_at.desc())).mappings().all()
    notes = {}
    if disputed:
        d = disposition_table.c
        for key, note, reason in conn.execute(sa.select(d.alert_key, d.note, d.reason).where(
                d.alert_key.in_([r["alert_key"] for r in disputed]), d.status == "disputed").order_by(d.id)):
            notes[key] = {"reason": reason, "note": note}     # the latest dispute's words
    return {
        "runs": [_plain(r) for r in log],
        "findings_per_code": [{"period": p, "code": c, "findings": n} for p, c, n in per_code],
        "quarantined": [{"period": p, "source": s_, "rows": n} for p, s_, n in quarantined],
        "disputed": [{**_alert(r, unmasked=False), **{f"dispute_{k}": v for k, v in notes.get(r["alert_key"], {}).items()}}
                     for r in disputed],
    }


# --- a unit ---------------------------------------------------------------------------------

def unit_view(conn, caller: Caller, unit_code: str, periods: int = 6) -> dict:
    """A unit: its approved and actual numbers by measure and item over its last ``periods``
    published periods, and its findings (IDs masked)."""
    if not isinstance(unit_code, str) or not _UNIT.fullmatch(unit_code):
        raise NotFound(f"unit_code: {unit_code!r} is no unit", "没有这个单位")
    u = unit_stats_table.c
    last = [p for (p,) in conn.execute(sa.select(u.period).where(u.unit_code == unit_code).distinct()
                                       .order_by(u.period.desc()).limit(periods))]
    rows = conn.execute(sa.select(unit_stats_table).where(u.unit_code == unit_code, u.period.in_(last))
                        .order_by(u.measure, u.item, u.period)).mappings().all() if last else []
    a = alert_table.c
    alerts = conn.execute(sa.select(alert_table).where(a.unit_code == unit_code)
                          .order_by(a.status.desc(), SEVERITY_RANK, a.code, a.alert_key)).mappings().all()
    if not rows and not alerts:
        raise NotFound(f"unit_code: {unit_code} has no published numbers or findings", "这个单位没有已发布的数据")
    region = next((r["region_code"] for r in sorted(rows, key=lambda r: r["period"], reverse=True) if r["region_code"]),
                  None) or next((x["region_code"] for x in alerts if x["region_code"]), None)
    if not caller.sees(region):
        raise Forbidden(f"unit_code: {unit_code} is a unit of region {region or '(none)'}, not under your office's region",
                        f"这个单位属于区划 {region or '（无）'}，不在本编办所辖范围内")
    measures: dict = {}
    for r in rows:
        measures.setdefault(r["measure"], {}).setdefault(r["item"], {})[r["period"]] = {
            "approved": r["approved"], "actual": r["actual"]}
    name = next((r["unit_name"] for r in sorted(rows, key=lambda r: r["period"], reverse=True) if r.get("unit_name")),
                None) or next((x["unit_name"] for x in alerts if x.get("unit_name")), None)
    return {"unit_code": unit_code, "unit_name": name, "region_code": region, "periods": sorted(last),
            "measures": measures, "alerts": [_alert(x, unmasked=False) for x in alerts]}
