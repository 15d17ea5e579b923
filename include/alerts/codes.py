"""The seventeen finding codes in the staffing office's own words (OUTPUTS.md "The codes").

``LABEL`` is the term the office uses; ``ACTION`` is what the office is expected to do
about it, printed in every digest and in the operator's guide.
"""

from __future__ import annotations

import json
import math

LABEL = {
    "OVER_QUOTA": "超编",
    "NON_ESTABLISHMENT_OVER_CAP": "编外超控制数",
    "LEADER_OVER_LIMIT": "超职数配备",
    "HIGH_VACANCY": "长期空编",
    "REVOKED_UNIT_STAFFED": "机构已撤销仍有人员",
    "PAID_WITHOUT_ESTABLISHMENT": "有薪无编",
    "ESTABLISHED_NOT_PAID": "有编无薪",
    "DUPLICATE_PAY": "一人多薪",
    "MULTIPLE_ESTABLISHMENT": "一人多编/一人多岗",
    "RETIRED_STILL_ACTIVE": "退休未减员",
    "UNIT_MISMATCH": "单位不一致",
    "CLASS_MISMATCH": "身份不一致",
    "RESTRICTED_POST": "编外人员占用关键岗位",
    "CADRE_WITHOUT_ESTABLISHMENT": "领导干部无编",
    "MISSING_SLIP": "无核编单据",
    "NOT_INSURED": "未参保",
    "INVALID_ID": "身份证号校验不通过",
}

ACTION = {
    "OVER_QUOTA": "停止该编制类型进人，按核定数消化超编，或依程序申请调整编制。",
    "NON_ESTABLISHMENT_OVER_CAP": "停止新增编外人员，按控制数清理或报批控制数调整。",
    "LEADER_OVER_LIMIT": "会同组织部核对领导职数，超配的按程序消化。",
    "HIGH_VACANCY": "核实空编原因；长期不用的编制按规定收回或调剂。",
    "REVOKED_UNIT_STAFFED": "核销已撤销机构的实名制信息，会同财政停发或转移工资。",
    "PAID_WITHOUT_ESTABLISHMENT": "核实此人是否应在实名制系统中；无编制的通知财政停发。",
    "ESTABLISHED_NOT_PAID": "核实此人是否仍在岗；已离岗的办理实名制减员。",
    "DUPLICATE_PAY": "会同财政核对发薪单位，只保留一个。",
    "MULTIPLE_ESTABLISHMENT": "核实在岗单位，只保留一个实名制记录。",
    "RETIRED_STILL_ACTIVE": "办理退休减员，通知财政改按离退休发放。",
    "UNIT_MISMATCH": "核对实名制、财政、组织部的单位，改正错误一方。",
    "CLASS_MISMATCH": "核对编制身份，改正实名制或财政发放身份。",
    "RESTRICTED_POST": "编外人员不得在人事、财务、涉密岗位，调整岗位。",
    "CADRE_WITHOUT_ESTABLISHMENT": "会同组织部核实任职与编制，先有编后任职。",
    "MISSING_SLIP": "补录核编单据号（《机构编制核准通知单》）。",
    "NOT_INSURED": "通知单位和人社部门办理参保缴费。",
    "INVALID_ID": "请录入单位核对证件，改正源系统中的身份证号。",
}

SEVERITY_LABEL = {"high": "高", "medium": "中", "info": "提示"}
SEVERITY_ORDER = {"high": 0, "medium": 1, "info": 2}
QUOTA_LABEL = {"admin": "行政编制", "political_legal": "政法专项编制", "logistics": "机关工勤编制",
               "institution": "事业编制", "school": "中小学教职工编制", "turnover": "周转编制",
               "non_establishment_cap": "编外控制数"}
LEVEL_LABEL = {"principal": "正职", "deputy": "副职"}
SOURCE_LABEL = {"staffing": "编办实名制", "org": "组织部", "finance": "财政工资", "hr": "人社"}


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:,.2f}" if isinstance(v, float) and not v.is_integer() else f"{int(v):,}"


def describe(code: str, details: str | None, quota_type=None, level=None, source=None, masked_raw=None) -> str:
    """The numbers behind a finding in one line of Chinese. Never contains a full ID:
    person IDs are not in ``details``, and ``masked_raw`` is masked by the caller."""
    try:
        d = json.loads(details) if details else {}
    except (TypeError, ValueError):
        d = {}
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
        return f"{SOURCE_LABEL.get(source, source)}：号码 {masked_raw}，记录 {_num(d.get('records'))} 条，{linked}"
    parts = []
    if d.get("staffing_units"):
        parts.append(f"实名制单位 {len(d['staffing_units'])} 个")
    if d.get("paid_by"):
        parts.append(f"发薪单位 {'、'.join(d['paid_by'])}")
    if d.get("paid_as"):
        parts.append(f"发放身份 {'、'.join(d['paid_as'])}")
    if d.get("gross_pay") is not None:
        parts.append(f"应发 {_num(float(d['gross_pay']))} 元")
    if d.get("retired_on"):
        parts.append(f"退休日期 {d['retired_on']}")
    if d.get("insured") is False:
        parts.append("未参保缴费")
    return "，".join(parts)
