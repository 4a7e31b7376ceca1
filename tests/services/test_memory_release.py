"""Memory a large job freed goes back to the operating system once the job ends."""

from __future__ import annotations

import threading

import psutil
import pytest

from services.memory import release_freed_memory


def _fragmented_heap(keep: list[bytearray]) -> None:
    # ~200 MB of malloc-sized blocks in a worker thread's heap; every 64th stays alive, so
    # no heap can shrink from its top and the process keeps it all without a trim.
    blocks = [bytearray(2048) for _ in range(100_000)]
    keep.extend(blocks[::64])


def test_freed_heap_pages_are_returned_after_a_job() -> None:
    process = psutil.Process()
    keep: list[bytearray] = []
    worker = threading.Thread(target=_fragmented_heap, args=(keep,))
    worker.start()
    worker.join()
    before = process.memory_info().rss
    if not release_freed_memory():
        pytest.skip("not glibc: there is no malloc_trim to call")
    after = process.memory_info().rss
    assert before - after > 100 * 2**20, (before >> 20, after >> 20)
    assert all(len(block) == 2048 for block in keep)  # what is alive stays intact


def test_releasing_twice_is_harmless() -> None:
    assert release_freed_memory() == release_freed_memory()
