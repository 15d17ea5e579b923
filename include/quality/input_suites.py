"""The input suites of standardise, run beside it in a process of their own (issue 17).

Standardise's own work (reading, screening, writing the model) and the input suites
(:func:`include.quality.gates.validate` on each source's rows as received and on the
standardised records) need nothing from each other until the verdict. So the suites run in a
worker process, one after another, on the other core, while standardise reads, screens and
writes the sources. The worker imports Great Expectations (1.7 s) as it starts, while
standardise reads its first file. Each suite is handed its rows as standardise has them:
a raw file's rows as soon as standardise has read them (:meth:`InputSuites.frame`), the
standardised records a part at a time as standardise writes them (:class:`SuiteParts`), through
an Arrow file in a scratch directory the worker memory-maps. The worker reads no file of the
lake itself: reading the raw files again cost it 3.5 s of CPU at 2M persons, taken from
standardise on a two-core machine.

The worker validates each suite's parts as the Arrow table they are: where the suite's expectations
allow, their metrics are computed as aggregates over it (:mod:`include.quality.aggregates`; at 2M
persons the records' suite took 1.1 s instead of 2.1 s, staffing persons' 1.2 s instead of 2.3 s, the
worker 6.5 s of CPU instead of 8.0-8.5 s), with the results, Data Docs and verdicts of a frame's.

The suites see exactly the rows they saw in standardise's process: a raw file as
received (staffing ``persons`` without its tombstones, ``ys_dw`` without the rows its
screening sets aside: :data:`ROWS`), with the columns its expectations name
(:func:`include.quality.gates.suite_columns`): the same verdicts, row counts and results.
(:meth:`InputSuites.file` still runs a suite on a file the worker reads itself.)

The suites' Data Docs pages are built together with the verdict, in one build
(:func:`include.quality.gates.inputs_verdict`). Built by the worker as it finished each suite, they
made the stage longer (at 1M persons 6.6-7.1 s against 6.3-6.7 s, four runs each, alternating): six
builds' own costs, on a worker that is the stage's tail at that size.

The worker speaks JSON lines over its stdin and stdout (``python -m
include.quality.input_suites``) and writes its own warnings to the task's log (stderr). It
lives as long as the process that started it (an Airflow task's) and is reused by the next
standardise of that process (a local run's second period, the tests): a standardise that
fails leaves it to finish the suites it was sent, and the next one reads their answers away
before sending its own, instead of paying Great Expectations' import again. A worker that
dies is started afresh.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

log = logging.getLogger("roster_sync.quality")

ROOT = Path(__file__).resolve().parents[2]


def _active_staffing(frame):
    from include.pipeline.standardise import active_persons

    return active_persons(frame)


def _usable_budget_units(frame):
    from include.pipeline.standardise import usable_rows

    return usable_rows("ys_dw", frame)[0]


# Which rows of a raw file a suite is given, when not all of them (the rows standardise uses as received).
ROWS = {"staffing_active": (_active_staffing, ("status",)), "ys_dw_usable": (_usable_budget_units, None)}


# How much lower the worker's scheduling priority is than the task's (``nice``). Its work is needed only
# at the verdict, and standardise's own threads are the stage's critical path: lowered, the worker takes
# the CPU they leave instead of sharing it with them. At 2M persons, the stage alone: 11.8-12.5 s against
# 12.5-13.1 s (five runs each, alternating). The DAG runs one night at a time (max_active_runs=1), so
# nothing else of it competes; on a machine shared with other heavy work, the verdict may come later.
NICENESS = 10

# The column that carries a part's row count when its suite reads no column's values (not a field of any source).
ROWS_CARRIER = "_rows"

# Columns of few values a suite is given as categories (the same values; GX's set and uniqueness
# checks factorize them once): the records' source, 4 values on 6.7M records at 2M persons, where
# the suite took 0.6 s longer on it as text.
CATEGORIES = {"standardised_records": ("source",)}


class InputSuites:
    """The input suites of one standardise: :meth:`file` for each suite to run, :meth:`verdict` at the end."""

    _worker: subprocess.Popen | None = None
    _unanswered = 0     # answers the worker owes to a run that failed before reading them

    def __init__(self, gx_root: str, out_dir: str, run_name: str):
        from include.settings import expectations_dir

        self.gx_root, self.out_dir, self.run_name = gx_root, out_dir, run_name
        self.expectations = str(expectations_dir())   # read here, at call time: the worker may be older
        self.sent: list[str] = []
        self.owed = 0   # answers sent for and not read yet
        self.worker = self._start()   # it starts importing Great Expectations now

    @classmethod
    def start(cls) -> None:
        """Start the worker now, if none is running, for the next standardise of this process to use: its
        Great Expectations import (1.2-1.6 s of CPU) goes on on the other core while the task imports
        standardise's own modules (pandas, pyarrow, the ``roster_db`` schema: about 0.45 s). The DAG's
        standardise task calls it first. At 1M persons the worker is the stage's tail: 6.0-6.3 s against
        6.4-6.7 s (four runs each, alternating); at 2M the same. A process that never standardises
        stops it as it exits."""
        cls._start()

    @classmethod
    def _start(cls) -> subprocess.Popen:
        if cls._unanswered and cls._worker is not None and cls._worker.poll() is None:
            try:   # a failed run's suites: their answers read away, the worker kept
                for _ in range(cls._unanswered):
                    if not cls._worker.stdout.readline():
                        break
            except (OSError, ValueError):
                pass
        cls._unanswered = 0
        if cls._worker is None or cls._worker.poll() is not None:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
            if cls._worker is None:
                atexit.register(cls.stop)
            cls._worker = subprocess.Popen([sys.executable, "-m", "include.quality.input_suites"], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, cwd=ROOT, env=env, text=True, bufsize=1)
        return cls._worker

    @classmethod
    def stop(cls) -> None:
        """Stop the worker, whatever it is doing."""
        if cls._worker is not None and cls._worker.poll() is None:
            cls._worker.kill()
            cls._worker.wait()
        cls._worker, cls._unanswered = None, 0

    def _send(self, job: dict) -> None:
        try:
            self.worker.stdin.write(json.dumps(job, ensure_ascii=False) + "\n")
            self.worker.stdin.flush()
        except (BrokenPipeError, ValueError):
            self._stopped()
        self.owed += 1

    def _answer(self) -> dict:
        line = self.worker.stdout.readline()
        if not line:
            self._stopped()
        self.owed -= 1
        return json.loads(line)

    def _stopped(self):
        """The worker is gone mid-run (killed, out of memory): this run's suites cannot be answered."""
        code = self.worker.poll()
        InputSuites.stop()
        raise RuntimeError(f"the input suites' worker stopped (exit code {code}) before answering; its error, if it "
                           "had time to write one, is in the log above")

    def file(self, suite: str, path: str, rows: str | None = None) -> None:
        """Run ``suite`` on the parquet file ``path`` (its rows of :data:`ROWS` ``rows``, or all) once the worker is free."""
        self._send({"suite": suite, "path": path, "rows": rows, "gx_root": self.gx_root, "out_dir": self.out_dir,
                    "run_name": self.run_name, "expectations": self.expectations})
        self.sent.append(suite)

    def frame(self, suite: str, frame) -> None:
        """Run ``suite`` on ``frame``, rows this process holds (a raw file's rows as received, :data:`ROWS`
        applied where the suite says): handed over as one part (:class:`SuiteParts`), the columns its
        expectations read, so the worker does not read the file again. The frame may change afterwards."""
        parts = SuiteParts.of(suite, frame, self.expectations)
        try:
            self.file_parts(parts)
        finally:
            parts.remove()   # unless the worker was sent them: it removes them

    def parts(self, suite: str, schema) -> "SuiteParts":
        """A frame for ``suite`` handed over in parts as it is made (:class:`SuiteParts`); :meth:`file_parts` runs it."""
        return SuiteParts(suite, schema, self.expectations)

    def file_parts(self, parts: "SuiteParts") -> None:
        """Run ``parts``' suite on every part handed over (all of them must be: the worker may start at once)."""
        self._send({"suite": parts.suite, "parts": parts.finish(), "scratch": parts.dir, "columns": parts.names,
                    "gx_root": self.gx_root, "out_dir": self.out_dir, "run_name": self.run_name,
                    "expectations": self.expectations})
        self.sent.append(parts.suite)
        parts.sent_to = self.worker

    def verdict(self) -> dict:
        """Wait for every suite sent; then :func:`include.quality.gates.inputs_verdict` (Data Docs built,
        :class:`include.quality.gates.QualityGateFailed` when a critical expectation failed)."""
        from include.quality.gates import GateResult, QualityGateFailed

        results = {}
        try:
            for _ in self.sent:
                answer = self._answer()
                if "error" in answer:
                    raise RuntimeError(f"input suite {answer['suite']} could not run: {answer['error']}")
                gate = GateResult(**answer["gate"])
                results[gate.suite] = gate
                (log.info if not gate.failures else log.warning)("%s (%.1fs%s)", gate.summary(), gate.seconds, gate.how())
            self._send({"verdict": {name: asdict(g) for name, g in results.items()}, "gx_root": self.gx_root})
            answer = self._answer()
        except BaseException:
            InputSuites.stop()
            raise
        if "failed" in answer:
            raise QualityGateFailed(answer["failed"])
        if "error" in answer:
            raise RuntimeError(f"the input suites' verdict could not be taken: {answer['error']}")
        log.info("input suites: Data Docs: %s", next(iter(answer["quality"].values()), {}).get("docs"))
        return answer["quality"]

    def cancel(self) -> None:
        """The run is failing: the worker finishes the suites it was sent (their results are still written
        to the quality directory, what an operator diagnoses from), and the next run reads their answers away."""
        if self.owed and self.worker is InputSuites._worker:
            InputSuites._unanswered += self.owed


class SuiteParts:
    """The rows of a file being written, handed to the worker a part at a time for ``suite``: the
    standardised records, a source at a time (and a raw file's rows, in one part:
    :meth:`InputSuites.frame`). Reading the finished file back took the worker 1.3 s at 2M persons
    (6.7M records), and it could only start once the last part was written (another 1.5-2 s): the
    suite was standardise's tail. Each part's Arrow table, the one written
    to the file, gives the columns the suite's values need (:func:`include.quality.gates.suite_columns`;
    the others become placeholders, as for a file) to an Arrow IPC file in a scratch directory of
    this machine (the worker is a process of this task, wherever the lake is), written uncompressed
    and memory-mapped by the worker: the same values the file gets, read at once. Once sent, the
    parts are the worker's: it removes them when it has read them (a run failing meanwhile does
    not pull them from under it); until then, or if the worker is gone, :meth:`remove` does."""

    def __init__(self, suite: str, schema, expectations_dir: str | None = None):
        from include.quality.gates import load_suite, suite_columns

        self.suite, self.names = suite, list(schema.names)
        valued, _ = suite_columns(load_suite(suite, expectations_dir)["expectations"], self.names)
        self.schema = schema   # its pandas metadata gives the worker the dtypes a read of the file gives
        self.columns = [c for c in self.names if c in valued]
        self.dir = tempfile.mkdtemp(prefix=f"roster-sync-{suite}-")
        self.paths: list[str] = []
        self.finished = False
        self.sent_to: subprocess.Popen | None = None   # the worker they were sent to

    @classmethod
    def of(cls, suite: str, frame, expectations_dir: str | None = None) -> "SuiteParts":
        """``frame`` (pandas) as the one part of ``suite``'s parts."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)   # strings: no copy
        parts = cls(suite, table.schema, expectations_dir)
        try:
            parts.add(table)
        except BaseException:
            parts.remove()
            raise
        return parts

    def add(self, table) -> None:
        """A part: ``table``, of ``schema``."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.finished:
            raise RuntimeError(f"{self.suite}: a part came after the suite was sent its parts")
        part = table.select(self.columns)
        if not self.columns:   # a suite that reads no column's values (only that they exist, how many rows):
            # a table of no columns has no rows once written, so a column no suite names carries them
            part = pa.table({ROWS_CARRIER: pa.array(np.zeros(table.num_rows, dtype=np.int8))})
        for name in CATEGORIES.get(self.suite, ()):   # as the file is read for the suite: a dictionary
            if name in self.columns:
                i = part.schema.get_field_index(name)
                part = part.set_column(i, name, pc.dictionary_encode(part.column(name)))
        path = f"{self.dir}/part-{len(self.paths):03d}.arrow"
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, part.schema) as writer:
            writer.write_table(part)
        self.paths.append(path)

    def finish(self) -> list[str]:
        """Every part's file (one empty part when none came: the suite still runs, on no rows)."""
        if not self.paths:
            self.add(self.schema.empty_table())
        self.finished = True
        return list(self.paths)

    def remove(self) -> None:
        """The scratch parts gone, unless a worker that is still there was sent them (it removes them)."""
        if self.sent_to is None or self.sent_to.poll() is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def read_parts(paths: list[str]):
    """The parts of :class:`SuiteParts` as one Arrow table (memory-mapped: read in place)."""
    import pyarrow as pa

    tables = []
    for path in paths:
        with pa.memory_map(path) as source:
            tables.append(pa.ipc.open_file(source).read_all())
    return pa.concat_tables(tables)


def read_parts_for_suite(paths: list[str], suite: str, columns: list[str], expectations_dir: str | None = None):
    """The frame ``suite`` is given for the parts of :class:`SuiteParts` (``columns``: the file's) when
    it is validated as a frame (:func:`include.quality.gates.validate` of the parts' table)."""
    from include.quality.gates import load_suite, suite_frame

    return suite_frame(load_suite(suite, expectations_dir)["expectations"], read_parts(paths).to_pandas(), columns=columns)


def read_for_suite(path: str, suite: str, rows: str | None = None, expectations_dir: str | None = None,
                   extra: list[dict] | None = None):
    """The frame ``suite`` is given for the file ``path``: the columns its expectations (and ``extra``,
    as :func:`include.quality.gates.validate` takes them) name (the others the file has, as
    placeholders of the same length), of the rows ``rows`` says."""
    import fsspec
    import pandas as pd
    import pyarrow.parquet as pq

    from include.quality.gates import load_suite, suite_columns, suite_frame

    keep, needs = ROWS.get(rows, (None, ()))
    expectations = load_suite(suite, expectations_dir)["expectations"] + list(extra or ())
    with fsspec.open(path, "rb") as fh:
        names = pq.read_schema(fh).names
        valued, _ = suite_columns(expectations, names)
        wanted = None if needs is None else [c for c in names if c in valued or c in needs]
        fh.seek(0)
        frame = pd.read_parquet(fh, columns=wanted, read_dictionary=[c for c in CATEGORIES.get(suite, ()) if c in names])
    if keep is not None:
        frame = keep(frame)
    return suite_frame(expectations, frame, columns=names)


def read_table_for_suite(path: str, suite: str, expectations_dir: str | None = None, extra: list[dict] | None = None):
    """``(table, columns)``: the Arrow table of the columns ``suite``'s expectations (and ``extra``) read
    of the file ``path``, and every column the file has: what :func:`include.quality.gates.validate`
    takes to compute the suite's metrics as aggregates (the others the suite names become placeholders,
    as for :func:`read_for_suite`)."""
    import fsspec
    import pyarrow.parquet as pq

    from include.quality.gates import load_suite, suite_columns

    expectations = load_suite(suite, expectations_dir)["expectations"] + list(extra or ())
    with fsspec.open(path, "rb") as fh:
        names = pq.read_schema(fh).names
        valued, _ = suite_columns(expectations, names)
        fh.seek(0)
        table = pq.read_table(fh, columns=[c for c in names if c in valued])
    return table, names


def serve() -> None:
    """The worker: one JSON job a line on stdin, one JSON answer a line on stdout."""
    try:   # below standardise's own threads (NICENESS)
        os.nice(NICENESS)
    except OSError:
        pass
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # each suite's line (a warning when one failed) is told by standardise when it reads the answer: here only errors
    logging.getLogger("roster_sync.quality").setLevel(logging.ERROR)
    out = sys.stdout
    sys.stdout = sys.stderr   # anything a library prints goes to the log, not into the answers
    from include.identifiers import redact
    from include.memory import release_unused
    from include.quality.gates import QualityGateFailed, import_gx, inputs_verdict, validate

    import_gx()   # now, while standardise reads the first file it hands over
    # What the imports made lives as long as the worker: kept out of the collections that let each
    # suite's frame go (release_unused), which otherwise went over all of it after every suite:
    # 1.1 s of the worker's CPU at 2M persons, taken from standardise on a two-core machine (frozen,
    # 0.8 s less CPU, 0.6 s off standardise; the worker's peak the same, 1.1-1.2 GB)
    gc.freeze()
    for line in sys.stdin:
        job = json.loads(line)
        try:
            if "verdict" in job:
                from include.quality.gates import GateResult

                results = {name: GateResult(**g) for name, g in job["verdict"].items()}
                try:
                    answer = {"quality": inputs_verdict(results, job["gx_root"])}
                except QualityGateFailed as exc:
                    answer = {"failed": str(exc)}
            else:
                columns = None
                if "parts" in job:   # an Arrow table: its metrics computed as aggregates where the suite allows
                    try:
                        frame, columns = read_parts(job["parts"]), job["columns"]
                    finally:   # the parts are this process's once sent (SuiteParts)
                        shutil.rmtree(job["scratch"], ignore_errors=True)
                else:
                    frame = read_for_suite(job["path"], job["suite"], job["rows"], job["expectations"])
                gate = validate(frame, job["suite"], job["gx_root"], out_dir=job["out_dir"], data_docs=False,
                                run_name=job["run_name"], expectations_dir=job["expectations"], columns=columns)
                answer = {"gate": asdict(gate)}
        except Exception as exc:   # noqa: BLE001 - told to standardise, which fails the run with it
            import traceback   # the trace to the task's log, any ID-shaped number in it masked

            logging.getLogger("roster_sync.quality").error("input suite %s failed: %s", job.get("suite", "verdict"),
                                                           redact(traceback.format_exc()))
            answer = {"suite": job.get("suite", "verdict"), "error": f"{type(exc).__name__}: {redact(str(exc))[:300]}"}
        frame = None
        release_unused()   # before the next frame is read
        out.write(json.dumps(answer, ensure_ascii=False, default=str) + "\n")
        out.flush()


if __name__ == "__main__":
    serve()
