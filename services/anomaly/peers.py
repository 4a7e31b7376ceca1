"""Peer baseline: each member of a group compared with the group at the same period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.anomaly.baseline import MAD_TO_SIGMA

MIN_PEERS = 3  # fewer members give no meaningful group median
RELATIVE_FLOOR = 0.01  # peer spread never below 1% of the peer median (identical peers)
ABSOLUTE_FLOOR = 1e-6


def peer_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Add peer_median, peer_spread, peer_score and peer_size (robust, leave-one-in)."""
    out = frame.copy()
    keys = [out["group"], out["period_end"]]
    value = pd.to_numeric(out["value"], errors="coerce")
    grouped = value.groupby(keys, sort=False, dropna=False)
    median = grouped.transform("median")
    size = grouped.transform("count").astype(np.int64)
    deviation = (value - median).abs()
    mad = deviation.groupby(keys, sort=False, dropna=False).transform("median") * MAD_TO_SIGMA
    # Where most peers are identical the MAD is 0: fall back to the mean absolute deviation.
    mean_ad = deviation.groupby(keys, sort=False, dropna=False).transform("mean") * 1.2533
    spread = mad.where(mad > 0, mean_ad)
    floor = np.fmax(RELATIVE_FLOOR * median.abs(), ABSOLUTE_FLOOR)
    spread = np.fmax(spread, floor)
    enough = size >= MIN_PEERS
    out["peer_median"] = median.where(enough)
    out["peer_spread"] = spread.where(enough)
    out["peer_score"] = ((value - median) / spread).where(enough & value.notna())
    out["peer_size"] = size
    return out
