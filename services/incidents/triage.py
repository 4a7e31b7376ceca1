"""Working an incident: roles, notes, change windows, external ticket, "AI involved" fields."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.db.models import (
    ChangeWindow,
    Incident,
    IncidentChangeWindow,
    IncidentEvent,
    IncidentRole,
    Person,
    utcnow,
)
from services.errors import Conflict, InvalidInput, NotFound
from services.incidents import lifecycle, states, timeline

ROLES = ("commander", "ai_liaison", "scribe")
ROLE_TEXT = {"commander": "Incident commander", "ai_liaison": "AI liaison", "scribe": "Scribe"}
MAX_NOTE = 4000
TICKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,99}$")


def assign_role(
    session: Session,
    *,
    incident_id: int,
    role: str,
    person_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> IncidentRole:
    """Give a person a role on an open incident, replacing whoever held it (audited)."""
    states.require_responder(actor)
    if role not in ROLES:
        raise InvalidInput(f"Choose a role: {', '.join(ROLES)}.")
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"There is no person #{person_id}.")
    incident = _open(session, incident_id)
    row = session.scalar(
        select(IncidentRole).where(
            IncidentRole.incident_id == incident.id, IncidentRole.role == role
        )
    )
    before = None if row is None else row.person_id
    if before == person.id:
        raise Conflict(f"{person.name} is already {ROLE_TEXT[role].lower()}.")
    if row is None:
        row = IncidentRole(incident_id=incident.id, role=role, person_id=person.id)
        session.add(row)
    else:
        row.person_id = person.id
    session.flush()
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="role",
        actor=actor.name,
        text=f"{ROLE_TEXT[role]}: {person.name}",
        data={"role": role, "person_id": person.id, "previous": before},
        at=now,
    )
    _audit(session, actor, "incident.role.assign", incident.id, {role: before}, {role: person.id})
    return row


def clear_role(
    session: Session, *, incident_id: int, role: str, actor: Actor, now: datetime | None = None
) -> None:
    """Take a role off the incident (audited)."""
    states.require_responder(actor)
    incident = _open(session, incident_id)
    row = session.scalar(
        select(IncidentRole).where(
            IncidentRole.incident_id == incident.id, IncidentRole.role == role
        )
    )
    if row is None:
        raise NotFound(f"Nobody holds the {role} role on incident #{incident.id}.")
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="role",
        actor=actor.name,
        text=f"{ROLE_TEXT.get(role, role)} cleared",
        data={"role": role, "person_id": None, "previous": row.person_id},
        at=now,
    )
    _audit(session, actor, "incident.role.clear", incident.id, {role: row.person_id}, {role: None})
    session.delete(row)


def add_note(
    session: Session, *, incident_id: int, text: str, actor: Actor, now: datetime | None = None
) -> IncidentEvent:
    """A free-text line on the timeline (also allowed after resolution, for the review)."""
    states.require_responder(actor)
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Write something in the note.")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"Keep the note under {MAX_NOTE} characters.")
    incident = lifecycle.get_incident(session, incident_id=incident_id)
    event = timeline.add_event(
        session, incident_id=incident.id, kind="note", actor=actor.name, text=text, at=now
    )
    _audit(session, actor, "incident.note", incident.id, None, {"event_id": event.id, "text": text})
    return event


def link_change_window(
    session: Session,
    *,
    incident_id: int,
    change_window_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> IncidentChangeWindow:
    """Relate a planned change or freeze to the incident (audited)."""
    states.require_responder(actor)
    incident = lifecycle.get_incident(session, incident_id=incident_id)
    window = session.get(ChangeWindow, change_window_id)
    if window is None:
        raise NotFound(f"There is no change window #{change_window_id}.")
    exists = session.scalar(
        select(IncidentChangeWindow.id).where(
            IncidentChangeWindow.incident_id == incident.id,
            IncidentChangeWindow.change_window_id == window.id,
        )
    )
    if exists is not None:
        raise Conflict(f"Change window #{window.id} is already linked.")
    row = IncidentChangeWindow(incident_id=incident.id, change_window_id=window.id)
    session.add(row)
    session.flush()
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="change_window",
        actor=actor.name,
        text=f"Linked {window.kind} window #{window.id}: {window.title}",
        data={"change_window_id": window.id},
        at=now,
    )
    _audit(session, actor, "incident.change_window.link", incident.id, None, {"id": window.id})
    return row


def unlink_change_window(
    session: Session,
    *,
    incident_id: int,
    change_window_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Remove a change-window link (audited)."""
    states.require_responder(actor)
    incident = lifecycle.get_incident(session, incident_id=incident_id)
    row = session.scalar(
        select(IncidentChangeWindow).where(
            IncidentChangeWindow.incident_id == incident.id,
            IncidentChangeWindow.change_window_id == change_window_id,
        )
    )
    if row is None:
        raise NotFound(f"Change window #{change_window_id} is not linked to this incident.")
    session.delete(row)
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="change_window",
        actor=actor.name,
        text=f"Unlinked change window #{change_window_id}",
        data={"change_window_id": change_window_id, "removed": True},
        at=now,
    )
    _audit(
        session, actor, "incident.change_window.unlink", incident.id, {"id": change_window_id}, None
    )


def set_external_ticket(
    session: Session,
    *,
    incident_id: int,
    ticket: str | None,
    actor: Actor,
    now: datetime | None = None,
) -> Incident:
    """Record (or clear, with None or "") the ticket id in an external ticketing system."""
    states.require_responder(actor)
    value = (ticket or "").strip() or None
    if value is not None and not TICKET_RE.match(value):
        raise InvalidInput("A ticket id is letters, digits and . _ : # / - (at most 100).")
    incident = lifecycle.get_incident(session, incident_id=incident_id)
    if incident.external_ticket == value:
        raise Conflict("The incident already has that ticket id.")
    before, incident.external_ticket = incident.external_ticket, value
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="ticket",
        actor=actor.name,
        text=f"External ticket: {value}" if value else "External ticket cleared",
        data={"ticket": value, "previous": before},
        at=now,
    )
    _audit(session, actor, "incident.ticket", incident.id, {"ticket": before}, {"ticket": value})
    return incident


def set_ai_triage(
    session: Session,
    *,
    incident_id: int,
    actor: Actor,
    ai_detected: bool | None,
    ai_recommended: bool | None,
    ai_correct: bool | None,
    now: datetime | None = None,
) -> Incident:
    """Did AI detect it, did it recommend, was it right (None: not known yet); audited."""
    states.require_responder(actor)
    if ai_correct is not None and not (ai_detected or ai_recommended):
        raise InvalidInput("'Was the AI right' applies only when the AI detected or recommended.")
    incident = lifecycle.get_incident(session, incident_id=incident_id)
    before = _triage(incident)
    incident.ai_detected, incident.ai_recommended = ai_detected, ai_recommended
    incident.ai_correct = ai_correct
    after = _triage(incident)
    if before == after:
        raise Conflict("Nothing changed in the AI triage.")
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="triage",
        actor=actor.name,
        text=(
            f"AI triage: detected {_yn(ai_detected)}, recommended {_yn(ai_recommended)}, "
            f"right {_yn(ai_correct)}"
        ),
        data=after,
        at=now,
    )
    _audit(session, actor, "incident.ai_triage", incident.id, before, after)
    if ai_correct is False and before.get("ai_correct") is not False:
        # The human verdict goes to the disagreement queue so the AI's owner reviews it.
        from services.decisions.disagreements import on_incident_triage

        on_incident_triage(session, incident_id=incident.id, actor=actor, now=now or utcnow())
    return incident


def set_severity(
    session: Session,
    *,
    incident_id: int,
    severity: str,
    actor: Actor,
    now: datetime | None = None,
) -> Incident:
    """Re-grade an open incident (audited)."""
    states.require_responder(actor)
    states.check_severity(severity)
    incident = _open(session, incident_id)
    if incident.severity == severity:
        raise Conflict(f"Incident #{incident.id} is already {severity}.")
    before, incident.severity = incident.severity, severity
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="triage",
        actor=actor.name,
        text=f"Severity {before} → {severity}",
        data={"severity": severity, "previous": before},
        at=now or utcnow(),
    )
    _audit(
        session,
        actor,
        "incident.severity",
        incident.id,
        {"severity": before},
        {"severity": severity},
    )
    return incident


def _open(session: Session, incident_id: int) -> Incident:
    incident = lifecycle.get_incident(session, incident_id=incident_id)
    if incident.status not in states.OPEN_STATES:
        raise states.IllegalTransition(f"Incident #{incident.id} is resolved.")
    return incident


def _triage(incident: Incident) -> dict[str, bool | None]:
    return {
        "ai_detected": incident.ai_detected,
        "ai_recommended": incident.ai_recommended,
        "ai_correct": incident.ai_correct,
    }


def _yn(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    incident_id: int,
    before: dict | None,
    after: dict | None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="incident",
        object_id=incident_id,
        before=before,
        after=after,
    )
