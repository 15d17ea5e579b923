"""The finding codes in the staffing office's own words (OUTPUTS.md "The codes").

``LABEL`` is the term the office uses; ``ACTION`` is what the office is expected to do
about it, printed in every digest and in the operator's guide. Both come from the
catalogue (:mod:`include.findings`); this module adds how the numbers behind a finding
read in one line (:func:`describe`).
"""

from __future__ import annotations

import json
import math

from include import dictionary as D
from include.findings import ACTION as _ACTION
from include.findings import TERM
from include.identifiers import mask_id

# Both read the catalogue (include/findings.py), the one home of every code.
LABEL = TERM
ACTION = _ACTION

SEVERITY_LABEL = {"high": "高", "medium": "中", "info": "提示"}
SEVERITY_ORDER = {"high": 0, "medium": 1, "info": 2}
QUOTA_LABEL = D.QUOTA_TYPE
LEVEL_LABEL = D.LEADER_LEVEL
SOURCE_LABEL = {"staffing": "编办实名制", "org": "组织部", "finance": "财政工资", "hr": "人社"}
SEX_LABEL = D.SEX


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:,.2f}" if isinstance(v, float) and not v.is_integer() else f"{int(v):,}"


def _money(v) -> str:
    """Yuan to the fen, always with two decimals (8,888.00)."""
    return "—" if v is None else f"{float(v):,.2f}"


def describe(code: str, details: str | None, quota_type=None, level=None, source=None, masked_raw=None,
             record_name=None, why=None, unit_code=None) -> str:
    """The numbers behind a finding in one line of Chinese (``unit_code``: the unit the line is
    shown under, not repeated when it is the person's only staffing unit). Never contains a full ID: the
    only IDs in ``details`` (DUPLICATE_IDENTITY's others) are masked here, and ``masked_raw``
    is masked by the caller."""
    try:
        d = json.loads(details) if details else {}
    except (TypeError, ValueError):
        d = {}
    named = {u.get("unit_code"): u.get("name") for u in d.get("units") or []}   # the units' names, for the lines below
    if code == "OVER_QUOTA":
        return f"{QUOTA_LABEL.get(quota_type, quota_type)}：核定 {_num(d.get('approved'))}，实有 {_num(d.get('actual'))}，超 {_num(d.get('excess'))}"
    if code == "NON_ESTABLISHMENT_OVER_CAP":
        return f"控制数 {_num(d.get('cap'))}，编外实有 {_num(d.get('actual'))}，超 {_num(d.get('excess'))}"
    if code == "LEADER_OVER_LIMIT":
        return f"{LEVEL_LABEL.get(level, level)}：核定职数 {_num(d.get('approved'))}，实配 {_num(d.get('actual'))}，超 {_num(d.get('excess'))}"
    if code == "HIGH_VACANCY":
        rate = d.get("vacancy_rate")
        return (f"核定 {_num(d.get('approved'))}，在编 {_num(d.get('actual'))}，空编 {_num(d.get('vacant'))}"
                + (f"（{rate:.0%}）" if isinstance(rate, (int, float)) else ""))
    if code == "REVOKED_UNIT_STAFFED":
        return f"实名制在岗 {_num(d.get('staffed'))} 人，本月发薪 {_num(d.get('paid'))} 人"
    if code == "INVALID_ID":
        linked = "已按单位和姓名关联到一人" if d.get("linked") else f"未能关联（候选 {_num(d.get('candidates'))} 人）"
        return (f"{SOURCE_LABEL.get(source, source)}：号码 {masked_raw}" + (f"（记录姓名 {record_name}）" if record_name else "")
                + (f"，{why}" if why else "") + f"，记录 {_num(d.get('records'))} 条，{linked}")
    if code == "IDENTITY_CONFLICT":
        said = {"birth_date": "出生日期", "sex": "性别", "csrq": "出生日期", "xb": "性别"}
        def shown(c):   # organisation's csrq YYYYMMDD reads as a date; xb 1/2 as 男/女
            v = str(c.get("value"))
            if c.get("field") == "csrq" and len(v) == 8 and v.isdigit():
                return f"{v[:4]}-{v[4:6]}-{v[6:]}"
            return {"1": "男", "2": "女", "M": "男", "F": "女"}.get(v, v) if c.get("field") in ("xb", "sex") else v
        parts = [f"{SOURCE_LABEL.get(c.get('source'), c.get('source'))}{said.get(c.get('field'), c.get('field'))}记为 {shown(c)}"
                 for c in d.get("conflicts") or []]
        names = sorted({n.get("name") for n in d.get("names") or []})
        if len(names) > 1:
            parts.append("姓名不一致：" + "、".join(names))
        return f"身份证号所示出生日期 {d.get('id_birth_date')}、性别 {SEX_LABEL.get(d.get('id_sex'), '—')}；" + "；".join(parts)
    if code == "OVER_RETIREMENT_AGE":
        return (f"出生 {d.get('birth_date')}（{SEX_LABEL.get(d.get('sex'), '—')}），法定退休日期 {d.get('retirement_date')}，"
                f"人社状态 {d.get('hr_status') or '无记录'}" + (f"，本月发放身份 {'、'.join(d['paid_as'])}" if d.get("paid_as") else ""))
    if code == "LEADER_RANK_MISMATCH":
        return "；".join(f"{named.get(p.get('unit_code')) or '单位'}（{p.get('unit_code')}）{p.get('ldlb')}任 {p.get('zwcc')}，"
                        f"机构规格最高 {p.get('limit')}" for p in d.get("posts") or [])
    if code == "FUNDING_MISMATCH":
        paid = {p.get("dwbm"): p for p in d.get("payments") or []}
        return "；".join(f"自收自支单位 {named.get(p.get('unit_code')) or ''}（{p.get('unit_code')}）经预算单位 {p.get('dwbm')} "
                        f"{(paid.get(p.get('dwbm')) or {}).get('name') or ''} 以财政拨款发放（{p.get('rylb')}）"
                        + (f" {_money(paid[p['dwbm']]['gross_pay'])} 元" if paid.get(p.get("dwbm"), {}).get("gross_pay") is not None else "")
                        for p in d.get("self_funded_payers") or [])
    if code == "DUPLICATE_IDENTITY":
        others = [mask_id(o) for o in d.get("others") or []]
        return f"另有号码 {'、'.join(others)} 出生地与出生日期相同，同名 {'、'.join(d.get('names') or [])}"
    parts = []

    def unit(code):
        return f"{named.get(code) or ''}（{code}）"
    if d.get("staffing_units") and d["staffing_units"] != [unit_code]:   # the line's own unit is shown beside it
        parts.append("实名制单位 " + "、".join(unit(u) for u in d["staffing_units"]))
    if d.get("org_units") and d["org_units"] != d.get("staffing_units"):
        parts.append("组织部任职单位 " + "、".join(unit(u) for u in d["org_units"]))
    payments = d.get("payments") or []
    if payments:   # who pays how much: the budget unit's code (finance's own key), name, amount, as what
        parts.append("发薪 " + "、".join(
            f"{p.get('dwbm')} {p.get('name') or ''} {_money(p.get('gross_pay'))} 元"
            f"（{p.get('rylb')}{'，' + p['jfly'] if p.get('jfly') and p.get('jfly') != '财政拨款' else ''}）"
            for p in payments))
    elif d.get("paid_by"):
        parts.append(f"发薪单位 {'、'.join(d['paid_by'])}")
    if d.get("paid_as") and not payments:
        parts.append(f"发放身份 {'、'.join(d['paid_as'])}")
    if d.get("gross_pay") is not None:
        parts.append(f"{'合计' if len(payments) > 1 else ''}应发 {_money(d['gross_pay'])} 元")
    if d.get("retired_on"):
        parts.append(f"退休日期 {d['retired_on']}")
    if d.get("insured") is False:
        parts.append("未参保缴费")
    return "，".join(parts)
