"""The gate on what would be published: a period that jumps far from the last one stops.

A source can break in ways no row-level rule sees: a field that empties, a unit
re-coded, a feed that swaps two columns. Every row still passes, and the result is a
flood: thousands of findings, a roster that shrinks by a tenth, and a digest telling each
office that nearly everyone it employs is a problem. Before publish writes anything, the
staged period is compared with the last published one (the same period if it was
published before, else the nearest published period before it, else the nearest after):

* the roster's size;
* the alerts that would open or reopen, and those that would resolve;
* the findings of each code.

Bands are shares of the last roster's size (``ROSTER_SYNC_PUBLISH_BANDS``,
:class:`include.settings.PublishBands`), and a change smaller than ``floor`` findings
never trips one (a county of a few thousand). The first publish has nothing to compare
with and passes.

A jump stops the run with one line saying what jumped. An operator who has checked it
accepts it for that run (run parameter ``accept_publish_gate`` = ``{"by": ..., "reason":
...}``); the acceptance is written to ``publish_acceptance`` with the summary, in the
publish transaction.
"""

from __future__ import annotations

import logging

import pandas as pd
import sqlalchemy as sa

from include.quality.gates import QualityGateFailed
from include.settings import PublishBands, publish_bands

log = logging.getLogger("roster_sync.quality")


class PublishGateFailed(QualityGateFailed):
    """The staged period moved beyond the bands; nothing was published or mailed."""


def baseline(conn, period: str) -> dict | None:
    """The last published state to compare with: ``{"period", "roster", "codes"}`` or None."""
    from include.pipeline.publish import finding_table, publish_log

    log_rows = pd.read_sql(sa.select(publish_log.c.id, publish_log.c.period, publish_log.c.roster_rows), conn)
    if log_rows.empty:
        return None
    before = log_rows[log_rows.period <= period]
    chosen = before if len(before) else log_rows
    chosen = chosen[chosen.period == (chosen.period.max() if len(before) else chosen.period.min())]
    last = chosen.sort_values("id").iloc[-1]
    codes = pd.read_sql(sa.select(finding_table.c.code, sa.func.count().label("n"))
                        .where(finding_table.c.period == last.period).group_by(finding_table.c.code), conn)
    return {"period": last.period, "roster": int(last.roster_rows), "codes": dict(zip(codes.code, codes.n.astype(int)))}


def jumps(base: dict, roster: int, codes: dict, counts: dict, bands: PublishBands) -> list[str]:
    """What moved beyond the bands, one phrase each."""
    n0 = max(base["roster"], 1)
    out = []

    def over(change: int, band: float) -> bool:
        return abs(change) >= bands.floor and abs(change) > band * n0

    delta = roster - base["roster"]
    if over(delta, bands.roster_change):
        out.append(f"roster {base['roster']:,} -> {roster:,} ({delta / n0:+.1%}, band {bands.roster_change:.0%})")
    opening = counts.get("opened", 0) + counts.get("reopened", 0)
    if over(opening, bands.opened):
        out.append(f"{opening:,} alerts would open ({opening / n0:.1%} of the roster, band {bands.opened:.0%})")
    resolving = counts.get("resolved", 0)
    if over(resolving, bands.resolved):
        out.append(f"{resolving:,} alerts would resolve ({resolving / n0:.1%} of the roster, band {bands.resolved:.0%})")
    for code in sorted(set(codes) | set(base["codes"])):
        growth = codes.get(code, 0) - base["codes"].get(code, 0)
        if growth > 0 and over(growth, bands.code_growth):
            out.append(f"{code} {base['codes'].get(code, 0):,} -> {codes.get(code, 0):,} "
                       f"(+{growth / n0:.1%} of the roster, band {bands.code_growth:.0%})")
    return out


def check(conn, period: str, roster: int, findings: pd.DataFrame, counts: dict, accept: dict | None = None) -> dict:
    """Compare the staged period with the last published one; raise :class:`PublishGateFailed`
    on a jump not accepted. Returns ``{"against", "jumps", "summary", "accepted"}``."""
    base = baseline(conn, period)
    if base is None:
        return {"against": None, "jumps": [], "summary": "first publish: nothing to compare with", "accepted": None}
    codes = findings.code.value_counts().to_dict() if len(findings) else {}
    found = jumps(base, roster, codes, counts, publish_bands())
    summary = (f"{period} against {base['period']}: " + ("; ".join(found) if found else "within the bands"))
    if not found:
        return {"against": base["period"], "jumps": [], "summary": summary, "accepted": None}
    who = (accept or {}).get("by")
    why = (accept or {}).get("reason")
    if not (isinstance(who, str) and who.strip() and isinstance(why, str) and why.strip()):
        raise PublishGateFailed(
            f"not published: the publish gate stopped {summary}. Nothing was published or mailed. If you have checked "
            'it, rerun with the run parameter accept_publish_gate = {"by": "<your name>", "reason": "<why>"}')
    log.warning("publish gate: %s; accepted by %s: %s", summary, who.strip(), why.strip())
    return {"against": base["period"], "jumps": found, "summary": summary,
            "accepted": {"by": who.strip()[:200], "reason": why.strip()}}
