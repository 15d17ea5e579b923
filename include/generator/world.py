"""The clean synthetic jurisdiction: regions, units, approved establishment, people.

Everything is built with numpy/pandas over whole columns so that a province of
millions of persons generates in minutes. The shape follows the county figures of
../shared/domain.md §3 (Qingshan: 57 organs with 652 administrative, 45
political-legal and 49 logistics posts; 146 institutions with 6,451 posts, 4,629 of
them school posts; 90-100% fill; non-establishment staff at 10-25% of establishment).

The world here is *clean*: it raises no finding of OUTPUTS.md. Problems are laid over
it by :mod:`include.generator.problems`, one period at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from include import identifiers as ids
from include import periods as P
from include.generator import names as N

# Per-jurisdiction template (a county, after Qingshan). kind -> number of units.
ORGAN_TEMPLATE = {
    "party": 10, "congress": 1, "cppcc": 1, "government": 22, "judicial": 2,
    "dev_zone": 1, "mass_org": 10, "township": 10,
}
INSTITUTIONS_PER_JURISDICTION = 116
SCHOOLS_PER_JURISDICTION = 30
ADMIN_QUOTA_PER_ORGAN = 652 / 57          # 行政编制 per organ
LOGISTICS_QUOTA_TOTAL = 49                 # 机关工勤编制
POLITICAL_LEGAL_TOTAL = 45                 # 政法专项编制
SCHOOL_QUOTA_PER_SCHOOL = 4629 / 30        # 中小学教职工专项编制
INSTITUTION_QUOTA_PER_UNIT = 1822 / 116    # 事业编制 (non-school)
RETIREE_SHARE = 0.08                       # retirees paid by the budget, per active person
# Persons one template jurisdiction yields (establishment ~93% of 7,152 posts, plus
# non-establishment and retirees); measured from the generator, used to size regions.
PERSONS_PER_JURISDICTION = 7400

PROVINCE = ("150000", "内蒙古自治区")
CITIES = [
    ("150100", "呼和浩特市"), ("150200", "包头市"), ("150300", "乌海市"), ("150400", "赤峰市"),
    ("150500", "通辽市"), ("150600", "鄂尔多斯市"), ("150700", "呼伦贝尔市"), ("150800", "巴彦淖尔市"),
    ("150900", "乌兰察布市"), ("152200", "兴安盟"), ("152500", "锡林郭勒盟"), ("152900", "阿拉善盟"),
]
SINGLE_COUNTY = ("150204", "青山区")
COUNTY_SUFFIXES = ["区", "旗", "县", "市"]

QUOTA_TYPES = ["admin", "political_legal", "logistics", "institution", "school", "turnover", "non_establishment_cap"]
NON_EST_CATEGORIES = ["general_support", "professional", "enforcement_support", "logistics_support", "contracted_service"]
ORGAN_KINDS = ["party", "government", "congress", "cppcc", "judicial", "dev_zone", "township"]


@dataclasses.dataclass(frozen=True)
class WorldParams:
    """What to generate. ``persons`` counts everyone on the books in the first period
    (active staffing placements plus retirees paid by the budget)."""

    persons: int = 7000
    seed: int = 20261
    first_period: str = "2026-10"
    periods: int = 2
    findings_per_code: int = 3
    cities: int | None = None
    # How many jurisdictions (本级 of the province and cities, plus counties) to spread the
    # persons over; default one per ~7,400 persons (the Qingshan template). Setting it makes
    # small provinces for tests: many regions, few persons each.
    jurisdictions: int | None = None

    def validate(self) -> None:
        if not isinstance(self.persons, int) or self.persons < 300:
            raise ValueError(f"persons must be an integer of at least 300 (one small county), got {self.persons!r}")
        if self.persons > 20_000_000:
            raise ValueError(f"persons must be at most 20,000,000 (a large province), got {self.persons:,}")
        P.parse_period(self.first_period)
        if not 1 <= self.periods <= 24:
            raise ValueError(f"periods must be between 1 and 24, got {self.periods}")
        if self.findings_per_code < 0:
            raise ValueError("findings_per_code cannot be negative")
        # Every code needs a few eligible units or persons; a county of 300 has ~20 units.
        limit = max(1, self.persons // 250)
        if self.findings_per_code > limit:
            raise ValueError(
                f"{self.findings_per_code} findings per code is too many for {self.persons:,} persons "
                f"(at most {limit}: injected problems must stay a small share of the jurisdiction)"
            )
        if self.cities is not None and not 1 <= self.cities <= 99:
            raise ValueError("cities must be between 1 and 99")
        if self.jurisdictions is not None:
            if not 1 <= self.jurisdictions <= 2000:
                raise ValueError("jurisdictions must be between 1 and 2000")
            if self.persons // self.jurisdictions < 300:
                raise ValueError(f"{self.persons:,} persons over {self.jurisdictions} jurisdictions is under 300 each")
            if self.cities is not None and self.jurisdictions > 1 and self.cities > self.jurisdictions - 1:
                raise ValueError("a province needs one jurisdiction for its own level besides its cities")


@dataclasses.dataclass
class World:
    """Mutable state of the jurisdiction; :func:`evolve` moves it one month on."""

    params: WorldParams
    rng: np.random.Generator
    period: str
    regions: pd.DataFrame
    units: pd.DataFrame
    quotas: pd.DataFrame          # base approved establishment, one row per unit and quota type
    leader_posts: pd.DataFrame
    people: pd.DataFrame          # one row per natural person ever generated
    placements: pd.DataFrame      # staffing persons items (active and left), internal columns prefixed _
    retirees: pd.DataFrame        # people paid as 离退休
    extra_budget_units: pd.DataFrame  # budget units with no credit code
    next_record: int = 0
    next_pid: int = 0
    pinned_pids: set = dataclasses.field(default_factory=set)
    pinned_units: set = dataclasses.field(default_factory=set)
    identity_keys: set = dataclasses.field(default_factory=set)   # ID digits 1-14 + name of every person
    reserved_ids: set = dataclasses.field(default_factory=set)    # IDs written by problems, never to be drawn

    def retirement_due(self) -> pd.Series:
        """Each person's statutory retirement date, by pid (kept until people are added)."""
        cached = getattr(self, "_due", None)
        if cached is None or len(cached) != len(self.people):
            birth = pd.to_datetime(self.people.birth_date).to_numpy()
            cached = pd.Series(retirement_dates(birth, self.people.sex.eq("F").to_numpy()), index=self.people.pid.to_numpy())
            self._due = cached
        return cached

    def taken_ids(self) -> set:
        return set(self.people.id_number) | self.reserved_ids

    @property
    def last_day(self) -> dt.date:
        """The last day of the last period generated."""
        return P.last_day(P.add_months(self.params.first_period, self.params.periods - 1))


# --- helpers -----------------------------------------------------------------------------

def _credit_codes(rng: np.random.Generator, type_chars: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Unique GB 32100 codes: '1' (staffing office) + type + region + 9 random + check."""
    n = len(type_chars)
    alphabet = np.array(list(ids.CREDIT_ALPHABET))
    out = np.empty(n, dtype=object)
    todo = np.arange(n)
    seen: set[str] = set()
    while len(todo):
        org = rng.integers(0, 31, size=(len(todo), 9))
        prefix = np.char.add(np.char.add("1", type_chars[todo].astype(str)), regions[todo].astype(str))
        bodies = np.char.add(prefix, np.array(["".join(r) for r in alphabet[org]]))
        codes = np.array([b + ids.credit_check_char(b) for b in bodies], dtype=object)
        todo = _claim(todo, codes, seen, out)
    return out


def _claim(todo: np.ndarray, candidates, taken: set, out: np.ndarray) -> np.ndarray:
    """Store each candidate value not taken yet at its position; return the positions that collided."""
    retry = []
    for i, value in zip(todo, candidates):
        if value in taken:
            retry.append(i)
        else:
            taken.add(value)
            out[i] = value
    return np.array(retry, dtype=int)


def retirement_dates(birth: np.ndarray, female: np.ndarray) -> np.ndarray:
    """Statutory retirement dates (OUTPUTS.md, the 2025 schedule) of birth dates
    (``datetime64[D]``): 60 for men, 55 for women, one month of delay per 4 months of birth
    after December 1964 / December 1969, at most 36; a missing day becomes the month's last."""
    b = pd.DatetimeIndex(np.asarray(birth, dtype="datetime64[D]"))
    year, month, day = b.year.to_numpy(), b.month.to_numpy(), b.day.to_numpy()
    female = np.asarray(female, dtype=bool)
    m = (year - np.where(female, 1969, 1964)) * 12 + (month - 12)
    delay = np.clip((m + 3) // 4, 0, 36)
    months = month - 1 + np.where(female, 55, 60) * 12 + delay
    first = (np.datetime64("0000-01", "M") + (year * 12 + months).astype("timedelta64[M]"))
    days_in = ((first + np.timedelta64(1, "M")).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(np.int64)
    return first.astype("datetime64[D]") + (np.minimum(day, days_in) - 1).astype("timedelta64[D]")


def _draw_names(rng: np.random.Generator, n: int) -> np.ndarray:
    surname = np.array(N.SURNAMES)[np.minimum((rng.pareto(1.2, n) * 6).astype(int), len(N.SURNAMES) - 1)]
    gchars = np.array(N.GIVEN_CHARS)
    given = gchars[rng.integers(0, len(gchars), n)]
    two = rng.random(n) < 0.7
    given = np.where(two, np.char.add(given, gchars[rng.integers(0, len(gchars), n)]), given)
    name = np.char.add(surname.astype(str), given.astype(str)).astype(object)
    minority = rng.random(n) < 0.03
    if minority.any():
        k = int(minority.sum())
        name[minority] = np.char.add(np.char.add(np.array(N.MINORITY_FIRST)[rng.integers(0, len(N.MINORITY_FIRST), k)], "·"),
                                     np.array(N.MINORITY_SECOND)[rng.integers(0, len(N.MINORITY_SECOND), k)])
    return name


def make_people(rng: np.random.Generator, n: int, first_pid: int, birth_regions: np.ndarray,
                born_from: dt.date | np.ndarray, born_to: dt.date | np.ndarray,
                female_share: float | np.ndarray = 0.5, taken: set | None = None,
                taken_keys: set | None = None, working_on: dt.date | None = None) -> pd.DataFrame:
    """``n`` natural persons with valid, unique GB 11643 IDs consistent with birth date and sex.

    ``taken_keys`` (updated in place) holds every person's ID digits 1-14 with their name: a
    person is never born on the same day in the same place with the same name as another
    (that is DUPLICATE_IDENTITY, injected on purpose only). ``working_on``: nobody drawn is
    past their statutory retirement date on that day (birth dates are moved later until so)."""
    taken = taken if taken is not None else set()
    taken_keys = taken_keys if taken_keys is not None else set()
    lo = np.broadcast_to(np.asarray(born_from, dtype="datetime64[D]"), n).astype(np.int64)
    hi = np.broadcast_to(np.asarray(born_to, dtype="datetime64[D]"), n).astype(np.int64)
    days = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
    birth = days.astype("datetime64[D]")
    female = rng.random(n) < np.broadcast_to(female_share, n)
    if working_on is not None:
        while (late := retirement_dates(birth, female) < np.datetime64(working_on)).any():
            birth[late] = birth[late] + np.timedelta64(6 * 365, "D")
    region_pick = birth_regions[rng.integers(0, len(birth_regions), n)]
    ymd = pd.DatetimeIndex(birth).strftime("%Y%m%d").to_numpy()
    id_numbers = np.empty(n, dtype=object)
    todo = np.arange(n)
    while len(todo):
        seq2 = rng.integers(0, 100, len(todo))  # digits 15-16
        sex_digit = rng.integers(0, 5, len(todo)) * 2 + np.where(female[todo], 0, 1)
        bodies = np.char.add(np.char.add(region_pick[todo].astype(str), ymd[todo].astype(str)),
                             np.char.add(np.char.zfill(seq2.astype(str), 2), sex_digit.astype(str)))
        digits = np.frombuffer("".join(bodies).encode(), dtype=np.uint8).reshape(-1, 17).astype(np.int64) - 48
        checks = ids.id_check_chars(digits)
        todo = _claim(todo, np.char.add(bodies, checks), taken, id_numbers)
    name = _draw_names(rng, n)
    todo = np.arange(n)
    while len(todo):   # draw again the names that would make a second identity of someone
        keys = np.char.add(np.array([i[:14] for i in id_numbers[todo]], dtype=str), name[todo].astype(str))
        clash = _claim(todo, keys, taken_keys, np.empty(n, dtype=object))
        if len(clash):
            name[clash] = _draw_names(rng, len(clash))
        todo = clash
    return pd.DataFrame({
        "pid": np.arange(first_pid, first_pid + n, dtype=np.int64),
        "id_number": id_numbers.astype(str),
        "name": name.astype(str),
        "sex": np.where(female, "F", "M"),
        "birth_date": pd.DatetimeIndex(birth).strftime("%Y-%m-%d"),
        # A stable per-person draw that decides the harmless dirt each source writes.
        "dirt_u": rng.random(n),
    })


# --- regions and units -------------------------------------------------------------------

def _build_regions(params: WorldParams) -> pd.DataFrame:
    n_jur = params.jurisdictions or max(1, round(params.persons / PERSONS_PER_JURISDICTION))
    if n_jur == 1:
        rows = [(SINGLE_COUNTY[0], "包头市" + SINGLE_COUNTY[1], "county", "150200", True),
                ("150200", "包头市", "city", PROVINCE[0], False), (PROVINCE[0], PROVINCE[1], "province", None, False)]
        return pd.DataFrame(rows, columns=["region_code", "name", "level", "parent_code", "is_jurisdiction"])
    n_cities = params.cities or max(2, min(12, round(n_jur / 25)))
    cities = list(CITIES[:n_cities])
    for i in range(len(cities), n_cities):  # more cities than the real list: synthetic codes
        cities.append((f"15{31 + i:02d}00", f"第{i + 1}市"))
    n_counties = max(0, n_jur - 1 - n_cities)
    rows = [(PROVINCE[0], PROVINCE[1] + "本级", "province", None, True)]
    for ci, (code, name) in enumerate(cities):
        rows.append((code, name + "本级", "city", PROVINCE[0], True))
        k = n_counties // n_cities + (1 if ci < n_counties % n_cities else 0)
        for j in range(k):
            rows.append((f"{code[:4]}{j + 2:02d}", f"{name}第{j + 1}{COUNTY_SUFFIXES[j % 4]}", "county", code, True))
    return pd.DataFrame(rows, columns=["region_code", "name", "level", "parent_code", "is_jurisdiction"])


def _build_units(rng: np.random.Generator, regions: pd.DataFrame, scale: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Units and their approved establishment for every jurisdiction."""
    recs = []
    for reg in regions[regions.is_jurisdiction].itertuples():
        short = reg.name.replace("本级", "")
        for kind, count in ORGAN_TEMPLATE.items():
            if kind == "township" and reg.level != "county":
                continue
            k = max(1, round(count * scale))
            pool = N.ORGAN_NAMES[kind]
            for i in range(k):
                nm = pool[i % len(pool)] if kind != "township" else f"第{i + 1}{pool[i % len(pool)]}"
                if i >= len(pool) and kind != "township":
                    nm = f"{nm}({i // len(pool) + 1})"
                recs.append((reg.region_code, reg.level, kind, short + nm, False))
        for i in range(max(1, round(SCHOOLS_PER_JURISDICTION * scale))):
            recs.append((reg.region_code, reg.level, "institution", f"{short}{N.SCHOOL_NAMES[i % len(N.SCHOOL_NAMES)]}{i // len(N.SCHOOL_NAMES) + 1}", True))
        for i in range(max(1, round(INSTITUTIONS_PER_JURISDICTION * scale))):
            recs.append((reg.region_code, reg.level, "institution", f"{short}{N.INSTITUTION_NAMES[i % len(N.INSTITUTION_NAMES)]}{i // len(N.INSTITUTION_NAMES) + 1}", False))
    u = pd.DataFrame(recs, columns=["region_code", "_level", "kind", "name", "_school"])
    n = len(u)
    type_char = np.where(u.kind == "institution", "2", np.where(u.kind == "mass_org", "3", "1"))
    u["unit_code"] = _credit_codes(rng, type_char, u.region_code.to_numpy())
    organ = u.kind != "institution"
    lvl_rank = {"province": ("department", "bureau"), "city": ("bureau", "section"), "county": ("section", "deputy_section")}
    organ_rank = u._level.map(lambda x: lvl_rank[x][0])
    inst_draw = rng.random(n)
    inst_rank = np.where(inst_draw < 0.027, "deputy_bureau", np.where(inst_draw < 0.459, "section", "unit_level"))
    inst_rank = np.where((u._level != "county") & (inst_rank == "unit_level"), "section", inst_rank)
    u["rank"] = np.where(organ, organ_rank, inst_rank)
    fdraw = rng.random(n)
    u["funding"] = np.where(organ | u._school, "full", np.where(fdraw < 0.6, "full", np.where(fdraw < 0.85, "partial", "self")))
    u["status"] = "active"
    # Parent: institutions belong to an organ of their jurisdiction (informational only).
    u["parent_code"] = None
    for reg, grp in u.groupby("region_code"):
        organs = grp.loc[grp.kind != "institution", "unit_code"].to_numpy()
        insts = grp.index[grp.kind == "institution"]
        u.loc[insts, "parent_code"] = organs[rng.integers(0, len(organs), len(insts))]
    # Approved establishment (核定编制) per unit and quota type.
    q = []
    admin = np.maximum(2, np.round(rng.lognormal(np.log(ADMIN_QUOTA_PER_ORGAN * 0.85), 0.55, n))).astype(int)
    school = np.maximum(8, np.round(rng.lognormal(np.log(SCHOOL_QUOTA_PER_SCHOOL * 0.9), 0.45, n))).astype(int)
    inst = np.maximum(2, np.round(rng.lognormal(np.log(INSTITUTION_QUOTA_PER_UNIT * 0.85), 0.6, n))).astype(int)
    pl_units = (u.kind == "judicial") | u.name.str.contains("公安")
    logi_units = organ & (rng.random(n) < 0.35)
    is_school = u._school.to_numpy()
    for i, r in enumerate(u.itertuples()):
        if r.kind == "institution":
            q.append((r.unit_code, "school" if is_school[i] else "institution", int(school[i] if is_school[i] else inst[i])))
        else:
            q.append((r.unit_code, "admin", int(admin[i])))
            if pl_units.iloc[i]:
                q.append((r.unit_code, "political_legal", int(max(3, round(POLITICAL_LEGAL_TOTAL / 3 * rng.uniform(0.6, 1.4))))))
            if logi_units.iloc[i]:
                q.append((r.unit_code, "logistics", int(rng.integers(1, 4))))
    quotas = pd.DataFrame(q, columns=["unit_code", "quota_type", "approved"])
    total = quotas.groupby("unit_code").approved.sum()
    cap = np.round(total.to_numpy() * rng.uniform(0.08, 0.25, len(total))).astype(int)
    caps = pd.DataFrame({"unit_code": total.index, "quota_type": "non_establishment_cap", "approved": cap})
    caps = caps[caps.approved > 0]
    quotas = pd.concat([quotas, caps], ignore_index=True)
    # A few units hold turnover posts lent from a pool (周转编制).
    lent = u.loc[u.kind == "institution"].sample(frac=0.03, random_state=int(rng.integers(1 << 31)))
    quotas = pd.concat([quotas, pd.DataFrame({"unit_code": lent.unit_code, "quota_type": "turnover",
                                              "approved": rng.integers(1, 4, len(lent))})], ignore_index=True)
    u = u.drop(columns=["_level"])
    return u, quotas.sort_values(["unit_code", "quota_type"], ignore_index=True)


def _assign_finance_and_hr_codes(rng: np.random.Generator, units: pd.DataFrame, regions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    units = units.copy()
    order = rng.permutation(len(units))
    units["_dwbm"] = [f"{300001 + i:06d}" for i in order]
    units["_hr_no"] = units.region_code + pd.Series(np.arange(len(units)) + 1, index=units.index).map("{:05d}".format)
    # pay mode: full/partial units pay through the budget; most self-funded units are on the
    # unified payroll with their own funds; a few are not on it at all.
    draw = rng.random(len(units))
    units["_payroll"] = np.where(units.funding != "self", "budget", np.where(draw < 0.6, "own", "none"))
    jur = regions[regions.is_jurisdiction]
    extra = pd.DataFrame({
        "dwbm": [f"{900001 + i:06d}" for i in range(2 * len(jur))],
        "tyshxydm": [None, ""] * len(jur),
        "dwmc": [f"{n.replace('本级', '')}{s}" for n in jur.name for s in ("机关事务服务中心(未赋码)", "临时工作专班")],
        "qhdm": np.repeat(jur.region_code.to_numpy(), 2),
    })
    return units, extra


# --- people and placements -------------------------------------------------------------------

def _place_people(w: World, first_period: str) -> None:
    rng = w.rng
    u = w.units.set_index("unit_code")
    est = w.quotas[~w.quotas.quota_type.isin(["non_establishment_cap"])].copy()
    # Vacancy per quota type at most 14% (rounded down), so no unit starts at the 30% of HIGH_VACANCY.
    est["filled"] = (est.approved - np.floor(est.approved * rng.uniform(0.0, 0.14, len(est)))).astype(int)
    est.loc[est.quota_type == "turnover", "filled"] = est.loc[est.quota_type == "turnover", "approved"]
    caps = w.quotas[w.quotas.quota_type == "non_establishment_cap"]
    ne_fill = np.floor(caps.approved * rng.uniform(0.6, 1.0, len(caps))).astype(int)
    slots_unit = np.concatenate([np.repeat(est.unit_code.to_numpy(), est.filled), np.repeat(caps.unit_code.to_numpy(), ne_fill)])
    slots_qt = np.concatenate([np.repeat(est.quota_type.to_numpy(), est.filled), np.full(int(ne_fill.sum()), None, dtype=object)])
    n = len(slots_unit)
    klass = np.where(pd.isna(slots_qt), "non_establishment", "establishment")
    w.placements = _new_placements(w, slots_unit, slots_qt.astype(object), klass, first_period, initial=True)
    # Leaders: one principal and up to the approved deputies per unit, from its establishment.
    pl = w.placements
    cand = pl[pl.personnel_class == "establishment"].sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
    order = cand.groupby("unit_code").cumcount()
    kind = u.kind.reindex(cand.unit_code).to_numpy()
    max_dep = np.where(kind == "institution", rng.integers(1, 3, len(cand)), rng.integers(2, 5, len(cand)))
    # draw the unit's deputy count once: use the first candidate's draw
    dep_by_unit = pd.Series(max_dep, index=cand.unit_code.to_numpy()).groupby(level=0).first()
    est_count = cand.groupby("unit_code").size()
    dep_filled = np.minimum(dep_by_unit, np.maximum(est_count - 1, 0))
    level = np.where(order.to_numpy() == 0, "principal",
                     np.where(order.to_numpy() <= dep_filled.reindex(cand.unit_code).to_numpy(), "deputy", None))
    pl.loc[cand.index, "_leader"] = level
    vacancy = (rng.random(len(dep_filled)) < 0.3).astype(int)
    lp = pd.concat([
        pd.DataFrame({"unit_code": est_count.index, "level": "principal", "approved": 1}),
        pd.DataFrame({"unit_code": dep_filled.index, "level": "deputy", "approved": (dep_filled.to_numpy() + vacancy)}),
    ])
    w.leader_posts = lp[lp.approved > 0].sort_values(["unit_code", "level"], ignore_index=True)
    # Cadres in the organisation department's system: leaders, and civil servants of organs.
    organ = ~u.kind.reindex(pl.unit_code).eq("institution").to_numpy()
    pl["_cadre"] = pl._leader.notna() | (organ & pl.quota_type.isin(["admin", "political_legal"]).to_numpy())
    pl["_rzsj"] = pl.entered_on
    # Retirees paid by the budget, attached to full or partial funded units.
    budget_units = w.units.loc[w.units._payroll == "budget", "unit_code"].to_numpy()
    n_ret = int(round(n * RETIREE_SHARE))
    start = P.first_day(first_period)
    people = make_people(rng, n_ret, w.next_pid, _birth_regions(w), dt.date(1948, 1, 1), dt.date(1965, 12, 31),
                         taken=w.taken_ids(), taken_keys=w.identity_keys)
    w.next_pid += n_ret
    w.people = pd.concat([w.people, people], ignore_index=True)
    statutory = retirement_dates(pd.to_datetime(people.birth_date).to_numpy(), (people.sex == "F").to_numpy())
    retired_on = np.minimum(statutory, np.datetime64(start - dt.timedelta(days=40)))
    retired_on = pd.DatetimeIndex(retired_on).date
    w.retirees = pd.DataFrame({
        "pid": people.pid, "unit_code": budget_units[rng.integers(0, len(budget_units), n_ret)],
        "retired_on": pd.Series(retired_on).astype(str), "_pay": np.round(rng.uniform(3800, 9000, n_ret), 2),
    })


def _birth_regions(w: World) -> np.ndarray:
    codes = w.regions.loc[w.regions.level == "county", "region_code"].to_numpy()
    if len(codes) == 0:
        codes = w.regions.region_code.to_numpy()
    # A share of people were born elsewhere in China.
    return np.concatenate([codes, np.array(["110105", "130102", "140105", "210102", "610113", "620102", "640104"])])


def _new_placements(w: World, unit_codes: np.ndarray, quota_types: np.ndarray, klass: np.ndarray,
                    period: str, initial: bool, pids: np.ndarray | None = None) -> pd.DataFrame:
    """Placements (staffing ``persons`` items) for new or given people in the given slots."""
    rng = w.rng
    n = len(unit_codes)
    u = w.units.set_index("unit_code")
    school = u._school.reindex(unit_codes).to_numpy().astype(bool)
    start = P.first_day(period)
    if pids is None:
        young = klass == "non_establishment"
        born_from = np.where(young, np.datetime64("1971-01-01"), np.datetime64("1966-06-01")) if initial else np.datetime64("1990-01-01")
        born_to = np.datetime64("2003-12-31")
        people = make_people(rng, n, w.next_pid, _birth_regions(w), born_from, born_to,
                             female_share=np.where(school, 0.68, 0.45), taken=w.taken_ids(), taken_keys=w.identity_keys,
                             working_on=start)
        w.next_pid += n
        w.people = pd.concat([w.people, people], ignore_index=True)
        pids = people.pid.to_numpy()
        birth = pd.to_datetime(people.birth_date).to_numpy()
    else:
        birth = pd.to_datetime(w.people.set_index("pid").birth_date.reindex(pids)).to_numpy()
    if initial:
        earliest = np.maximum(birth + np.timedelta64(22 * 365, "D"), np.datetime64("1985-07-01"))
        latest = np.datetime64(start - dt.timedelta(days=1))
        span = np.maximum((latest - earliest).astype("timedelta64[D]").astype(np.int64), 0)
        entered = earliest + (rng.random(n) * span).astype("timedelta64[D]")
    else:
        entered = np.datetime64(start) + rng.integers(0, (P.last_day(period) - start).days + 1, n).astype("timedelta64[D]")
    entered = pd.DatetimeIndex(entered.astype("datetime64[D]"))
    est = klass == "establishment"
    post_draw = rng.random(n)
    post = np.where(est & (post_draw < 0.05), "personnel", np.where(est & (post_draw < 0.11), "finance",
                    np.where(est & (post_draw < 0.15), "classified", "general")))
    kind = u.kind.reindex(unit_codes).to_numpy()
    pos_pool = {k: np.array(v) for k, v in N.STAFF_TITLES.items()}
    pos_key = np.where(~est, "non_establishment", np.where(school, "school", np.where(kind == "institution", "institution", "organ")))
    position = np.empty(n, dtype=object)
    for key, pool in pos_pool.items():
        m = pos_key == key
        position[m] = pool[rng.integers(0, len(pool), int(m.sum()))]
    rec = np.arange(w.next_record, w.next_record + n)
    w.next_record += n
    slip_seq = rng.integers(0, 1_000_000, n)
    pay = np.where(est, rng.uniform(6200, 14500, n), rng.uniform(3000, 6200, n))
    return pd.DataFrame({
        "record_id": [f"SP{r:09d}" for r in rec],
        "pid": pids,
        "unit_code": unit_codes,
        "personnel_class": klass,
        "quota_type": np.where(est, quota_types, None),
        "non_establishment_category": np.where(est, None, np.array(NON_EST_CATEGORIES)[rng.integers(0, 5, n)]),
        "post_category": post,
        "position": position,
        "entered_on": entered.strftime("%Y-%m-%d"),
        "slip_no": np.where(est, [f"HB{d.year}{s:06d}" for d, s in zip(entered, slip_seq)], None),
        "status": "active",
        "left_on": None,
        "_leader": None,
        "_cadre": False,
        "_rzsj": entered.strftime("%Y-%m-%d"),
        "_pay": np.round(pay, 2),
        "_changed": period,   # the period in which this placement last changed (drives updated_at)
    })


def build_world(params: WorldParams) -> World:
    params.validate()
    rng = np.random.default_rng(params.seed)
    regions = _build_regions(params)
    n_jur = int(regions.is_jurisdiction.sum())
    scale = params.persons / (n_jur * PERSONS_PER_JURISDICTION)
    units, quotas = _build_units(rng, regions, scale)
    units, extra = _assign_finance_and_hr_codes(rng, units, regions)
    people = pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                           [("pid", "int64"), ("id_number", "str"), ("name", "str"), ("sex", "str"), ("birth_date", "str"), ("dirt_u", "float64")]})
    w = World(params=params, rng=rng, period=params.first_period, regions=regions, units=units, quotas=quotas,
              leader_posts=pd.DataFrame(), people=people, placements=pd.DataFrame(), retirees=pd.DataFrame(),
              extra_budget_units=extra)
    _place_people(w, params.first_period)
    return w


# --- one month of change ------------------------------------------------------------------------

def evolve(w: World, rates: dict | None = None) -> None:
    """Move the world one month on: retirements at the statutory date, leavers (tombstones),
    transfers, hires into the vacated slots. Pinned people and units (subjects of injected problems) are left alone so
    that a problem persists until it is deliberately fixed."""
    rates = {"leave": 0.004, "transfer": 0.002, **(rates or {})}
    rng = w.rng
    new_period = P.add_months(w.period, 1)
    start, end = P.first_day(new_period), P.last_day(new_period)
    ndays = (end - start).days + 1
    pl = w.placements
    pids_pinned = np.isin(pl.pid.to_numpy(), np.fromiter(w.pinned_pids, dtype=np.int64, count=len(w.pinned_pids)))
    units_pinned = pl.unit_code.isin(w.pinned_units).to_numpy()
    movable = (pl.status == "active").to_numpy() & pl._leader.isna().to_numpy() & ~pids_pinned & ~units_pinned
    # Everyone whose statutory retirement date comes by the end of the month retires (a subject
    # of an open problem excepted: a retirement not processed is OVER_RETIREMENT_AGE).
    due_on = w.retirement_due().reindex(pl.pid).to_numpy()
    retire = np.flatnonzero((pl.status == "active").to_numpy() & ~pids_pinned & (due_on <= np.datetime64(end)))
    rest = np.setdiff1d(np.flatnonzero(movable), retire)   # the others may leave or move
    draw = rng.random(len(rest))
    leave = rest[draw < rates["leave"]]
    transfer = rest[(draw >= rates["leave"]) & (draw < rates["leave"] + rates["transfer"])]
    transfer = transfer[(pl.personnel_class.to_numpy()[transfer] == "establishment")]
    # Only from units that stay well clear of HIGH_VACANCY (vacancy under 20% after the move).
    est_active = pl[(pl.status == "active") & (pl.personnel_class == "establishment")].groupby("unit_code").size()
    approved = w.quotas[w.quotas.quota_type != "non_establishment_cap"].groupby("unit_code").approved.sum()
    room = (approved - est_active.reindex(approved.index).fillna(0) + 1) < 0.2 * approved
    transfer = transfer[room.reindex(pl.unit_code.to_numpy()[transfer]).fillna(False).to_numpy(dtype=bool)]
    day = lambda k: [str(start + dt.timedelta(days=int(x))) for x in rng.integers(0, ndays, k)]  # noqa: E731
    # Tombstones: the item stays, with status left.
    gone = np.concatenate([retire, leave, transfer])
    retired_on = np.maximum(due_on[retire], np.datetime64(start)).astype("datetime64[D]").astype(str)
    left_on = list(retired_on) + day(len(leave) + len(transfer))
    pl.loc[pl.index[gone], "status"] = "left"
    pl.loc[pl.index[gone], "left_on"] = left_on
    pl.loc[pl.index[gone], "_changed"] = new_period
    # Retirees start being paid as 离退休 by the unit they retired from, where it pays through the budget.
    r = pl.iloc[retire]
    paid = w.units.set_index("unit_code")._payroll.reindex(r.unit_code).eq("budget").to_numpy()
    w.retirees = pd.concat([w.retirees, pd.DataFrame({
        "pid": r.pid.to_numpy()[paid], "unit_code": r.unit_code.to_numpy()[paid],
        "retired_on": np.asarray(left_on[: len(retire)], dtype=object)[paid],
        "_pay": np.round(r._pay.to_numpy()[paid] * 0.85, 2)})], ignore_index=True)
    # Transfers: a new placement (new record_id) in another unit of the same region with a vacancy.
    moved = pl.iloc[transfer]
    new_rows = []
    if len(moved):
        # Slots vacated this month are refilled by hires below: count them as still filled.
        active = pl[(pl.status == "active") | pl.index.isin(pl.index[np.concatenate([retire, leave])])]
        filled = active.groupby(["unit_code", "quota_type"]).size()
        q = w.quotas.set_index(["unit_code", "quota_type"]).approved
        vac = (q - filled.reindex(q.index).fillna(0)).astype(int)
        vac = vac[(vac > 0) & ~vac.index.get_level_values(0).isin(w.pinned_units)]
        vac_df = vac.rename("vacant").reset_index().merge(w.units[["unit_code", "region_code"]], on="unit_code")
        src_region = w.units.set_index("unit_code").region_code
        pay_pos = list(moved.columns).index("_pay") + 1
        for row in moved.itertuples():
            cand = vac_df[(vac_df.quota_type == row.quota_type) & (vac_df.unit_code != row.unit_code)
                          & (vac_df.region_code == src_region[row.unit_code]) & (vac_df.vacant > 0)]
            if cand.empty:
                continue
            pick = cand.index[int(rng.integers(0, len(cand)))]
            vac_df.loc[pick, "vacant"] -= 1
            new_rows.append((row.pid, vac_df.loc[pick, "unit_code"], row.quota_type, row[pay_pos]))
    # Hires fill the slots that retirements and leavers vacated.
    refill = pl.iloc[np.concatenate([retire, leave])]
    hires = _new_placements(w, refill.unit_code.to_numpy(), refill.quota_type.to_numpy().astype(object),
                            refill.personnel_class.to_numpy(), new_period, initial=False)
    parts = [pl, hires]
    if new_rows:
        t = pd.DataFrame(new_rows, columns=["pid", "unit_code", "quota_type", "_pay"])
        tp = _new_placements(w, t.unit_code.to_numpy(), t.quota_type.to_numpy().astype(object),
                             np.full(len(t), "establishment"), new_period, initial=False, pids=t.pid.to_numpy())
        tp["_pay"] = t._pay.to_numpy()
        organ = ~w.units.set_index("unit_code").kind.reindex(tp.unit_code).eq("institution").to_numpy()
        tp["_cadre"] = organ & tp.quota_type.isin(["admin", "political_legal"]).to_numpy()
        parts.append(tp)
    w.placements = pd.concat(parts, ignore_index=True)
    w.period = new_period
