"""Incidents: open one by hand, list and read them, acknowledge, resolve, add notes."""

from __future__ import annotations

from services.api.blueprint import api, endpoint
from services.api.schemas.incidents import (
    IncidentDetailOut,
    IncidentIn,
    IncidentListItem,
    IncidentPage,
    IncidentPath,
    IncidentQuery,
    IncidentRecord,
    NoteIn,
    ResolveIn,
    TimelineEventOut,
)
from services.api.security import caller
from services.auth import OPERATE_ROLES, Scope
from services.db.models import utcnow
from services.incidents import lifecycle, triage
from services.incidents.queries import (
    IncidentFilters,
    incident_detail,
    incident_dict,
    list_incidents,
)
from services.notify.config import NotifyConfig, notify_config
from services.web.context import beacon

TAGS = ["incidents"]


@api.post("/incidents")
@endpoint(
    scope=Scope.ACT, roles=OPERATE_ROLES, resp=IncidentRecord, status=201, errors=(404,), tags=TAGS
)
def open_incident(json: IncidentIn) -> tuple[IncidentRecord, int]:
    """Open an incident by hand; it is routed to the owning team and escalation starts."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        incident = lifecycle.create_manual(
            session,
            title=json.title,
            severity=json.severity,
            actor=actor,
            now=utcnow(),
            summary=json.summary,
            domain=json.domain,
            region=json.region,
            team_id=json.team_id,
            external_ticket=json.external_ticket,
            config=_config(),
        )
        body = IncidentRecord.model_validate(incident_dict(incident))
    return body, 201


@api.get("/incidents")
@endpoint(scope=Scope.READ, resp=IncidentPage, tags=TAGS)
def get_incidents(query: IncidentQuery) -> IncidentPage:
    """Incidents, newest first, filtered and paginated."""
    filters = IncidentFilters(
        status=_split(query.status),
        severity=_split(query.severity),
        origin=_split(query.origin),
        domain=query.domain,
        team_id=query.team_id,
        ai_involved=query.ai_involved,
        text=query.text,
        since=query.since,
        until=query.until,
        open_only=query.open_only,
    )
    with beacon().db.session() as session:
        page = list_incidents(session, filters=filters, limit=query.limit, offset=query.offset)
        items = [
            IncidentListItem.model_validate(
                {**incident_dict(row), "team": page.teams.get(row.team_id or -1)}
            )
            for row in page.rows
        ]
    return IncidentPage(items=items, total=page.total, limit=query.limit, offset=query.offset)


@api.get("/incidents/<int:incident_id>")
@endpoint(scope=Scope.READ, resp=IncidentDetailOut, errors=(404,), tags=TAGS)
def get_incident(path: IncidentPath) -> IncidentDetailOut:
    """One incident with roles, timeline, linked anomalies, change windows and delivery log."""
    with beacon().db.session() as session:
        doc = incident_detail(session, incident_id=path.incident_id).as_dict()
    return IncidentDetailOut.model_validate(doc)


@api.post("/incidents/<int:incident_id>/acknowledge")
@endpoint(
    scope=Scope.ACT,
    roles=OPERATE_ROLES,
    resp=IncidentRecord,
    errors=(404, 409),
    tags=TAGS,
)
def acknowledge_incident(path: IncidentPath) -> IncidentRecord:
    """Someone is on it: paging stops (reminders follow while it stays unresolved)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        incident = lifecycle.acknowledge(
            session, incident_id=path.incident_id, actor=actor, now=utcnow(), config=_config()
        )
        return IncidentRecord.model_validate(incident_dict(incident))


@api.post("/incidents/<int:incident_id>/resolve")
@endpoint(
    scope=Scope.ACT,
    roles=OPERATE_ROLES,
    resp=IncidentRecord,
    errors=(404, 409),
    tags=TAGS,
)
def resolve_incident(path: IncidentPath, json: ResolveIn) -> IncidentRecord:
    """Close the incident; the resolution note is required (422 without one)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        incident = lifecycle.resolve(
            session,
            incident_id=path.incident_id,
            actor=actor,
            note=json.note,
            now=utcnow(),
            config=_config(),
        )
        return IncidentRecord.model_validate(incident_dict(incident))


@api.post("/incidents/<int:incident_id>/notes")
@endpoint(
    scope=Scope.ACT,
    roles=OPERATE_ROLES,
    resp=TimelineEventOut,
    status=201,
    errors=(404,),
    tags=TAGS,
)
def add_incident_note(path: IncidentPath, json: NoteIn) -> tuple[TimelineEventOut, int]:
    """Add a line to the incident's timeline (also after resolution, for the review)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        event = triage.add_note(
            session, incident_id=path.incident_id, text=json.text, actor=actor, now=utcnow()
        )
        body = TimelineEventOut(
            at=event.at, kind=event.kind, actor=event.actor, text=event.text, data=event.data
        )
    return body, 201


def _config() -> NotifyConfig:
    """The deployment's channels, so status changes reach its webhooks and mailboxes."""
    return notify_config(beacon().settings)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(value.split(",")) if value else ()
