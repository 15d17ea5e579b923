"""Quality gates: the JSON suites of ``expectations/`` run with Great Expectations 1.x.

The GX Airflow provider cannot be installed beside Airflow 3.3 (it pins structlog<25.5,
Airflow needs >=26.1), so GX runs directly here, inside tasks, never at import time
(importing GX takes seconds).

Each expectation carries a ``severity`` in its ``meta`` (``critical`` or ``warning``):
configuration, overridable per run. A failed critical expectation stops the run before
publish with a short human summary; a failed warning is reported and the run goes on.

Every run's results are kept in a file-backed GX context under
``<data root>/quality/gx`` (so the Data Docs show the history of runs) and summarised
in ``<work dir>/quality/<suite>.json``. Results are kept at the SUMMARY level with no
unexpected values listed, so neither the stored results nor the Data Docs ever show an
ID number.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from include.pipeline.errors import NotRetryable
from include.quality.datadocs import localise

log = logging.getLogger("roster_sync.quality")

SEVERITIES = ("critical", "warning")
# BASIC, no partial lists (never an ID number in a stored result): what a SUMMARY with no partial
# lists stores, the same counts and percentages, without the two metrics SUMMARY computes for
# every column map expectation and, with no partial lists, throws away (the unexpected rows'
# index list and index query: each takes the domain's rows of the whole frame). At 2M persons,
# in standardise's worker: the records suite (6.7M rows) 1.9-2.0 s against 3.1-3.3 s, staffing
# persons' 3.2-3.5 s against 4.8 s. tests/test_quality.py compares the stored results of every suite.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


class QualityGateFailed(RuntimeError, NotRetryable):
    """A critical expectation failed: the data must not be published."""


@dataclass
class GateResult:
    suite: str
    rows: int
    success: bool                       # no critical expectation failed
    failures: list[dict] = field(default_factory=list)
    evaluated: int = 0
    seconds: float = 0.0
    docs: str | None = None               # the Data Docs site (its index)
    page: str | None = None               # this validation's own page in it
    results_path: str | None = None
    result_id: list[str] | None = None    # its results in the GX store (a ValidationResultIdentifier's tuple)
    as_frame: str | None = None           # why its metrics were resolved over a pandas frame, not as aggregates

    def how(self) -> str:
        """How the metrics were computed, for the log line: nothing to say when as aggregates."""
        return f"; validated as a pandas frame, slower on large tables: {self.as_frame}" if self.as_frame else ""

    def summary(self) -> str:
        if not self.failures:
            return f"{self.suite}: all {self.evaluated} expectations met on {self.rows:,} rows"
        parts = [f"{f['severity']} {f['expectation']}({f.get('column') or 'table'})"
                 + (f": {f['unexpected_count']:,} unexpected rows" if f.get("unexpected_count") is not None else "")
                 for f in self.failures]
        return f"{self.suite}: {len(self.failures)} of {self.evaluated} expectations failed on {self.rows:,} rows: " + "; ".join(parts)


def load_suite(name: str, expectations_dir: Path | None = None) -> dict:
    """The suite ``name`` from ``expectations_dir`` (default: the setting
    :func:`include.settings.expectations_dir`)."""
    from include.settings import expectations_dir as configured

    path = Path(expectations_dir or configured()) / f"{name}.json"
    suite = json.loads(path.read_text())
    for e in suite["expectations"]:
        severity = e.get("meta", {}).get("severity")
        if severity not in SEVERITIES:
            raise ValueError(f"{path}: {e['type']} has severity {severity!r}; use one of {SEVERITIES}")
    return suite


def _key(e: dict) -> str:
    return f"{e['type']}:{e['kwargs'].get('column', '')}"


def gx_root(data_root: str) -> str:
    """Where the GX context (suites, results, Data Docs) lives under the data root."""
    return os.path.join(data_root, "quality", "gx")


# Modules Great Expectations imports with itself for expectations no suite here uses (the KL
# divergence's SciPy statistics and Altair charts, the KS tests' SciPy): 1.9 of its 7.4 s of import
# on this machine, paid by every task that validates. They are entered as modules loaded on first use.
DEFERRED_MODULES = ("scipy.stats", "altair")


class _LoadedOnFirstUse(types.ModuleType):
    """A module that stands in for ``__name__`` until an attribute of it is read (the module
    itself, loaded then; its contents copied here for the names bound to this one)."""

    def __getattr__(self, attr):   # only for attributes not set here: all but the name and spec
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        module = importlib.import_module(name)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


def import_gx():
    """``great_expectations``, imported with :data:`DEFERRED_MODULES` loaded only when first used."""
    if "great_expectations" not in sys.modules:
        for name in DEFERRED_MODULES:
            if name not in sys.modules:
                spec = importlib.util.find_spec(name)
                if spec is not None:
                    stand_in = _LoadedOnFirstUse(name)
                    stand_in.__spec__ = spec
                    sys.modules[name] = stand_in
    import great_expectations

    return great_expectations


_CONTEXTS: dict = {}


def _context(gx_root: str):
    """The file-backed GX context of ``gx_root``, made once per process (making one reads a
    dozen YAML files: a third of a small run's validation time)."""
    key = os.path.abspath(gx_root)
    if key in _CONTEXTS and os.path.isdir(key):
        return _CONTEXTS[key]
    gx = import_gx()

    os.makedirs(gx_root, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=gx_root)
    if ctx.variables.config_variables_file_path:
        # GX reads its config variables file (YAML) again at every read of a setting: 282 times in
        # standardise's input suites at 1M persons, 0.37 s of the worker. The project sets none (GX's
        # file holds only its analytics instance id, kept in memory without it; settings still take
        # environment variables), so the project is saved without the file, once, and made again.
        ctx.variables.config_variables_file_path = None
        ctx.variables.save()
        ctx = gx.get_context(mode="file", project_root_dir=gx_root)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    # GX fingerprints every frame under 1 GB (hash_pandas_object of every value, then md5) for the
    # batch's markers, which nothing here reads: at 1M persons a quarter of the input suites' time.
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    # the index lists the newest validations only (include.settings.data_docs_index_limit): building it
    # reads back every validation it lists, and the store keeps every night's
    from include.settings import data_docs_index_limit

    sites = ctx.variables.data_docs_sites or {}   # (a copy: set back below, for this process, not saved)
    for site in sites.values():
        site.setdefault("site_index_builder", {"class_name": "DefaultSiteIndexBuilder"})["validation_results_limit"] = \
            data_docs_index_limit()
    ctx.variables.data_docs_sites = sites
    if len(_CONTEXTS) > 16:
        _CONTEXTS.clear()
    _CONTEXTS[key] = ctx
    return ctx


# Expectations that read the table as a whole, not named columns: a frame given to such a suite
# is validated with every column. Any other suite sees only the columns its expectations name.
WHOLE_TABLE = {"expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
               "expect_table_column_count_to_equal", "expect_table_column_count_to_be_between"}


def suite_columns(expectations: list[dict], columns) -> tuple[set[str], set[str]]:
    """Of ``columns``, those whose values ``expectations`` read, and those they only need to exist
    (named only by ``expect_column_to_exist``). A suite with an expectation on the table's columns
    as a whole (:data:`WHOLE_TABLE`) reads every column's values."""
    valued: set[str] = set()
    present: set[str] = set()
    for e in expectations:
        if e["type"] in WHOLE_TABLE:
            return set(columns), set()
        kw = e["kwargs"]
        named = {c for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B")) if c} | set(kw.get("column_list") or ())
        (present if e["type"] == "expect_column_to_exist" else valued).update(named)
    return valued & set(columns), (present - valued) & set(columns)


def suite_frame(expectations: list[dict], df: pd.DataFrame, columns=None) -> pd.DataFrame:
    """The frame Great Expectations is given for ``expectations``: ``df`` with only the columns they name
    (``column``, ``column_list``, ``column_A``/``column_B``), and a column named only by
    ``expect_column_to_exist`` as a placeholder of the same name and length (its values decide nothing).

    GX's pandas engine takes the rows of the whole frame for every column map metric (the
    domain's rows), so a column that no value expectation reads costs time and decides
    nothing: at 1M persons it was most of the input suites' time. Exact: every named column
    is present or missing as in ``df``, the values of every column a value expectation reads
    are ``df``'s, the row count is the same. A suite with an expectation on the table's
    columns as a whole (:data:`WHOLE_TABLE`) gets ``df`` itself.

    ``columns``: the columns the data has, when ``df`` was read with only those the suite's values
    need (:func:`suite_columns`; the others become placeholders all the same). Default ``df``'s."""
    if any(e["type"] in WHOLE_TABLE for e in expectations):
        return df
    columns = list(df.columns if columns is None else columns)
    valued, present = suite_columns(expectations, columns)
    placeholder = np.zeros(len(df), dtype=bool)
    return pd.DataFrame({c: (df[c] if c in valued else placeholder) for c in columns if c in valued | present},
                        index=df.index)


def validate(df, suite_name: str, gx_root: str, out_dir: str | None = None,
             severity: dict[str, str] | None = None, expectations_dir: Path | None = None,
             data_docs: bool = True, extra: list[dict] | None = None, run_name: str | None = None,
             columns: list[str] | None = None) -> GateResult:
    """Run a suite on a frame. ``severity`` overrides per ``"<expectation type>:<column>"``;
    ``extra`` adds expectations whose values are only known at run time.

    ``df``: a pandas frame, or an Arrow table. A table's metrics are computed as aggregates over it
    (:mod:`include.quality.aggregates`) when the suite's expectations allow, GX deciding from them as
    from a frame's; else it is validated as a frame. ``columns``: the columns the data has, when ``df``
    holds only those the suite's values need (:func:`suite_frame`)."""
    gx = import_gx()

    t0 = time.perf_counter()
    spec = load_suite(suite_name, expectations_dir)
    spec["expectations"] += extra or []
    overrides = severity or {}
    for e in spec["expectations"]:
        if _key(e) in overrides:
            e.setdefault("meta", {})["severity"] = overrides[_key(e)]
    ctx = _context(gx_root)
    suite = gx.ExpectationSuite(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta", {}))
    try:
        source = ctx.data_sources.get("roster_sync")
    except (KeyError, ValueError):
        source = ctx.data_sources.add_pandas("roster_sync")
    try:
        asset = source.get_asset(suite_name)
    except (LookupError, ValueError):
        asset = source.add_dataframe_asset(suite_name)
    try:
        batch = asset.get_batch_definition("whole")
    except (KeyError, ValueError):
        batch = asset.add_batch_definition_whole_dataframe("whole")
    # The checkpoint stored adds or updates its validation definition, which adds or updates the suite
    # (GX's factories): each stored once. Stored one by one as well, the suite was written 3 times and
    # the definition twice (0.15 s of the input suites' worker CPU, 6 suites).
    vd = gx.ValidationDefinition(name=f"{suite_name}_gate", data=batch, suite=suite)
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if data_docs else []
    checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(name=f"{suite_name}_checkpoint", validation_definitions=[vd],
                                                             actions=actions, result_format=RESULT_FORMAT))
    from great_expectations.core.run_identifier import RunIdentifier

    computed, as_frame = contextlib.nullcontext(), None
    if isinstance(df, pd.DataFrame):
        frame, rows = suite_frame(spec["expectations"], df, columns=columns), len(df)
        as_frame = "given as one"
    else:   # an Arrow table
        from include.quality import aggregates

        rows = df.num_rows
        why = aggregates.unsupported(spec["expectations"], df.schema, RESULT_FORMAT)
        if why is None:   # GX is given the frame's columns, with no rows, and the table's metrics
            frame = suite_frame(spec["expectations"], df.slice(0, 0).to_pandas(), columns=columns)
            computed = aggregates.computing(df, list(frame.columns))
        else:
            as_frame = why
            frame = suite_frame(spec["expectations"], df.to_pandas(), columns=columns)
    with computed as metrics:
        run = checkpoint.run(batch_parameters={"dataframe": frame},
                             run_id=RunIdentifier(run_name=run_name) if run_name else None)
    if metrics is not None:
        aggregates.check_taken(metrics, spec["expectations"], suite_name)
    frame = None
    result_id, result = next(iter(run.run_results.items()))
    # GX keeps each batch's frame loaded in the data source's engine until another replaces it: one
    # frame per suite, all of them held by a process that validates several (the input suites' worker)
    manager = source.get_execution_engine().batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        failures.append({"expectation": cfg.type, "column": cfg.kwargs.get("column"),
                         "severity": (cfg.meta or {}).get("severity", "critical"),
                         "unexpected_count": r.result.get("unexpected_count"),
                         "unexpected_percent": r.result.get("unexpected_percent"),
                         "observed_value": r.result.get("observed_value") if not cfg.kwargs.get("column") else None})
    failures.sort(key=lambda f: (f["severity"] != "critical", f["expectation"]))
    docs = _docs_url(ctx) if data_docs else None
    gate = GateResult(suite=suite_name, rows=rows, success=not any(f["severity"] == "critical" for f in failures),
                      failures=failures, evaluated=len(result.results), seconds=round(time.perf_counter() - t0, 2), docs=docs,
                      page=_page_url(ctx, result_id) if data_docs else None, result_id=list(result_id.to_tuple()),
                      as_frame=as_frame)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        gate.results_path = os.path.join(out_dir, f"{suite_name}.json")
        with open(gate.results_path, "w") as fh:
            json.dump({"suite": suite_name, "success": gate.success, "rows": gate.rows, "evaluated": gate.evaluated,
                       "failures": failures, "seconds": gate.seconds, "data_docs": docs, "data_docs_page": gate.page}, fh,
                      ensure_ascii=False, indent=1, default=str)
    (log.info if gate.success and not failures else log.warning)(
        "%s (%.1fs%s)%s", gate.summary(), gate.seconds, gate.how(), f"; Data Docs: {gate.page or docs}" if docs else "")
    return gate


def inputs_verdict(results: dict[str, GateResult], gx_root: str) -> dict:
    """The input suites of a period (one per raw source, one for the standardised model), run before
    anything is reconciled, decided together from their results (:func:`validate` with
    ``data_docs=False``): their Data Docs pages built at once (:func:`build_docs`; the index only when
    one failed or the site has none), :class:`QualityGateFailed` when a critical expectation failed,
    else their summary."""
    failed = [g for g in results.values() if not g.success]
    # the index only when the run stops here (an operator follows the link now) or the site has none
    # yet: otherwise the night's audit rebuilds it, listing these results with its own, and the
    # pages of these are built now (at 2M persons, with the index's 250 validations, 0.25 s against 0.7-0.8 s)
    docs = build_docs(results, gx_root, index=bool(failed) or None)
    log.info("input suites: Data Docs: %s", docs)
    if failed:
        raise QualityGateFailed("not published: " + " | ".join(g.summary() for g in failed)
                                + f" (Data Docs: {failed[0].page or docs})")
    return {name: {"success": g.success, "warnings": len(g.failures), "summary": g.summary(), "seconds": g.seconds,
                   "docs": docs, "page": g.page} for name, g in results.items()}


def build_docs(results: dict[str, GateResult], gx_root: str, index: bool | None = True) -> str | None:
    """The Data Docs of ``results`` (validated with ``data_docs=False``) built at once: the pages not
    built yet (a result whose ``page`` is set has one) and the index, one build for a task's suites.
    The index reads back every validation it lists (up to :func:`include.settings.data_docs_index_limit`),
    so each build costs the same whatever it adds: with 1,058 validations in the store, one build of
    two suites' pages 0.7 s, two builds of one 1.4 s.
    ``index``: False, the pages only (the next build's index lists them: it reads the store); None,
    the index too if the site has none yet. Each result's ``docs`` (the site's index) and ``page`` (its
    own page: what a log line links to, listed by the index or not yet) go to its summary file
    (``results_path``) too."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    ctx = _context(gx_root)
    if index is None:   # (GX names the index only once it exists)
        index = not any(site["site_url"] for site in ctx.get_docs_sites_urls())
    ids = {name: ValidationResultIdentifier.from_tuple(tuple(g.result_id)) for name, g in results.items() if g.result_id}
    todo = [name for name, g in results.items() if name in ids and not g.page]
    built = None   # the pages written (None: every page, a full build)
    if todo or index or not ids:
        # the pages of these results and the index: a full build reads every result the store has ever
        # kept, and so would grow night by night (1.2 s at 87 results; 0.4 s for these six and the index);
        # the index alone is built with one page (none named would be a full build)
        built = todo or list(ids)[:1] or None
        targets = None if built is None else [ids[name] for name in built]
        with _sections_listing_only(targets):
            ctx.build_data_docs(resource_identifiers=targets, build_index=index)
    pages = {name: _page_url(ctx, rid) for name, rid in ids.items()}
    docs = _docs_url(ctx, pages=None if built is None else [_file_path(pages[name]) for name in built]
                     + [_index_path(ctx)] * bool(index))
    for name, gate in results.items():
        gate.docs = docs
        gate.page = pages.get(name)
        if gate.results_path and os.path.exists(gate.results_path):
            with open(gate.results_path) as fh:
                summary = json.load(fh)
            summary["data_docs"], summary["data_docs_page"] = docs, gate.page
            with open(gate.results_path, "w") as fh:
                json.dump(summary, fh, ensure_ascii=False, indent=1, default=str)
    return docs


@contextlib.contextmanager
def _sections_listing_only(resource_identifiers):
    """Within: a Data Docs build of ``resource_identifiers`` (None: every page) has each section of the
    site list only those of them its store holds. GX lists every key its store has ever kept, reading
    each one's run time with dateutil, to skip all but the few named: at 4,270 validations 0.86 s of
    a profiled build (cProfile) went to listing them, more each night (the index, built apart, still
    lists them all: it shows the newest)."""
    if not resource_identifiers:
        yield
        return
    from great_expectations.render.renderer.site_builder import DefaultSiteSectionBuilder

    def build(self, resource_identifiers=None):
        store = self.source_store
        held = [k for k in resource_identifiers or () if isinstance(k, store.key_class) and store.has_key(k)]
        store.list_keys = lambda: list(held)   # (this store's own, for this section's build)
        try:
            return original(self, resource_identifiers=resource_identifiers)
        finally:
            del store.list_keys

    with _SECTIONS_PATCHED:   # (one build at a time patches GX's class)
        original = DefaultSiteSectionBuilder.build
        DefaultSiteSectionBuilder.build = build
        try:
            yield
        finally:
            DefaultSiteSectionBuilder.build = original


_SECTIONS_PATCHED = threading.Lock()


def _page_url(ctx, result_id) -> str | None:
    """The address of one validation's page in the Data Docs site (``result_id``: its ValidationResultIdentifier)."""
    sites = ctx.get_docs_sites_urls(resource_identifier=result_id)
    return sites[0]["site_url"] if sites else None


def _file_path(url: str | None) -> str | None:
    """The file of a ``file://`` address (None for any other)."""
    if not url or not url.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path)


def _index_path(ctx) -> str | None:
    sites = ctx.get_docs_sites_urls()
    return _file_path(sites[0]["site_url"] if sites else None)


def _docs_url(ctx, pages=None) -> str | None:
    """The Data Docs site's index, its pages made to work with no network (:func:`datadocs.localise`;
    ``pages``: only those, the ones a build just wrote)."""
    sites = ctx.get_docs_sites_urls()
    url = sites[0]["site_url"] if sites else None
    path = _file_path(url)
    pages = None if pages is None else [p for p in pages if p]
    if path:
        localise(os.path.dirname(path), pages=pages)
    elif pages:   # no index yet (GX names none): the site is the one holding the pages' validations/
        localise(next(d for d in Path(pages[0]).parents if d.name == "validations").parent, pages=pages)
    return url


def _run_name(work: str) -> str:
    """``<logical date>_<period>`` from a work directory (``.../work/<ds>/<period>``), for the Data Docs."""
    parts = work.rstrip("/").split("/")
    return "_".join(parts[-2:])


def expected_roster_size(work: str) -> int:
    """The roster's size recounted from the standardised records and the links, apart from reconcile's SQL."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")   # a bar of carriage returns is noise in a task log
    try:
        return con.execute(f"""
            WITH r AS (
                SELECT CASE WHEN rec.id_valid THEN rec.id_clean ELSE l.person_id END AS pid, rec.source, rec.unit_code, rec.jfly
                FROM read_parquet('{work}/std/records.parquet') rec
                LEFT JOIN read_parquet('{work}/links.parquet') l USING (source, rec_no)
            )
            SELECT count(DISTINCT pid) FROM r LEFT JOIN read_parquet('{work}/std/units.parquet') u USING (unit_code)
            WHERE pid IS NOT NULL AND ((r.source = 'finance' AND r.jfly = '财政拨款')
                                       OR (r.source = 'staffing' AND u.funding IN ('full', 'partial')))
        """).fetchone()[0]
    finally:
        con.close()


def audit_expectations(members: int) -> dict[str, list[dict]]:
    """The audit's expectations known only at run time, per suite: the roster's size (``members``,
    :func:`expected_roster_size`) and the catalogue's codes."""
    from include.findings import CODES

    return {"roster": [{"type": "expect_table_row_count_to_equal", "kwargs": {"value": members},
                        "meta": {"severity": "critical",
                                 "why": "the roster is the union of the persons paid from the budget and those active "
                                        "in a full or partial funded unit, counted independently from the records"}}],
            # the codes are the catalogue's: a code added there is known here the same day
            "findings": [{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "code", "value_set": list(CODES)},
                          "meta": {"severity": "critical", "why": "every code is one of the catalogue (include/findings.py)"}}]}


def audit_period(work: str, gx_root: str, severity: dict[str, str] | None = None) -> dict:
    """Write-audit-publish, the audit: the staged roster and findings of ``work`` against their suites.

    Raises :class:`QualityGateFailed` with a short summary when a critical expectation fails.
    """
    import threading

    from include.quality.input_suites import read_table_for_suite

    # GX's import (2 s) on a thread, beside the recount (DuckDB) and the reads (Arrow), which leave
    # the GIL: at 2M persons the three one after another were 4.4 s of the task
    importing = threading.Thread(target=import_gx, name="import-gx", daemon=True)
    importing.start()
    results = {}
    extra = audit_expectations(expected_roster_size(work))
    # each file's columns its suite reads (the roster's 10 of 25), the others as placeholders: the same verdicts;
    # as Arrow tables, their metrics computed as aggregates (include.quality.aggregates: at 2M persons the
    # roster's suite took 4.0 s as a frame)
    tables = {name: read_table_for_suite(f"{work}/{name}.parquet", name, extra=extra.get(name))
              for name in ("roster", "findings")}
    importing.join()
    for name, (table, columns) in tables.items():
        results[name] = validate(table, name, gx_root, out_dir=f"{work}/quality", severity=severity, extra=extra.get(name),
                                 run_name=_run_name(work), columns=columns, data_docs=False)
    log.info("audit: Data Docs: %s", build_docs(results, gx_root))   # once for both suites (each build reads the index's)
    failed = [g for g in results.values() if not g.success]
    if failed:
        raise QualityGateFailed("not published: " + " | ".join(g.summary() for g in failed)
                                + f" (Data Docs: {failed[0].page or failed[0].docs})")
    return {name: {"success": g.success, "warnings": len(g.failures), "summary": g.summary(), "docs": g.docs,
                   "page": g.page} for name, g in results.items()}
