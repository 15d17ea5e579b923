"""Write a generated jurisdiction as the data directory the simulators serve.

Layout (every file deterministic for a seed)::

    DATA/manifest.json                         parameters, periods, counts
    DATA/hr/cbry_YYYYMM.csv, cbdw_YYYYMM.csv   HR exports, GB18030 (immutable once written)
    DATA/hr/index.json                         every export with rows, bytes, sha256, period
    DATA/periods/YYYY-MM/staffing/*.parquet    units, quotas, leader_posts, persons (with updated_at)
    DATA/periods/YYYY-MM/staffing/snapshot.json
    DATA/periods/YYYY-MM/org/gbxx.parquet
    DATA/periods/YYYY-MM/finance/ys_dw.parquet, gz_ff.parquet (every month paid so far)
    DATA/periods/YYYY-MM/problems.json         the problems injected and open (for people, not the pipeline)
    DATA/periods/YYYY-MM/truth/                findings.csv, roster_ids.csv, summary.json (the oracle)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from include import periods as P
from include.generator import oracle
from include.generator import problems as PR
from include.generator import sources as S
from include.generator.world import World, WorldParams, build_world, evolve

log = logging.getLogger(__name__)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df = df[[c for c in df.columns if not c.startswith("_")]].reset_index(drop=True)
    df.to_parquet(path, index=False, compression="zstd")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_hr_export(frames: dict, month: str, hr_dir: Path) -> list[dict]:
    hr_dir.mkdir(parents=True, exist_ok=True)
    tag = P.to_ffyf(month)
    out = []
    for kind, name, df in (("persons", f"cbry_{tag}.csv", frames["cbry"]), ("employers", f"cbdw_{tag}.csv", frames["cbdw"])):
        df = df[[c for c in df.columns if not c.startswith("_")]]
        path = hr_dir / name
        df.to_csv(path, index=False, encoding="gb18030", lineterminator="\r\n")
        out.append({"name": name, "kind": kind, "period": month, "rows": int(len(df)),
                    "bytes": path.stat().st_size, "sha256": _sha256(path)})
    return out


def _initial_person_times(persons: pd.DataFrame) -> pd.Series:
    day = persons.left_on.where(persons.status == "left", persons.entered_on)
    secs = (S.stable_u_series(persons.record_id, "t0") * 9 * 3600).astype(int) + 8 * 3600
    ts = pd.to_datetime(day) + pd.to_timedelta(secs, unit="s")
    return ts.dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def _initial_times(keys: pd.Series, first_period: str) -> pd.Series:
    start = pd.Timestamp(P.first_day(P.add_months(first_period, -36)))
    span = (pd.Timestamp(P.first_day(first_period)) - start).total_seconds()
    ts = start + pd.to_timedelta((S.stable_u_series(keys, "t0") * span).astype(int), unit="s")
    return pd.Series(ts.strftime("%Y-%m-%dT%H:%M:%S+08:00"), index=keys.index)


def _frames_for(w: World, problems: list, period: str, month: str) -> dict[str, pd.DataFrame]:
    frames = S.project(w, month)
    S.add_dirt(w, frames)
    PR.apply_overlays(w, frames, problems, period, month)
    return frames


def _correct_month(w: World, pay: pd.DataFrame, month: str) -> pd.DataFrame:
    """A payroll correction (补发/扣回) replaces the rows of the month before the latest paid one."""
    fixed = pay.copy()
    u = S.stable_u_series(fixed.sfzh + fixed.dwbm, f"correction|{month}")
    pick = u < 0.01
    fixed.loc[pick, "yfgz"] = np.round(fixed.loc[pick, "yfgz"] + np.round(u[pick] * 1e4) % 500 + 50, 2)
    return fixed


def generate(params: WorldParams, out: str | Path, progress=print) -> dict:
    """Generate ``params.periods`` consecutive periods into ``out``. Returns the manifest."""
    params.validate()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise ValueError(f"{out} exists and is not a roster-sync data directory: refusing to write into it")
    t0 = time.perf_counter()
    w = build_world(params)
    progress(f"world: {len(w.units):,} units in {int(w.regions.is_jurisdiction.sum())} jurisdictions, "
             f"{len(w.placements) + len(w.retirees):,} persons ({time.perf_counter() - t0:.1f}s)")
    periods = P.period_range(params.first_period, params.periods)
    problems: list[PR.Problem] = []
    served: dict[str, pd.DataFrame] = {}
    months: dict[str, pd.DataFrame] = {}
    hr_index: list[dict] = []
    summary = {}
    for i, period in enumerate(periods):
        tp = time.perf_counter()
        if i == 0:
            per_code = params.findings_per_code
        else:
            evolve(w)
            per_code = 1 if params.findings_per_code else 0
            for code in PR.CODES:  # one of each code's open problems is fixed this month
                still = [p for p in problems if p.code == code and p.fixed_in is None]
                if still:
                    still[0].fixed_in = period
                    PR.fix_in_world(w, still[0])
        for code in PR.CODES:
            for k in range(per_code):
                problems.append(PR.choose(w, code, serial=k + 7 * i))
        frames = _frames_for(w, problems, period, period)
        if i == 0:
            before = P.add_months(period, -1)
            prev = _frames_for(w, problems, period, before)
            prev["gz_ff"]["ffyf"] = P.to_ffyf(before)
            months[before] = prev["gz_ff"]
            hr_index += _write_hr_export(prev, before, out / "hr")
        else:
            last = periods[i - 1]
            if S.stable_u(params.seed, "correction", period) < 0.5:
                months[last] = _correct_month(w, months[last], last)
        months[period] = frames["gz_ff"]
        hr_index += _write_hr_export(frames, period, out / "hr")
        base = out / "periods" / period
        # staffing, with updated_at from what changed since the previous period
        first = i == 0
        persons = S.stamp(frames["persons"].drop(columns=["_changed"]), served.get("persons"), ["record_id"], period, "persons",
                          ended={"status": "left", "left_on": str(P.first_day(period))},
                          initial_time=_initial_person_times(frames["persons"]) if first else None)
        units = S.stamp(frames["units"], served.get("units"), ["unit_code"], period, "units",
                        initial_time=_initial_times(frames["units"].unit_code, period) if first else None)
        quotas = S.stamp(frames["quotas"], served.get("quotas"), ["unit_code", "quota_type"], period, "quotas",
                         ended={"approved": 0},
                         initial_time=_initial_times(frames["quotas"].unit_code + frames["quotas"].quota_type, period) if first else None)
        leader_posts = S.stamp(frames["leader_posts"], served.get("leader_posts"), ["unit_code", "level"], period, "leader_posts",
                               ended={"approved": 0},
                               initial_time=_initial_times(frames["leader_posts"].unit_code + frames["leader_posts"].level, period) if first else None)
        served = {"persons": persons, "units": units, "quotas": quotas, "leader_posts": leader_posts}
        for name, df in served.items():
            _write_parquet(df.sort_values(df.columns[0], kind="stable"), base / "staffing" / f"{name}.parquet")
        (base / "staffing" / "snapshot.json").write_text(json.dumps({"snapshot_at": P.snapshot_at(period).isoformat()}))
        _write_parquet(frames["org"], base / "org" / "gbxx.parquet")
        _write_parquet(frames["ys_dw"], base / "finance" / "ys_dw.parquet")
        gz = pd.concat([months[m] for m in sorted(months)], ignore_index=True)
        _write_parquet(gz, base / "finance" / "gz_ff.parquet")
        open_now = [dataclasses.asdict(p) for p in problems if p.start <= period]
        (base / "problems.json").write_text(json.dumps(open_now, ensure_ascii=False, indent=1, default=str))
        index_now = [e for e in hr_index if e["period"] <= period]
        (base / "hr_index.json").write_text(json.dumps(index_now, ensure_ascii=False, indent=1))
        truth = oracle.compute(out, period)
        oracle.write(truth, base / "truth")
        summary[period] = truth["summary"]
        progress(f"period {period}: staffing {len(persons):,} items, org {len(frames['org']):,} rows, "
                 f"payroll {len(frames['gz_ff']):,} rows, HR {len(frames['cbry']):,} rows, "
                 f"{len(truth['findings']):,} findings, roster {len(truth['roster']):,} ({time.perf_counter() - tp:.1f}s)")
    (out / "hr" / "index.json").write_text(json.dumps(hr_index, ensure_ascii=False, indent=1))
    manifest = {
        "generator": "roster-sync", "params": dataclasses.asdict(params), "periods": periods,
        "regions": w.regions.drop(columns=["is_jurisdiction"]).assign(jurisdiction=w.regions.is_jurisdiction).to_dict("records"),
        "summary": summary,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    progress(f"done in {time.perf_counter() - t0:.1f}s: {out}")
    return manifest


def load_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{data_dir} has no manifest.json: generate it first with roster-gen")
    return json.loads(path.read_text())
