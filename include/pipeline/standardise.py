"""Standardise: the raw layer of one run into one typed model for one period.

Reads what the run's extracts landed (``raw/<source>/<ds>/``) and writes, under
``work/<ds>/<period>/std/``:

* ``units``, ``quotas``, ``leader_posts``: the staffing office's current state;
* ``budget_units``: finance's ``ys_dw`` with the credit code trimmed (blank means none);
* ``records``: every record the period uses (OUTPUTS.md "Who a person is"), one wide
  table over the four sources: the ID as written, cleaned (upper-case, whitespace and
  U+3000 removed, 15-digit IDs converted) and checked, the normalised name, the unit's
  credit code, and each source's own columns (null where a source has none).

Records used: staffing ``persons`` with ``status`` active, every organisation row, the
payroll rows of ``M``, and the rows of the latest HR export whose period is not after ``M``.

Quality (issue 5): each source's rows are screened (:func:`screen`): a row that breaks a
row-level rule is quarantined with the reason (``quarantine_rows.parquet``) and the run
goes on, and rows in = rows used + rows quarantined is checked. Batch-level failures
stop the run before anything is reconciled or published (:class:`QualityGateFailed`):
an empty source, a source that shrank by more than the row band since the last run, a
missing column, or a failed critical expectation of the input suites in
``expectations/`` (one per raw source and one for the standardised model).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd

from include import identifiers as ids
from include import periods as P
from include.pipeline.store import latest_manifest
from include.quality.gates import QualityGateFailed

log = logging.getLogger("roster_sync.standardise")

RECORD_COLUMNS = [
    "source", "rec_no", "raw_id", "raw_trim", "id_clean", "id_valid", "birth8", "name", "name_norm", "unit_code",
    # staffing
    "record_id", "sex", "birth_date", "personnel_class", "quota_type", "non_establishment_category", "post_category",
    "position", "entered_on", "slip_no",
    # organisation
    "sfld", "ldlb", "zwcc",
    # finance
    "dwbm", "rylb", "yfgz", "jfly",
    # HR
    "emp_no", "insured_status", "hr_status", "retired_on",
]
HR_PERSON_COLUMNS = {"公民身份号码": "raw_id", "姓名": "name", "单位编号": "emp_no", "参保状态": "insured_status",
                     "人员状态": "hr_status", "退休日期": "retired_on"}


class MissingExtractError(RuntimeError):
    """A source's extract for the run is missing or does not cover the period."""


@dataclass(frozen=True)
class Inputs:
    """The raw files a run's period is built from."""

    staffing_dir: str
    org_file: str
    ys_dw_file: str
    gz_ff_file: str
    hr_persons_file: str | None
    hr_employers_file: str | None
    hr_period: str | None
    staffing_snapshot: str | None = None


def locate(root: str, ds: str, period: str) -> Inputs:
    manifests = {s: latest_manifest(root, s, at=ds) for s in ("staffing", "org", "finance", "hr")}
    missing = [s for s, m in manifests.items() if m is None]
    if missing:
        raise MissingExtractError(f"no complete extract for {ds} from: {', '.join(missing)} (run the extract tasks first)")
    base = manifests["finance"]["dir"].rsplit("/raw/finance/", 1)[0]
    month = P.to_ffyf(period)
    read_in = manifests["finance"]["state"]["months"].get(month)
    if read_in is None:
        raise MissingExtractError(f"the finance extract has no payroll rows for {period}: "
                                  f"months read {', '.join(sorted(manifests['finance']['state']['months'])) or 'none'}")
    files = manifests["hr"]["state"]["files"]
    persons = [(f["period"], name) for name, f in files.items() if f["kind"] == "persons" and f["period"] <= period]
    hr_p = hr_e = hr_period = None
    if persons:
        hr_period, name = max(persons)
        hr_p = f"{base}/raw/hr/{files[name]['ds']}/{name}.parquet"
        employers = [n for n, f in files.items() if f["kind"] == "employers" and f["period"] == hr_period]
        if not employers:
            raise MissingExtractError(f"the HR export of {hr_period} has a persons file but no employers file")
        hr_e = f"{base}/raw/hr/{files[employers[0]]['ds']}/{employers[0]}.parquet"
    else:
        log.warning("no HR export on or before %s: every payroll row will count as not insured", period)
    return Inputs(
        staffing_dir=manifests["staffing"]["dir"],
        org_file=f"{manifests['org']['dir']}/gbxx.parquet",
        ys_dw_file=f"{manifests['finance']['dir']}/ys_dw.parquet",
        gz_ff_file=f"{base}/raw/finance/{read_in}/gz_ff_{month}.parquet",
        hr_persons_file=hr_p, hr_employers_file=hr_e, hr_period=hr_period,
        staffing_snapshot=manifests["staffing"].get("state", {}).get("watermarks", {}).get("persons"),
    )


def _read(path: str, columns=None) -> pd.DataFrame:
    with fsspec.open(path, "rb") as fh:
        return pd.read_parquet(fh, columns=columns)


def _code(s: pd.Series) -> pd.Series:
    """A credit/unit code as text: trimmed, blank means none."""
    s = s.astype("string").str.strip()
    return s.where(s != "", pd.NA)


def _identify(df: pd.DataFrame, period: str) -> pd.DataFrame:
    """The ID columns every record gets."""
    raw = df["raw_id"].astype("string")
    cleaned = ids.clean_id_series(raw)
    df["raw_trim"] = raw.str.strip()
    df["id_clean"] = cleaned
    df["id_valid"] = ids.valid_id_mask(cleaned, not_after=P.last_day(period))
    df["birth8"] = ids.birth8_series(cleaned)
    df["name_norm"] = ids.normalise_name_series(df["name"])
    return df


# Row-level rules: a row that breaks one is set aside with the reason, and the run goes on.
ENUMS = {
    "staffing": {"personnel_class": {"establishment", "non_establishment"}, "status": {"active"}},
    "org": {"sfld": {"0", "1"}},
    "finance": {"rylb": {"在编", "编外", "离退休"}, "jfly": {"财政拨款", "单位自筹"}},
    "hr": {"insured_status": {"参保缴费", "暂停缴费", "终止参保"}, "hr_status": {"在职", "退休"}},
}
REQUIRED = {"staffing": ["record_id", "unit_code"], "org": [], "finance": ["dwbm"], "hr": ["emp_no"]}
ROW_BAND = float(os.environ.get("ROSTER_SYNC_ROW_BAND", "0.3"))   # a source shrinking by more than this fails


def screen(source: str, df: pd.DataFrame, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a source's rows into (kept, quarantined); ``raw`` holds the rows as received, for the record."""
    reasons = pd.Series(pd.NA, index=df.index, dtype="string")

    def flag(mask, reason):
        nonlocal reasons
        mask = np.asarray(pd.Series(mask).fillna(False), dtype=bool)
        reasons = reasons.where(~mask | reasons.notna().to_numpy(), reason)

    if "_missing" in raw.columns:   # a JSON item that lacked contract fields
        missing = raw["_missing"].astype("string")
        flag(missing.notna().to_numpy(), ("missing field(s): " + missing).to_numpy())
    for col in REQUIRED[source]:
        flag(df[col].isna().to_numpy(), f"no {col}")
    if source == "staffing":
        flag(df["unit_code"].notna().to_numpy() & ~ids.valid_credit_mask(df["unit_code"]),
             "unit_code fails the GB 32100 check")
    for col, allowed in ENUMS[source].items():
        flag((~df[col].isin(allowed)).to_numpy(), f"{col} is not one of {', '.join(sorted(allowed))}")
    if source in ("finance", "hr"):
        cols = [c for c in raw.columns if not c.startswith("_")]
        flag(raw.duplicated(cols, keep="first").to_numpy(), "duplicate of an earlier row of the same source")
    bad = reasons.notna().to_numpy()
    quarantined = pd.DataFrame({
        "source": source, "rec_no": df.loc[bad, "rec_no"].to_numpy(), "reason": reasons[bad].to_numpy(),
        "record": raw.loc[bad].drop(columns=[c for c in raw.columns if c.startswith("_")]).astype("string")
                 .apply(lambda r: json.dumps({k: (None if pd.isna(v) else v) for k, v in r.items()}, ensure_ascii=False), axis=1)
                 .to_numpy() if bad.any() else np.array([], dtype=object),
    })
    return df[~bad], quarantined


def _previous_counts(base: str, fs, ds: str) -> dict:
    """Rows in per source at the latest earlier run (for the row-count band)."""
    root = f"{base}/work"
    if not fs.exists(root):
        return {}
    days = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False))
    for d in reversed([d for d in days if d < ds]):
        for summary in sorted(fs.glob(f"{root}/{d}/*/std/_summary.json"), reverse=True):
            with fs.open(summary) as fh:
                return {k: v["rows_in"] for k, v in json.load(fh).get("accounting", {}).items()}
    return {}


# Freshness limits (configuration): how old each source may be relative to the run.
MAX_STAFFING_AGE_DAYS = int(os.environ.get("ROSTER_SYNC_MAX_STAFFING_AGE_DAYS", "7"))
MAX_PAYROLL_LAG_MONTHS = int(os.environ.get("ROSTER_SYNC_MAX_PAYROLL_LAG_MONTHS", "2"))
MAX_HR_LAG_MONTHS = int(os.environ.get("ROSTER_SYNC_MAX_HR_LAG_MONTHS", "1"))


def freshness_gates(ds: str, period: str, staffing_snapshot: str | None, hr_period: str | None) -> list[str]:
    """Batch-level failures for stale sources: the staffing snapshot, the payroll month, the HR export."""
    import datetime as _dt

    run_day = _dt.date.fromisoformat(ds)
    failures = []
    if staffing_snapshot:
        age = (run_day - P.parse_timestamp(staffing_snapshot).date()).days
        if age > MAX_STAFFING_AGE_DAYS:
            failures.append(f"the staffing snapshot is {age} days old (limit {MAX_STAFFING_AGE_DAYS})")
    lag = P.months_between(period, f"{run_day:%Y-%m}")
    if lag > MAX_PAYROLL_LAG_MONTHS:
        failures.append(f"the period {period} is {lag} months behind the run (limit {MAX_PAYROLL_LAG_MONTHS})")
    if hr_period is None:
        failures.append(f"there is no HR export on or before {period}")
    else:
        hr_lag = P.months_between(hr_period, period)
        if hr_lag > MAX_HR_LAG_MONTHS:
            failures.append(f"the HR export used ({hr_period}) is {hr_lag} months older than the period (limit {MAX_HR_LAG_MONTHS})")
    return failures


def batch_gates(accounting: dict, previous: dict, band: float = ROW_BAND) -> list[str]:
    """Batch-level failures: an empty source, or one that shrank by more than ``band`` since the last run."""
    failures = []
    for source, acc in accounting.items():
        if acc["rows_in"] == 0:
            failures.append(f"{source} is empty")
        before = previous.get(source)
        if before and acc["rows_in"] < (1 - band) * before:
            failures.append(f"{source} has {acc['rows_in']:,} rows, {1 - acc['rows_in'] / before:.0%} fewer than "
                            f"the last run's {before:,} (band {band:.0%})")
    return failures



def standardise(root: str, ds: str, period: str, out_dir: str | None = None, validate_inputs: bool = True) -> dict:
    """Write the standardised model of ``period`` from run ``ds``'s extracts. Returns a summary."""
    P.parse_period(period)
    inputs = locate(root, ds, period)
    fs, base = fsspec.core.url_to_fs(root)
    out = out_dir or f"{base.rstrip('/')}/work/{ds}/{period}/std"
    fs.makedirs(out, exist_ok=True)

    units = _read(f"{inputs.staffing_dir}/units__state.parquet")
    units = units.assign(unit_code=_code(units.unit_code))[["unit_code", "name", "parent_code", "region_code", "kind", "rank", "funding", "status"]]
    quotas = _read(f"{inputs.staffing_dir}/quotas__state.parquet", ["unit_code", "quota_type", "approved"])
    leader_posts = _read(f"{inputs.staffing_dir}/leader_posts__state.parquet", ["unit_code", "level", "approved"])
    ys = _read(inputs.ys_dw_file)
    credit = _code(ys.tyshxydm)
    broken = {"budget_units": int((credit.notna().to_numpy() & ~ids.valid_credit_mask(credit)).sum())}
    # A credit code that fails its check links to nothing: the crosswalk is empty for that budget unit.
    credit = credit.where(ids.valid_credit_mask(credit) | credit.isna().to_numpy(), pd.NA)
    budget_units = pd.DataFrame({"dwbm": ys.dwbm.astype("string").str.strip(), "credit": credit,
                                 "dwmc": ys.dwmc, "qhdm": _code(ys.qhdm)})

    parts, quarantine, accounting = [], [], {}

    def take(source, frame, raw):
        frame = frame.assign(rec_no=np.arange(len(frame)))
        kept, bad = screen(source, frame, raw.reset_index(drop=True))
        parts.append(kept)
        quarantine.append(bad)
        accounting[source] = {"rows_in": len(frame), "rows_used": len(kept), "rows_quarantined": len(bad)}

    sp = _read(f"{inputs.staffing_dir}/persons__state.parquet")
    sp = sp[sp.status.astype("string").fillna("") != "left"].reset_index(drop=True)   # tombstones are not used
    take("staffing", pd.DataFrame({
        "source": "staffing", "raw_id": sp.id_number, "name": sp["name"],
        "unit_code": _code(sp.unit_code), "record_id": sp.record_id, "sex": sp.sex, "birth_date": sp.birth_date,
        "personnel_class": sp.personnel_class, "quota_type": sp.quota_type,
        "non_establishment_category": sp.non_establishment_category, "post_category": sp.post_category,
        "position": sp.position, "entered_on": sp.entered_on, "slip_no": sp.slip_no, "status": sp.status,
    }), sp)
    org = _read(inputs.org_file)
    take("org", pd.DataFrame({
        "source": "org", "raw_id": org.sfzh, "name": org.xm, "unit_code": _code(org.dwdm),
        "sfld": org.sfld, "ldlb": org.ldlb, "zwcc": org.zwcc,
    }), org)
    pay = _read(inputs.gz_ff_file)
    credit = budget_units.set_index("dwbm").credit
    credit = credit[~credit.index.duplicated()]
    dwbm = _code(pay.dwbm)
    take("finance", pd.DataFrame({
        "source": "finance", "raw_id": pay.sfzh, "name": pay.xm,
        "unit_code": dwbm.map(credit).astype("string"), "dwbm": dwbm, "rylb": pay.rylb,
        "yfgz": pd.to_numeric(pay.yfgz, errors="coerce"), "jfly": pay.jfly,
    }), pay)
    if inputs.hr_persons_file:
        hr = _read(inputs.hr_persons_file)
        missing = [c for c in HR_PERSON_COLUMNS if c not in hr.columns]
        if missing:
            raise QualityGateFailed(f"not published: the HR persons export of {inputs.hr_period} lacks column(s) "
                                    f"{', '.join(missing)} (it has {', '.join(map(str, hr.columns))})")
        emp = _read(inputs.hr_employers_file)
        if not {"单位编号", "统一社会信用代码"} <= set(emp.columns):
            raise QualityGateFailed(f"not published: the HR employers export of {inputs.hr_period} lacks its key columns")
        emp_code = _code(emp["统一社会信用代码"])
        broken["hr_employers"] = int((emp_code.notna().to_numpy() & ~ids.valid_credit_mask(emp_code)).sum())
        emp_code = emp_code.where(ids.valid_credit_mask(emp_code) | emp_code.isna().to_numpy(), pd.NA)
        emp_credit = pd.Series(emp_code.to_numpy(), index=emp["单位编号"].astype("string").str.strip())
        emp_credit = emp_credit[~emp_credit.index.duplicated()]
        named = hr.rename(columns=HR_PERSON_COLUMNS)
        emp_no = _code(named.emp_no)
        retired = named.retired_on.astype("string").str.strip()
        take("hr", pd.DataFrame({
            "source": "hr", "raw_id": named.raw_id, "name": named["name"],
            "unit_code": emp_no.map(emp_credit).astype("string"), "emp_no": emp_no,
            "insured_status": named.insured_status, "hr_status": named.hr_status,
            "retired_on": retired.where(retired != "", pd.NA),
        }), hr)
    raw_frames = {"raw_staffing_persons": sp, "raw_org": org, "raw_finance_payroll": pay, "raw_finance_budget_units": ys}
    if inputs.hr_persons_file:
        raw_frames["raw_hr_persons"] = hr
    failures = batch_gates(accounting, _previous_counts(base.rstrip("/"), fs, ds))
    failures += freshness_gates(ds, period, inputs.staffing_snapshot, inputs.hr_period)
    if failures:
        raise QualityGateFailed("not published: " + "; ".join(failures))
    for source, acc in accounting.items():
        assert acc["rows_in"] == acc["rows_used"] + acc["rows_quarantined"], source
    records = pd.concat(parts, ignore_index=True).drop(columns=["status"], errors="ignore")
    quarantined = pd.concat(quarantine, ignore_index=True)
    records = _identify(records, period)
    records = records.reindex(columns=RECORD_COLUMNS)
    for col in RECORD_COLUMNS:
        if col not in ("rec_no", "id_valid", "yfgz"):
            records[col] = records[col].astype("string")
    quality = None
    if validate_inputs:   # the GX suites of the inputs: schema, enumerations, keys, ID and credit-code shapes
        from include.quality.gates import audit_inputs, gx_root
        quality = audit_inputs({**raw_frames, "standardised_records": records}, gx_root(root),
                               out_dir=f"{out.rsplit('/std', 1)[0]}/quality", run_name=f"{ds}_{period}")

    written = {}
    for name, df in (("units", units), ("quotas", quotas), ("leader_posts", leader_posts),
                     ("budget_units", budget_units), ("records", records), ("quarantine_rows", quarantined)):
        path = f"{out}/{name}.parquet"
        with fs.open(path, "wb") as fh:
            df.to_parquet(fh, index=False)
        written[name] = len(df)
    by_source = records.groupby("source").agg(rows=("id_valid", "size"), invalid_ids=("id_valid", lambda v: int((~v).sum())))
    summary = {"ds": ds, "period": period, "dir": out, "rows": written, "hr_period": inputs.hr_period,
               "sources": {k: {kk: int(vv) for kk, vv in v.items()} for k, v in by_source.to_dict("index").items()},
               "accounting": accounting, "quality": quality, "invalid_credit_codes": broken,
               "inputs": inputs.__dict__}
    with fs.open(f"{out}/_summary.json", "w") as fh:
        json.dump(summary, fh, ensure_ascii=False, indent=1)
    if any(broken.values()):
        log.warning("credit codes failing the GB 32100 check, treated as none: %s",
                    ", ".join(f"{k} {v}" for k, v in broken.items() if v))
    log.info("standardised %s for %s: %s", period, ds, ", ".join(
        f"{s} {a['rows_in']:,} rows in, {a['rows_used']:,} used, {a['rows_quarantined']:,} quarantined "
        f"({summary['sources'].get(s, {}).get('invalid_ids', 0)} invalid IDs)" for s, a in accounting.items()))
    return summary
