"""Memory a long task has freed, given back to the system between its large steps."""

from __future__ import annotations

import contextlib
import gc
import threading


def release_unused() -> None:
    """Collect garbage and give back what Arrow's pool and the C heap keep of freed memory for reuse:
    without it a process that reads one large frame after another grows step by step (its resident
    size is what a worker's memory limit and the benchmarks count)."""
    import ctypes

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc: nothing to trim
        pass


@contextlib.contextmanager
def made_before_not_collected():
    """Within: the objects made before it (the modules a task imported: pandas, pyarrow, SQLAlchemy, ...)
    are left out of the garbage collector's passes (``gc.freeze``; back in them after, ``gc.unfreeze``).
    They live as long as the process, and every full pass went over all of them: each
    :func:`release_unused` between a task's sources, and the collector's own. Standardise at 1M
    persons: its full passes took 0.02 s instead of 0.22-0.25 s, on its main thread. An object made
    before that becomes garbage within is freed as ever when nothing refers to it (reference counts),
    and collected after if it is in a cycle."""
    global _frozen
    with _freezing:   # the outermost of those in use freezes and unfreezes (gc.freeze is the process's)
        if not _frozen:
            gc.freeze()
        _frozen += 1
    try:
        yield
    finally:
        with _freezing:
            _frozen -= 1
            if not _frozen:
                gc.unfreeze()


_freezing = threading.Lock()
_frozen = 0   # made_before_not_collected() in use
