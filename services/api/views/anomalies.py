"""Anomaly episodes: the filtered feed, one episode in full, and feedback on it."""

from __future__ import annotations

from dataclasses import asdict

from services.anomaly import actions, feed
from services.api.blueprint import api, endpoint
from services.api.schemas.anomalies import (
    AnomalyDetail,
    AnomalyOut,
    AnomalyPage,
    AnomalyPath,
    AnomalyQuery,
    ElementRef,
    FeedbackIn,
    FeedbackOut,
    HistoryOut,
    IncidentOut,
)
from services.api.security import caller
from services.auth import OPERATE_ROLES, Scope
from services.db.models import User
from services.web.context import beacon


@api.get("/anomalies")
@endpoint(scope=Scope.READ, resp=AnomalyPage, tags=["anomalies"])
def list_anomalies(query: AnomalyQuery) -> AnomalyPage:
    """Anomaly episodes, newest start first, filtered and paginated."""
    filters = feed.FeedFilters(
        severities=tuple((query.severity or "").split(",")) if query.severity else (),
        statuses=tuple((query.status or "").split(",")) if query.status else (),
        min_confidence=query.min_confidence,
        ongoing=query.ongoing,
        suppressed=query.suppressed,
        region=query.region,
        domain=query.domain,
        kpi=query.kpi,
        element=query.element,
        since=query.since,
        until=query.until,
    )
    with beacon().db.session() as session:
        page = feed.list_episodes(session, filters=filters, limit=query.limit, offset=query.offset)
    return AnomalyPage(
        items=[AnomalyOut.model_validate(_fields(row)) for row in page.rows],
        total=page.total,
        limit=query.limit,
        offset=query.offset,
    )


@api.get("/anomalies/<int:anomaly_id>")
@endpoint(scope=Scope.READ, resp=AnomalyDetail, errors=(404,), tags=["anomalies"])
def get_anomaly(path: AnomalyPath) -> AnomalyDetail:
    """One episode with its explanation, data quality, verdicts, audited actions and incident."""
    with beacon().db.session() as session:
        detail = feed.episode_detail(session, anomaly_id=path.anomaly_id)
    incident = detail.incident
    return AnomalyDetail.model_validate(
        {
            **_fields(detail.episode),
            "explanation": detail.explanation,
            "data_quality": detail.data_quality,
            "feedback": [
                FeedbackOut(
                    id=f.id,
                    anomaly_id=detail.episode.id,
                    label=f.label,  # type: ignore[arg-type]
                    note=f.note,
                    user=f.user,
                    created_at=f.created_at,
                )
                for f in detail.feedback
            ],
            "history": [
                HistoryOut(at=h.at, actor=h.actor, role=h.role, action=h.action, after=h.after)
                for h in detail.history
            ],
            "incident": IncidentOut(**asdict(incident)) if incident is not None else None,
            "group": [g.id for g in detail.group],
        }
    )


@api.post("/anomalies/<int:anomaly_id>/feedback")
@endpoint(
    scope=Scope.ACT,
    roles=OPERATE_ROLES,
    resp=FeedbackOut,
    status=201,
    errors=(404,),
    tags=["anomalies"],
)
def post_feedback(path: AnomalyPath, json: FeedbackIn) -> tuple[FeedbackOut, int]:
    """Record a verdict on an episode (true anomaly, expected, not an anomaly, new normal)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        stored = actions.give_feedback(
            session, anomaly_id=path.anomaly_id, label=json.label, note=json.note, actor=actor
        )
        user = session.get(User, stored.user_id) if stored.user_id is not None else None
        body = FeedbackOut(
            id=stored.id,
            anomaly_id=stored.anomaly_id,
            label=stored.label,  # type: ignore[arg-type]
            note=stored.note,
            user=user.username if user is not None else None,
            created_at=stored.created_at,
        )
    return body, 201


def _fields(row: feed.EpisodeRow) -> dict[str, object]:
    return {
        "id": row.id,
        "element": ElementRef(
            id=row.element_id,
            name=row.element,
            dn=row.dn,
            element_type=row.element_type,
            region=row.region,
            domain=row.domain,
        ),
        "kpi": row.kpi,
        "unit": row.unit,
        "severity": row.severity,
        "confidence": row.confidence,
        "score": row.score,
        "observed": row.observed,
        "expected": row.expected,
        "band_low": row.band_low,
        "band_high": row.band_high,
        "status": row.status,
        "ongoing": row.ongoing,
        "started_at": row.started_at,
        "peak_at": row.peak_at,
        "ended_at": row.ended_at,
        "last_evaluated_at": row.last_evaluated_at,
        "acknowledged_at": row.acknowledged_at,
        "suppressed": row.suppressed,
        "suppressed_reason": row.suppressed_reason,
        "revised": row.revised,
        "incident_id": row.incident_id,
        "group_key": row.group_key,
        "related_kpis": row.related_kpis,
        "data_quality_flags": row.flags,
        "summary": row.summary,
        "detector": row.detector,
        "model_version": row.model_version,
    }
