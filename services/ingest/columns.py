"""Fast column lookups: a million rows usually hold few distinct names, so map each once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def lookup(series: pd.Series, table: Mapping[Any, Any], *, dtype: str = "object") -> pd.Series:
    """`series.map(table)`, but each distinct value is looked up once (missing -> NaN/None)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    missing = np.nan if dtype.startswith("float") else None
    keys = uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)
    mapped = np.array([table.get(u, missing) for u in keys] + [missing], dtype=dtype)
    # code -1 (NA in the input) picks the trailing `missing` slot.
    return pd.Series(mapped[codes], index=series.index)


def coded_lookup(
    codes: np.ndarray,
    uniques: Any,
    table: Mapping[Any, Any],
    index: pd.Index,
    dtype: str = "object",
) -> pd.Series:
    """`lookup` for a column already factorised into `codes` and `uniques` (reused)."""
    missing = np.nan if dtype.startswith("float") else None
    keys = uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)
    mapped = np.array([table.get(u, missing) for u in keys] + [missing], dtype=dtype)
    return pd.Series(mapped[codes], index=index)
