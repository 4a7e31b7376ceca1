"""Hand memory freed by a large job back to the operating system.

A scheduler job that ingests or scores a whole network period builds frames of hundreds of
megabytes and frees them when it ends. glibc keeps freed memory in its heaps for reuse and
returns it to the system only when the top of a heap is free, so after a few periods the
process keeps a high-water mark per heap it touched. `malloc_trim(0)` releases every free
page of every heap at once (a few milliseconds); it is what keeps a long-running scheduler's
resident memory near what it actually holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from functools import lru_cache

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Collect reference cycles, then return free heap pages to the system.

    Returns whether the C library could be asked (False off glibc, where this is a no-op).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    try:
        trim(0)
    except OSError:  # never fail a job over housekeeping
        log.debug("malloc_trim failed", exc_info=True)
        return False
    return True
