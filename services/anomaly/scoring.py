"""Scores evaluated periods: load lag columns, run the detectors, apply data quality.

Reads only. Produces one verdict row per (element, KPI, target period) with the fields an
episode needs, the data-quality flags, and whether it crosses the KPI's threshold.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.anomaly import calibration, detect, history, quality, reviewed
from services.anomaly.thresholds import Thresholds
from services.db.models import Element, Kpi

log = logging.getLogger(__name__)

# A peer baseline for an element without history needs at least this many peers reporting.
MIN_PEERS = 5
VERDICT_COLUMNS = [
    "element_id", "kpi_id", "kpi", "period_end", "observed", "expected", "band_low",
    "band_high", "score", "confidence", "raw_confidence", "anomalous", "status", "history",
    "flags", "dq_factor", "peer_group", "peer_median", "peer_score", "peer_size", "baseline",
]  # fmt: skip


@dataclass(frozen=True)
class KpiInfo:
    """What scoring and explaining need to know about a KPI."""

    id: int
    name: str
    unit: str
    element_type: str
    higher_is_worse: bool
    criticality: int
    valid_min: float | None = None
    valid_max: float | None = None


@dataclass
class Scored:
    """Verdicts of some periods, with the work done and what failed."""

    verdicts: pd.DataFrame
    rows_read: int = 0
    failures: list[str] = field(default_factory=list)


def kpi_infos(session: Session) -> list[KpiInfo]:
    """Every KPI, in id order."""
    return [
        KpiInfo(
            k.id,
            k.name,
            k.unit,
            k.element_type,
            k.higher_is_worse,
            k.criticality,
            k.valid_min,
            k.valid_max,
        )
        for k in session.scalars(select(Kpi).order_by(Kpi.id))
    ]


def element_frame(session: Session) -> pd.DataFrame:
    """Inventory columns scoring, grouping and explaining use, indexed by element id."""
    rows = session.execute(
        select(
            Element.id,
            Element.dn,
            Element.name,
            Element.element_type,
            Element.vendor,
            Element.technology,
            Element.domain,
            Element.region,
            Element.parent_id,
            Element.is_new,
        )
    ).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "id", "dn", "name", "element_type", "vendor", "technology", "domain", "region",
            "parent_id", "is_new",
        ],
    ).set_index("id")  # fmt: skip
    labels = (
        frame["element_type"].astype(str)
        + "s "
        + frame["technology"].fillna("").astype(str)
        + " "
        + frame["vendor"].fillna("").astype(str)
        + " in "
        + frame["region"].fillna("the network").astype(str)
    )
    frame["peer_group"] = labels.str.replace(r"\s+", " ", regex=True)
    return frame


def score_periods(
    session: Session,
    *,
    targets: Sequence[datetime],
    step: timedelta,
    kpis: Sequence[KpiInfo],
    elements: pd.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    config: detect.DetectorConfig | None = None,
    cache: history.LagCache | None = None,
) -> Scored:
    """Verdicts for every element of every KPI at the target periods; one KPI failing is logged.

    With `cache` (synced for this run), lag columns read in earlier runs come from memory.
    """
    config = config or detect.DetectorConfig()
    if config.step is None:
        # The step is known here; inferring it needs two periods, which a network's first
        # stored period does not have.
        config = dataclasses.replace(config, step=pd.Timedelta(step))
    lags = detect.required_lags(config, pd.Timedelta(step))
    parts: list[pd.DataFrame] = []
    scored = Scored(verdicts=pd.DataFrame(columns=VERDICT_COLUMNS))
    for kpi in kpis:
        try:
            loaded = _load(session, kpi_id=kpi.id, targets=targets, lags=lags, step=step,
                           cache=cache)  # fmt: skip
            scored.rows_read += loaded.rows_read
            if loaded.matrix.empty or loaded.meta.empty:
                continue
            # Reviews may have ruled history out: a new normal, or a bad-data window.
            learned = reviewed.load_reviewed(session, kpi_id=kpi.id)
            if learned:
                loaded = reviewed.hide_reviewed_history(loaded, learned, targets=targets)
            frame = _score_kpi(loaded, kpi, targets=targets, config=config, elements=elements)
            inputs = quality.load_inputs(
                session,
                kpi_id=kpi.id,
                element_ids=frame["element_id"].unique().tolist(),
                start=min(targets),
                end=max(targets),
            )
            frame = quality.flag_frame(frame, inputs, now=now)
            threshold = thresholds.for_kpi(kpi.name)
            frame["raw_confidence"] = frame["confidence"]
            frame["confidence"] = (frame["confidence"] * frame["dq_factor"]).round(4)
            frame["anomalous"] = (frame["status"] == "ok") & (frame["confidence"] >= threshold)
            parts.append(frame[VERDICT_COLUMNS])
        except Exception as exc:  # one KPI failing must not stop the others
            log.exception("anomaly scoring failed for KPI %s", kpi.name)
            scored.failures.append(f"{kpi.name}: {type(exc).__name__}: {exc}")
    if parts:
        scored.verdicts = _corroborated(pd.concat(parts, ignore_index=True))
    return scored


def _load(
    session: Session,
    *,
    kpi_id: int,
    targets: Sequence[datetime],
    lags: Sequence[int],
    step: timedelta,
    cache: history.LagCache | None,
) -> history.KpiHistory:
    """The KPI's lag columns, from the cache when there is one; any doubt means a cold load."""
    if cache is not None:
        try:
            return cache.load(session, kpi_id=kpi_id, targets=targets, lags=lags, step=step)
        except Exception:
            log.warning("lag cache failed for KPI %s; cold load", kpi_id, exc_info=True)
            cache.forget(kpi_id)
    return history.load_lags(session, kpi_id=kpi_id, targets=targets, lags=lags, step=step)


def _corroborated(frame: pd.DataFrame) -> pd.DataFrame:
    """Several KPIs of one element deviating together raise each deviating KPI's confidence."""
    if frame.empty:
        return frame
    combined = detect.corroborate(
        frame.rename(columns={"element_id": "element"})[
            ["element", "period_end", "kpi", "score", "confidence"]
        ]
    )
    combined = combined.rename(columns={"element": "element_id"})[
        ["element_id", "period_end", "kpis_deviating", "combined_confidence"]
    ]
    out = frame.merge(combined, on=["element_id", "period_end"], how="left")
    # Only KPIs that deviate on their own are lifted; the threshold is not re-applied, so
    # corroboration ranks alerts without turning a quiet KPI into one.
    lift = out["anomalous"] & (out["kpis_deviating"].fillna(0) > 1)
    out.loc[lift, "confidence"] = out.loc[lift, ["confidence", "combined_confidence"]].max(axis=1)
    return out.drop(columns=["kpis_deviating", "combined_confidence"])


def _score_kpi(
    loaded: history.KpiHistory,
    kpi: KpiInfo,
    *,
    targets: Sequence[datetime],
    config: detect.DetectorConfig,
    elements: pd.DataFrame,
) -> pd.DataFrame:
    """Own-history verdicts, peer comparison, and the peer baseline for cold starts."""
    target_index = pd.DatetimeIndex(pd.to_datetime(list(targets), utc=True))
    result = detect.detect_series_matrix(loaded.matrix, target_index, config)
    result = result.rename(columns={"series": "element_id"})
    result["element_id"] = result["element_id"].astype("int64")
    result["period_end"] = pd.to_datetime(result["period_end"], utc=True)
    meta = loaded.meta.copy()
    meta["period_end"] = pd.to_datetime(meta["period_end"], utc=True)
    meta["element_id"] = meta["element_id"].astype("int64")
    # Only rows that carry a measurement at the target: a missing value is no verdict.
    frame = meta.merge(result, on=["element_id", "period_end"], how="left")
    frame["kpi_id"] = kpi.id
    frame["kpi"] = kpi.name
    frame["peer_group"] = elements["peer_group"].reindex(frame["element_id"]).to_numpy()
    frame = _with_peers(frame)
    frame = _peer_baseline(frame, elements)
    frame["status"] = frame["status"].fillna("insufficient_data")
    frame["confidence"] = frame["confidence"].fillna(0.0).astype(float)
    frame.loc[frame["status"] != "ok", "confidence"] = 0.0
    frame["history"] = frame["history"].fillna(0).astype("int64")
    # A band reaching below 0 % (or above the valid maximum) reads as nonsense to humans.
    frame["band_low"] = frame["band_low"].clip(lower=kpi.valid_min, upper=kpi.valid_max)
    frame["band_high"] = frame["band_high"].clip(lower=kpi.valid_min, upper=kpi.valid_max)
    return frame


def _with_peers(frame: pd.DataFrame) -> pd.DataFrame:
    """Each element compared with its peer group at the same period (corroboration)."""
    peer_input = pd.DataFrame(
        {
            "series": frame["element_id"],
            "group": frame["peer_group"].fillna("ungrouped"),
            "period_end": frame["period_end"],
            "value": frame["observed"].where(frame["observed"].notna(), np.nan),
        }
    )
    peers = detect.peer_scores(peer_input)
    frame = frame.copy()
    for column in ("peer_median", "peer_spread", "peer_score", "peer_size"):
        frame[column] = peers[column].to_numpy() if column in peers else np.nan
    return frame


def _peer_baseline(frame: pd.DataFrame, elements: pd.DataFrame) -> pd.DataFrame:
    """Elements without own history are judged against their peers, with lower confidence."""
    own_missing = frame["status"].fillna("insufficient_data") == "insufficient_data"
    has_value = frame["observed"].notna()
    enough_peers = frame["peer_size"].fillna(0) >= MIN_PEERS
    use = own_missing & has_value & enough_peers & frame["peer_score"].notna()
    frame["baseline"] = np.where(use, "peers", "own")
    frame["cold"] = use | elements["is_new"].reindex(frame["element_id"]).fillna(False).to_numpy(
        dtype=bool
    )
    if not use.any():
        return frame
    spread = frame.loc[use, "peer_spread"].astype(float)
    median = frame.loc[use, "peer_median"].astype(float)
    frame.loc[use, "expected"] = median
    frame.loc[use, "band_low"] = median - 3.0 * spread
    frame.loc[use, "band_high"] = median + 3.0 * spread
    frame.loc[use, "score"] = frame.loc[use, "peer_score"].astype(float)
    frame.loc[use, "confidence"] = calibration.calibrated(
        frame.loc[use, "peer_score"].abs().to_numpy(dtype=float)
    )
    frame.loc[use, "history"] = frame.loc[use, "peer_size"].astype("int64")
    frame.loc[use, "status"] = "ok"
    return frame
