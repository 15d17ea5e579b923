"""Run the whole pipeline for one logical date without a scheduler (tests, benchmarks, debugging).

The DAG wires exactly these steps as tasks; this runs them in order in one process.
"""

from __future__ import annotations

import datetime as dt
import logging

from include.alerts import routing
from include.alerts.digest import send_digests
from include.alerts.mail import open_outbox
from include.pipeline.extract.finance import extract_finance
from include.pipeline.extract.hr import extract_hr
from include.pipeline.extract.http import SourceConn
from include.pipeline.extract.org import extract_org
from include.pipeline.extract.staffing import extract_staffing
from include.pipeline.period import landed_months, resolve_period
from include.pipeline.publish import publish
from include.pipeline.reconcile import reconcile_by_region
from include.pipeline.standardise import standardise
from include.quality.gates import audit_period, gx_root
from include.report.monthly import build as build_reports

log = logging.getLogger("roster_sync")


def source_conns(connections: dict) -> dict:
    """SourceConn objects from OUTPUTS.md-style connection dicts (as ``Simulators.connections()`` gives)."""
    def conn(cid):
        c = connections[cid]
        return SourceConn(cid, c.get("host", ""), c.get("login"), c.get("password"))
    return {"staffing": conn("staffing_api"), "org": conn("org_api"), "hr": conn("hr_exports")}


def extract_all(connections: dict, finance_url, root: str, ds: str, full_resync_days: int = 7, fresh: bool = False) -> None:
    """The four extracts of the DAG, one after the other (each reuses a raw layer that landed
    complete for ``ds`` unless ``fresh``)."""
    c = source_conns(connections)
    extract_staffing(c["staffing"], root, ds, full_resync_days=full_resync_days, fresh=fresh)
    extract_org(c["org"], root, ds, fresh=fresh)
    extract_finance("finance_db", finance_url, root, ds, fresh=fresh)
    extract_hr(c["hr"], root, ds, fresh=fresh)


def run_local(connections: dict, finance_url, roster_url, root: str, ds: str, period: str | None = None,
              full_resync_days: int = 7, routes=None, outbox=None, fresh: bool = False, accept: dict | None = None) -> dict:
    """``routes``: the recipients (default :func:`include.alerts.routing.load`); ``outbox``: where
    digests go (default ``alerts_smtp`` if configured, else ``<root>/outbox/digests/<period>``);
    ``fresh``: fetch again even if ``ds``'s raw layer landed; ``accept``: ``{"by", "reason"}``
    accepting a jump the publish gate stopped."""
    extract_all(connections, finance_url, root, ds, full_resync_days, fresh=fresh)
    period = resolve_period(finance_url, dt.date.fromisoformat(ds), period, months=landed_months(root, ds))
    std = standardise(root, ds, period)
    rec = reconcile_by_region(std["dir"], as_of=ds)   # the DAG's region split, run in order
    audit = audit_period(rec["dir"], gx_root(root))       # write-audit-publish: nothing is published unless it passes
    pub = publish(rec["dir"], roster_url, period, ds, export_root=root, run_id=f"local__{ds}", accept=accept)
    routes = routes or routing.load()
    reports = build_reports(rec["dir"], roster_url, period, root, routes)
    digests = send_digests(roster_url, period, routes, outbox or open_outbox(f"{root}/outbox/digests/{period}"),
                           work_dir=rec["dir"], run_id=f"local__{ds}",
                           report_links={r: v["html"] for r, v in reports.items()})
    return {"period": period, "standardise": std, "reconcile": rec, "audit": audit, "publish": pub,
            "reports": reports, "digests": digests}
