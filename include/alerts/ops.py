"""Mail for the data engineers who run roster_sync: a task that failed, a roster that is late.

* :func:`task_failed` is the DAG's ``on_failure_callback``: when a task fails for good
  (retries spent, or a failure that is not retried), the engineers get the DAG, the task,
  the period, the error in one line and the link to the log.
* :func:`check_published` is the task of the DAG ``roster_sync_deadline``, scheduled at
  the deadline (``ROSTER_SYNC_PUBLISH_DEADLINE``, a cron expression, default
  ``0 12 * * *``: six hours after roster_sync's 06:00 run): when ``roster_db`` has no
  publish for that day, whether the run is still going, failed or never started, the
  engineers are told what the latest published roster is.

  Why not Airflow's own ``DeadlineAlert``: in Airflow 3.3.2 a DAG that declares one
  cannot be run with ``airflow dags test`` (``dag.test()`` keeps the alert as a dict
  where the scheduler code expects its id: "'dict' object has no attribute 'hex'" once
  every task has succeeded), and OUTPUTS.md promises that ``airflow dags test roster_sync``
  performs a sync. Asking ``roster_db`` also answers the question finance has ("is
  today's roster there?") rather than whether a DAG run ended.

Recipients are ``engineers`` of the routing configuration (:mod:`include.alerts.routing`).
Mail goes through ``alerts_smtp`` when configured, else to ``<data root>/outbox/ops/``.
Nothing here may raise: an alert about a failure must not hide the failure; if sending
fails, the summary is logged instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import logging
import os

# Only the standard library at import: the DAG file imports this module to read the deadline.
log = logging.getLogger("roster_sync.ops")
DEADLINE_ENV = "ROSTER_SYNC_PUBLISH_DEADLINE"


def deadline_schedule() -> str:
    """When the day's roster must be published by: ``ROSTER_SYNC_PUBLISH_DEADLINE`` (cron), default noon."""
    raw = os.environ.get(DEADLINE_ENV, "0 12 * * *").strip()
    if len(raw.split()) != 5:
        raise ValueError(f"{DEADLINE_ENV}={raw!r} is not a cron expression of five fields (e.g. '0 12 * * *')")
    return raw


def one_line(exc: BaseException | str | None, limit: int = 300) -> str:
    """The error in one line, ID numbers masked, at most ``limit`` characters."""
    if exc is None:
        return "(no exception recorded)"
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    first = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    from include.identifiers import redact

    first = redact(first)
    return first if len(first) <= limit else first[: limit - 1] + "…"


def notify_engineers(subject: str, lines: list[tuple[str, str]], key: str, spool_dir: str | None = None,
                     routes=None) -> str | None:
    """Mail ``lines`` (label, value) to the engineers; returns where it went, or None if it was only logged."""
    from include.alerts import mail, routing
    from include.identifiers import redact

    summary = "; ".join(f"{k}: {v}" for k, v in lines)
    try:
        routes = routes or routing.load()
        if not routes.engineers:
            log.error("%s (%s) — no engineers configured to mail", subject, redact(summary))
            return None
        from include.pipeline import store

        outbox = mail.open_outbox(spool_dir or f"{store.data_root()}/outbox/ops")
        text = "\n".join(f"{k}: {v}" for k, v in lines)
        body = ("<html><body><table cellpadding='4'>" + "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in lines)
                + "</table></body></html>")
        msg = mail.build(subject, text, body, routes.engineers,
                         message_id=f"ops-{hashlib.sha256(key.encode()).hexdigest()[:24]}")
        try:
            where = outbox.send(msg, f"ops_{hashlib.sha256(key.encode()).hexdigest()[:16]}")
        finally:
            outbox.close()
        log.info("told the engineers: %s (%s)", subject, where)
        return where
    except Exception as exc:  # never let the alert hide the failure it reports
        log.error("could not mail the engineers (%s); the alert was: %s — %s", one_line(exc), subject, redact(summary))
        return None


def task_failed(context) -> None:
    """``on_failure_callback``: one short mail per task that failed for good."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", None) or str(context.get("run_id", "?"))
    logical = context.get("logical_date")
    period = (context.get("params") or {}).get("period")
    if not period:
        try:
            period = ti.xcom_pull(task_ids="resolve_period")
        except Exception:
            period = None
    try:
        log_url = ti.log_url
    except Exception:
        log_url = "(not available)"
    lines = [("DAG", str(dag_id)), ("task", str(task_id)), ("run", str(run_id)),
             ("logical date", f"{logical:%Y-%m-%d}" if logical else "?"),
             ("period", period or "(not resolved yet)"), ("try", str(getattr(ti, "try_number", "?"))),
             ("error", one_line(context.get("exception"))), ("log", str(log_url))]
    notify_engineers(f"[roster-sync] FAILED {dag_id}.{task_id} ({period or (f'{logical:%Y-%m-%d}' if logical else run_id)})",
                     lines, key=f"failed|{dag_id}|{run_id}|{task_id}|{getattr(ti, 'try_number', '')}")


def check_published(roster_url, day: dt.date, deadline: str | None = None, spool_dir: str | None = None) -> dict:
    """Whether ``roster_db`` has a publish with ``as_of`` = ``day``; if not, tell the engineers.

    Returns ``{"published": bool, "latest": {...} | None, "told": where the alert went}``."""
    import sqlalchemy as sa

    from include.pipeline.publish import metadata, publish_log

    engine = sa.create_engine(roster_url, hide_parameters=True)
    try:
        metadata.create_all(engine, tables=[publish_log])
        with engine.connect() as conn:
            today = conn.execute(sa.select(publish_log).where(publish_log.c.as_of == day)
                                 .order_by(publish_log.c.published_at.desc()).limit(1)).mappings().first()
            latest = conn.execute(sa.select(publish_log).order_by(publish_log.c.published_at.desc()).limit(1)).mappings().first()
    finally:
        engine.dispose()
    if today:
        log.info("roster of %s published at %s (period %s, %s persons): on time", day, today["published_at"],
                 today["period"], f"{today['roster_rows']:,}")
        return {"published": True, "latest": dict(today), "told": None}
    last = (f"period {latest['period']} as of {latest['as_of']}, published {latest['published_at']:%Y-%m-%d %H:%M} UTC"
            if latest else "nothing has ever been published")
    lines = [("DAG", "roster_sync"), ("logical date", str(day)), ("deadline", deadline or deadline_schedule()),
             ("published today", "no"), ("latest roster", last),
             ("what", "finance reads the latest roster above until today's is published; look at today's roster_sync run")]
    told = notify_engineers(f"[roster-sync] LATE: the roster of {day} is not published", lines,
                            key=f"deadline|{day}", spool_dir=spool_dir)
    return {"published": False, "latest": dict(latest) if latest else None, "told": told}
