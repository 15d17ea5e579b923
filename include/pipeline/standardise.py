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
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd

from include import identifiers as ids
from include import periods as P
from include.pipeline.store import latest_manifest

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


def standardise(root: str, ds: str, period: str, out_dir: str | None = None) -> dict:
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
    budget_units = pd.DataFrame({"dwbm": ys.dwbm.astype("string").str.strip(), "credit": _code(ys.tyshxydm),
                                 "dwmc": ys.dwmc, "qhdm": _code(ys.qhdm)})

    parts = []
    sp = _read(f"{inputs.staffing_dir}/persons__state.parquet")
    sp = sp[sp.status == "active"].reset_index(drop=True)
    parts.append(pd.DataFrame({
        "source": "staffing", "rec_no": np.arange(len(sp)), "raw_id": sp.id_number, "name": sp["name"],
        "unit_code": _code(sp.unit_code), "record_id": sp.record_id, "sex": sp.sex, "birth_date": sp.birth_date,
        "personnel_class": sp.personnel_class, "quota_type": sp.quota_type,
        "non_establishment_category": sp.non_establishment_category, "post_category": sp.post_category,
        "position": sp.position, "entered_on": sp.entered_on, "slip_no": sp.slip_no,
    }))
    org = _read(inputs.org_file)
    parts.append(pd.DataFrame({
        "source": "org", "rec_no": np.arange(len(org)), "raw_id": org.sfzh, "name": org.xm, "unit_code": _code(org.dwdm),
        "sfld": org.sfld, "ldlb": org.ldlb, "zwcc": org.zwcc,
    }))
    pay = _read(inputs.gz_ff_file)
    credit = budget_units.set_index("dwbm").credit
    dwbm = pay.dwbm.astype("string").str.strip()
    parts.append(pd.DataFrame({
        "source": "finance", "rec_no": np.arange(len(pay)), "raw_id": pay.sfzh, "name": pay.xm,
        "unit_code": dwbm.map(credit).astype("string"), "dwbm": dwbm, "rylb": pay.rylb,
        "yfgz": pd.to_numeric(pay.yfgz, errors="coerce"), "jfly": pay.jfly,
    }))
    if inputs.hr_persons_file:
        hr = _read(inputs.hr_persons_file)
        missing = [c for c in HR_PERSON_COLUMNS if c not in hr.columns]
        if missing:
            raise MissingExtractError(f"the HR persons export lacks column(s) {', '.join(missing)}")
        emp = _read(inputs.hr_employers_file)
        emp_credit = pd.Series(_code(emp["统一社会信用代码"]).to_numpy(), index=emp["单位编号"].astype("string").str.strip())
        emp_credit = emp_credit[~emp_credit.index.duplicated()]
        hr = hr.rename(columns=HR_PERSON_COLUMNS)
        emp_no = hr.emp_no.astype("string").str.strip()
        retired = hr.retired_on.astype("string").str.strip()
        parts.append(pd.DataFrame({
            "source": "hr", "rec_no": np.arange(len(hr)), "raw_id": hr.raw_id, "name": hr["name"],
            "unit_code": emp_no.map(emp_credit).astype("string"), "emp_no": emp_no,
            "insured_status": hr.insured_status, "hr_status": hr.hr_status, "retired_on": retired.where(retired != "", pd.NA),
        }))
    records = pd.concat(parts, ignore_index=True)
    records = _identify(records, period)
    records = records.reindex(columns=RECORD_COLUMNS)
    for col in RECORD_COLUMNS:
        if col not in ("rec_no", "id_valid", "yfgz"):
            records[col] = records[col].astype("string")

    written = {}
    for name, df in (("units", units), ("quotas", quotas), ("leader_posts", leader_posts),
                     ("budget_units", budget_units), ("records", records)):
        path = f"{out}/{name}.parquet"
        with fs.open(path, "wb") as fh:
            df.to_parquet(fh, index=False)
        written[name] = len(df)
    by_source = records.groupby("source").agg(rows=("id_valid", "size"), invalid_ids=("id_valid", lambda v: int((~v).sum())))
    summary = {"ds": ds, "period": period, "dir": out, "rows": written, "hr_period": inputs.hr_period,
               "sources": {k: {kk: int(vv) for kk, vv in v.items()} for k, v in by_source.to_dict("index").items()},
               "inputs": inputs.__dict__}
    with fs.open(f"{out}/_summary.json", "w") as fh:
        json.dump(summary, fh, ensure_ascii=False, indent=1)
    log.info("standardised %s for %s: %s", period, ds,
             ", ".join(f"{s} {v['rows']:,} rows ({v['invalid_ids']} invalid IDs)" for s, v in summary["sources"].items()))
    return summary
