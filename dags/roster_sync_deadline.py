"""roster_sync_deadline: tell the engineers when the day's roster is not published in time.

Runs at the deadline (``ROSTER_SYNC_PUBLISH_DEADLINE``, cron, default ``0 12 * * *``) and
asks ``roster_db`` whether a roster was published for that day. If not (the run is
still going, failed, or never started), the engineers in the recipients configuration
get one mail saying so and which roster finance is reading meanwhile.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, get_current_context, task

from include.alerts.ops import deadline_schedule


def _task_failed(context) -> None:
    from include.alerts.ops import task_failed

    task_failed(context)


@dag(
    dag_id="roster_sync_deadline",
    schedule=deadline_schedule(),
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "roster-sync", "retries": 2, "retry_delay": dt.timedelta(minutes=1),
                  "on_failure_callback": _task_failed},
    tags=["roster-sync", "monitoring"],
    doc_md=__doc__,
)
def roster_sync_deadline():
    @task
    def check_published() -> dict:
        """Is there a publish in roster_db with as_of = this day? If not, mail the engineers."""
        from include.alerts.ops import check_published as check
        from include.pipeline import airflow_glue as g

        day = get_current_context()["logical_date"].date()
        result = check(g.sql_url("roster_db"), day, spool_dir=f"{g.data_root()}/outbox/ops")
        print(f"roster_sync_deadline {day}: {'published' if result['published'] else 'NOT published; engineers told'}")
        return {"published": result["published"], "told": result["told"]}

    check_published()


roster_sync_deadline()
