"""Multi-KPI corroboration: several KPIs of one element deviating at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.anomaly.thresholds import DEFAULT_MIN_CONFIDENCE

# A KPI counts as deviating from the product's default alert confidence on.
DEVIATING_CONFIDENCE = DEFAULT_MIN_CONFIDENCE
# KPIs of one element are correlated (one fault moves several), so the extra evidence from
# each further deviating KPI is discounted instead of multiplied as if independent.
SUPPORT_WEIGHT = 0.5


def corroborate(
    results: pd.DataFrame, min_confidence: float = DEVIATING_CONFIDENCE
) -> pd.DataFrame:
    """Per element and period: deviating KPIs, their count and a combined confidence."""
    frame = results[["element", "period_end", "kpi", "score", "confidence"]].copy()
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce").fillna(0.0)
    frame["deviating"] = frame["confidence"] >= min_confidence
    # log(1 - c) sums to the probability that every supporting KPI is a false alarm.
    miss = np.log1p(-frame["confidence"].clip(upper=0.999))
    frame["log_miss"] = np.where(frame["deviating"], miss, 0.0)
    grouped = frame.groupby(["element", "period_end"], sort=False)
    top = grouped["confidence"].max()
    miss_all = np.exp(grouped["log_miss"].sum())
    top_miss = np.where(top >= min_confidence, 1.0 - top.clip(upper=0.999), 1.0)
    others_hit = 1.0 - miss_all / top_miss
    combined = top + (1.0 - top) * SUPPORT_WEIGHT * others_hit
    deviating = frame[frame["deviating"]].sort_values("confidence", ascending=False)
    kpis = deviating.groupby(["element", "period_end"], sort=False)["kpi"].agg(list)
    out = pd.DataFrame(
        {
            "kpis_deviating": grouped["deviating"].sum().astype(np.int64),
            "max_confidence": top,
            "combined_confidence": np.fmax(combined, top).clip(upper=1.0),
        }
    )
    out["deviating_kpis"] = kpis.reindex(out.index)
    out["deviating_kpis"] = out["deviating_kpis"].apply(lambda v: v if isinstance(v, list) else [])
    return out.reset_index()
