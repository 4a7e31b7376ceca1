"""What disagreement reviews taught the detector: new normals and bad-data windows.

A review outcome is stored as a DataHealthEvent (services/decisions/learning.py). The
detector reads them back here before scoring a KPI:

- "new_normal" (since T): the element's history before T no longer describes normal, so
  it is left out of the baseline; the series is scored as young from T on (a matching past
  day, then the weekly profile as it rebuilds), and the new level becomes expected.
- "data_issue" (window): the values in the window were bad data, so they are left out of
  every later baseline; the periods being scored keep their own values.

Both only hide history; nothing stored is changed, so an adjustment is undone by deleting
its event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import or_, select, true
from sqlalchemy.orm import Session

from services.anomaly.history import KpiHistory
from services.db.models import DataHealthEvent

Window = tuple[datetime, datetime]


@dataclass(frozen=True)
class Reviewed:
    """Per element of one KPI: the newest new-normal start and the bad-data windows."""

    resets: dict[int, datetime] = field(default_factory=dict)
    issues: dict[int, list[Window]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.resets or self.issues)


def load_reviewed(session: Session, *, kpi_id: int | None) -> Reviewed:
    """Every reviewed adjustment that applies to the KPI (events without a KPI apply to all).

    With `kpi_id` None, the adjustments of every KPI.
    """
    rows = session.execute(
        select(
            DataHealthEvent.kind,
            DataHealthEvent.element_id,
            DataHealthEvent.details,
        )
        .where(
            DataHealthEvent.kind.in_(("new_normal", "data_issue")),
            DataHealthEvent.element_id.is_not(None),
            true()
            if kpi_id is None
            else or_(DataHealthEvent.kpi_id == kpi_id, DataHealthEvent.kpi_id.is_(None)),
        )
        .order_by(DataHealthEvent.detected_at, DataHealthEvent.id)
    ).all()
    resets: dict[int, datetime] = {}
    issues: dict[int, list[Window]] = {}
    for kind, element_id, details in rows:
        details = details or {}
        if kind == "new_normal" and details.get("since"):
            since = _utc(details["since"])
            # The newest review wins: a later new normal replaces an earlier one.
            resets[int(element_id)] = since
        elif kind == "data_issue" and details.get("window"):
            start, end = details["window"]
            issues.setdefault(int(element_id), []).append((_utc(start), _utc(end)))
    return Reviewed(resets=resets, issues={k: sorted(v) for k, v in issues.items()})


def hide_reviewed_history(
    loaded: KpiHistory, reviewed: Reviewed, *, targets: Sequence[datetime]
) -> KpiHistory:
    """The KPI's lag matrix without the history reviews ruled out (a copy when changed)."""
    matrix = loaded.matrix
    elements = set(reviewed.resets) | set(reviewed.issues)
    rows = [e for e in matrix.index if int(e) in elements] if len(matrix) else []
    if not rows:
        return loaded
    columns = pd.DatetimeIndex(pd.to_datetime(matrix.columns, utc=True))
    target_columns = columns.isin(pd.DatetimeIndex(pd.to_datetime(list(targets), utc=True)))
    values = matrix.to_numpy(dtype=np.float64, copy=True)
    position = {e: i for i, e in enumerate(matrix.index)}
    for element in rows:
        hide = np.zeros(len(columns), dtype=bool)
        since = reviewed.resets.get(int(element))
        if since is not None:
            hide |= np.asarray(columns < pd.Timestamp(since))
        for start, end in reviewed.issues.get(int(element), ()):
            inside = (columns >= pd.Timestamp(start)) & (columns <= pd.Timestamp(end))
            hide |= np.asarray(inside) & ~target_columns
        values[position[element], hide] = np.nan
    masked = pd.DataFrame(values, index=matrix.index, columns=matrix.columns)
    return replace(loaded, matrix=masked)


def resets_for(session: Session, *, kpi_id: int, element_ids: Sequence[int]) -> dict[int, datetime]:
    """The newest new-normal start per element of the KPI."""
    wanted = {int(e) for e in element_ids}
    resets = load_reviewed(session, kpi_id=kpi_id).resets
    return {e: since for e, since in resets.items() if e in wanted}


def issues_for(session: Session, *, kpi_id: int | None, element_id: int) -> list[Window]:
    """Bad-data windows a review marked on the element (for the KPI, or any KPI with None)."""
    return load_reviewed(session, kpi_id=kpi_id).issues.get(int(element_id), [])


def _utc(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
