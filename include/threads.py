"""Threads a task's process keeps for work Arrow and numpy do without the GIL, one per core.

A pool is made on first use and kept for the process's life. A process forked from one that made a
pool gets none of its threads, only the pool's object, which would take work and never do it:
every pool is forgotten in a forked child (``os.register_at_fork``) and made again there on first
use. (A test forking a run's driver after an earlier test had matched IDs waited forever.)
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_making = threading.Lock()


def per_core(name: str, spare: int = 0) -> tuple[int, ThreadPoolExecutor]:
    """``(count, pool)``: ``count`` is the cores Arrow counts (at least 1); ``pool`` has ``count - spare``
    threads (at least 1), named ``name``: ``spare=1`` where the calling thread does one share itself."""
    with _making:
        if name not in _pools:
            import pyarrow as pa

            count = max(1, pa.cpu_count())
            _pools[name] = (count, ThreadPoolExecutor(max(1, count - spare), thread_name_prefix=name))
        return _pools[name]


def spans(n: int, count: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``count`` spans of about the same length covering ``range(n)`` in order."""
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds, bounds[1:]))


def _forget_in_child() -> None:
    global _making
    _making = threading.Lock()   # (held by a thread of the parent's that is not here)
    _pools.clear()


os.register_at_fork(after_in_child=_forget_in_child)
