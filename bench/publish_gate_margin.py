"""How far a normal month sits from the publish gate's bands (a script, not a test).

    python bench/publish_gate_margin.py --persons 7000 --periods 4
    python bench/publish_gate_margin.py --persons 200000 --periods 3 --cities 4

Generates a jurisdiction whose periods evolve as a normal year does (hires, leavers,
transfers, a third of last month's problems fixed and as many new ones), runs the whole
pipeline for each period, and prints, for every period after the first, what the gate
measured against the last one (as shares of the last roster) beside the band, and the
margin: the band divided by the measured share (the gate trips below 1x). The floor of
the bands (changes under ``floor`` findings never trip) is printed apart, since it is what
keeps a small county clear.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include import periods as P  # noqa: E402
from include.generator.generate import generate  # noqa: E402
from include.generator.world import WorldParams  # noqa: E402
from include.pipeline.local import run_local  # noqa: E402
from include.settings import publish_bands  # noqa: E402
from include.simulators.cluster import Simulators  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=7000)
    ap.add_argument("--periods", type=int, default=4)
    ap.add_argument("--cities", type=int, default=None)
    ap.add_argument("--findings-per-code", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-gate-"))
    bands = publish_bands()
    try:
        t0 = time.perf_counter()
        params = WorldParams(persons=args.persons, periods=args.periods, cities=args.cities,
                             findings_per_code=args.findings_per_code)
        generate(params, work / "data", progress=lambda m: None)
        print(f"generated {args.persons:,} persons, {args.periods} periods in {time.perf_counter() - t0:.0f} s; "
              f"bands {bands}")
        url = f"sqlite:///{work / 'roster.db'}"
        rows = []
        with Simulators(work / "data", ports={"staffing": 0, "org": 0, "hr": 0},
                        finance_url=f"sqlite:///{work / 'finance.db'}") as sims:
            for i in range(args.periods):
                period = P.add_months(params.first_period, i)
                if i:
                    sims.advance(period)
                ds = str(P.last_day(period))
                t = time.perf_counter()
                result = run_local(sims.connections(), sims.finance_url, url, str(work / "lake"), ds,
                                   full_resync_days=400)
                gate, pub = result["publish"]["gate"], result["publish"]
                rows.append((period, pub, gate, time.perf_counter() - t))
        print()
        print("| period | roster | change | opened | resolved | largest code growth | tightest margin |")
        print("|---|---|---|---|---|---|---|")
        previous = None
        for period, pub, gate, secs in rows:
            n = pub["roster_rows"]
            if previous is None:
                print(f"| {period} | {n:,} | (first) | {pub['events'].get('opened', 0):,} | | | |")
                previous = (n, pub)
                continue
            n0 = previous[0]
            change = abs(n - n0) / n0
            opened = (pub["events"].get("opened", 0) + pub["events"].get("reopened", 0)) / n0
            resolved = pub["events"].get("resolved", 0) / n0
            growth = gate_growth(url, period, gate["against"]) / n0
            margins = [bands.roster_change / change if change else float("inf"),
                       bands.opened / opened if opened else float("inf"),
                       bands.resolved / resolved if resolved else float("inf"),
                       bands.code_growth / growth if growth else float("inf")]
            print(f"| {period} | {n:,} | {change:.2%} | {opened:.2%} | {resolved:.2%} | {growth:.2%} | "
                  f"{min(margins):.1f}x{'' if gate['jumps'] == [] else ' TRIPPED'} |")
            previous = (n, pub)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def gate_growth(url, period: str, against: str) -> int:
    """The largest growth of one code's findings from ``against`` to ``period``."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as c:
        counts = pd.read_sql(sa.text("SELECT period, code, count(*) AS n FROM reconciliation_finding "
                                     "WHERE period IN (:a, :b) GROUP BY 1, 2"), c, params={"a": period, "b": against})
    engine.dispose()
    wide = counts.pivot(index="code", columns="period", values="n").fillna(0)
    if period not in wide or against not in wide:
        return 0
    return int(max(0, (wide[period] - wide[against]).max()))


if __name__ == "__main__":
    sys.exit(main())
