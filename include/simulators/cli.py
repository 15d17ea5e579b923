"""``roster-sim``: run the four simulated offices on loopback.

    roster-sim serve   --data var/data              # foreground, Ctrl-C stops
    roster-sim start   --data var/data              # background; state in DATA/sim.json
    roster-sim advance --data var/data --period 2026-11
    roster-sim status  --data var/data
    roster-sim stop    --data var/data
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from include.simulators import finance
from include.simulators.base import Faults
from include.simulators.cluster import DEFAULT_PORTS, Simulators


def _faults(args) -> Faults:
    f = Faults()
    if args.faults:
        f = Faults.from_dict(json.loads(args.faults))
    if args.fault_rate is not None:
        f = Faults.all_on(rate=args.fault_rate, token_ttl=args.token_ttl or 600.0)
    return f


def _state_path(data: str) -> Path:
    return Path(data) / "sim.json"


def _write_state(data: str, state: dict) -> None:
    """``sim.json`` holds every source secret: readable and writable by its owner only (0600),
    from the moment it exists (written beside, then renamed into place)."""
    path = _state_path(data)
    tmp = path.with_name(f".sim.json.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(state, indent=1))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def serve(args) -> int:
    ports = {"staffing": args.staffing_port, "org": args.org_port, "hr": args.hr_port}
    sims = Simulators(args.data, args.period, _faults(args), host=args.host, ports=ports,
                      finance_url=args.finance_url).start()
    state = {"pid": os.getpid(), "period": sims.period, "finance_url": sims.finance_url,
             "urls": {n: sims.url(n) for n in sims.apps}, "connections": sims.connections()}
    _write_state(args.data, state)
    print(f"simulators serving period {sims.period} of {args.data}", flush=True)
    for name in sims.apps:
        print(f"  {name:9s} {sims.url(name)}", flush=True)
    print(f"  finance   {sims.finance_url}", flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))
    try:
        while not stop["now"]:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    sims.stop()
    _state_path(args.data).unlink(missing_ok=True)
    return 0


def start(args) -> int:
    argv = [sys.executable, "-m", "include.simulators.cli", "serve", "--data", args.data,
            "--staffing-port", str(args.staffing_port), "--org-port", str(args.org_port), "--hr-port", str(args.hr_port),
            "--host", args.host]
    for flag, value in (("--period", args.period), ("--faults", args.faults), ("--finance-url", args.finance_url),
                        ("--fault-rate", args.fault_rate), ("--token-ttl", args.token_ttl)):
        if value is not None:
            argv += [flag, str(value)]
    _state_path(args.data).unlink(missing_ok=True)
    log = open(Path(args.data) / "sim.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"roster-sim: the simulators exited (code {proc.returncode}); see {Path(args.data) / 'sim.log'}", file=sys.stderr)
            return 1
        if _state_path(args.data).exists():
            state = json.loads(_state_path(args.data).read_text())
            print(f"simulators started (pid {state['pid']}), period {state['period']}:")
            for name, url in state["urls"].items():
                print(f"  {name:9s} {url}")
            print(f"  finance   {state['finance_url']}")
            return 0
        time.sleep(0.2)
    proc.terminate()
    print("roster-sim: the simulators did not start within 120 s", file=sys.stderr)
    return 1


def _state(args) -> dict:
    path = _state_path(args.data)
    if not path.exists():
        raise SystemExit(f"roster-sim: no simulators running for {args.data} (no {path})")
    return json.loads(path.read_text())


def stop(args) -> int:
    state = _state(args)
    try:
        os.kill(state["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    for _ in range(100):
        if not _state_path(args.data).exists():
            break
        time.sleep(0.1)
    _state_path(args.data).unlink(missing_ok=True)
    print(f"simulators stopped (pid {state['pid']})")
    return 0


def advance(args) -> int:
    state = _state(args)
    finance.materialise(args.data, args.period, state["finance_url"])
    for name, url in state["urls"].items():
        r = requests.post(f"{url}/_sim/period", json={"period": args.period}, timeout=60)
        if r.status_code != 200:
            print(f"roster-sim: {name} refused period {args.period}: {r.text}", file=sys.stderr)
            return 1
    state["period"] = args.period
    _write_state(args.data, state)
    print(f"simulators now serve period {args.period}")
    return 0


def status(args) -> int:
    state = _state(args)
    for name, url in state["urls"].items():
        s = requests.get(f"{url}/_sim/status", timeout=10).json()
        print(f"{name:9s} {url} period {s['period']} counters {s['counters']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="roster-sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, fn in (("serve", serve), ("start", start), ("stop", stop), ("advance", advance), ("status", status)):
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        p.add_argument("--data", required=True, help="data directory written by roster-gen")
        if name in ("serve", "start", "advance"):
            p.add_argument("--period", required=(name == "advance"), default=None)
        if name in ("serve", "start"):
            p.add_argument("--faults", default=None, help='JSON, e.g. {"rate_429": 0.05, "token_ttl": 5}')
            p.add_argument("--fault-rate", type=float, default=None, help="every fault on at this rate")
            p.add_argument("--token-ttl", type=float, default=None)
            p.add_argument("--finance-url", default=None, help="SQLAlchemy URL (default: sqlite DATA/finance.db)")
            p.add_argument("--staffing-port", type=int, default=DEFAULT_PORTS["staffing"])
            p.add_argument("--org-port", type=int, default=DEFAULT_PORTS["org"])
            p.add_argument("--hr-port", type=int, default=DEFAULT_PORTS["hr"])
            p.add_argument("--host", default="127.0.0.1",
                           help="address to listen on (0.0.0.0 inside a container; default loopback)")
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"roster-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
