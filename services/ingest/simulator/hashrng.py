"""Counter-based random numbers: values are pure functions of (seed, stream, keys).

Hashing the keys instead of drawing from a shared generator keeps every value
independent of which other periods or elements were generated in the same call,
so backfill, live generation and ground-truth queries always agree.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TO_UNIT = 2.0**-53


def _splitmix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (wrapping uint64 arithmetic)."""
    x = (x ^ (x >> _S30)) * _MUL1
    x = (x ^ (x >> _S27)) * _MUL2
    return x ^ (x >> _S31)


def _as_u64(key: np.ndarray | int) -> np.ndarray:
    return np.asarray(key, dtype=np.int64).astype(np.uint64)


def hash_u64(seed: int, stream: int, *keys: np.ndarray | int) -> np.ndarray:
    """A 64-bit hash per broadcast combination of the keys."""
    h = _splitmix(np.atleast_1d(_as_u64(seed) * _GOLDEN + _as_u64(stream)))
    for key in keys:
        h = _splitmix(h ^ (_as_u64(key) + _GOLDEN))
    return h


def uniform(seed: int, stream: int, *keys: np.ndarray | int) -> np.ndarray:
    """Uniform floats in [0, 1) keyed by (seed, stream, keys)."""
    return (hash_u64(seed, stream, *keys) >> _S11).astype(np.float64) * _TO_UNIT


def normal(seed: int, stream: int, *keys: np.ndarray | int) -> np.ndarray:
    """Standard normal floats keyed by (seed, stream, keys), via Box-Muller."""
    u1 = 1.0 - uniform(seed, stream, *keys)
    u2 = uniform(seed, stream + 0x5BD1E995, *keys)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def generator(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A numpy Generator seeded from (seed, stream, keys) for rare, irregular draws."""
    return np.random.default_rng([seed, stream, *(int(k) for k in keys)])
