"""Short-lived results shared by every screen a web worker serves.

A hundred wall screens refreshing every 10 s ask the same questions (the open episodes,
source freshness, who is on call) about 10 times a second; the answers change on the
scale of a detection period. Each worker computes an answer once per `ttl_s` and serves
it to every screen, so database and CPU cost stop growing with the number of screens.
Ages and clocks are still computed per request from the cached facts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

from cachetools import TTLCache

T = TypeVar("T")


class SharedCache:
    """A TTL cache where one caller computes a missing answer and the others wait for it."""

    def __init__(self, ttl_s: float, maxsize: int = 64) -> None:
        self.ttl_s = ttl_s
        self._cache: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl_s) if ttl_s > 0 else None  # type: ignore[assignment]
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached answer for `key`, computing it (once) when missing or expired.

        A failure is not cached: the next caller tries again.
        """
        if self._cache is None:
            return compute()
        # One computation at a time: screens arriving meanwhile get its result instead of
        # running the same queries in parallel (the answer takes tens of milliseconds).
        with self._lock:
            try:
                return self._cache[key]
            except KeyError:
                value = compute()
                self._cache[key] = value
                return value
