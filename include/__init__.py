"""roster-sync: the pipeline's steps, importable and testable without a scheduler."""

import os

# Arrow's allocator in every process of the pipeline (each task, the input suites' worker): jemalloc,
# unless the environment names one. Arrow reads ARROW_DEFAULT_MEMORY_POOL as pyarrow is imported, and
# nothing imports pyarrow before this package in a task (the DAG files and Airflow's task runner do
# not). Its own default here, mimalloc, paid 2.0-2.3 s of system time for the first read of the 2M
# staffing persons file in a fresh process (0.4 s with jemalloc) and again after memory was given
# back between sources; at 2M persons in bench_night, jemalloc: standardise's peak 2.31 GB against
# 2.65 GB, publish's 2.13-2.31 GB against 2.38-2.55 GB and 2-2.6 s quicker, the other stages the same.
# (A pyarrow built without jemalloc, as some non-Linux wheels are, says so once and keeps its default.)
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
