"""The findings of OUTPUTS.md, injected the way they happen in life.

A :class:`Problem` names its subjects (persons by ``pid``, units by credit code) and
lives from ``start`` until ``fixed_in``. Most problems are overlays: while open they
change what one office's system says (a quota cut, a payroll row in a second budget
unit, a mistyped ID digit...); once fixed the overlay stops and the system says the
truth again. A few are real events in the world (an extra hire, a second placement, a
person who left staffing but stayed on the payroll, a late retirement), made on the
world itself so that every office sees them consistently.

Subjects are pinned: the world's monthly churn leaves them alone, so a problem persists
until it is fixed. Which findings actually hold is never taken from here: the oracle
computes the truth from what the offices serve, co-occurring findings included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from include import identifiers as ids
from include import periods as P
from include.generator import names as N
from include.generator import sources as S
from include.generator import world as W

CODES = [
    "OVER_QUOTA", "NON_ESTABLISHMENT_OVER_CAP", "LEADER_OVER_LIMIT", "HIGH_VACANCY", "REVOKED_UNIT_STAFFED",
    "PAID_WITHOUT_ESTABLISHMENT", "ESTABLISHED_NOT_PAID", "DUPLICATE_PAY", "MULTIPLE_ESTABLISHMENT",
    "RETIRED_STILL_ACTIVE", "UNIT_MISMATCH", "CLASS_MISMATCH", "RESTRICTED_POST", "CADRE_WITHOUT_ESTABLISHMENT",
    "MISSING_SLIP", "NOT_INSURED", "INVALID_ID", "IDENTITY_CONFLICT", "OVER_RETIREMENT_AGE", "LEADER_RANK_MISMATCH",
    "FUNDING_MISMATCH", "DUPLICATE_IDENTITY", "UNREGISTERED_NON_ESTABLISHMENT",
]
RANKS = ["正厅", "副厅", "正处", "副处", "正科", "副科", "科员"]   # highest first
IDENTITY_SLIPS = ["staffing_birth_date", "org_csrq", "finance_name", "org_xb"]
INVALID_ID_SOURCES = ["finance", "hr", "staffing", "org"]


@dataclasses.dataclass
class Problem:
    code: str
    start: str
    pids: list = dataclasses.field(default_factory=list)
    units: list = dataclasses.field(default_factory=list)
    params: dict = dataclasses.field(default_factory=dict)
    fixed_in: str | None = None

    def open_in(self, period: str) -> bool:
        return self.start <= period and (self.fixed_in is None or period < self.fixed_in)


class NoCandidate(RuntimeError):
    pass


# --- choosing subjects -----------------------------------------------------------------------------

def _free(w, df: pd.DataFrame, pid_col: str = "pid", unit_col: str = "unit_code") -> pd.DataFrame:
    """Rows whose person and unit are subjects of no problem yet; persons only if they stay
    short of their statutory retirement date to the end of the world (a subject is left alone
    by the monthly retirements, so one who came due would become OVER_RETIREMENT_AGE too)."""
    out = df
    if pid_col in df:
        out = out[~out[pid_col].isin(w.pinned_pids)]
        out = out[w.retirement_due().reindex(out[pid_col]).to_numpy() > np.datetime64(w.last_day)]
    if unit_col in df:
        out = out[~out[unit_col].isin(w.pinned_units)]
    return out


def _pick(w, df: pd.DataFrame) -> pd.Series:
    if df.empty:
        raise NoCandidate
    return df.iloc[int(w.rng.integers(0, len(df)))]


def _active(w) -> pd.DataFrame:
    pl = w.placements
    return pl[(pl.status == "active") & pl._leader.isna()]


def _single_placement(w, df: pd.DataFrame) -> pd.DataFrame:
    counts = w.placements[w.placements.status == "active"].pid.value_counts()
    return df[df.pid.map(counts).eq(1)]


def _paid_by_budget(w, df: pd.DataFrame) -> pd.DataFrame:
    mode = w.units.set_index("unit_code")._payroll
    return df[df.unit_code.map(mode).eq("budget") & (df.entered_on < f"{w.period}-01")]


def _unit_filled(w) -> pd.DataFrame:
    pl = w.placements
    est = pl[(pl.status == "active") & (pl.personnel_class == "establishment")]
    return est.groupby(["unit_code", "quota_type"]).size().rename("filled").reset_index()


def choose(w, code: str, serial: int) -> Problem:
    """Pick the subjects of a new problem of ``code`` in the world's current period."""
    rng, period = w.rng, w.period
    prob = Problem(code=code, start=period)
    units = w.units
    if code == "OVER_QUOTA":  # 超编: a quota cut below headcount (核减 without moving anyone)
        f = _free(w, _unit_filled(w))
        f = f[(f.filled >= 2) & (f.quota_type != "turnover")]
        r = _pick(w, f)
        prob.units = [r.unit_code]
        prob.params = {"quota_type": r.quota_type, "approved": int(r.filled - rng.integers(1, min(3, r.filled) + 1))}
    elif code == "NON_ESTABLISHMENT_OVER_CAP":  # extra non-establishment hires beyond the cap
        caps = w.quotas[w.quotas.quota_type == "non_establishment_cap"]
        pl = w.placements
        ne = pl[(pl.status == "active") & (pl.personnel_class == "non_establishment")].groupby("unit_code").size()
        caps = _free(w, caps.assign(count=caps.unit_code.map(ne).fillna(0).astype(int)))
        caps = caps[caps.unit_code.map(units.set_index("unit_code")._payroll).eq("budget")]
        r = _pick(w, caps)
        k = int(r.approved - r["count"] + rng.integers(1, 3))
        hires = W._new_placements(w, np.full(k, r.unit_code), np.full(k, None, dtype=object),
                                  np.full(k, "non_establishment"), period, initial=False)
        hires["entered_on"] = f"{P.add_months(period, -1)}-02"   # hired last month, paid this month
        hires["_rzsj"] = hires.entered_on
        w.placements = pd.concat([w.placements, hires], ignore_index=True)
        prob.units, prob.pids = [r.unit_code], hires.pid.tolist()
    elif code == "LEADER_OVER_LIMIT":  # 超职数: one more deputy (or a second principal) appointed
        pl = w.placements
        act = pl[pl.status == "active"]
        leaders = act.groupby(["unit_code", "_leader"]).size().rename("filled").reset_index().rename(columns={"_leader": "level"})
        lp = w.leader_posts.merge(leaders, on=["unit_code", "level"], how="left").fillna({"filled": 0})
        lp = _free(w, lp[lp.filled >= lp.approved])
        cadres = _free(w, act[act._cadre.astype(bool) & act._leader.isna() & (act.personnel_class == "establishment")])
        lp = lp[lp.unit_code.isin(cadres.unit_code)]
        r = _pick(w, lp)
        who = _pick(w, cadres[cadres.unit_code == r.unit_code])
        prob.units, prob.pids, prob.params = [r.unit_code], [int(who.pid)], {"level": r.level}
    elif code == "HIGH_VACANCY":  # 长期空编: posts approved for a remote township and never filled
        f = _unit_filled(w)
        tot = f.groupby("unit_code").filled.sum()
        cand = _free(w, units[units.kind.isin(["township", "institution"])])
        cand = cand[cand.unit_code.isin(tot.index)]
        town = cand[cand.kind == "township"]
        r = _pick(w, town if len(town) else cand)
        e = int(tot[r.unit_code])
        main = f[f.unit_code == r.unit_code].sort_values("filled").iloc[-1].quota_type
        others = int(w.quotas[(w.quotas.unit_code == r.unit_code) & ~w.quotas.quota_type.isin(["non_establishment_cap", main])].approved.sum())
        target_total = max(10, int(np.ceil(e / float(rng.uniform(0.45, 0.68)))))
        prob.units = [r.unit_code]
        prob.params = {"quota_type": main, "approved": max(target_total - others, 1)}
    elif code == "REVOKED_UNIT_STAFFED":  # 机构已撤销: revoked on paper, people still placed and paid
        pl = w.placements
        staffed = pl[pl.status == "active"].unit_code.value_counts()
        cand = _free(w, units[units.unit_code.isin(staffed[(staffed >= 1) & (staffed <= 40)].index)])
        prob.units = [_pick(w, cand).unit_code]
    elif code == "PAID_WITHOUT_ESTABLISHMENT":  # 有薪无编: left the books, still on the payroll
        a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
        r = _pick(w, a[(a.personnel_class == "establishment") & ~a._cadre.astype(bool)])
        idx = w.placements.index[w.placements.record_id == r.record_id]
        w.placements.loc[idx, ["status", "left_on", "_changed"]] = ["left", f"{P.add_months(period, -2)}-28", period]
        prob.pids = [int(r.pid)]
        prob.params = {"unit_code": r.unit_code, "record_id": r.record_id}
    elif code == "ESTABLISHED_NOT_PAID":  # 有编无薪: dropped from the payroll run
        a = _free(w, _paid_by_budget(w, _active(w)))
        r = _pick(w, a[a.personnel_class == "establishment"])
        prob.pids = [int(r.pid)]
    elif code == "DUPLICATE_PAY":  # 一人多薪: a second payroll row in another budget unit
        a = _free(w, _paid_by_budget(w, _active(w)))
        r = _pick(w, a)
        budget = units[(units._payroll == "budget") & (units.unit_code != r.unit_code)]
        if rng.random() < 0.25:
            other = _pick(w, w.extra_budget_units).dwbm
        else:
            other = _pick(w, budget).loc["_dwbm"]
        prob.pids, prob.params = [int(r.pid)], {"dwbm": other, "share": float(rng.uniform(0.3, 1.0))}
    elif code == "MULTIPLE_ESTABLISHMENT":  # 一人多编: placed in a second unit, the first never closed
        a = _free(w, _single_placement(w, _active(w)))
        r = _pick(w, a[a.personnel_class == "establishment"])
        f = _free(w, _unit_filled(w))
        q = w.quotas.merge(f, on=["unit_code", "quota_type"], how="left").fillna({"filled": 0})
        q = _free(w, q[(q.approved > q.filled) & (q.unit_code != r.unit_code) & ~q.quota_type.isin(["non_establishment_cap", "turnover"])])
        dest = _pick(w, q)
        second = W._new_placements(w, np.array([dest.unit_code]), np.array([dest.quota_type], dtype=object),
                                   np.array(["establishment"]), period, initial=False, pids=np.array([r.pid]))
        w.placements = pd.concat([w.placements, second], ignore_index=True)
        prob.pids, prob.units = [int(r.pid)], [dest.unit_code]
        prob.params = {"record_id": second.record_id.iloc[0]}
    elif code == "RETIRED_STILL_ACTIVE":  # 退休未减员: retired in HR, still on the books and paid
        a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
        born = a.pid.map(w.people.set_index("pid").birth_date)
        a = a[born <= "1968-12-31"]
        r = _pick(w, a)
        last = P.last_day(period)
        day = last if rng.random() < 0.3 else last.replace(day=int(rng.integers(1, last.day)))
        prob.pids, prob.params = [int(r.pid)], {"retired_on": str(day), "record_id": r.record_id}
    elif code == "UNIT_MISMATCH":  # 单位不一致: seconded (借调), paid or appointed by another unit
        a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
        use_org = rng.random() < 0.4 and a._cadre.astype(bool).any()
        if use_org:
            a = a[a._cadre.astype(bool)]
        r = _pick(w, a)
        other = _pick(w, units[(units._payroll == "budget") & (units.unit_code != r.unit_code) & (units.region_code == units.set_index("unit_code").region_code[r.unit_code])])
        prob.pids = [int(r.pid)]
        prob.params = {"via": "org" if use_org else "finance", "unit_code": other.unit_code, "dwbm": other._dwbm}
    elif code == "CLASS_MISMATCH":  # 身份不一致: paid as 在编 while hired as 编外 (or the reverse)
        r = _pick(w, _free(w, _single_placement(w, _paid_by_budget(w, _active(w)))))
        prob.pids = [int(r.pid)]
    elif code == "RESTRICTED_POST":  # 编外人员占用关键岗位
        a = _free(w, _active(w))
        r = _pick(w, a[a.personnel_class == "non_establishment"])
        prob.pids, prob.params = [int(r.pid)], {"post_category": ["finance", "personnel", "classified"][serial % 3]}
    elif code == "CADRE_WITHOUT_ESTABLISHMENT":  # 领导干部无编: a non-establishment hire recorded as a deputy
        pl = w.placements
        act = pl[pl.status == "active"]
        deps = _free(w, act[act._leader == "deputy"])
        ne = _free(w, act[(act.personnel_class == "non_establishment")])
        deps = deps[deps.unit_code.isin(ne.unit_code)]
        d = _pick(w, deps)
        n = _pick(w, ne[ne.unit_code == d.unit_code])
        prob.pids, prob.units = [int(n.pid), int(d.pid)], [d.unit_code]
    elif code == "MISSING_SLIP":  # 无核编单据
        a = _free(w, _active(w))
        r = _pick(w, a[a.personnel_class == "establishment"])
        prob.pids, prob.params = [int(r.pid)], {"slip_no": [None, "", "  "][serial % 3]}
    elif code == "NOT_INSURED":  # 未参保
        a = _free(w, _paid_by_budget(w, _active(w)))
        r = _pick(w, a)
        prob.pids, prob.params = [int(r.pid)], {"how": ["suspended", "absent"][serial % 2]}
    elif code == "INVALID_ID":  # 身份证号校验不通过: a mistyped digit in one office's record
        source = INVALID_ID_SOURCES[serial % len(INVALID_ID_SOURCES)]
        a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
        if source == "org":
            cadres = a[a._cadre.astype(bool)]
            a, source = (cadres, "org") if len(cadres) else (a, "finance")   # a small world may have no cadre free
        r = _pick(w, a)
        pos = int(rng.integers(0, 17))
        prob.pids, prob.params = [int(r.pid)], {"source": source, "pos": pos, "delta": int(rng.integers(1, 10))}
    elif code == "IDENTITY_CONFLICT":  # 身份信息不一致: a birth date, sex or name mistyped in one office
        via = IDENTITY_SLIPS[serial % len(IDENTITY_SLIPS)]
        a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
        if via.startswith("org"):
            a = a[a._cadre.astype(bool)] if a._cadre.astype(bool).any() else a
            via = via if a._cadre.astype(bool).any() else "staffing_birth_date"
        r = _pick(w, a)
        person = w.people.set_index("pid").loc[int(r.pid)]
        born = dt.date.fromisoformat(person.birth_date)
        slipped = born + dt.timedelta(days=10 if born.day <= 18 else -10)      # the tens digit of the day
        value = {"staffing_birth_date": slipped.isoformat(), "org_csrq": slipped.strftime("%Y%m%d"),
                 "finance_name": person["name"][:-1] + _other_char(w, person["name"][-1]),
                 "org_xb": "2" if person.sex == "M" else "1"}[via]
        prob.pids, prob.params = [int(r.pid)], {"via": via, "value": value}
    elif code == "OVER_RETIREMENT_AGE":  # 超龄未退休: a placement held by someone long past the age
        a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
        r = _pick(w, a[a.personnel_class == "establishment"])
        female = bool(rng.random() < 0.4)
        # born before the cohorts with a delay: retired by the statute in 2023-2024
        old = W.make_people(rng, 1, w.next_pid, W._birth_regions(w),
                            dt.date(1968, 7, 1) if female else dt.date(1963, 7, 1),
                            dt.date(1969, 12, 31) if female else dt.date(1964, 12, 31),
                            female_share=1.0 if female else 0.0, taken=w.taken_ids(), taken_keys=w.identity_keys)
        w.next_pid += 1
        w.people = pd.concat([w.people, old], ignore_index=True)
        idx = w.placements.index[w.placements.record_id == r.record_id]
        w.placements.loc[idx, ["pid", "_changed"]] = [int(old.pid.iloc[0]), period]
        prob.pids, prob.params = [int(old.pid.iloc[0])], {"record_id": r.record_id}
    elif code == "LEADER_RANK_MISMATCH":  # 领导职务高配: a leader given a rank above the unit's
        pl = w.placements
        leaders = _free(w, pl[(pl.status == "active") & pl._leader.notna()])
        rank = units.set_index("unit_code")["rank"]
        top = S.RANK_TITLES   # the ranks the world gives a unit's principal and deputy: the highest allowed
        limit = [top[rank[u]][0 if lv == "principal" else 1] for u, lv in zip(leaders.unit_code, leaders._leader)]
        leaders = leaders[np.array([RANKS.index(x) > 0 for x in limit], dtype=bool)]
        r = _pick(w, leaders)
        lim = top[rank[r.unit_code]][0 if r._leader == "principal" else 1]
        steps = min(RANKS.index(lim), int(rng.integers(1, 3)))
        prob.pids, prob.units = [int(r.pid)], []
        prob.params = {"zwcc": RANKS[RANKS.index(lim) - steps]}
    elif code == "FUNDING_MISMATCH":  # 自收自支单位财政发薪: a self-funded unit's staff paid from the budget
        mode = units.set_index("unit_code")._payroll
        a = _free(w, _single_placement(w, _active(w)))
        a = a[a.unit_code.map(mode).eq("own") & (a.entered_on < f"{period}-01")]
        if a.empty:   # no self-funded unit on the payroll: one is reformed to self-funding (改制) and still paid
            pl = w.placements
            staffed = pl[pl.status == "active"].unit_code.value_counts()
            budget = _free(w, units[(units._payroll == "budget") & units.unit_code.isin(staffed.index)])
            inst = budget[budget.kind == "institution"]   # an institution if there is one (a small world may have none free)
            inst = inst if len(inst) else budget
            u = _pick(w, inst.assign(n=inst.unit_code.map(staffed)).sort_values("n").head(3))
            prob.units, prob.params = [u.unit_code], {"reform": True}
        else:
            r = _pick(w, a)
            prob.pids, prob.params = [int(r.pid)], {"reform": False}
    elif code == "DUPLICATE_IDENTITY":  # 疑似一人多号: a second ID (other sequence digits) paid by another unit
        a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
        r = _pick(w, a)
        person = w.people.set_index("pid").loc[int(r.pid)]
        taken = w.taken_ids()
        extra = []
        for _ in range(2 if serial % 3 == 2 else 1):   # now and then a third: A~B~C
            while True:
                body = person.id_number[:14] + f"{int(rng.integers(0, 100)):02d}" + person.id_number[16]
                other = body + ids.id_check_char(body)
                if other not in taken:
                    break
            taken.add(other)
            extra.append(other)
        w.reserved_ids.update(extra)
        budget = units[(units._payroll == "budget") & (units.unit_code != r.unit_code)]
        payer = _pick(w, budget)
        prob.pids = [int(r.pid)]
        prob.params = {"ids": extra, "dwbm": payer._dwbm, "hr_no": payer._hr_no,
                       "rylb": ["编外", "在编"][serial % 2], "pay": round(float(rng.uniform(3000, 6000)), 2)}
    elif code == "UNREGISTERED_NON_ESTABLISHMENT":  # 编外人员未纳入实名管理
        if serial % 2 == 0:   # hired and paid by the unit, never registered with the staffing office
            u = _pick(w, _free(w, units[units._payroll == "budget"]))
            hire = W.make_people(rng, 1, w.next_pid, W._birth_regions(w), dt.date(1985, 1, 1), dt.date(2002, 12, 31),
                                 taken=w.taken_ids(), taken_keys=w.identity_keys)
            w.next_pid += 1
            w.people = pd.concat([w.people, hire], ignore_index=True)
            prob.pids, prob.units = [int(hire.pid.iloc[0])], [u.unit_code]
            prob.params = {"how": "never_registered", "dwbm": u._dwbm, "hr_no": u._hr_no,
                           "pay": round(float(rng.uniform(3000, 6000)), 2)}
        else:                 # let go in staffing's books, kept on the payroll
            a = _free(w, _single_placement(w, _paid_by_budget(w, _active(w))))
            r = _pick(w, a[a.personnel_class == "non_establishment"])
            idx = w.placements.index[w.placements.record_id == r.record_id]
            w.placements.loc[idx, ["status", "left_on", "_changed"]] = ["left", f"{P.add_months(period, -2)}-28", period]
            prob.pids = [int(r.pid)]
            prob.params = {"how": "left_but_paid", "unit_code": r.unit_code, "record_id": r.record_id}
    else:
        raise ValueError(f"unknown code {code}")
    w.pinned_pids.update(int(p) for p in prob.pids)
    w.pinned_units.update(prob.units)
    return prob


def _other_char(w, char: str) -> str:
    """A character of a name mistyped as another (a homophone picked by the input method)."""
    pool = [c for c in N.GIVEN_CHARS if c != char]
    return pool[int(w.rng.integers(0, len(pool)))]


def fix_in_world(w, prob: Problem) -> None:
    """The real-world act that resolves a problem, where stopping its overlay is not enough."""
    pl = w.placements
    period = w.period
    if prob.code == "NON_ESTABLISHMENT_OVER_CAP":  # the extra hires are let go
        idx = pl.index[pl.pid.isin(prob.pids) & (pl.status == "active")]
        pl.loc[idx, ["status", "left_on", "_changed"]] = ["left", f"{period}-05", period]
    elif prob.code == "MULTIPLE_ESTABLISHMENT":  # the second placement is closed
        idx = pl.index[pl.record_id == prob.params["record_id"]]
        pl.loc[idx, ["status", "left_on", "_changed"]] = ["left", f"{period}-05", period]
    elif prob.code == "OVER_RETIREMENT_AGE":  # the retirement is finally processed, at the statutory date
        idx = pl.index[pl.record_id == prob.params["record_id"]]
        pl.loc[idx, ["status", "left_on", "_changed"]] = ["left", f"{period}-01", period]
        row = pl.loc[idx[0]]
        due = str(pd.Timestamp(w.retirement_due()[row.pid]).date())
        w.retirees = pd.concat([w.retirees, pd.DataFrame({"pid": [row.pid], "unit_code": [row.unit_code], "retired_on": [due],
                                                          "_pay": [round(row._pay * 0.85, 2)]})], ignore_index=True)
    elif prob.code == "RETIRED_STILL_ACTIVE":  # the retirement is finally processed
        idx = pl.index[pl.record_id == prob.params["record_id"]]
        pl.loc[idx, ["status", "left_on", "_changed"]] = ["left", prob.params["retired_on"], period]
        row = pl.loc[idx[0]]
        w.retirees = pd.concat([w.retirees, pd.DataFrame({"pid": [row.pid], "unit_code": [row.unit_code],
                                                          "retired_on": [prob.params["retired_on"]], "_pay": [round(row._pay * 0.85, 2)]})], ignore_index=True)


# --- overlays ------------------------------------------------------------------------------------------

def _mistype(raw: str, pos: int, delta: int) -> str:
    digit = (int(raw[pos]) + delta) % 10
    return raw[:pos] + str(digit) + raw[pos + 1:]


def apply_overlays(w, frames: dict[str, pd.DataFrame], problems: list[Problem], period: str, month: str) -> None:
    """Apply the open problems of ``period`` to the frames of ``month``.

    ``period`` decides which problems are open (the served state); ``month`` is the payroll or
    HR month being written (the period itself, or the month before for the first period).
    """
    units = w.units.set_index("unit_code")
    people = w.people.set_index("pid")

    def drop(name, mask):
        frames[name] = frames[name][~mask]

    def append(name, row):
        frames[name] = pd.concat([frames[name], pd.DataFrame([dict(row)])], ignore_index=True)

    for prob in problems:
        sp, q, org, pay, hr = frames["persons"], frames["quotas"], frames["org"], frames["gz_ff"], frames["cbry"]
        pid = prob.pids[0] if prob.pids else None
        c = prob.code
        if prob.fixed_in is not None and prob.fixed_in <= period:
            # Fixed. A person who left staffing but stayed paid is now off the payroll too.
            if c == "PAID_WITHOUT_ESTABLISHMENT" or (c == "UNREGISTERED_NON_ESTABLISHMENT"
                                                     and prob.params["how"] == "left_but_paid"):
                drop("gz_ff", pay._pid == pid)
            continue
        if not prob.open_in(period):
            continue
        if c in ("OVER_QUOTA", "HIGH_VACANCY"):
            m = (q.unit_code == prob.units[0]) & (q.quota_type == prob.params["quota_type"])
            q.loc[m, "approved"] = prob.params["approved"]
        elif c == "REVOKED_UNIT_STAFFED":
            frames["units"].loc[frames["units"].unit_code == prob.units[0], "status"] = "revoked"
        elif c == "LEADER_OVER_LIMIT":
            m = org._pid == pid
            org.loc[m, ["sfld", "ldlb", "zwmc"]] = ["1", "正职" if prob.params["level"] == "principal" else "副职",
                                                     "负责人" if prob.params["level"] == "principal" else "副职负责人"]
        elif c == "PAID_WITHOUT_ESTABLISHMENT":
            if not (pay._pid == pid).any():
                u = prob.params["unit_code"]
                append("gz_ff", {"ffyf": P.to_ffyf(month), "dwbm": units._dwbm[u], "sfzh": people.id_number[pid],
                                     "xm": people.name[pid], "rylb": "在编", "yfgz": 8888.0, "jfly": "财政拨款", "_pid": pid})
        elif c == "ESTABLISHED_NOT_PAID":
            drop("gz_ff", pay._pid == pid)
        elif c == "DUPLICATE_PAY":
            row = pay[pay._pid == pid].iloc[0].copy()
            row["dwbm"], row["yfgz"] = prob.params["dwbm"], round(float(row["yfgz"]) * prob.params["share"], 2)
            append("gz_ff", row)
        elif c == "RETIRED_STILL_ACTIVE":
            m = hr._pid == pid
            hr.loc[m, ["人员状态", "退休日期"]] = ["退休", prob.params["retired_on"]]
        elif c == "UNIT_MISMATCH":
            if prob.params["via"] == "org":
                m = org._pid == pid
                org.loc[m, ["dwdm", "dwmc"]] = [prob.params["unit_code"], units.name[prob.params["unit_code"]]]
            else:
                pay.loc[pay._pid == pid, "dwbm"] = prob.params["dwbm"]
        elif c == "CLASS_MISMATCH":
            m = pay._pid == pid
            pay.loc[m, "rylb"] = pay.loc[m, "rylb"].map({"在编": "编外", "编外": "在编"})
        elif c == "RESTRICTED_POST":
            sp.loc[(sp._pid == pid) & (sp.status == "active"), "post_category"] = prob.params["post_category"]
        elif c == "CADRE_WITHOUT_ESTABLISHMENT":
            ne_pid, dep_pid = prob.pids
            dep = org[org._pid == dep_pid]
            if len(dep):
                row = dep.iloc[0].copy()
                org.loc[org._pid == dep_pid, ["sfld", "ldlb"]] = ["0", ""]
                row["sfzh"], row["xm"] = people.id_number[ne_pid], people.name[ne_pid]
                row["xb"] = "1" if people.sex[ne_pid] == "M" else "2"
                row["csrq"] = people.birth_date[ne_pid].replace("-", "")
                row["_pid"] = ne_pid
                append("org", row)
        elif c == "MISSING_SLIP":
            sp.loc[(sp._pid == pid) & (sp.status == "active"), "slip_no"] = prob.params["slip_no"]
        elif c == "NOT_INSURED":
            m = hr._pid == pid
            if prob.params["how"] == "absent":
                drop("cbry", m)
            else:
                hr.loc[m & (hr.参保状态 == "参保缴费"), "参保状态"] = "暂停缴费"
        elif c == "IDENTITY_CONFLICT":
            via, value = prob.params["via"], prob.params["value"]
            if via == "staffing_birth_date":
                sp.loc[(sp._pid == pid) & (sp.status == "active"), "birth_date"] = value
            elif via == "finance_name":
                pay.loc[pay._pid == pid, "xm"] = value
            else:
                org.loc[org._pid == pid, "csrq" if via == "org_csrq" else "xb"] = value
        elif c == "LEADER_RANK_MISMATCH":
            org.loc[(org._pid == pid) & (org.sfld == "1"), "zwcc"] = prob.params["zwcc"]
        elif c == "FUNDING_MISMATCH":
            if prob.params["reform"]:
                u = prob.units[0]
                frames["units"].loc[frames["units"].unit_code == u, "funding"] = "self"
            else:
                pay.loc[pay._pid == pid, "jfly"] = "财政拨款"
        elif c == "DUPLICATE_IDENTITY":
            name = people.name[pid]
            extra = prob.params["ids"]
            append("gz_ff", {"ffyf": P.to_ffyf(month), "dwbm": prob.params["dwbm"], "sfzh": extra[0], "xm": name,
                             "rylb": prob.params["rylb"], "yfgz": prob.params["pay"], "jfly": "财政拨款", "_pid": pid})
            for other in extra[1:]:
                append("cbry", {"公民身份号码": other, "姓名": name, "单位编号": prob.params["hr_no"], "参保状态": "参保缴费",
                                "人员状态": "在职", "退休日期": "", "缴费基数": int(prob.params["pay"] * 0.9), "_pid": pid})
        elif c == "UNREGISTERED_NON_ESTABLISHMENT":
            if prob.params["how"] == "never_registered":
                append("gz_ff", {"ffyf": P.to_ffyf(month), "dwbm": prob.params["dwbm"], "sfzh": people.id_number[pid],
                                 "xm": people.name[pid], "rylb": "编外", "yfgz": prob.params["pay"], "jfly": "财政拨款", "_pid": pid})
                append("cbry", {"公民身份号码": people.id_number[pid], "姓名": people.name[pid], "单位编号": prob.params["hr_no"],
                                "参保状态": "参保缴费", "人员状态": "在职", "退休日期": "", "缴费基数": int(prob.params["pay"] * 0.9),
                                "_pid": pid})
            elif not (pay._pid == pid).any():
                u = prob.params["unit_code"]
                append("gz_ff", {"ffyf": P.to_ffyf(month), "dwbm": units._dwbm[u], "sfzh": people.id_number[pid],
                                 "xm": people.name[pid], "rylb": "编外", "yfgz": 4321.0, "jfly": "财政拨款", "_pid": pid})
        elif c == "INVALID_ID":
            src = prob.params["source"]
            frame, col = {"finance": (pay, "sfzh"), "hr": (hr, "公民身份号码"), "staffing": (sp, "id_number"), "org": (org, "sfzh")}[src]
            m = frame._pid == pid
            if src == "staffing":
                m &= sp.status == "active"
            frame.loc[m, col] = _mistype(people.id_number[pid], prob.params["pos"], prob.params["delta"])
