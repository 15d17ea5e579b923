"""Benchmark (not a test): finance's exports of a province-size roster (issue 16).

    python bench/bench_export.py --before bc8ae1a        # the workbook against the plain writer of bc8ae1a

On the 1M jurisdiction's reconciled roster (var/bench/work-1M: bench_reconcile.py's
standardised 1M model, reconciled here once; about 1.07M persons) and a previous period made from it
(1% of persons gone, 1% new, 5% with another pay, 0.5% in another unit), each in a
fresh child process (peak RSS = the child's VmHWM), best of ``--rounds``, alternately:

* ``before``: ``write_xlsx`` of the roster as the code stood at ``--before`` (one plain
  sheet, English headers, dates as text: the export finance found unusable);
* ``workbook``: ``roster_<period>.xlsx`` as published now: the styled roster sheet with
  labels, the summary, the changes sheet and the data dictionary;
* ``changes``: ``roster_change`` rows and the readable view, from the two rosters;
* ``floor``: the same roster written as CSV by pandas into memory: the plainest text
  serialisation of these rows, which any XLSX writer also has to do and then zip.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_reconcile import checkout, child, std_1m  # noqa: E402

PREPARE = r"""
import io, json, sys, time
sys.path.insert(0, {code!r})
import numpy as np, pandas as pd
from include.pipeline.reconcile import ROSTER_COLUMNS
roster = pd.read_parquet({work!r} + "/roster.parquet")[ROSTER_COLUMNS]
roster["as_of"] = pd.to_datetime(roster.as_of).dt.date
roster["birth_date"] = pd.to_datetime(roster.birth_date).dt.date
rng = np.random.default_rng(16)
previous = roster.sample(frac=0.99, random_state=16).copy()
newcomers = roster.sample(frac=0.01, random_state=17).copy()
newcomers["id_number"] = "X" + newcomers.id_number.str[1:]          # people the later roster does not have
previous = pd.concat([previous, newcomers], ignore_index=True)
repaid = rng.random(len(previous)) < 0.05
previous.loc[repaid, "gross_pay"] = previous.gross_pay[repaid] - 100
moved = rng.random(len(previous)) < 0.005
previous.loc[moved, "unit_code"] = previous.unit_code.shift(1)[moved]
"""

STEP = PREPARE + r"""
step = {step!r}
t0 = time.perf_counter()
sink = io.BytesIO()
if step == "before":
    from include.pipeline.xlsx import write_xlsx
    write_xlsx(roster, sink)
elif step == "floor":
    sink.write(roster.to_csv(index=False).encode("utf-8-sig"))
else:
    from include.pipeline import changes as C
    rows, view = C.period_changes(roster, previous, "2026-10", "2026-09")
    t_changes = time.perf_counter() - t0
    if step == "workbook":
        from include.pipeline.xlsx import write_workbook
        from include.report.finance import roster_sheets
        t0 = time.perf_counter()
        write_workbook(roster_sheets(roster, rows, view, "2026-09"), sink)
    else:
        print(json.dumps({{"seconds": t_changes, "rows": len(rows), "kinds": rows.change.value_counts().to_dict(),
                          "rss_mb": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024}}))
        raise SystemExit(0)
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "bytes": sink.tell(), "rows": len(roster), "rss_mb": hwm / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="bc8ae1a", help="the git revision of the plain writer to time against")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "var" / "bench" / "work-1M"), help="a reconciled work directory")
    a = ap.parse_args()
    if not Path(a.work, "roster.parquet").exists():
        from include.pipeline.reconcile import reconcile
        reconcile(str(std_1m()), out=a.work)
    old = checkout(a.before)
    best: dict[str, dict] = {}
    for r in range(a.rounds):
        for step, code in (("before", old), ("workbook", ROOT), ("changes", ROOT), ("floor", ROOT)):
            res = child(STEP.format(code=str(code), work=a.work, step=step))
            print(f"round {r + 1} {step:9s} {res['seconds']:6.1f}s  peak {res['rss_mb']:,.0f} MB"
                  + (f"  {res['bytes'] / 1e6:,.0f} MB written" if "bytes" in res else "")
                  + (f"  {res['rows']:,} changes {res['kinds']}" if step == "changes" else ""), flush=True)
            if step not in best or res["seconds"] < best[step]["seconds"]:
                best[step] = res
    rows = best["floor"]["rows"]
    print(f"\n{rows:,} roster rows, best of {a.rounds}:")
    for step, label in (("before", f"before ({a.before}: one plain sheet)"),
                        ("workbook", "workbook (4 sheets, styled, labelled)"),
                        ("changes", "changes (roster_change + readable view)"), ("floor", "floor (pandas to_csv)")):
        b = best[step]
        print(f"  {label:44s} {b['seconds']:6.1f}s  {rows / b['seconds']:>10,.0f} rows/s  peak {b['rss_mb']:,.0f} MB")
    print(json.dumps({k: round(v["seconds"], 2) for k, v in best.items()}))


if __name__ == "__main__":
    main()
