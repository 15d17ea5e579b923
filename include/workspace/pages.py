"""The workspace's pages for people: server-rendered HTML, Chinese labels, no script or style
from outside (an intranet has no CDN). Every page is built from the same service calls as
the API (:mod:`include.workspace.service`), so what a page shows is what the API answers.
"""

from __future__ import annotations

import html
import json
from urllib.parse import urlencode

from include import periods as P
from include.alerts import codes as C
from include.alerts.codes import SOURCE_LABEL
from include.alerts.evidence import KINDS, kind, kind_order
from include.findings import CODES, TERM
from include.workspace import service as W

e = html.escape
STATUS_OPEN = {"open": "未整改", "resolved": "已整改"}
STYLE = """
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;margin:0;color:#222;background:#f6f8fa}
header{background:#1f4e79;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#fff;text-decoration:none} header .who{margin-left:auto;font-size:13px;opacity:.9}
main{max-width:1280px;margin:16px auto;padding:0 24px} h1{font-size:20px} h2{font-size:16px;color:#1f4e79;margin-top:24px}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%} th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef3f8} tr:hover td{background:#fafcff} .sev-high{color:#c0392b;font-weight:bold} .sev-medium{color:#d35400} .sev-info{color:#555}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;background:#fff;padding:10px;border:1px solid #d0d7de;margin-bottom:10px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#555} select,input,textarea{font:inherit;padding:3px}
button{background:#1f4e79;color:#fff;border:0;padding:6px 14px;border-radius:3px;cursor:pointer}
.msg{padding:8px 12px;margin:8px 0;border-radius:3px} .err{background:#fdecea;color:#8a1c12;border:1px solid #f5c2bd}
.ok{background:#e8f5e9;color:#1b5e20;border:1px solid #b7dfb9} .muted{color:#777;font-size:12px} .facts td{font-size:12px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;padding:12px;border:1px solid #d0d7de} dt{color:#555}
.pager{margin:10px 0;display:flex;gap:12px;align-items:center} .tag{display:inline-block;padding:0 6px;border-radius:3px;background:#eef3f8;font-size:12px}
"""


def layout(title: str, body: str, caller: W.Caller, prefix: str) -> str:
    who = f"{e(caller.name)}（{'管理员' if caller.admin else '、'.join(caller.regions) or '无所属编办'}）"
    return (f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{e(title)} · 编办工作台</title>"
            f"<style>{STYLE}</style></head><body><header><b>全口径财政供养人员 · 编办工作台</b>"
            f"<a href='{prefix}/'>问题清单</a><a href='{prefix}/search'>人员查询</a>"
            + (f"<a href='{prefix}/ops'>运维视图</a>" if caller.admin else "") +
            f"<span class='who'>{who}</span></header><main>{body}</main></body></html>")


def _options(values: dict, chosen: str | None, blank: str = "全部") -> str:
    out = [f"<option value=''>{blank}</option>"]
    for v, label in values.items():
        out.append(f"<option value='{e(v)}'{' selected' if chosen == v else ''}>{e(label)}</option>")
    return "".join(out)


def _person(a: dict) -> str:
    if not a.get("id_number"):
        return ""
    return f"{e(a.get('name') or '')} {e(a['id_number'])}".strip()


def _unit_link(a: dict, prefix: str) -> str:
    if not a.get("unit_code"):
        return ""
    return (f"<a href='{prefix}/units/{e(a['unit_code'])}'>{e(a.get('unit_name') or a['unit_code'])}</a>"
            f"<br><span class='muted'>{e(a['unit_code'])}</span>")


def _describe(a: dict) -> str:
    return C.describe(a["code"], json.dumps(a["details"], ensure_ascii=False) if a.get("details") is not None else None,
                      a.get("quota_type"), a.get("level"), a.get("source"), a.get("raw_value"), None, None, a.get("unit_code"))


def _answer(a: dict) -> str:
    text = W.answer_words(a.get("disposition"), a.get("disposition_reason"), a.get("disposition_until"))
    return f"<span class='tag'>{e(text)}</span>" if text else "<span class='muted'>未答复</span>"


def list_page(result: dict, params: dict, caller: W.Caller, prefix: str) -> str:
    p = {k: v for k, v in params.items() if v not in (None, "")}
    limit, offset = int(p.get("limit", W.LIST_LIMIT)), int(p.get("offset", 0))
    codes = {c: f"{TERM[c]} {c}" for c in CODES}
    form = (f"<form class='filters' method='get' action='{prefix}/'>"
            f"<label>期间<input name='period' placeholder='YYYY-MM' size='8' value='{e(p.get('period', ''))}'></label>"
            f"<label>问题<select name='code'>{_options(codes, p.get('code'))}</select></label>"
            f"<label>严重程度<select name='severity'>{_options(C.SEVERITY_LABEL, p.get('severity'))}</select></label>"
            f"<label>状态<select name='status'>{_options(STATUS_OPEN, p.get('status'))}</select></label>"
            f"<label>单位代码<input name='unit' size='20' value='{e(p.get('unit', ''))}'></label>"
            f"<label>答复<select name='disposition'>"
            f"{_options({**{k: W.STATUS_WORD[k] for k in ('acknowledged', 'explained', 'disputed')}, 'none': '未答复'}, p.get('disposition'))}"
            f"</select></label><button type='submit'>筛选</button></form>")
    rows = []
    for a in result["alerts"]:
        sev = a["severity"]
        rows.append(
            f"<tr><td class='sev-{e(sev)}'>{C.SEVERITY_LABEL.get(sev, sev)}</td>"
            f"<td><a href='{prefix}/alerts/{e(a['alert_key'])}'>{e(TERM.get(a['code'], a['code']))}</a><br>"
            f"<span class='muted'>{e(a['code'])}</span></td>"
            f"<td>{_unit_link(a, prefix)}</td>"
            f"<td>{_person(a)}</td><td>{e(_describe(a))}</td>"
            f"<td>{e(a['first_seen'])}</td><td>{e(a['last_seen'])}</td><td>{STATUS_OPEN.get(a['status'], a['status'])}</td>"
            f"<td>{_answer(a)}</td></tr>")
    total = result["total"]
    nav = []
    if offset > 0:
        nav.append(f"<a href='{prefix}/?{urlencode({**p, 'offset': max(0, offset - limit)})}'>上一页</a>")
    if offset + limit < total:
        nav.append(f"<a href='{prefix}/?{urlencode({**p, 'offset': offset + limit})}'>下一页</a>")
    shown = f"第 {offset + 1}-{min(total, offset + limit)} 条，" if total else ""
    apart = (f"<span id='explained'>其中已说明 {result['explained']:,} 条（说明有效期内单列，不再要求处理）</span>"
             if result.get("explained") else "")
    body = (f"<h1>核查问题清单</h1>{form}<div class='pager'><span id='total'>共 {total:,} 条</span>{apart}"
            f"<span class='muted'>{shown}身份证号仅显示前6位和后4位</span>{' '.join(nav)}</div>"
            "<table id='alerts'><tr><th>严重程度</th><th>问题</th><th>单位</th><th>人员</th><th>情况</th>"
            "<th>首次发现</th><th>最近发现</th><th>状态</th><th>编办答复</th></tr>"
            + ("".join(rows) or "<tr><td colspan='9' class='muted'>没有符合条件的问题。</td></tr>") + "</table>")
    return layout("核查问题清单", body, caller, prefix)


def _facts_table(facts) -> str:
    if not isinstance(facts, dict):
        return ""
    return ("<table class='facts'>" + "".join(f"<tr><th>{e(str(k))}</th><td>{e('' if v is None else str(v))}</td></tr>"
                                               for k, v in facts.items()) + "</table>")


def alert_page(a: dict, caller: W.Caller, prefix: str, message: str | None = None, error: str | None = None,
               form: dict | None = None) -> str:
    form = form or {}
    sev = a["severity"]
    info = [("问题", f"{TERM.get(a['code'], a['code'])}（{a['code']}）"),
            ("严重程度", C.SEVERITY_LABEL.get(sev, sev)), ("单位", f"{a.get('unit_name') or ''} {a.get('unit_code') or ''}"),
            ("区划", a.get("region_code") or "（无）"), ("人员", f"{a.get('name') or ''} {a.get('id_number') or ''}"),
            ("情况", _describe(a)), ("首次发现 / 最近发现", f"{a['first_seen']} / {a['last_seen']}"),
            ("状态", STATUS_OPEN.get(a["status"], a["status"])), ("处理要求", C.ACTION.get(a["code"], ""))]
    body = [f"<h1>{e(TERM.get(a['code'], a['code']))} · {e(a.get('unit_name') or a.get('unit_code') or '')}</h1>"]
    if message:
        body.append(f"<div class='msg ok' id='message'>{e(message)}</div>")
    if error:
        body.append(f"<div class='msg err' id='error'>{e(error)}</div>")
    body.append("<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in info) + f"<dt>编办答复</dt><dd>{_answer(a)}</dd></dl>")
    body.append(f"<h2>源系统记录（{len(a['evidence'])} 条，{e(a['last_seen'])} 期）</h2>"
                "<table id='evidence'><tr><th>来源</th><th>记录键</th><th>记录内容（按源系统原样）</th></tr>")
    for ev in sorted(a["evidence"], key=lambda x: (kind_order(x["source"], x["record_key"]), x["record_key"])):
        source, what = SOURCE_LABEL.get(ev["source"], ev["source"]), KINDS.get(kind(ev["source"], ev["record_key"]), "")
        body.append(f"<tr><td>{e(source)}" + (f"<br><span class='muted'>{e(what)}</span>" if what != source else "") + "</td>"
                    f"<td>{e(ev['record_key'])}</td><td>{_facts_table(ev['facts'])}</td></tr>")
    body.append("</table><h2>答复记录</h2><table id='history'><tr><th>时间（UTC）</th><th>答复</th><th>理由</th><th>说明</th>"
                "<th>有效至</th><th>答复人</th><th>编办</th></tr>")
    for d in a["dispositions"]:
        body.append(f"<tr><td>{e(d['at'][:16].replace('T', ' '))}</td><td>{e(W.STATUS_WORD.get(d['status'], d['status']))}</td>"
                    f"<td>{e(W.REASON_LABEL.get(d['reason'], d['reason'] or ''))}</td><td>{e(d['note'] or '')}</td>"
                    f"<td>{e(d['until'] or '')}</td><td>{e(d['actor'])}</td><td>{e(d['office_code'] or '')}</td></tr>")
    if not a["dispositions"]:
        body.append("<tr><td colspan='7' class='muted'>尚无答复。</td></tr>")
    body.append("</table>")
    reasons = {f"{s}:{k}": f"{W.STATUS_WORD[s]}：{v}" for s, rs in W.REASONS.items() for k, v in rs.items()}
    statuses = {s: W.STATUS_LABEL[s] for s in W.STATUSES}
    body.append(
        f"<h2>答复</h2><form method='post' action='{prefix}/alerts/{e(a['alert_key'])}' id='answer' "
        "style='background:#fff;padding:12px;border:1px solid #d0d7de;display:grid;gap:8px;max-width:640px'>"
        f"<label>答复 <select name='status' required>{_options(statuses, form.get('status'), '请选择')}</select></label>"
        f"<label>理由（已说明、有异议时必填） <select name='reason'>{_options(reasons, form.get('reason_choice'), '无')}</select></label>"
        f"<label>有效至（已说明时必填，最晚 {e(P.add_months(a['last_seen'], W.UNTIL_MONTHS))}）"
        f" <input type='month' name='until' value='{e(form.get('until') or '')}'></label>"
        f"<label>说明（理由为“其他”时必填，至多 {W.NOTE_MAX} 字）<br><textarea name='note' rows='3' style='width:100%;box-sizing:border-box'>"
        f"{e(form.get('note') or '')}</textarea></label><button type='submit'>提交答复</button></form>"
        "<p class='muted'>“已说明”的问题在有效期内仍保留，但提醒邮件和月报单列，不再要求处理；到期后仍存在的，会再次提醒。"
        "查看本页即记录一次查阅（身份证号完整显示）。</p>")
    return layout(TERM.get(a["code"], a["code"]), "".join(body), caller, prefix)


def form_body(form: dict) -> dict:
    """An HTML form's fields as the API's JSON body (the reason select carries ``status:reason``)."""
    reason = form.get("reason") or None
    if reason and ":" in reason:
        reason = reason.split(":", 1)[1]
    return {"status": form.get("status") or None, "reason": reason,
            "note": form.get("note") or None, "until": form.get("until") or None}


def search_page(q: str, result: dict | None, caller: W.Caller, prefix: str, error: str | None = None) -> str:
    body = [f"<h1>人员查询</h1><form class='filters' method='get' action='{prefix}/search'>"
            f"<label>姓名或身份证号<input name='q' size='30' value='{e(q)}' autofocus></label>"
            "<button type='submit'>查询</button></form><p class='muted'>只查本编办所辖区划内的核查问题。</p>"]
    if error:
        body.append(f"<div class='msg err' id='error'>{e(error)}</div>")
    if result is not None:
        body.append(f"<p id='total'>找到 {result['total']} 条问题。</p><table id='alerts'><tr><th>人员</th><th>问题</th>"
                    "<th>单位</th><th>状态</th><th>最近发现</th></tr>")
        for a in result["alerts"]:
            body.append(f"<tr><td>{_person(a)}</td><td><a href='{prefix}/alerts/{e(a['alert_key'])}'>"
                        f"{e(TERM.get(a['code'], a['code']))}</a></td><td>{e(a.get('unit_name') or '')}</td>"
                        f"<td>{STATUS_OPEN.get(a['status'], a['status'])}</td><td>{e(a['last_seen'])}</td></tr>")
        body.append("</table>")
    return layout("人员查询", "".join(body), caller, prefix)


def engineers_page(view: dict, caller: W.Caller, prefix: str) -> str:
    """The data engineers' view: runs, findings per code over time, quarantine, disputed findings."""
    body = ["<h1>运维视图</h1><h2>发布记录（最近 30 次）</h2><table id='runs'><tr><th>期间</th><th>数据日期</th>"
            "<th>发布时间（UTC）</th><th>花名册人数</th><th>核查问题</th><th>运行</th></tr>"]
    for r in view["runs"]:
        body.append(f"<tr><td>{e(r['period'])}</td><td>{e(str(r.get('as_of') or ''))}</td>"
                    f"<td>{e((r.get('published_at') or '')[:16].replace('T', ' '))}</td><td>{(r.get('roster_rows') or 0):,}</td>"
                    f"<td>{(r.get('findings') or 0):,}</td><td class='muted'>{e(r.get('run_id') or '')}</td></tr>")
    body.append("</table>")
    periods = sorted({x["period"] for x in view["findings_per_code"]})
    grid = {(x["code"], x["period"]): x["findings"] for x in view["findings_per_code"]}
    body.append("<h2>各期核查问题（按类型）</h2><table id='per_code'><tr><th>问题</th>"
                + "".join(f"<th>{e(p)}</th>" for p in periods) + "</tr>")
    for code in [c for c in CODES if any((c, p) in grid for p in periods)]:
        body.append(f"<tr><td>{e(TERM[code])} <span class='muted'>{code}</span></td>"
                    + "".join(f"<td>{grid.get((code, p), 0):,}</td>" for p in periods) + "</tr>")
    body.append("</table><h2>隔离记录（按期间、来源）</h2><table id='quarantine'><tr><th>期间</th><th>来源</th><th>行数</th></tr>")
    for x in view["quarantined"]:
        body.append(f"<tr><td>{e(x['period'])}</td><td>{e(SOURCE_LABEL.get(x['source'], x['source']))}</td><td>{x['rows']:,}</td></tr>")
    if not view["quarantined"]:
        body.append("<tr><td colspan='3' class='muted'>没有隔离记录。</td></tr>")
    body.append(f"</table><h2>有异议的问题（{len(view['disputed'])}）</h2><p class='muted'>编办认为源系统数据有误："
                "请核对源系统，或修正规则。</p><table id='disputed'><tr><th>问题</th><th>单位</th><th>人员</th><th>理由</th>"
                "<th>说明</th><th>答复人</th><th>最近发现</th></tr>")
    for a in view["disputed"]:
        body.append(f"<tr><td><a href='{prefix}/alerts/{e(a['alert_key'])}'>{e(TERM.get(a['code'], a['code']))}</a></td>"
                    f"<td>{e(a.get('unit_name') or a.get('unit_code') or '')}</td><td>{_person(a)}</td>"
                    f"<td>{e(W.REASON_LABEL.get(a.get('dispute_reason'), a.get('dispute_reason') or ''))}</td>"
                    f"<td>{e(a.get('dispute_note') or '')}</td><td>{e(a.get('disposition_by') or '')}</td>"
                    f"<td>{e(a['last_seen'])}</td></tr>")
    if not view["disputed"]:
        body.append("<tr><td colspan='7' class='muted'>没有有异议的问题。</td></tr>")
    body.append("</table>")
    return layout("运维视图", "".join(body), caller, prefix)


MEASURES = {"quota": "编制（按编制类型）", "non_establishment": "编外人员（按岗位类别；合计对控制数）",
            "leader_posts": "领导职数"}
ITEM_LABEL = {**C.QUOTA_LABEL, **C.LEVEL_LABEL, "total": "合计（控制数）", "general": "一般岗位", "personnel": "人事岗位",
              "finance": "财务岗位", "classified": "涉密岗位"}


def unit_page(view: dict, caller: W.Caller, prefix: str) -> str:
    """A unit: approved and actual by quota type (and non-establishment, leader posts) over the
    last periods, and its findings."""
    periods = view["periods"]
    body = [f"<h1>{e(view.get('unit_name') or '')} <span class='muted'>{e(view['unit_code'])}</span></h1>"
            f"<p class='muted'>区划 {e(view.get('region_code') or '（无）')}；核定 / 实有，最近 {len(periods)} 期。</p>"]
    for measure, title in MEASURES.items():
        items = view["measures"].get(measure)
        if not items:
            continue
        body.append(f"<h2>{e(title)}</h2><table id='{measure}'><tr><th>项目</th>"
                    + "".join(f"<th>{e(p)}</th>" for p in periods) + "</tr>")
        order = [*C.QUOTA_LABEL, "principal", "deputy", "general", "personnel", "finance", "classified", "total"]
        for item, by_period in sorted(items.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
            cells = []
            for p in periods:
                v = by_period.get(p)
                if v is None:
                    cells.append("<td class='muted'>—</td>")
                    continue
                over = v["approved"] is not None and v["actual"] > v["approved"]
                shown = f"{'—' if v['approved'] is None else v['approved']} / {v['actual']}"
                cells.append(f"<td class='{'sev-high' if over else ''}'>{shown}</td>")
            body.append(f"<tr><td>{e(ITEM_LABEL.get(item, item))}</td>{''.join(cells)}</tr>")
        body.append("</table>")
    body.append(f"<h2>本单位的核查问题（{len(view['alerts'])}）</h2><table id='alerts'><tr><th>严重程度</th><th>问题</th>"
                "<th>人员</th><th>情况</th><th>最近发现</th><th>状态</th><th>编办答复</th></tr>")
    for a in view["alerts"]:
        body.append(f"<tr><td class='sev-{e(a['severity'])}'>{C.SEVERITY_LABEL.get(a['severity'], a['severity'])}</td>"
                    f"<td><a href='{prefix}/alerts/{e(a['alert_key'])}'>{e(TERM.get(a['code'], a['code']))}</a></td>"
                    f"<td>{_person(a)}</td><td>{e(_describe(a))}</td><td>{e(a['last_seen'])}</td>"
                    f"<td>{STATUS_OPEN.get(a['status'], a['status'])}</td><td>{_answer(a)}</td></tr>")
    body.append("</table>")
    return layout(view.get("unit_name") or view["unit_code"], "".join(body), caller, prefix)
