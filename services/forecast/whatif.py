"""What-if scenarios on stored forecasts: planned traffic growth and offload to a new site.

Capacity KPIs (PRB and link utilisation, active users) scale roughly in proportion to the
traffic they carry, so a scenario multiplies the forecast and every sample path from its date
on: +15% growth is x1.15, a new site offloading 20% is x0.8. Pure numpy: cheap enough for a
callback, and breach risk is recomputed from the adjusted paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SCALED_COLUMNS = ("yhat", "lower_80", "upper_80", "lower_95", "upper_95", "trend")


@dataclass(frozen=True)
class Scenario:
    """Planned changes: growth and offload in percent, each from a date (None = from the start)."""

    growth_pct: float = 0.0
    growth_from: pd.Timestamp | None = None
    offload_pct: float = 0.0
    offload_from: pd.Timestamp | None = None

    def validate(self) -> None:
        """Raise ValueError for impossible percentages."""
        if not np.isfinite(self.growth_pct) or self.growth_pct <= -100:
            raise ValueError("growth must be above -100%")
        if not np.isfinite(self.offload_pct) or not 0 <= self.offload_pct < 100:
            raise ValueError("offload must be between 0% and 100% (exclusive)")

    def factors(self, ds: pd.DatetimeIndex) -> np.ndarray:
        """The multiplier of each forecast period."""
        ds = pd.DatetimeIndex(ds)
        out = np.ones(len(ds))
        for pct, since, sign in (
            (self.growth_pct, self.growth_from, 1.0),
            (self.offload_pct, self.offload_from, -1.0),
        ):
            if pct:
                active = np.ones(len(ds), bool) if since is None else ds >= _naive(since, ds)
                out = np.where(active, out * (1.0 + sign * pct / 100.0), out)
        return out


def _naive(stamp: pd.Timestamp, ds: pd.DatetimeIndex) -> pd.Timestamp:
    """Compare like with like: drop or add the time zone to match the forecast index."""
    stamp = pd.Timestamp(stamp)
    if ds.tz is None and stamp.tzinfo is not None:
        return stamp.tz_convert("UTC").tz_localize(None)
    if ds.tz is not None and stamp.tzinfo is None:
        return stamp.tz_localize(ds.tz)
    return stamp


def apply_scenario(
    frame: pd.DataFrame, samples: np.ndarray | None, scenario: Scenario
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Forecast frame and sample paths (rows = frame rows) under the scenario; inputs kept."""
    scenario.validate()
    factors = scenario.factors(pd.DatetimeIndex(frame["ds"]))
    out = frame.copy()
    for column in SCALED_COLUMNS:
        if column in out:
            out[column] = out[column].to_numpy(float) * factors
    if samples is None:
        return out, None
    samples = np.asarray(samples)
    if samples.shape[0] != len(frame):
        raise ValueError(f"samples have {samples.shape[0]} rows for {len(frame)} forecast rows")
    return out, (samples * factors[:, None]).astype(samples.dtype, copy=False)
