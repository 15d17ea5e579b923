"""Memory a long task has freed, given back to the system between its large steps."""

from __future__ import annotations


def release_unused() -> None:
    """Collect garbage and give back what Arrow's pool and the C heap keep of freed memory for reuse:
    without it a process that reads one large frame after another grows step by step (its resident
    size is what a worker's memory limit and the benchmarks count)."""
    import ctypes
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc: nothing to trim
        pass
