"""Ground truth: OUTPUTS.md read plainly, record by record.

This is deliberately *not* the pipeline's reconciliation code. It reads the files the
simulators serve, walks them with dictionaries and loops, and writes what a careful
clerk would find: every finding (code and key columns) and the roster's ID set for the
period. The pipeline is checked against it, so keep it plain and separate: no DuckDB,
no shared helpers beyond the ID standard itself.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import json
import math
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from include import identifiers as ids
from include import periods as P

# Copied from OUTPUTS.md, not imported from the pipeline: the oracle shares no code with what it checks.
SEVERITY = {
    "OVER_QUOTA": "high", "NON_ESTABLISHMENT_OVER_CAP": "medium", "LEADER_OVER_LIMIT": "medium", "HIGH_VACANCY": "info",
    "REVOKED_UNIT_STAFFED": "high", "PAID_WITHOUT_ESTABLISHMENT": "high", "ESTABLISHED_NOT_PAID": "medium",
    "DUPLICATE_PAY": "high", "MULTIPLE_ESTABLISHMENT": "high", "RETIRED_STILL_ACTIVE": "high", "UNIT_MISMATCH": "medium",
    "CLASS_MISMATCH": "medium", "RESTRICTED_POST": "high", "CADRE_WITHOUT_ESTABLISHMENT": "high", "MISSING_SLIP": "medium",
    "NOT_INSURED": "medium", "INVALID_ID": "medium", "IDENTITY_CONFLICT": "medium", "OVER_RETIREMENT_AGE": "high",
    "LEADER_RANK_MISMATCH": "medium", "FUNDING_MISMATCH": "medium", "DUPLICATE_IDENTITY": "high",
    "UNREGISTERED_NON_ESTABLISHMENT": "medium",
}
# OUTPUTS.md "Ranks": the order, and the highest rank each unit rank allows a 正职 and a 副职.
RANK = {"正厅": 7, "副厅": 6, "正处": 5, "副处": 4, "正科": 3, "副科": 2, "科员": 1}
RANK_LIMIT = {
    ("department", "正职"): "正厅", ("department", "副职"): "副厅", ("bureau", "正职"): "正处", ("bureau", "副职"): "副处",
    ("deputy_bureau", "正职"): "副处", ("deputy_bureau", "副职"): "正科", ("section", "正职"): "正科",
    ("section", "副职"): "副科", ("deputy_section", "正职"): "副科", ("deputy_section", "副职"): "科员",
    ("unit_level", "正职"): "科员", ("unit_level", "副职"): "科员",
}


def statutory_retirement(pid: str) -> dt.date:
    """OUTPUTS.md "The statutory retirement date", step by step."""
    born = dt.date(int(pid[6:10]), int(pid[10:12]), int(pid[12:14]))
    male = int(pid[16]) % 2 == 1
    reference_year, age = (1964, 60) if male else (1969, 55)
    m = (born.year - reference_year) * 12 + (born.month - 12)   # months after December of the reference year
    delay = min(36, math.ceil(m / 4)) if m > 0 else 0
    months = born.month - 1 + age * 12 + delay
    year, month = born.year + months // 12, months % 12 + 1
    return dt.date(year, month, min(born.day, calendar.monthrange(year, month)[1]))
KEY_COLUMNS = ["code", "unit_code", "quota_type", "level", "id_number", "source", "raw_value"]
FINDING_COLUMNS = KEY_COLUMNS + ["severity", "region_code"]


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or str(v).strip() == ""


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _hr_rows(data_dir: Path, period: str) -> tuple[list[dict], dict]:
    index = json.loads((data_dir / "periods" / period / "hr_index.json").read_text())
    persons = [e for e in index if e["kind"] == "persons" and e["period"] <= period]
    if not persons:
        return [], {}
    latest = max(e["period"] for e in persons)
    tag = latest.replace("-", "")
    cbry = pd.read_csv(data_dir / "hr" / f"cbry_{tag}.csv", encoding="gb18030", dtype=str, keep_default_na=False)
    cbdw = pd.read_csv(data_dir / "hr" / f"cbdw_{tag}.csv", encoding="gb18030", dtype=str, keep_default_na=False)
    employers = {r["单位编号"]: r["统一社会信用代码"] for r in cbdw.to_dict("records")}
    return cbry.to_dict("records"), employers


def compute(data_dir: str | Path, period: str) -> dict:
    data_dir = Path(data_dir)
    base = data_dir / "periods" / period
    month_end = P.last_day(period)
    ffyf = P.to_ffyf(period)

    units = {u["unit_code"]: u for u in _rows(base / "staffing" / "units.parquet")}
    quotas = {(q["unit_code"], q["quota_type"]): int(q["approved"]) for q in _rows(base / "staffing" / "quotas.parquet")}
    leader_posts = {(q["unit_code"], q["level"]): int(q["approved"]) for q in _rows(base / "staffing" / "leader_posts.parquet")}
    budget_units = {}
    for b in _rows(base / "finance" / "ys_dw.parquet"):
        code = None if _blank(b["tyshxydm"]) else str(b["tyshxydm"]).strip()
        budget_units[b["dwbm"]] = (code, b["qhdm"])
    hr_rows, employers = _hr_rows(data_dir, period)

    # The records a period uses, each as (source, raw id, normalised name, unit, row).
    records = []
    for r in _rows(base / "staffing" / "persons.parquet"):
        if r["status"] == "active":
            records.append(["staffing", r["id_number"], r["name"], r["unit_code"], r])
    for r in _rows(base / "org" / "gbxx.parquet"):
        records.append(["org", r["sfzh"], r["xm"], r["dwdm"], r])
    for r in _rows(base / "finance" / "gz_ff.parquet"):
        if r["ffyf"] == ffyf:
            unit = budget_units.get(r["dwbm"], (None, None))[0]
            records.append(["finance", r["sfzh"], r["xm"], unit, r])
    for r in hr_rows:
        code = employers.get(r["单位编号"])
        unit = None if _blank(code) else code.strip()
        records.append(["hr", r["公民身份号码"], r["姓名"], unit, r])

    @functools.lru_cache(maxsize=None)
    def valid(raw):
        s = ids.clean_id(raw)
        return s if ids.is_valid_id(s, not_after=month_end) else None

    # Resolve identities.
    by_unit_name = defaultdict(set)
    resolved = []
    for source, raw, name, unit, row in records:
        vid = valid(raw)
        nname = ids.normalise_name(name)
        if vid is not None and unit is not None:
            by_unit_name[(unit, nname)].add(vid)
        resolved.append([source, raw, nname, unit, row, vid])
    findings = {}
    quarantined = []
    invalid = {}   # (source, raw value) -> [units, linked ids, region candidates]: one finding each

    def add(code, unit_code=None, quota_type=None, level=None, id_number=None, source=None, raw_value=None, region=None):
        key = (code, unit_code, quota_type, level, id_number, source, raw_value)
        if key not in findings:
            findings[key] = region

    def region_of_unit(u):
        return units[u]["region_code"] if u in units else None

    for rec in resolved:
        source, raw, nname, unit, row, vid = rec
        if vid is not None:
            continue
        linked = None
        if unit is not None:
            cands = set(by_unit_name.get((unit, nname), set()))
            s = ids.clean_id(raw) or ""
            born = ids.parse_yyyymmdd(s[6:14]) if len(s) >= 14 else None
            if born is not None:
                cands = {c for c in cands if c[6:14] == s[6:14]}
            if len(cands) == 1:
                linked = cands.pop()
        rec[5] = linked
        region = region_of_unit(unit)
        if region is None and source == "finance":
            region = budget_units.get(row["dwbm"], (None, None))[1]
        entry = invalid.setdefault((source, str(raw).strip()), [set(), set(), []])
        if unit is not None:
            entry[0].add(unit)
        if linked is not None:
            entry[1].add(linked)
        entry[2].append((unit, region))
        if linked is None:
            quarantined.append({"source": source, "raw_value": ids.mask_id(str(raw).strip()), "reason": "invalid ID, not linked"})

    # INVALID_ID is raised once per source and raw value: its unit and linked ID are the lowest seen.
    for (source, raw_value), (units_seen, linked_ids, regions) in invalid.items():
        unit = min(units_seen) if units_seen else None
        region = next((reg for u, reg in regions if u == unit), None)
        add("INVALID_ID", unit_code=unit, id_number=min(linked_ids) if linked_ids else None, source=source,
            raw_value=raw_value, region=region)

    staffing = defaultdict(list)
    org = defaultdict(list)
    pay = defaultdict(list)
    hr = defaultdict(list)
    named = defaultdict(list)   # person -> (source, normalised name, whether the record's own ID is valid, row)
    for source, raw, nname, unit, row, vid in resolved:
        if vid is None:
            continue
        {"staffing": staffing, "org": org, "finance": pay, "hr": hr}[source][vid].append(row)
        named[vid].append((source, nname, valid(raw) is not None, row))

    # Unit-level codes.
    est_count = defaultdict(set)      # (unit, quota_type) -> ids
    est_by_unit = defaultdict(set)
    ne_by_unit = defaultdict(set)
    for pid, rows in staffing.items():
        for r in rows:
            if r["personnel_class"] == "establishment":
                est_count[(r["unit_code"], r["quota_type"])].add(pid)
                est_by_unit[r["unit_code"]].add(pid)
            elif r["personnel_class"] == "non_establishment":
                ne_by_unit[r["unit_code"]].add(pid)
    for (u, qt) in set(est_count) | {k for k in quotas if k[1] != "non_establishment_cap"}:
        if qt == "non_establishment_cap":
            continue
        if len(est_count.get((u, qt), ())) > quotas.get((u, qt), 0):
            add("OVER_QUOTA", unit_code=u, quota_type=qt, region=region_of_unit(u))
    for u, people in ne_by_unit.items():
        if len(people) > quotas.get((u, "non_establishment_cap"), 0):
            add("NON_ESTABLISHMENT_OVER_CAP", unit_code=u, region=region_of_unit(u))
    leaders = defaultdict(int)
    for pid, rows in org.items():
        for r in rows:
            if r["sfld"] == "1":
                level = {"正职": "principal", "副职": "deputy"}.get(r["ldlb"])
                if level:
                    leaders[(r["dwdm"], level)] += 1
    for (u, level), n in leaders.items():
        if n > leader_posts.get((u, level), 0):
            add("LEADER_OVER_LIMIT", unit_code=u, level=level, region=region_of_unit(u))
    total = defaultdict(int)
    for (u, qt), n in quotas.items():
        if qt != "non_establishment_cap":
            total[u] += n
    for u, t in total.items():
        # "at least 30% of T", in whole numbers: 10 x vacancies >= 3 x T (no floating point)
        if t >= 10 and 10 * (t - len(est_by_unit.get(u, ()))) >= 3 * t:
            add("HIGH_VACANCY", unit_code=u, region=region_of_unit(u))
    paid_units = set()
    for pid, rows in pay.items():
        for r in rows:
            code = budget_units.get(r["dwbm"], (None, None))[0]
            if code:
                paid_units.add(code)
    staffed_units = {r["unit_code"] for rows in staffing.values() for r in rows}
    for u, rec in units.items():
        if rec["status"] == "revoked" and (u in staffed_units or u in paid_units):
            add("REVOKED_UNIT_STAFFED", unit_code=u, region=region_of_unit(u))

    # Person-level codes.
    everyone = set(staffing) | set(org) | set(pay) | set(hr)

    def person_unit(pid):
        if staffing.get(pid):
            u = sorted(staffing[pid], key=lambda r: r["record_id"])[0]["unit_code"]
            return u, region_of_unit(u)
        if pay.get(pid):
            b = sorted(pay[pid], key=lambda r: r["dwbm"])[0]["dwbm"]
            code, qhdm = budget_units.get(b, (None, None))
            return code, qhdm
        if org.get(pid):
            u = min(r["dwdm"] for r in org[pid])
            return u, region_of_unit(u)
        return None, None

    def person(code, pid):
        u, region = person_unit(pid)
        add(code, unit_code=u, id_number=pid, region=region)

    def identity_conflict(pid) -> bool:
        """A stated birth date or sex the ID contradicts, or two different names, among the
        person's records whose own ID is valid."""
        born, born8 = f"{pid[6:10]}-{pid[10:12]}-{pid[12:14]}", pid[6:14]
        male = int(pid[16]) % 2 == 1
        names = set()
        for source, nname, own, row in named[pid]:
            if not own:
                continue
            if nname:
                names.add(nname)
            if source == "staffing":
                if not _blank(row["birth_date"]) and str(row["birth_date"]).strip() != born:
                    return True
                if not _blank(row["sex"]) and str(row["sex"]).strip() != ("M" if male else "F"):
                    return True
            if source == "org":
                if not _blank(row["csrq"]) and str(row["csrq"]).strip() != born8:
                    return True
                if not _blank(row["xb"]) and str(row["xb"]).strip() != ("1" if male else "2"):
                    return True
        return len(names) > 1

    roster = set()
    for pid in everyone:
        s_rows, o_rows, p_rows, h_rows = staffing.get(pid, []), org.get(pid, []), pay.get(pid, []), hr.get(pid, [])
        classes = {r["personnel_class"] for r in s_rows}
        rylb = {r["rylb"] for r in p_rows}
        if any(r["jfly"] == "财政拨款" for r in p_rows) or any(units.get(r["unit_code"], {}).get("funding") in ("full", "partial") for r in s_rows):
            roster.add(pid)
        if "在编" in rylb and not s_rows:
            person("PAID_WITHOUT_ESTABLISHMENT", pid)
        if not p_rows and any(r["personnel_class"] == "establishment"
                              and units.get(r["unit_code"], {}).get("funding") in ("full", "partial")
                              and r["entered_on"] is not None and r["entered_on"] < str(P.first_day(period)) for r in s_rows):
            person("ESTABLISHED_NOT_PAID", pid)
        if len({r["dwbm"] for r in p_rows}) >= 2:
            person("DUPLICATE_PAY", pid)
        if len({r["unit_code"] for r in s_rows}) >= 2:
            person("MULTIPLE_ESTABLISHMENT", pid)
        retired_by_end = any(r["人员状态"] == "退休" and not _blank(r["退休日期"])
                             and dt.date.fromisoformat(r["退休日期"].strip()) <= month_end for r in h_rows)
        if retired_by_end and (s_rows or rylb & {"在编", "编外"}):
            person("RETIRED_STILL_ACTIVE", pid)
        if len(s_rows) == 1:
            u = s_rows[0]["unit_code"]
            paying = {budget_units.get(r["dwbm"], (None, None))[0] for r in p_rows} - {None}
            finance_off = bool(paying) and u not in paying
            org_off = bool(o_rows) and all(r["dwdm"] != u for r in o_rows)
            if finance_off or org_off:
                person("UNIT_MISMATCH", pid)
        if s_rows and (("在编" in rylb and "establishment" not in classes) or ("编外" in rylb and "non_establishment" not in classes)):
            person("CLASS_MISMATCH", pid)
        if any(r["personnel_class"] == "non_establishment" and r["post_category"] in ("personnel", "finance", "classified") for r in s_rows):
            person("RESTRICTED_POST", pid)
        if any(r["sfld"] == "1" for r in o_rows) and "establishment" not in classes:
            person("CADRE_WITHOUT_ESTABLISHMENT", pid)
        if any(r["personnel_class"] == "establishment" and _blank(r["slip_no"]) for r in s_rows):
            person("MISSING_SLIP", pid)
        if rylb & {"在编", "编外"} and not any(r["参保状态"] == "参保缴费" for r in h_rows):
            person("NOT_INSURED", pid)
        if identity_conflict(pid):
            person("IDENTITY_CONFLICT", pid)
        if ((s_rows or rylb & {"在编", "编外"}) and not any(r["人员状态"] == "退休" for r in h_rows)
                and statutory_retirement(pid) < P.first_day(period)):
            person("OVER_RETIREMENT_AGE", pid)
        for r in o_rows:
            limit = RANK_LIMIT.get((units.get(r["dwdm"], {}).get("rank"), r["ldlb"]))
            held = RANK.get(str(r["zwcc"] or "").strip())
            if r["sfld"] == "1" and limit and held and held > RANK[limit]:
                person("LEADER_RANK_MISMATCH", pid)
        if any(r["rylb"] in ("在编", "编外") and r["jfly"] == "财政拨款"
               and units.get(budget_units.get(r["dwbm"], (None, None))[0], {}).get("funding") == "self" for r in p_rows):
            person("FUNDING_MISMATCH", pid)
        if "编外" in rylb and not s_rows:
            person("UNREGISTERED_NON_ESTABLISHMENT", pid)

    # DUPLICATE_IDENTITY: persons with the same digits 1-14 and a shared name, joined into
    # sets (A~B, B~C: one set), raised on the lowest ID.
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    sharing = defaultdict(set)
    for pid in everyone:
        for source, nname, own, row in named[pid]:
            if nname:
                sharing[(pid[:14], nname)].add(pid)
    for group in sharing.values():
        if len(group) > 1:
            first, *rest = sorted(group)
            for other in rest:
                a, b = root(first), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    sets = defaultdict(set)
    for pid in parent:
        sets[root(pid)].add(pid)
    for members in sets.values():
        if len(members) > 1:
            person("DUPLICATE_IDENTITY", min(members))

    rows = [dict(zip(KEY_COLUMNS, k), severity=SEVERITY[k[0]], region_code=region) for k, region in findings.items()]
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS).sort_values(KEY_COLUMNS, na_position="first", ignore_index=True)
    counts = frame.code.value_counts().to_dict()
    return {
        "period": period,
        "findings": frame,
        "roster": sorted(roster),
        "quarantined": quarantined,
        "summary": {"findings": {c: int(counts.get(c, 0)) for c in SEVERITY}, "roster": len(roster),
                    "quarantined": len(quarantined)},
    }


def write(truth: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    truth["findings"].to_csv(out / "findings.csv", index=False)
    pd.DataFrame({"id_number": truth["roster"]}).to_csv(out / "roster_ids.csv", index=False)
    (out / "summary.json").write_text(json.dumps(truth["summary"], indent=1, ensure_ascii=False))


def load(data_dir: str | Path, period: str) -> dict:
    base = Path(data_dir) / "periods" / period / "truth"
    findings = pd.read_csv(base / "findings.csv", dtype=str, keep_default_na=False).replace({"": None})
    roster = pd.read_csv(base / "roster_ids.csv", dtype=str).id_number.tolist()
    return {"findings": findings, "roster": roster, "summary": json.loads((base / "summary.json").read_text())}
