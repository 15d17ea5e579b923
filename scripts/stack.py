"""roster-sync's production stack on this machine, without Docker (include/localstack.py).

    python scripts/stack.py                      # PostgreSQL, Redis, Airflow with two Celery workers; Ctrl-C stops it
    python scripts/stack.py --sandbox 20000      # plus a generated province of 20,000 persons served by the simulators
    python scripts/stack.py --sandbox 20000 --trigger 2026-10-31   # and run roster_sync for that logical date

It runs what docker-compose.yml runs, with the compose file's own settings, on loopback:
the metadata and roster databases apart, Redis as the Celery broker, the api-server,
scheduler, dag-processor, triggerer and the workers, each logging to <home>/logs/. The
secrets are generated for the session and never printed. See docs/OPERATIONS.md §12.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.localstack import Stack, state_counts  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default=str(ROOT / "var" / "stack"), help="AIRFLOW_HOME, data root and logs (emptied first)")
    ap.add_argument("--port", type=int, default=8080, help="the api-server's port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    ap.add_argument("--sandbox", type=int, metavar="PERSONS",
                    help="generate a province of PERSONS persons and serve it with the four simulators")
    ap.add_argument("--cities", type=int, default=3, help="the sandbox province's cities (default 3)")
    ap.add_argument("--trigger", metavar="YYYY-MM-DD", help="trigger roster_sync for this logical date and follow it")
    args = ap.parse_args(argv)
    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        settings = {}
        if args.sandbox:
            from include import periods as P
            from include.generator.generate import generate
            from include.generator.world import WorldParams
            from include.simulators.cluster import Simulators

            data = home / "sandbox"
            print(f"== generating a province of {args.sandbox:,} persons in {args.cities} cities", flush=True)
            generate(WorldParams(persons=args.sandbox, periods=1, cities=args.cities), data,
                     progress=lambda m: print("   " + m, flush=True))
            sims = stack.enter_context(Simulators(data, ports={"staffing": 0, "org": 0, "hr": 0},
                                                  finance_url=f"sqlite:///{(home / 'finance.db').resolve()}"))
            settings.update(sims.env())
            print(f"== simulators on loopback; their period is {sims.period}; logical date "
                  f"{P.last_day(sims.period)} reconciles it", flush=True)
        s = Stack(home, workers=tuple(f"worker-{chr(97 + i)}" for i in range(args.workers)), api_port=args.port,
                  settings=settings, schedule=not args.sandbox)
        print("== starting the stack", flush=True)
        s.start(progress=lambda m: print("   " + m, flush=True))
        stack.callback(s.stop, progress=lambda m: print("== " + m, flush=True))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        if args.trigger:
            api = s.api()
            api.wait_for_dag("roster_sync")
            run = api.trigger("roster_sync", args.trigger)
            print(f"== triggered {run['dag_run_id']}: {s.api_url}/dags/roster_sync/runs/{run['dag_run_id']}", flush=True)
            seen = []

            def progress(dag_run, task_instances):
                line = state_counts(dag_run, task_instances)
                if line not in seen[-1:]:
                    seen.append(line)
                    print("   " + line, flush=True)

            end = api.wait_for_run("roster_sync", run["dag_run_id"], timeout=3600, progress=progress)
            print(f"== roster_sync {args.trigger}: {end['state']}", flush=True)
        print(f"== Airflow at {s.api_url}/ (admin / {s.admin_password}); Ctrl-C stops the stack", flush=True)
        try:
            while all(p.alive() for p in s.processes.values()):
                time.sleep(1)
            print("== a process exited: " + ", ".join(n for n, p in s.processes.items() if not p.alive()))
            return 1
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
