"""Project the world onto the four offices' systems, exactly in the shapes of SOURCES.md.

Internal columns start with ``_`` (``_pid`` ties a row to its natural person) and are
dropped before anything is written. Harmless dirt (lower-case ``x``, surrounding and
full-width spaces, 15-digit legacy IDs in HR, middle-dot variants) is decided by each
person's stable ``dirt_u`` draw, so a person's records look the same every period and
only real changes move ``updated_at``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from include import identifiers as ids
from include import periods as P

STAFFING_PERSON_COLUMNS = [
    "record_id", "id_number", "name", "sex", "birth_date", "unit_code", "personnel_class", "quota_type",
    "non_establishment_category", "post_category", "position", "entered_on", "slip_no", "status", "left_on",
]
UNIT_COLUMNS = ["unit_code", "name", "parent_code", "region_code", "kind", "rank", "funding", "status"]
YS_DW_COLUMNS = ["dwbm", "tyshxydm", "dwmc", "qhdm"]

RANK_TITLES = {  # unit rank -> (principal, deputy, staff ranks) as 职务层次 (zwcc)
    "department": ("正厅", "副厅", ["正处", "副处", "正科", "科员"]),
    "bureau": ("正处", "副处", ["正科", "副科", "科员"]),
    "deputy_bureau": ("副处", "正科", ["副科", "科员"]),
    "section": ("正科", "副科", ["副科", "科员"]),
    "deputy_section": ("副科", "科员", ["科员"]),
    "unit_level": ("科员", "科员", ["科员"]),
}
LEADER_TITLE = {"party": ("部长", "副部长"), "government": ("局长", "副局长"), "judicial": ("院长", "副院长"),
                "institution": ("主任", "副主任"), "township": ("主任", "副主任")}


def stable_u(*parts: object) -> float:
    """A deterministic draw in [0, 1) from the given parts (independent of call order)."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def stable_u_series(keys: pd.Series, salt: str) -> np.ndarray:
    """Vectorised :func:`stable_u` over a column of keys."""
    hashed = pd.util.hash_pandas_object(keys.astype(str) + "|" + salt, index=False).to_numpy()
    return hashed.astype(np.float64) / 2**64


# --- projection ------------------------------------------------------------------------------

def project(w, month: str) -> dict[str, pd.DataFrame]:
    """The clean state of every source for ``month`` (no problems, no dirt yet)."""
    people = w.people.set_index("pid")
    units = w.units.set_index("unit_code")
    pl = w.placements
    active = pl[pl.status == "active"]
    out: dict[str, pd.DataFrame] = {}
    # staffing
    sp = pl.merge(w.people[["pid", "id_number", "name", "sex", "birth_date"]], on="pid", how="left")
    sp["_pid"] = sp.pid
    out["persons"] = sp[STAFFING_PERSON_COLUMNS + ["_pid", "_changed"]].copy()
    out["units"] = w.units[UNIT_COLUMNS].copy()
    out["quotas"] = w.quotas[["unit_code", "quota_type", "approved"]].copy()
    out["leader_posts"] = w.leader_posts[["unit_code", "level", "approved"]].copy()
    # organisation department: cadres of active placements
    cad = active[active._cadre.astype(bool)]
    ppl = people.reindex(cad.pid)
    rank = units["rank"].reindex(cad.unit_code).to_numpy()
    kind = units.kind.reindex(cad.unit_code).to_numpy()
    leader = cad._leader.to_numpy()
    staff_draw = stable_u_series(cad.record_id, "zwcc")
    zwcc, zwmc = [], []
    for r, k, lv, d, pos in zip(rank, kind, leader, staff_draw, cad.position.to_numpy()):
        pr, dp, staff = RANK_TITLES[r]
        titles = LEADER_TITLE.get(k, ("主任", "副主任"))
        if lv == "principal":
            zwcc.append(pr), zwmc.append(titles[0])
        elif lv == "deputy":
            zwcc.append(dp), zwmc.append(titles[1])
        else:
            zwcc.append(staff[int(d * len(staff))]), zwmc.append(pos)
    out["org"] = pd.DataFrame({
        "sfzh": ppl.id_number.to_numpy(), "xm": ppl.name.to_numpy(),
        "xb": np.where(ppl.sex.to_numpy() == "M", "1", "2"),
        "csrq": ppl.birth_date.str.replace("-", "", regex=False).to_numpy(),
        "dwdm": cad.unit_code.to_numpy(), "dwmc": units.name.reindex(cad.unit_code).to_numpy(),
        "zwmc": zwmc, "zwcc": zwcc,
        "sfld": np.where(pd.notna(leader), "1", "0"),
        "ldlb": np.where(leader == "principal", "正职", np.where(leader == "deputy", "副职", "")),
        "rzsj": cad._rzsj.str.replace("-", "", regex=False).to_numpy(),
        "_pid": cad.pid.to_numpy(),
    })
    # finance
    ys = pd.DataFrame({"dwbm": w.units._dwbm, "tyshxydm": w.units.unit_code, "dwmc": w.units.name, "qhdm": w.units.region_code})
    out["ys_dw"] = pd.concat([ys, w.extra_budget_units[YS_DW_COLUMNS]], ignore_index=True).sort_values("dwbm", ignore_index=True)
    out["gz_ff"] = payroll(w, month)
    # HR
    out["cbdw"] = pd.DataFrame({"单位编号": w.units._hr_no, "统一社会信用代码": w.units.unit_code, "单位名称": w.units.name}).sort_values("单位编号", ignore_index=True)
    out["cbry"] = insured(w, month)
    return out


def payroll(w, month: str) -> pd.DataFrame:
    """gz_ff rows of one month from the state (clean)."""
    units = w.units.set_index("unit_code")
    people = w.people.set_index("pid")
    pl = w.placements
    act = pl[(pl.status == "active")]
    mode = units._payroll.reindex(act.unit_code).to_numpy()
    # A hire that entered after the 15th of the month is first paid the next month.
    late = act.entered_on.to_numpy() > f"{month}-15"
    act = act[(mode != "none") & ~late]
    mode = units._payroll.reindex(act.unit_code).to_numpy()
    vary = 1 + (stable_u_series(act.record_id, month) - 0.5) * 0.04
    rows = pd.DataFrame({
        "ffyf": P.to_ffyf(month), "dwbm": units._dwbm.reindex(act.unit_code).to_numpy(),
        "sfzh": people.id_number.reindex(act.pid).to_numpy(), "xm": people.name.reindex(act.pid).to_numpy(),
        "rylb": np.where(act.personnel_class.to_numpy() == "establishment", "在编", "编外"),
        "yfgz": np.round(act._pay.to_numpy() * vary, 2),
        "jfly": np.where(mode == "budget", "财政拨款", "单位自筹"), "_pid": act.pid.to_numpy(),
    })
    ret = w.retirees[w.retirees.retired_on <= str(P.last_day(month))]
    rrows = pd.DataFrame({
        "ffyf": P.to_ffyf(month), "dwbm": units._dwbm.reindex(ret.unit_code).to_numpy(),
        "sfzh": people.id_number.reindex(ret.pid).to_numpy(), "xm": people.name.reindex(ret.pid).to_numpy(),
        "rylb": "离退休", "yfgz": ret._pay.to_numpy(), "jfly": "财政拨款", "_pid": ret.pid.to_numpy(),
    })
    return pd.concat([rows, rrows], ignore_index=True)


def insured(w, month: str) -> pd.DataFrame:
    """cbry rows of one month's export (clean): one row per person and employer."""
    units = w.units.set_index("unit_code")
    people = w.people.set_index("pid")
    pl = w.placements
    act = pl[pl.status == "active"]
    # Those who left in the last 12 months keep an ended row at their old employer.
    since = str(P.first_day(P.add_months(month, -11)))
    retired = set(w.retirees.pid)
    gone = pl[(pl.status == "left") & (pl.left_on >= since) & ~pl.pid.isin(retired)]
    base = lambda df: np.round(df._pay.to_numpy() * 0.9).astype(int)  # noqa: E731
    parts = [
        pd.DataFrame({"公民身份号码": people.id_number.reindex(act.pid).to_numpy(), "姓名": people.name.reindex(act.pid).to_numpy(),
                      "单位编号": units._hr_no.reindex(act.unit_code).to_numpy(), "参保状态": "参保缴费", "人员状态": "在职",
                      "退休日期": "", "缴费基数": base(act), "_pid": act.pid.to_numpy()}),
        pd.DataFrame({"公民身份号码": people.id_number.reindex(gone.pid).to_numpy(), "姓名": people.name.reindex(gone.pid).to_numpy(),
                      "单位编号": units._hr_no.reindex(gone.unit_code).to_numpy(), "参保状态": "终止参保", "人员状态": "在职",
                      "退休日期": "", "缴费基数": base(gone), "_pid": gone.pid.to_numpy()}),
    ]
    ret = w.retirees[w.retirees.retired_on <= str(P.last_day(month))]
    parts.append(pd.DataFrame({
        "公民身份号码": people.id_number.reindex(ret.pid).to_numpy(), "姓名": people.name.reindex(ret.pid).to_numpy(),
        "单位编号": units._hr_no.reindex(ret.unit_code).to_numpy(), "参保状态": "终止参保", "人员状态": "退休",
        "退休日期": ret.retired_on.to_numpy(), "缴费基数": 0, "_pid": ret.pid.to_numpy()}))
    out = pd.concat(parts, ignore_index=True)
    # A person still working at one employer has no ended row there.
    return out.drop_duplicates(["_pid", "单位编号"], keep="first", ignore_index=True)


# --- harmless dirt ---------------------------------------------------------------------------

def _dirt_u(w, pids: pd.Series) -> np.ndarray:
    return w.people.set_index("pid").dirt_u.reindex(pids).to_numpy()


def _dot_variant(names: pd.Series, variant: str) -> pd.Series:
    return names.str.replace(ids.MIDDLE_DOT, variant, regex=False)


def add_dirt(w, frames: dict[str, pd.DataFrame]) -> None:
    """How each office writes IDs and names: harmless after standardisation."""
    sp = frames["persons"]
    u = _dirt_u(w, sp._pid)
    low = (u < 0.5) & sp.id_number.str.endswith("X").to_numpy()
    sp.loc[low, "id_number"] = sp.loc[low, "id_number"].str.lower()
    trail = (u >= 0.50) & (u < 0.55)
    sp.loc[trail, "name"] = sp.loc[trail, "name"] + " "
    org = frames["org"]
    u = _dirt_u(w, org._pid)
    org["xm"] = _dot_variant(org.xm, "•")
    pad = (u >= 0.10) & (u < 0.15)
    org.loc[pad, "sfzh"] = " " + org.loc[pad, "sfzh"] + " "
    for name in ("gz_ff",):
        f = frames[name]
        u = _dirt_u(w, f._pid)
        low = (u >= 0.7) & f.sfzh.str.endswith("X").to_numpy()
        f.loc[low, "sfzh"] = f.loc[low, "sfzh"].str.lower()
        wide = (u >= 0.20) & (u < 0.25)
        f.loc[wide, "sfzh"] = f.loc[wide, "sfzh"] + "\u3000"
        spaced = (u >= 0.30) & (u < 0.34) & (f.xm.str.len() == 2).to_numpy()
        f.loc[spaced, "xm"] = f.loc[spaced, "xm"].str[0] + "\u3000" + f.loc[spaced, "xm"].str[1]
        f["xm"] = _dot_variant(f.xm, ".")
    hr = frames["cbry"]
    u = _dirt_u(w, hr._pid)
    legacy = (u >= 0.60) & (u < 0.66) & (hr.公民身份号码.str[6:8] == "19").to_numpy()
    hr.loc[legacy, "公民身份号码"] = hr.loc[legacy, "公民身份号码"].str[:6] + hr.loc[legacy, "公民身份号码"].str[8:17]
    hr["姓名"] = _dot_variant(hr.姓名, "・")
    trail = (u >= 0.40) & (u < 0.45)
    hr.loc[trail, "姓名"] = hr.loc[trail, "姓名"] + "\u3000"


# --- updated_at --------------------------------------------------------------------------------

def _time_in(period: str, u: np.ndarray) -> np.ndarray:
    """Timestamps spread over the period, before its snapshot time."""
    start = dt.datetime.combine(P.first_day(period), dt.time(8, 0), tzinfo=P.CST)
    span = (P.snapshot_at(period) - start).total_seconds() - 60
    return np.array([(start + dt.timedelta(seconds=int(x * span))).isoformat() for x in u], dtype=object)


def stamp(current: pd.DataFrame, previous: pd.DataFrame | None, key: list[str], period: str,
          salt: str, ended: dict | None = None, initial_time: pd.Series | None = None) -> pd.DataFrame:
    """Give each item an ``updated_at``: kept where unchanged since ``previous``, a time in
    ``period`` where new or changed. Items of ``previous`` missing now come back ended
    (``ended`` holds the column values of an ended item), never deleted."""
    cur = current.copy()
    keys = cur[key].astype(str).agg("|".join, axis=1) if len(key) > 1 else cur[key[0]].astype(str)
    fresh = _time_in(period, stable_u_series(keys, f"{salt}|{period}"))
    if previous is None:
        cur["updated_at"] = initial_time.to_numpy() if initial_time is not None else fresh
        return cur
    content = [c for c in cur.columns if c != "updated_at" and c not in key and not c.startswith("_")]
    prev = previous.copy()
    if ended:
        missing = prev.merge(cur[key], on=key, how="left", indicator=True)
        missing = missing[missing._merge == "left_only"].drop(columns="_merge")
        if len(missing):
            for col, val in ended.items():
                missing[col] = val
            cur = pd.concat([cur, missing[[c for c in cur.columns if c in missing.columns]]], ignore_index=True)
            keys = cur[key].astype(str).agg("|".join, axis=1) if len(key) > 1 else cur[key[0]].astype(str)
            fresh = _time_in(period, stable_u_series(keys, f"{salt}|{period}"))
    cur = cur.drop(columns=["updated_at"], errors="ignore")
    m = cur.merge(prev[key + content + ["updated_at"]].rename(columns={"updated_at": "_prev_ts"}), on=key, how="left",
                  suffixes=("", "__prev"), indicator=True)
    same = m._merge.eq("both").to_numpy().copy()
    for c in content:
        a, b = m[c], m[c + "__prev"]
        same &= ((a == b) | (a.isna() & b.isna())).to_numpy()
    cur["updated_at"] = np.where(same, m["_prev_ts"].to_numpy(), fresh)
    return cur
