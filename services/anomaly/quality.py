"""Data quality behind each verdict: flags, a confidence factor, and a sentence for humans.

The factor multiplies the detector's calibrated confidence: a verdict standing on gappy,
stale, late, drifting, suspect or cold-start data is reported with less confidence, so
fewer such verdicts cross the alert threshold (graceful degradation, not silence).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.db.models import DataGap, DataHealthEvent, Element, Source

FLAGS = ("gap", "stale_source", "late_data", "drift", "cold_start", "suspect", "revised")
# How much each condition erodes confidence; chosen so one weak signal still alerts when
# the deviation is clear, while two or more keep borderline cases below the threshold.
FACTORS = {
    "gap": 0.85,
    "stale_source": 0.6,
    "late_data": 0.9,
    "drift": 0.7,
    # A new element alerts only on the clearest peer deviation (the calibration table tops
    # out near 0.83, and 0.83 x 0.65 still reaches the 0.5 default); any second flag stops it.
    "cold_start": 0.65,
    "suspect": 0.7,
    "revised": 1.0,
}
TEXT = {
    "gap": "recent periods are missing",
    "stale_source": "the source has gone quiet",
    "late_data": "the value arrived late",
    "drift": "a data drift event affects this element",
    "cold_start": "the element has little history of its own (peer baseline)",
    "suspect": "the source flagged the value as suspect",
    "revised": "re-evaluated after late or corrected data",
}
# Look this far back for gaps that thin the baseline the detector just used.
GAP_LOOKBACK = timedelta(days=1)
# Drift changes what "normal" means for about a week of baseline.
DRIFT_LOOKBACK = timedelta(days=7)
# A stale source matters for the periods of the last couple of hours, not for history.
STALE_RECENT = timedelta(hours=2)


def factor_for(flags: Iterable[str]) -> float:
    """The product of the factors of the given flags (1.0 for clean data)."""
    factor = 1.0
    for flag in set(flags):
        factor *= FACTORS.get(flag, 1.0)
    return round(factor, 4)


def describe(flags: Iterable[str], history_points: int | None = None) -> str:
    """One plain sentence about the data a verdict stood on."""
    present = [f for f in FLAGS if f in set(flags)]
    history = f" ({history_points} reference points)" if history_points is not None else ""
    if not present:
        return f"Data complete and on time{history}."
    parts = [TEXT[f] for f in present]
    return f"Confidence lowered: {'; '.join(parts)}{history}."


def quality_dict(flags: Iterable[str], history_points: int) -> dict[str, object]:
    """The data_quality document stored on an episode."""
    ordered = [f for f in FLAGS if f in set(flags)]
    return {
        "flags": ordered,
        "factor": factor_for(ordered),
        "history_points": int(history_points),
        "text": describe(ordered, history_points),
    }


@dataclass(frozen=True)
class QualityInputs:
    """Elements affected by each condition around one KPI's evaluated periods."""

    gaps: dict[int, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    source_gaps: dict[int, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    stale_sources: frozenset[int] = frozenset()
    drift: dict[int, list[datetime]] = field(default_factory=dict)
    cold: frozenset[int] = frozenset()


def flag_frame(frame: pd.DataFrame, inputs: QualityInputs, *, now: datetime) -> pd.DataFrame:
    """Add `flags` (tuple) and `dq_factor` to verdict rows.

    Rows need element_id, period_end, source_id, late, suspect; the detector's own
    cold-start signal (status from a peer baseline) comes in as `cold` when present.
    """
    flags: list[tuple[str, ...]] = []
    cols = ["element_id", "period_end", "source_id", "late", "suspect"]
    cold_col = frame["cold"] if "cold" in frame else pd.Series(False, index=frame.index)
    for (element_id, period, source_id, late, suspect), cold in zip(
        frame[cols].itertuples(index=False, name=None), cold_col, strict=True
    ):
        period = pd.Timestamp(period).to_pydatetime()
        found: list[str] = []
        spans = inputs.gaps.get(int(element_id), [])
        if not pd.isna(source_id):
            spans = spans + inputs.source_gaps.get(int(source_id), [])
        if any(start <= period and end >= period - GAP_LOOKBACK for start, end in spans):
            found.append("gap")
        recent = period >= now - STALE_RECENT
        if recent and not pd.isna(source_id) and int(source_id) in inputs.stale_sources:
            found.append("stale_source")
        if bool(late):
            found.append("late_data")
        detected = inputs.drift.get(int(element_id), [])
        if any(period - DRIFT_LOOKBACK <= at <= period for at in detected):
            found.append("drift")
        if int(element_id) in inputs.cold or bool(cold):
            found.append("cold_start")
        if bool(suspect):
            found.append("suspect")
        flags.append(tuple(found))
    out = frame.copy()
    out["flags"] = flags
    out["dq_factor"] = [factor_for(f) for f in flags]
    return out


def load_inputs(
    session: Session,
    *,
    kpi_id: int,
    element_ids: Iterable[int],
    start: datetime,
    end: datetime,
) -> QualityInputs:
    """Gaps, stale sources, drift events and new elements relevant to [start, end]."""
    ids = sorted({int(e) for e in element_ids})
    gaps: dict[int, list[tuple[datetime, datetime]]] = {}
    source_gaps: dict[int, list[tuple[datetime, datetime]]] = {}
    rows = session.execute(
        select(DataGap.element_id, DataGap.source_id, DataGap.period_start, DataGap.period_end)
        .where(DataGap.period_end >= start - GAP_LOOKBACK, DataGap.period_start <= end)
        .where(or_(DataGap.kpi_id.is_(None), DataGap.kpi_id == kpi_id))
    ).all()
    for element_id, source_id, gap_start, gap_end in rows:
        target = source_gaps.setdefault(source_id, []) if element_id is None else None
        if target is None:
            target = gaps.setdefault(element_id, [])
        target.append((gap_start, gap_end))
    stale = frozenset(session.scalars(select(Source.id).where(Source.status == "stale")))
    elements = session.execute(
        select(Element.id, Element.vendor, Element.sw_version, Element.is_new).where(
            Element.id.in_(ids)
        )
    ).all()
    events = session.execute(
        select(
            DataHealthEvent.element_id,
            DataHealthEvent.kpi_id,
            DataHealthEvent.vendor,
            DataHealthEvent.sw_version,
            DataHealthEvent.detected_at,
        ).where(
            DataHealthEvent.kind.in_(("value_drift", "schema_drift")),
            DataHealthEvent.detected_at <= end,
            DataHealthEvent.detected_at >= start - DRIFT_LOOKBACK,
        )
    ).all()
    drift: dict[int, list[datetime]] = {}
    for element_id, vendor, sw_version, _is_new in elements:
        for ev_element, ev_kpi, ev_vendor, ev_version, detected in events:
            if ev_kpi is not None and ev_kpi != kpi_id:
                continue
            if ev_element is not None:
                hit = ev_element == element_id
            else:
                hit = ev_vendor is not None and ev_vendor == vendor
                hit = hit and (ev_version is None or ev_version == sw_version)
            if hit:
                drift.setdefault(element_id, []).append(detected)
    cold = frozenset(e for e, _v, _s, is_new in elements if is_new)
    return QualityInputs(
        gaps=gaps, source_gaps=source_gaps, stale_sources=stale, drift=drift, cold=cold
    )
