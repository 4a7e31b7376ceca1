"""An incident's timeline: every anomaly, decision, action, note and escalation, in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import IncidentEvent, utcnow

KINDS = (
    "created",
    "status",
    "note",
    "anomaly",
    "alarm",
    "decision",
    "action",
    "escalation",
    "notification",
    "role",
    "change_window",
    "ticket",
    "triage",
    "heartbeat",
)


def add_event(
    session: Session,
    *,
    incident_id: int,
    kind: str,
    text: str,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> IncidentEvent:
    """Append one line to the timeline in the caller's transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown timeline kind {kind!r}")
    event = IncidentEvent(
        incident_id=incident_id,
        kind=kind,
        actor=actor,
        text=text,
        data=dict(data or {}),
        at=at or utcnow(),
    )
    session.add(event)
    session.flush()
    return event


def events(
    session: Session, *, incident_id: int, kinds: Sequence[str] | None = None
) -> list[IncidentEvent]:
    """The timeline oldest first, optionally only some kinds."""
    query = select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
    if kinds:
        query = query.where(IncidentEvent.kind.in_(list(kinds)))
    return list(session.scalars(query.order_by(IncidentEvent.at, IncidentEvent.id)))


def latest(session: Session, *, incident_id: int, kind: str) -> IncidentEvent | None:
    """The newest event of one kind, if any."""
    return session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == kind)
        .order_by(IncidentEvent.at.desc(), IncidentEvent.id.desc())
        .limit(1)
    ).first()
