"""Reading incidents: a filtered list and one incident's full detail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from services.db.models import (
    Anomaly,
    ChangeWindow,
    EscalationPolicy,
    Incident,
    IncidentChangeWindow,
    IncidentEvent,
    IncidentRole,
    Notification,
    Team,
)
from services.errors import InvalidInput
from services.incidents import lifecycle, states, timeline
from services.notify import outbox
from services.oncall.schedules import PersonRef, people_by_id

MAX_LIMIT = 500


@dataclass(frozen=True)
class IncidentFilters:
    """What the list shows; every field optional."""

    status: Sequence[str] = ()
    severity: Sequence[str] = ()
    origin: Sequence[str] = ()
    domain: str | None = None
    team_id: int | None = None
    ai_involved: bool | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    open_only: bool = False


@dataclass(frozen=True)
class IncidentPage:
    """One page of the list and how many incidents match in all."""

    rows: list[Incident]
    total: int
    teams: dict[int, str]


@dataclass(frozen=True)
class IncidentDetail:
    """Everything the detail page shows."""

    incident: Incident
    team: str | None
    policy: str | None
    roles: dict[str, PersonRef]
    timeline: list[IncidentEvent]
    anomalies: list[Anomaly]
    change_windows: list[ChangeWindow]
    notifications: list[Notification]

    def as_dict(self) -> dict[str, Any]:
        """The REST shape of an incident with its roles, timeline and delivery log."""
        return {
            **incident_dict(self.incident),
            "team": self.team,
            "escalation_policy": self.policy,
            "roles": {role: person.as_dict() for role, person in self.roles.items()},
            "timeline": [
                {"at": _iso(e.at), "kind": e.kind, "actor": e.actor, "text": e.text, "data": e.data}
                for e in self.timeline
            ],
            "anomalies": [a.id for a in self.anomalies],
            "change_windows": [
                {"id": w.id, "title": w.title, "kind": w.kind} for w in self.change_windows
            ],
            "notifications": [notification_dict(n) for n in self.notifications],
        }


def list_incidents(
    session: Session, *, filters: IncidentFilters | None = None, limit: int = 100, offset: int = 0
) -> IncidentPage:
    """Incidents matching the filters, newest first, with the total count."""
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput(f"Ask for 1 to {MAX_LIMIT} incidents from a non-negative offset.")
    query = _filtered(filters or IncidentFilters())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(
            query.order_by(Incident.created_at.desc(), Incident.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    team_ids = {r.team_id for r in rows if r.team_id is not None}
    teams = (
        {i: n for i, n in session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids)))}
        if team_ids
        else {}
    )
    return IncidentPage(rows=rows, total=int(total), teams=teams)


def incident_detail(session: Session, *, incident_id: int) -> IncidentDetail:
    """One incident with team, policy, roles, timeline, anomalies, changes and deliveries."""
    incident = lifecycle.get_incident(session, incident_id=incident_id)
    team = None if incident.team_id is None else session.get(Team, incident.team_id)
    policy = (
        None
        if incident.escalation_policy_id is None
        else session.get(EscalationPolicy, incident.escalation_policy_id)
    )
    role_rows = list(
        session.scalars(select(IncidentRole).where(IncidentRole.incident_id == incident.id))
    )
    people = people_by_id(session, ids={r.person_id for r in role_rows})
    roles = {r.role: people[r.person_id] for r in role_rows if r.person_id in people}
    windows = list(
        session.scalars(
            select(ChangeWindow)
            .join(IncidentChangeWindow, IncidentChangeWindow.change_window_id == ChangeWindow.id)
            .where(IncidentChangeWindow.incident_id == incident.id)
            .order_by(ChangeWindow.starts_at)
        )
    )
    anomalies = list(
        session.scalars(
            select(Anomaly).where(Anomaly.incident_id == incident.id).order_by(Anomaly.id)
        )
    )
    return IncidentDetail(
        incident=incident,
        team=None if team is None else team.name,
        policy=None if policy is None else policy.name,
        roles=roles,
        timeline=timeline.events(session, incident_id=incident.id),
        anomalies=anomalies,
        change_windows=windows,
        notifications=outbox.delivery_log(session, incident_id=incident.id),
    )


def ai_triage_counts(session: Session, *, since: datetime | None = None) -> dict[str, int]:
    """How often AI detected, recommended and was right, over resolved incidents (adoption)."""
    query = select(Incident).where(Incident.status == "resolved")
    if since is not None:
        query = query.where(Incident.resolved_at >= since)
    counts = dict.fromkeys(
        ("resolved", "ai_detected", "ai_recommended", "ai_right", "ai_wrong", "unjudged"), 0
    )
    for row in session.scalars(query):
        counts["resolved"] += 1
        counts["ai_detected"] += bool(row.ai_detected)
        counts["ai_recommended"] += bool(row.ai_recommended)
        involved = bool(row.ai_detected or row.ai_recommended)
        if involved and row.ai_correct is None:
            counts["unjudged"] += 1
        elif involved:
            counts["ai_right" if row.ai_correct else "ai_wrong"] += 1
    return counts


def incident_dict(incident: Incident) -> dict[str, Any]:
    """An incident's own fields, JSON-ready."""
    return {
        "id": incident.id,
        "title": incident.title,
        "summary": incident.summary,
        "severity": incident.severity,
        "status": incident.status,
        "origin": incident.origin,
        "domain": incident.domain,
        "team_id": incident.team_id,
        "external_ticket": incident.external_ticket,
        "ai_detected": incident.ai_detected,
        "ai_recommended": incident.ai_recommended,
        "ai_correct": incident.ai_correct,
        "created_by": incident.created_by,
        "created_at": _iso(incident.created_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "mitigated_at": _iso(incident.mitigated_at),
        "resolved_at": _iso(incident.resolved_at),
        "resolved_by": incident.resolved_by,
        "resolution_note": incident.resolution_note,
        "escalation": {
            "position": incident.escalation_position,
            "round": incident.escalation_round,
            "next_at": _iso(incident.next_escalation_at),
        },
    }


def notification_dict(row: Notification) -> dict[str, Any]:
    """One delivery-log line (the payload stays server-side)."""
    return {
        "id": row.id,
        "notifier": row.notifier,
        "target": row.target,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at),
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "delivered_at": _iso(row.delivered_at),
    }


def _filtered(filters: IncidentFilters) -> Select[tuple[Incident]]:
    query = select(Incident)
    for values, column, known in (
        (filters.status, Incident.status, states.STATUSES),
        (filters.severity, Incident.severity, states.SEVERITIES),
        (filters.origin, Incident.origin, states.ORIGINS),
    ):
        if values:
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise InvalidInput(f"Unknown filter value {unknown[0]!r}.")
            query = query.where(column.in_(list(values)))
    if filters.open_only:
        query = query.where(Incident.status.in_(states.OPEN_STATES))
    if filters.domain:
        query = query.where(func.lower(Incident.domain) == filters.domain.strip().lower())
    if filters.team_id is not None:
        query = query.where(Incident.team_id == filters.team_id)
    if filters.ai_involved is True:
        query = query.where(or_(Incident.ai_detected.is_(True), Incident.ai_recommended.is_(True)))
    elif filters.ai_involved is False:
        query = query.where(
            or_(Incident.ai_detected.is_(None), Incident.ai_detected.is_(False)),
            or_(Incident.ai_recommended.is_(None), Incident.ai_recommended.is_(False)),
        )
    if filters.text:
        pattern = f"%{filters.text.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Incident.title).like(pattern),
                func.lower(func.coalesce(Incident.external_ticket, "")).like(pattern),
            )
        )
    if filters.since is not None:
        query = query.where(Incident.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(Incident.created_at < filters.until)
    return query


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
