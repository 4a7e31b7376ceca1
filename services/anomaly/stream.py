"""One series as a stream: causal scores, the anomaly decision and alert onsets per row.

Shared by `beacon detect` and the NAB evaluation so both run exactly the same code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.anomaly.calibration import CalibrationTable
from services.anomaly.detect import (
    DEFAULT_CONFIG,
    DetectorConfig,
    band_for_series,
    evidence,
    stream_step,
)
from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE

# An alert closes after this long without an anomalous period; a re-crossing before then is
# the same alert flapping (compare Alertmanager's repeat interval). Chosen on NAB evidence:
# 4 h, 8 h, 12 h and 24 h were compared (BENCHMARKS.md, "Anomaly detection").
CLEAR_AFTER = pd.Timedelta(hours=8)


def decide(
    values: pd.Series,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    config: DetectorConfig = DEFAULT_CONFIG,
    table: CalibrationTable | None = None,
) -> pd.DataFrame:
    """Per row: the detector's output, `anomaly` (confidence at threshold) and `onset`."""
    out = band_for_series(values, config)
    if table is not None:
        # Cross-validated evaluation: the same scores under a table fitted without this file.
        ok = out["status"].to_numpy() == "ok"
        out["confidence"] = np.where(ok, table.confidence(evidence(out, config)), 0.0)
    return with_onsets(out, min_confidence, clear_rows(values.index, config))


def clear_rows(index: pd.Index, config: DetectorConfig = DEFAULT_CONFIG) -> int:
    """CLEAR_AFTER in periods of this stream's step."""
    stamps = pd.DatetimeIndex(index)
    step = pd.Timedelta(config.step) if config.step is not None else stream_step(stamps)
    return max(1, round(CLEAR_AFTER / step))


def with_onsets(out: pd.DataFrame, min_confidence: float, clear_after: int) -> pd.DataFrame:
    """Add `anomaly` (confidence at threshold) and `onset` (an alert opens) to scored rows."""
    anomaly = (out["status"].to_numpy() == "ok") & (out["confidence"].to_numpy() >= min_confidence)
    out["anomaly"] = anomaly
    out["onset"] = alert_onsets(anomaly, clear_after)
    return out


def alert_onsets(anomaly: np.ndarray, clear_after: int) -> np.ndarray:
    """True where an alert opens: an anomalous row after >= clear_after normal rows."""
    flagged = np.flatnonzero(np.asarray(anomaly, dtype=bool))
    onset = np.zeros(len(anomaly), dtype=bool)
    if len(flagged):
        # A flapping deviation is one alert, not one per re-crossing of the threshold.
        gap = np.diff(np.r_[-clear_after - 1, flagged]) - 1
        onset[flagged[gap >= clear_after]] = True
    return onset
