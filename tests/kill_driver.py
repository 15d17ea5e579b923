"""Run one logical date of the pipeline and kill the process (SIGKILL) at a chosen stage.

    python tests/kill_driver.py WORLD PERIOD LAKE ROSTER_URL DS STAGE

STAGE is where the process dies, as ``kill -9`` would kill it, with no chance to clean up:
``extract`` (the staffing extract has written some pages, no manifest), ``reconcile`` (one
region reconciled, the others not), ``publish`` (exports staged, roster rows written inside
the open transaction, alerts not yet), ``digests`` (a digest sent, not yet recorded), or
``none`` (run to the end). Used by tests/test_worst_days.py (forked, as :func:`run`).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(stage: str) -> None:
    if stage == "extract":
        from include.pipeline import store
        write, calls = store.StreamingParquet.write_table, {"n": 0}

        def write_then_die(self, table):
            write(self, table)
            calls["n"] += 1
            if calls["n"] == 3:
                die()
        store.StreamingParquet.write_table = write_then_die
    elif stage == "reconcile":
        from include.pipeline import reconcile
        part = reconcile.reconcile_part

        def one_then_die(*a, **k):
            part(*a, **k)
            die()
        reconcile.reconcile_part = one_then_die
    elif stage == "publish":
        from include.pipeline import publish
        publish._apply_alerts = lambda *a, **k: die()
    elif stage == "digests":
        from include.alerts import mail
        send = mail.FileOutbox.send

        def send_then_die(self, msg, name):
            send(self, msg, name)
            die()
        mail.FileOutbox.send = send_then_die
    elif stage != "none":
        raise SystemExit(f"unknown stage {stage}")


def run(world, period, lake, roster_url, ds, stage) -> None:
    """The run, in this process: dies at ``stage`` (a forked child of the tests, or ``__main__``)."""
    import logging
    logging.disable(logging.INFO)
    from include.pipeline.local import run_local
    from include.simulators.cluster import Simulators

    arm(stage)
    finance = f"sqlite:///{Path(lake).parent / f'finance-{ds}-{stage}.db'}"
    with Simulators(world, period=period, ports={"staffing": 0, "org": 0, "hr": 0}, finance_url=finance) as sims:
        run_local(sims.connections(), sims.finance_url, roster_url, lake, ds, full_resync_days=60)
    print("finished")


if __name__ == "__main__":
    run(*sys.argv[1:])
