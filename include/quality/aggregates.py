"""A suite's metrics computed as aggregates over an Arrow table (issue 17), Great Expectations deciding.

Great Expectations validates a suite in two steps: it resolves the metrics each expectation depends
on (row counts, unexpected counts, ...) by running its metric providers over the batch, then each
expectation decides from those metrics (``Expectation._validate``: ``mostly``, the percentages, the
result). Over a pandas frame the first step takes each column-map metric's domain, row for row, in
Python objects and pandas: at 2M persons, the input suites took 8 s of CPU in standardise's worker
(6.7M records: 2.1-2.6 s, staffing's persons: 2.3 s), on the core standardise itself needs.

Here the first step is done by aggregate queries (DuckDB over the Arrow table, in place; the
regular expressions matched by the engine pandas' ``str.contains`` would choose, RE2 or Python's
``re``: :func:`_regex_misses`) and the second stays GX's: the checkpoint runs as
ever, on an empty frame of the same columns, and :func:`computing` has its metric calculator take the
metrics from :class:`TableMetrics` instead of resolving them over that frame. The results GX stores,
the Data Docs and the verdict are those a full-frame validation gives: the same counts and
percentages (``tests/test_quality.py`` compares them, suite by suite and on frames made to break
every expectation, with GX's own).

Only the expectations of :data:`SUPPORTED`, with only the keyword arguments listed there, over columns
of the types :func:`unsupported` accepts, and the result formats of :data:`include.quality.gates.RESULT_FORMAT`
(no unexpected values listed) are computed here; a suite with anything else is validated over a
pandas frame, as before (:func:`include.quality.gates.validate`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading

# Per expectation type: its metric (None: a table expectation) and the keyword arguments it may
# have here (any other, such as a row condition, and the suite is validated by GX over the frame).
_COMMON = {"column", "mostly", "result_format", "catch_exceptions", "meta", "notes", "batch_id", "include_config"}
SUPPORTED = {
    "expect_column_to_exist": (None, {"column", "batch_id", "result_format", "catch_exceptions", "meta", "notes"}),
    "expect_table_row_count_to_be_between": (None, {"min_value", "max_value", "strict_min", "strict_max", "batch_id",
                                                    "result_format", "catch_exceptions", "meta", "notes"}),
    "expect_table_row_count_to_equal": (None, {"value", "batch_id", "result_format", "catch_exceptions", "meta", "notes"}),
    "expect_column_values_to_not_be_null": ("column_values.nonnull", _COMMON),
    "expect_column_values_to_be_in_set": ("column_values.in_set", _COMMON | {"value_set"}),
    "expect_column_values_to_match_regex": ("column_values.match_regex", _COMMON | {"regex"}),
    "expect_column_values_to_be_unique": ("column_values.unique", _COMMON),
    "expect_compound_columns_to_be_unique": ("compound_columns.unique", (_COMMON - {"column"}) | {"column_list", "ignore_row_if"}),
    "expect_column_values_to_be_between": ("column_values.between", _COMMON | {"min_value", "max_value", "strict_min",
                                                                                "strict_max"}),
    "expect_column_distinct_values_to_be_in_set": ("column.distinct_values.not_in_set",
                                                   {"column", "value_set", "batch_id", "result_format", "catch_exceptions",
                                                    "meta", "notes"}),
}
# Expectations whose values must be text (a value set of text), and those whose values and bounds must be numbers.
_TEXT_ONLY = {"expect_column_values_to_be_in_set", "expect_column_values_to_match_regex",
              "expect_column_distinct_values_to_be_in_set"}
_NUMBERS_ONLY = {"expect_column_values_to_be_between"}


def _kind(arrow_type) -> str | None:
    """What a column of ``arrow_type`` is to the metrics here: ``text``, ``float``, ``integer``, ``plain``
    (booleans, dates), or None (not computed here). Null is the only missing value but in ``float``."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
        return "text" if pa.types.is_string(t) or pa.types.is_large_string(t) else None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_boolean(t) or pa.types.is_date(t):
        return "plain"
    return None


def unsupported(expectations: list[dict], schema, result_format: dict) -> str | None:
    """Why ``expectations`` cannot be computed here over a table of ``schema`` (None: they can)."""
    if result_format.get("partial_unexpected_count", 20) != 0 or result_format.get("result_format") not in ("BASIC", "BOOLEAN_ONLY"):
        return f"result format {result_format}: unexpected values would be listed"
    for e in expectations:
        kind = SUPPORTED.get(e["type"])
        if kind is None:
            return f"{e['type']} is not computed here"
        kw = e["kwargs"]
        extra = set(kw) - kind[1]
        if extra:
            return f"{e['type']} with {', '.join(sorted(extra))}"
        if kind[0] is None:
            continue
        columns = kw.get("column_list") or [kw.get("column")]
        for c in columns:
            if c not in schema.names:
                return f"{e['type']}: no column {c}"   # GX's own error, from the frame
            k = _kind(schema.field(c).type)
            if k is None or (e["type"] in _TEXT_ONLY and k != "text") or (e["type"] in _NUMBERS_ONLY
                                                                          and k not in ("float", "integer")):
                return f"{e['type']}: column {c} of type {schema.field(c).type}"
        if e["type"] in _TEXT_ONLY and "value_set" in kw and not all(isinstance(v, str) for v in kw["value_set"]):
            return "a value set with values that are not text"
        if e["type"] in _NUMBERS_ONLY:   # (a bound that is not a number: GX compares value by value in Python)
            bounds = [kw.get("min_value"), kw.get("max_value")]
            if all(b is None for b in bounds) or not all(b is None or (isinstance(b, (int, float)) and not isinstance(b, bool))
                                                         for b in bounds):
                return f"{e['type']} with bounds {bounds}"
        if e["type"] == "expect_compound_columns_to_be_unique" and kw.get("ignore_row_if", "all_values_are_missing") \
                != "all_values_are_missing":
            return f"ignore_row_if {kw['ignore_row_if']}"
    return None


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class TableMetrics:
    """The metrics of a suite's expectations over ``table`` (Arrow), by name and domain, each computed
    once. ``columns``: the batch's columns, as GX's frame has them (``table.columns``)."""

    def __init__(self, table, columns: list[str]):
        import duckdb

        self.table, self.columns = table, list(columns)
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        self.con.register("batch", table)
        self.rows = table.num_rows
        self._memo: dict = {}
        self.asked = 0   # metrics GX took from here (none, for a suite with expectations: GX resolved them elsewhere)

    def close(self) -> None:
        self.con.close()

    def _missing(self, column: str) -> str:
        """SQL: ``column``'s value is missing as pandas has it (null; NaN too in a float column)."""
        q = _quoted(column)
        return f"({q} IS NULL OR isnan({q}))" if _kind(self.table.schema.field(column).type) == "float" else f"{q} IS NULL"

    def _increasing(self, columns: list[str]) -> bool:
        """Whether the rows' keys over ``columns`` (integers or text of few values, dictionary-encoded;
        no nulls) strictly increase from row to row, each key made one number by mixed radix (a
        dictionary's values numbered as first seen): then no key is there twice. A quick proof for a
        table written in its key's order (the records: a source after another, each numbered from 0);
        False, and the keys are grouped, for any other. At 6.7M records, 0.1 s where grouping took 0.8 s."""
        import numpy as np
        import pyarrow as pa

        digits = []
        for name in columns:
            column = self.table.column(name)
            if column.null_count or not len(column):
                return False
            if pa.types.is_dictionary(column.type):
                column = column.unify_dictionaries()
                width = max(len(chunk.dictionary) for chunk in column.chunks)
                values = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in column.chunks])
                digits.append((values.astype(np.int64), width))
            elif pa.types.is_integer(column.type):
                values = column.to_numpy()
                low, high = int(values.min()), int(values.max())
                digits.append((values.astype(np.int64) - low, high - low + 1))
            else:
                return False
        if np.prod([float(width) for _, width in digits]) >= 2.0 ** 62:
            return False
        key = np.zeros(self.rows, dtype=np.int64)
        for values, width in digits:
            key = key * width + values
        return bool(np.all(key[1:] > key[:-1]))

    def _ascending(self, name: str) -> bool:
        """Whether the values of the text or integer column ``name``, nulls aside, strictly increase from
        row to row (text compared byte by byte, as its UTF-8): then no value is there twice. A quick proof
        for a column in its own order (staffing's persons, their record IDs in key order as the API
        pages them and the extract merges them); False, and the values are grouped, for any other. At
        2M persons, 0.01 s where grouping them took 0.4 s of CPU."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.table.column(name)
        if _kind(column.type) not in ("text", "integer") or pa.types.is_dictionary(column.type):
            return False
        values = column.drop_null()
        if len(values) < 2:
            return False   # (nothing to prove: the query is as quick)
        return bool(pc.all(pc.less(values.slice(0, len(values) - 1), values.slice(1))).as_py())

    def _known_missing(self, name: str) -> int | None:
        """How many values of the column ``name`` are missing, where that is known without a scan: its
        nulls (Arrow keeps each array's count) in a column where null is the only missing value; None
        for floats (NaN) and for a dictionary holding a null among its values."""
        import pyarrow as pa

        column = self.table.column(name)
        if _kind(column.type) == "float" or (pa.types.is_dictionary(column.type)
                                             and any(chunk.dictionary.null_count for chunk in column.chunks)):
            return None
        return column.null_count

    def _one(self, sql: str, params=None) -> int:
        return int(self.con.execute(sql, params or []).fetchone()[0] or 0)

    def value(self, name: str, domain: dict, values: dict):
        """The metric ``name`` (GX's name) over ``domain`` (its column or columns) with ``values``."""
        key = (name, domain.get("column"), tuple(domain.get("column_list") or ()), repr(sorted(
            (k, v) for k, v in values.items() if k != "result_format")))
        self.asked += 1
        if key not in self._memo:
            self._memo[key] = self._compute(name, domain, values)
        return self._memo[key]

    def _compute(self, name: str, domain: dict, values: dict):
        import pyarrow as pa

        if name == "table.row_count":
            return self.rows
        if name == "table.columns":
            return list(self.columns)
        if name.startswith("column.distinct_values.not_in_set"):   # the distinct values not in the set
            # (its count and its list are two metrics of one scan: the values found once, for both)
            outside = self.value("_distinct_outside", domain, {"value_set": values["value_set"]})
            return len(outside) if name.endswith(".count") else outside[:values.get("limit", 20)]
        if name == "_distinct_outside":
            q = _quoted(domain["column"])
            return sorted(v for v, in self.con.execute(
                f"SELECT DISTINCT {q}::VARCHAR FROM batch WHERE {q} IS NOT NULL AND NOT list_contains($1, {q}::VARCHAR)",
                [list(values["value_set"])]).fetchall())
        metric, _, summary = name.rpartition(".")
        if summary == "unexpected_values":   # none listed (unsupported() refuses a format that lists them)
            return []
        if metric == "compound_columns.unique":   # the rows with a value in any of the columns; keys twice among them
            cols = list(domain["column_list"])
            considered = "NOT (" + " AND ".join(self._missing(c) for c in cols) + ")"
            if summary == "filtered_row_count":
                if any(self._known_missing(c) == 0 for c in cols):   # every row has a value in one of them
                    return self.rows
                return self._one(f"SELECT count(*) FROM batch WHERE {considered}")
            if summary != "unexpected_count":
                raise KeyError(name)
            if self._increasing(cols):   # no key twice, proved without grouping (the records' source and number)
                return 0
            return self._one(f"SELECT sum(n) FROM (SELECT count(*) AS n FROM batch WHERE {considered} "
                             f"GROUP BY {', '.join(map(_quoted, cols))} HAVING count(*) > 1)")
        if summary != "unexpected_count":   # (a column's rows considered: GX takes them from the nulls' count)
            raise KeyError(name)
        column = domain["column"]
        q, missing = _quoted(column), self._missing(column)
        if metric == "column_values.nonnull":   # every row is in its domain; a missing value is unexpected
            known = self._known_missing(column)
            return known if known is not None else self._one(f"SELECT count(*) FROM batch WHERE {missing}")
        if metric == "column_values.in_set":
            if pa.types.is_dictionary(self.table.column(column).type):   # the values outside, found among each part's few
                return _outside_by_dictionary(self.table.column(column), values["value_set"])
            return self._one(f"SELECT count(*) FROM batch WHERE NOT {missing} AND NOT list_contains($1, {q}::VARCHAR)",
                             [list(values["value_set"])])
        if metric == "column_values.unique":
            if self._ascending(column):   # no value twice, proved without grouping (staffing's record IDs, in key order)
                return 0
            return self._one(f"SELECT sum(n) FROM (SELECT count(*) AS n FROM batch WHERE NOT {missing} GROUP BY {q} "
                             "HAVING count(*) > 1)")
        if metric == "column_values.between":   # numbers (unsupported() sees to it), compared as GX's pandas provider does
            bounds = [(f"{q} {'>' if values.get('strict_min') else '>='} ?", values.get("min_value")),
                      (f"{q} {'<' if values.get('strict_max') else '<='} ?", values.get("max_value"))]
            bounds = [(test, bound) for test, bound in bounds if bound is not None]
            return self._one(f"SELECT count(*) FROM batch WHERE NOT {missing} AND NOT ({' AND '.join(t for t, _ in bounds)})",
                             [bound for _, bound in bounds])
        if metric == "column_values.match_regex":
            return _regex_misses(self.table.column(column), values["regex"])
        raise KeyError(name)


def _outside_by_dictionary(column, value_set) -> int:
    """How many values of the dictionary-encoded text ``column`` are outside ``value_set``, nulls aside
    (a null index or a null in the dictionary): each part's dictionary (a few values: the records' four
    sources) looked up in the set, and only the rows of values outside it counted (none, most nights):
    at 6.7M records 0.0001 s, where the query casting every value to text took 0.025 s."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    outside = 0
    for chunk in column.chunks:
        found = pc.is_in(chunk.dictionary, value_set=pa.array(list(value_set), type=chunk.dictionary.type))
        wrong = pc.fill_null(pc.and_kleene(pc.is_valid(chunk.dictionary), pc.invert(found)), False)
        wrong = wrong.to_numpy(zero_copy_only=False)
        if not wrong.any():
            continue
        indices = chunk.indices
        at = indices.drop_null().to_numpy(zero_copy_only=False) if indices.null_count else indices.to_numpy(zero_copy_only=False)
        outside += int(np.count_nonzero(wrong[at]))
    return outside


def _regex_misses(text, regex: str) -> int:
    r"""How many values of ``text`` (an Arrow text column) ``regex`` finds no match in, nulls aside: as
    GX's pandas provider counts them (``column.astype(str).str.contains(regex)``), the engine pandas'
    choice. Pandas matches with Arrow's RE2 unless the pattern or the values need Python's ``re``
    (``\d`` on non-ASCII values, ``$`` before a newline, lookarounds, ...); when it would use RE2, RE2 is
    called here directly, with the pattern as pandas rewrites it for RE2 (pandas' own checks, private
    to it: where they are missing, pandas is called), a slice of the values per thread (:func:`_threads`).
    At 2M IDs 0.11 s where ``str.contains`` took 0.18 s."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(text.type):
        text = text.cast(text.type.value_type)
    if text.null_count:
        text = text.drop_null()
    array = pd.arrays.ArrowStringArray(text)
    try:
        python = (array._is_re_pattern_with_flags(regex) or _needs_python_regex(text, regex))
        pattern = None if python else array._preprocess_re_pattern(regex, True, 0)[0]
    except AttributeError:   # pandas' checks changed: pandas decides, as GX's provider has it
        pattern = None
    if pattern is None:
        return int((~pd.Series(array).astype(str).str.contains(regex)).sum())
    threads, matching = _threads()
    return len(text) - sum(matching.map(lambda part: int(pc.sum(pc.match_substring_regex(part, pattern)).as_py() or 0),
                                        _slices(text, threads)))


def _slices(values, count: int) -> list:
    """``values`` (an Arrow array or chunked array) as ``count`` slices of about the same length, in place."""
    from include.threads import spans

    if len(values) < 2 * count:
        return [values]
    return [values.slice(start, stop - start) for start, stop in spans(len(values), count)]


def _threads():
    """``(count, pool)``: threads that match a column's values a slice each (Arrow's kernels hold no GIL),
    one per core Arrow counts (:func:`include.threads.per_core`). The records' IDs are standardise's last
    suite, matched while the other core has little left to do: at 2M persons, 6.7M IDs took 0.19 s where
    one thread took 0.34-0.37 s."""
    from include.threads import per_core

    return per_core("regex")


@functools.lru_cache(maxsize=64)
def _pattern_needs_python(regex: str) -> tuple[bool, bool, bool]:
    """pandas' decision (``ArrowStringArray._needs_python_regex``) for ``regex`` over no value, over
    one value beyond ASCII, and over one newline: whether the pattern alone needs Python's ``re``,
    or does for values holding either."""
    import pandas as pd
    import pyarrow as pa

    def over(*values):
        return bool(pd.arrays.ArrowStringArray(pa.array(values, pa.large_string()))._needs_python_regex(regex))
    return over(), over("\u00e9"), over("\n")


def _needs_python_regex(text, regex: str) -> bool:
    """``ArrowStringArray(text)._needs_python_regex(regex)``, pandas deciding on the pattern
    (:func:`_pattern_needs_python`) and the values looked at over their bytes, only where the pattern
    makes them matter: a byte beyond ASCII, a newline (pandas' own looks went over the values with
    Arrow's string kernels: 0.07 s per 2M IDs, a third of matching them)."""
    import pyarrow as pa

    from include.identifiers import rows_with_bytes

    alone, beyond_ascii, newline = _pattern_needs_python(regex)
    if alone:
        return True
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    return ((beyond_ascii and any(len(rows_with_bytes(c, range(0x80, 0x100))) for c in chunks))
            or (newline and any(len(rows_with_bytes(c, {0x0A})) for c in chunks)))


_CURRENT: contextvars.ContextVar[TableMetrics | None] = contextvars.ContextVar("roster_sync_table_metrics", default=None)
_INSTALLED = threading.Lock()
_original = None


def _resolve_validation_graph(self, graph, runtime_configuration=None, min_graph_edges_pbar_enable=0):
    """GX's ``MetricsCalculator.resolve_validation_graph``, the metrics it needs taken from the
    :class:`TableMetrics` of :func:`computing` when one is in use: each node of the graph whose
    name is known there (the expectations' own metrics); the nodes they would be computed from over
    the frame (each row's condition) are not needed and not computed."""
    metrics = _CURRENT.get()
    if metrics is None:
        return _original(self, graph, runtime_configuration=runtime_configuration,
                         min_graph_edges_pbar_enable=min_graph_edges_pbar_enable)
    resolved = {}
    for edge in graph.edges:
        for config in (edge.left, edge.right):
            if config is None or config.id in resolved:
                continue
            try:
                resolved[config.id] = metrics.value(config.metric_name, dict(config.metric_domain_kwargs),
                                                    dict(config.metric_value_kwargs))
            except KeyError:   # a metric the others are computed from: not needed here
                continue
    return resolved, {}


def _install() -> None:
    global _original
    with _INSTALLED:
        if _original is None:
            from great_expectations.validator.metrics_calculator import MetricsCalculator

            _original = MetricsCalculator.resolve_validation_graph
            MetricsCalculator.resolve_validation_graph = _resolve_validation_graph


@contextlib.contextmanager
def computing(table, columns: list[str]):
    """Within: GX validations in this thread take their metrics from ``table`` (:class:`TableMetrics`)."""
    _install()
    metrics = TableMetrics(table, columns)
    token = _CURRENT.set(metrics)
    try:
        yield metrics
    finally:
        _CURRENT.reset(token)
        metrics.close()


def check_taken(metrics: TableMetrics, expectations: list[dict], suite: str) -> None:
    """Raise when a suite with expectations was validated without taking a metric from ``metrics``:
    GX resolved them some other way (a thread of its own, say, where :func:`computing` is not in use),
    over the empty frame it was given, where every expectation on values passes."""
    if expectations and not metrics.asked:
        raise RuntimeError(f"{suite}: Great Expectations took none of the suite's metrics from the table "
                           "(include/quality/aggregates.py no longer intercepts its metric calculator)")
