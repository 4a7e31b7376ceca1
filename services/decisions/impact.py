"""Incidents with AI involvement, and MTTA/MTTR before and after AI on comparable incidents.

"Before" is every incident of the domain opened before the use case first advised anyone
(its first non-shadow recommendation); "after" is the AI-involved incidents opened since.
Comparable means same severity: both groups are restricted to the severities they share
and averaged with the same weights (the "after" group's severity mix), so a month of
minor incidents never flatters a month of critical ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.db.models import Anomaly, Incident, Recommendation, UseCase


def use_case_incidents(session: Session, *, case: UseCase, now: datetime) -> dict[str, Any]:
    """Incidents the use case's recommendations touched, and MTTA/MTTR before vs after it."""
    involved = set(
        session.scalars(
            select(Anomaly.incident_id)
            .join(Recommendation, Recommendation.anomaly_id == Anomaly.id)
            .where(Recommendation.use_case_id == case.id, Anomaly.incident_id.is_not(None))
        )
    )
    cutover = session.scalar(
        select(func.min(Recommendation.created_at)).where(
            Recommendation.use_case_id == case.id, Recommendation.maturity_level >= 1
        )
    )
    domain = func.lower(func.coalesce(Incident.domain, "")) == (case.domain or "").lower()
    return _compare(session, involved=involved, cutover=cutover, scope=domain, now=now)


def network_incidents(session: Session, *, now: datetime) -> dict[str, Any]:
    """Incidents with AI involvement anywhere, and MTTA/MTTR before vs after AI network-wide."""
    linked = set(
        session.scalars(select(Anomaly.incident_id).where(Anomaly.incident_id.is_not(None)))
    )
    flagged = set(
        session.scalars(
            select(Incident.id).where(
                or_(Incident.ai_detected.is_(True), Incident.ai_recommended.is_(True))
            )
        )
    )
    cutover = session.scalar(
        select(func.min(Recommendation.created_at)).where(Recommendation.maturity_level >= 1)
    )
    return _compare(session, involved=linked | flagged, cutover=cutover, scope=None, now=now)


def _compare(
    session: Session, *, involved: set[int], cutover: datetime | None, scope: Any, now: datetime
) -> dict[str, Any]:
    query = select(
        Incident.id,
        Incident.severity,
        Incident.created_at,
        Incident.acknowledged_at,
        Incident.resolved_at,
    ).where(Incident.created_at <= now)
    if scope is not None:
        query = query.where(scope | Incident.id.in_(sorted(involved) or [-1]))
    rows = session.execute(query).all()
    after = [r for r in rows if r.id in involved and (cutover is None or r.created_at >= cutover)]
    before = [] if cutover is None else [r for r in rows if r.created_at < cutover]
    common = sorted({r.severity for r in after} & {r.severity for r in before})
    weights = {s: sum(1 for r in after if r.severity == s) for s in common}
    return {
        "with_ai": len([r for r in rows if r.id in involved]),
        "total": len(rows),
        "cutover": None if cutover is None else cutover.isoformat(),
        "comparable_severities": common,
        "before": _times(before, weights),
        "after": _times(after, weights),
    }


def _times(rows: list[Any], weights: dict[str, int]) -> dict[str, Any]:
    inside = [r for r in rows if r.severity in weights]
    return {
        "incidents": len(inside),
        "mtta_minutes": _weighted(inside, weights, "acknowledged_at"),
        "mttr_minutes": _weighted(inside, weights, "resolved_at"),
    }


def _weighted(rows: list[Any], weights: dict[str, int], column: str) -> float | None:
    total, weight = 0.0, 0
    for severity, w in weights.items():
        spans = [
            (getattr(r, column) - r.created_at).total_seconds() / 60
            for r in rows
            if r.severity == severity and getattr(r, column) is not None
        ]
        if spans:
            total += w * sum(spans) / len(spans)
            weight += w
    return None if weight == 0 else round(total / weight, 1)
