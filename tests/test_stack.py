"""Production for real (issue 18): a province through Celery workers, one of them killed halfway.

The local stack (include/localstack.py) runs what docker-compose.yml runs: PostgreSQL with
the metadata and roster databases apart, Redis, the api-server, scheduler, dag-processor,
triggerer and two Celery workers. roster_sync is triggered through Airflow's REST API for a
generated province of three cities, split by city. The first region task to finish its
work holds before returning (a ``sitecustomize`` put on the workers' path by this test only:
it makes the moment deterministic, it does not change the work), and its worker is killed
with SIGKILL, its whole process tree with it. Airflow must notice the task's missing
heartbeat, retry it on the other worker, and the run must publish exactly what an
uninterrupted single-process run of the same logical date publishes.

The run's grid and the killed task's log are photographed in Chromium
(var/screenshots/stack/) to be looked at.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import sqlalchemy as sa

from include.generator.world import WorldParams
from include.localstack import Stack, process_tree, state_counts
from include.pipeline.local import run_local
from include.simulators.cluster import Simulators
from tests.pages import airflow_login
from tests.worlds import generated

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "var" / "screenshots" / "stack"
D1, P1 = "2026-10-31", "2026-10"
PROVINCE = WorldParams(persons=9000, periods=1, findings_per_code=2, seed=23, cities=3, jurisdictions=7)
WORKERS = ("worker-a", "worker-b")

# Loaded first by every Python process of a worker (PYTHONPATH): the first region with
# persons that a worker reconciles writes its outputs, says so, and holds until killed.
HOLD = '''
import json, os, time
import include.pipeline.reconcile as reconcile

_real = reconcile.reconcile_part


def _held(std, out, part, *args, **kwargs):
    result = _real(std, out, part, *args, **kwargs)
    if part.isdigit():
        try:
            fd = os.open(os.path.join(os.environ["HOLD_DIR"], "held.json"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return result
        os.write(fd, json.dumps({"part": part, "pid": os.getpid(),
                                 "worker": os.environ["ROSTER_SYNC_WORKER_NAME"]}).encode())
        os.close(fd)
        time.sleep(900)
    return result


reconcile.reconcile_part = _held
'''

# What is compared: every table a reader of the period sees, less when and by which run.
TABLES = ("roster", "reconciliation_finding", "alert_evidence", "roster_change", "quarantine", "reconciliation_alert")
VOLATILE = {"id", "at", "updated_at", "published_at", "generated_at", "disposition_at", "run_id"}


def published(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as c:
        for table in TABLES:
            df = pd.read_sql(sa.text(f"SELECT * FROM {table}"), c)
            df = df.drop(columns=[x for x in df.columns if x in VOLATILE])
            df = df[sorted(df.columns)].astype(str)
            out[table] = df.sort_values(list(df.columns), ignore_index=True)
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    return generated(tmp_path_factory, "stack-province", PROVINCE)


@pytest.fixture(scope="module")
def celery_run(province, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    hold = tmp / "hold"
    hold.mkdir()
    (hold / "sitecustomize.py").write_text(HOLD)
    worker_env = {w: {"PYTHONPATH": f"{hold}{os.pathsep}{ROOT}", "HOLD_DIR": str(hold)} for w in WORKERS}
    settings = {
        "ROSTER_SYNC_REGION_LEVEL": "city",                       # compose's level: regions spread over workers
        # a lost worker is noticed in seconds, not the default five minutes
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # a message the dead worker had reserved but not started (Celery hands a worker's pool
        # the next task early) is queued again after a minute, not ten
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
    }
    log = []
    with Simulators(province, ports={"staffing": 0, "org": 0, "hr": 0},
                    finance_url=f"sqlite:///{tmp / 'finance.db'}") as sims:
        stack = Stack(tmp / "home", workers=WORKERS, settings={**sims.env(), **settings}, worker_env=worker_env,
                      schedule=False)
        stack.start(progress=log.append)
        try:
            api = stack.api()
            api.wait_for_dag("roster_sync")
            run = api.trigger("roster_sync", D1, run_id="stack_kill")
            deadline = time.monotonic() + 420
            while not (hold / "held.json").exists():
                assert time.monotonic() < deadline, f"no region task held; logs in {stack.logs}"
                time.sleep(0.5)
            time.sleep(0.5)
            held = json.loads((hold / "held.json").read_text())
            running = {ti["map_index"]: ti for ti in api.task_instances("roster_sync", run["dag_run_id"])
                       if ti["task_id"] == "reconcile_region"}
            killed = stack.kill(held["worker"])
            end = api.wait_for_run("roster_sync", run["dag_run_id"], timeout=600,
                                   progress=lambda r, tis: log.append(state_counts(r, tis)))
            regions = [ti for ti in api.task_instances("roster_sync", run["dag_run_id"])
                       if ti["task_id"] == "reconcile_region"]
            tries = {ti["rendered_map_index"]: api.tries("roster_sync", run["dag_run_id"], "reconcile_region",
                                                          ti["map_index"]) for ti in regions}
            result = {"run": run, "end": end, "held": held, "running": running, "killed": killed, "tries": tries,
                      "stack": stack, "log": log, "alive_after_kill": [p for p in killed if psutil.pid_exists(p)]}
            # the uninterrupted single-process run of the same logical date, from the same servers
            single_url = stack.postgres.create_database("roster_single")
            run_local(sims.connections(), sims.finance_url, single_url, str(tmp / "single-lake"), D1)
            result["single_url"] = single_url
            yield result
        finally:
            family = _everything_started(stack)
            stack.stop(progress=log.append)
        left = [p.pid for p in family if _running(p)]
        assert not left, f"still running after the stack stopped: {left}"


def _everything_started(stack) -> list[psutil.Process]:
    """Every process of the stack and their descendants: Airflow's, Redis, PostgreSQL's postmaster."""
    roots = [p.proc.pid for p in stack.processes.values() if p.proc] + [stack.redis.proc.pid]
    postmaster = Path(stack.postgres.data) / "postmaster.pid"
    if postmaster.exists():
        roots.append(int(postmaster.read_text().split()[0]))
    return [proc for pid in roots for proc in process_tree(pid)]


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_run_succeeds_through_celery_with_regions_on_both_workers(celery_run):
    assert celery_run["end"]["state"] == "success", "\n".join(celery_run["log"][-30:])
    hosts = {t["hostname"] for ts in celery_run["tries"].values() for t in ts}
    assert hosts == set(WORKERS), f"regions ran on {hosts}"
    assert len(celery_run["tries"]) >= 4, "the province, its three cities (and persons with no home region)"


def test_the_killed_workers_region_is_retried_on_the_other_worker(celery_run):
    held = celery_run["held"]
    map_index = celery_run["tries"][held["part"]][0]["map_index"]
    assert celery_run["running"][map_index]["state"] == "running", "killed in the middle of its region task"
    assert held["pid"] in celery_run["killed"] and not celery_run["alive_after_kill"], "the worker's whole tree died"
    tries = sorted(celery_run["tries"][held["part"]], key=lambda t: t["try_number"])
    other = next(w for w in WORKERS if w != held["worker"])
    assert [(t["try_number"], t["hostname"], t["state"]) for t in tries] == [
        (1, held["worker"], "failed"), (2, other, "success")], tries


def test_the_published_period_equals_an_uninterrupted_single_process_run(celery_run):
    through_celery = published(celery_run["stack"].roster_url())
    single = published(celery_run["single_url"])
    assert len(through_celery["roster"]) > 8000 and len(through_celery["reconciliation_finding"]) > 20
    for table in TABLES:
        pd.testing.assert_frame_equal(through_celery[table], single[table], obj=table)


def test_the_operator_sees_the_run_and_the_killed_try_in_the_ui(celery_run, browser):
    """The grid of the run and the retried region's log, in Chromium, as an operator opens them."""
    stack, run_id, part = celery_run["stack"], celery_run["run"]["dag_run_id"], celery_run["held"]["part"]
    if stack.processes["api-server"].proc.poll() is not None:
        pytest.fail("the api-server is down")
    SHOTS.mkdir(parents=True, exist_ok=True)
    map_index = next(t["map_index"] for t in celery_run["tries"][part])
    base = stack.api_url
    page = airflow_login(browser, f"{base}/", "admin", stack.admin_password, viewport={"width": 1500, "height": 950})
    page.goto(f"{base}/dags/roster_sync/runs/{run_id}")
    page.get_by_text("reconcile_region", exact=False).first.wait_for(timeout=30_000)
    page.get_by_text("Success").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "1_grid.png"))
    page.goto(f"{base}/dags/roster_sync/runs/{run_id}/tasks/reconcile_region/mapped/{map_index}")
    page.get_by_text(f"reconciled partition {part}").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "2_retried_region_log.png"))
    page.context.close()
