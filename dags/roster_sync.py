"""roster_sync: one run reconciles one period and publishes (OUTPUTS.md).

Thin by design: every step is a function in ``include/pipeline``; this file only wires
them. Nothing here touches a connection or a database at import time. Tasks pass
references (manifest paths, the period), never data frames.

Flow: the four extracts (in parallel, each emitting its raw Asset) -> the period M ->
standardise (row quarantine, input suites, batch gates) -> plan the regions -> reconcile
each region (dynamic task mapping: Celery workers share a province) -> combine them
(the checks that cross regions) -> audit
(Great Expectations on the staged period) -> publish (emitting the roster Asset that
finance's DAGs can be scheduled on) -> the monthly report of each jurisdiction -> one
digest per staffing office. A failed quality gate fails its task at once, with no retry,
and nothing is published.

For the engineers: a task that fails for good mails them (``on_failure_callback``); a day
whose roster is not published by the deadline is caught by ``roster_sync_deadline``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task


def _task_failed(context) -> None:
    from include.alerts.ops import task_failed

    task_failed(context)


DEFAULT_ARGS = {
    "owner": "roster-sync",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "on_failure_callback": _task_failed,
}

RAW = {name: Asset(f"roster-sync://raw/{name}", group="roster-sync-raw") for name in ("staffing", "org", "finance", "hr")}
ROSTER = Asset("roster-sync://roster", group="roster-sync")   # the published roster (OUTPUTS.md)


@dag(
    dag_id="roster_sync",
    schedule="0 6 * * *",
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["roster-sync", "reconciliation", "全口径财政供养人员"],
    params={
        "period": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                        description="YYYY-MM to reconcile; default: the latest payroll month not after the logical date"),
        "full_resync": Param(False, type="boolean",
                             description="read the staffing office in full instead of incrementally (implies a fresh extract of it)"),
        "fresh_extract": Param(False, type="boolean",
                               description="fetch the sources again even if this logical date's raw layer landed complete "
                                           "(default: a rerun reuses it, so a backfill publishes what its date saw)"),
        "accept_publish_gate": Param(None, type=["null", "object"],
                                     description='accept a jump the publish gate stopped, after checking it: '
                                                 '{"by": "<who>", "reason": "<why>"}; recorded in publish_acceptance'),
    },
    doc_md=__doc__,
)
def roster_sync():
    def ds() -> str:
        return f"{get_current_context()['logical_date']:%Y-%m-%d}"

    def fresh() -> bool:
        return bool(get_current_context()["params"].get("fresh_extract"))

    @task(outlets=[RAW["staffing"]])
    def extract_staffing() -> dict:
        """编办: token, cursor paging, incremental by updated_since, tombstones applied."""
        from include.pipeline import airflow_glue as g
        from include.pipeline.extract.staffing import extract_staffing as run

        full = bool(get_current_context()["params"].get("full_resync"))   # asking for a full read means reading again
        return g.not_retryable(run, g.source_conn("staffing_api"), g.data_root(), ds(), force_full=full,
                               fresh=fresh() or full)

    @task(outlets=[RAW["org"]])
    def extract_org() -> dict:
        """组织部: the whole cadre list, every row exactly once even when rows move between pages."""
        from include.pipeline import airflow_glue as g
        from include.pipeline.extract.org import extract_org as run

        return g.not_retryable(run, g.source_conn("org_api"), g.data_root(), ds(), fresh=fresh())

    @task(outlets=[RAW["finance"]])
    def extract_finance() -> dict:
        """财政: ys_dw, and the payroll months not yet read plus the last one again."""
        from include.pipeline import airflow_glue as g
        from include.pipeline.extract.finance import extract_finance as run

        return g.not_retryable(run, "finance_db", g.sql_url("finance_db"), g.data_root(), ds(), fresh=fresh())

    @task(outlets=[RAW["hr"]])
    def extract_hr() -> dict:
        """人社: exports verified by size and sha256, GB18030 decoded."""
        from include.pipeline import airflow_glue as g
        from include.pipeline.extract.hr import extract_hr as run

        return g.not_retryable(run, g.source_conn("hr_exports"), g.data_root(), ds(), fresh=fresh())

    @task
    def resolve_period() -> str:
        """The period M: the latest payroll month not after the logical date, or the `period` parameter."""
        from include.pipeline import airflow_glue as g
        from include.pipeline.period import landed_months
        from include.pipeline.period import resolve_period as resolve

        ctx = get_current_context()
        period = g.not_retryable(resolve, g.sql_url("finance_db"), ctx["logical_date"].date(), ctx["params"].get("period"),
                                 months=landed_months(g.data_root(), ds()))
        print(f"roster_sync reconciles period {period} (logical date {ctx['logical_date']:%Y-%m-%d})")
        return period

    @task
    def standardise(period: str) -> str:
        """The raw layer of this run as one typed model for the period: IDs, names, units, codes."""
        from include.quality.input_suites import InputSuites

        InputSuites.start()   # the input suites' worker imports Great Expectations while standardise's modules load
        from include.pipeline import airflow_glue as g
        from include.pipeline.standardise import standardise as run

        summary = g.not_retryable(run, g.data_root(), ds(), period)
        for r in (summary.get("quality") or {}).values():    # the input suites, as audit prints its own
            print(f"roster_sync quality {r['summary']}; Data Docs: {r.get('page') or r.get('docs')}")
        return summary["dir"]

    @task
    def plan_regions(std_dir: str) -> list[dict]:
        """Link invalid IDs (across all regions) and write each region's persons' records together."""
        from include.pipeline.reconcile import plan_parts, region_level

        plan = plan_parts(std_dir, level=region_level())
        return [{"std": std_dir, "out": plan["dir"], "part": p, "persons": plan["persons"][p]} for p in plan["parts"]]

    @task(map_index_template="{{ region_part }}")
    def reconcile_region(region: dict) -> dict:
        """One region's persons: their codes, roster rows and per-unit partial counts (a Celery worker each)."""
        from include.pipeline.reconcile import reconcile_part

        get_current_context()["region_part"] = region["part"]
        return reconcile_part(region["std"], region["out"], region["part"], as_of=ds())

    @task
    def combine_regions(std_dir: str, regions: list[dict]) -> str:
        """The checks that cross regions, on compact partial counts; the period's findings and roster."""
        from include.pipeline.reconcile import combine_parts

        done = list(regions)
        out = done[0]["dir"].rsplit("/parts/", 1)[0]
        return combine_parts(std_dir, out, [r["part"] for r in done])["dir"]

    @task
    def audit(work_dir: str) -> str:
        """Write-audit-publish: the staged roster and findings against their GX suites; critical failures stop here."""
        from include.pipeline import airflow_glue as g
        from include.quality.gates import audit_period, gx_root

        result = g.not_retryable(audit_period, work_dir, gx_root(g.data_root()))
        for name, r in result.items():
            print(f"roster_sync quality {r['summary']}; Data Docs: {r.get('page') or r['docs']}")
        return work_dir

    @task(outlets=[ROSTER])
    def publish(work_dir: str, period: str) -> dict:
        """Roster and alerts to roster_db in one transaction, one publish at a time; the gate on what
        would be published (a jump from the last period stops here); Parquet, CSV and XLSX exports."""
        from include.pipeline import airflow_glue as g
        from include.pipeline.publish import publish as run

        ctx = get_current_context()
        summary = g.not_retryable(run, work_dir, g.sql_url("roster_db"), period, ds(), export_root=g.data_root(),
                                  run_id=ctx["run_id"], accept=ctx["params"].get("accept_publish_gate"))
        print(f"roster_sync publish gate: {summary['gate']['summary']}"
              + (f" (accepted by {summary['gate']['accepted']['by']})" if summary["gate"]["accepted"] else ""))
        # the month's changes (人员增减变动) travel with the event: a consumer knows what moved without a query
        ctx["outlet_events"][ROSTER].extra = {"period": period, "rows": summary["roster_rows"],
                                              **{k: summary["changes"].get(k, 0) for k in ("added", "removed", "changed")}}
        print(f"roster_sync published {period}: {summary['roster_rows']:,} persons on the roster, "
              f"{summary['findings']} findings, alerts {summary['events'] or 'unchanged'}")
        return summary

    @task
    def plan_reports(published: dict, work_dir: str) -> list[list[str]]:
        """The jurisdictions of the month's reports, in batches built in parallel."""
        from include import settings
        from include.report.monthly import report_batches

        batches = report_batches(work_dir, settings.report_batches())
        print(f"roster_sync monthly reports {published['period']}: {sum(map(len, batches))} jurisdictions "
              f"in {len(batches)} batches")
        return batches

    @task(map_index_template="{{ report_batch }}")
    def monthly_report(jurisdictions: list[str], published: dict, work_dir: str) -> dict:
        """数据月报 of a batch of jurisdictions: quotas, vacancies, non-establishment, leader posts, findings trend."""
        from include.pipeline import airflow_glue as g
        from include.report.monthly import build

        get_current_context()["report_batch"] = (f"{jurisdictions[0]} +{len(jurisdictions) - 1}" if jurisdictions
                                                 else "none")
        reports = build(work_dir, g.sql_url("roster_db"), published["period"], g.data_root(), g.routing(),
                        only=jurisdictions)
        for region, r in reports.items():
            print(f"roster_sync monthly report {published['period']} {region} {r['name']}: {r['html']}")
        return {region: r["html"] for region, r in reports.items()}

    @task
    def collect_reports(parts: list[dict]) -> dict:
        """The batches' reports as one map, region -> HTML, for the digests' links."""
        return {region: html for part in parts for region, html in part.items()}

    @task
    def send_digests(reports: dict, published: dict, work_dir: str) -> dict:
        """One digest per staffing office: new, still open, resolved; each told once (recorded in roster_db)."""
        from include.alerts.digest import send_digests as run
        from include.alerts.mail import open_outbox
        from include.pipeline import airflow_glue as g

        period = published["period"]
        sent = run(g.sql_url("roster_db"), period, g.routing(), open_outbox(f"{g.data_root()}/outbox/digests/{period}"),
                   work_dir=work_dir, run_id=get_current_context()["run_id"], report_links=reports)
        for office, d in sent.items():
            print(f"roster_sync digest {period} to office {office}: {d['new']} new, {d['still_open']} still open, "
                  f"{d['resolved']} resolved ({d['channel']})")
        if not sent:
            print(f"roster_sync digests {period}: no office has anything new")
        return sent

    extracts = [extract_staffing(), extract_org(), extract_finance(), extract_hr()]
    period = resolve_period()
    extracts >> period
    std_dir = standardise(period)
    regions = reconcile_region.expand(region=plan_regions(std_dir))
    work_dir = audit(combine_regions(std_dir, regions))
    published = publish(work_dir, period)
    reports = monthly_report.partial(published=published, work_dir=work_dir).expand(
        jurisdictions=plan_reports(published, work_dir))
    send_digests(collect_reports(reports), published, work_dir)


roster_sync()
