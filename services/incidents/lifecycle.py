"""Opening incidents and moving them through their states; every change audited.

An incident opened for a domain or an AI component is routed to the owning team and its
escalation policy; the escalation runner pages on-call from then on (timers in the row).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.db.models import EscalationPolicy, Incident, Team, utcnow
from services.errors import Conflict, InvalidInput, NotFound
from services.incidents import states, timeline
from services.notify import outbox
from services.notify.config import NotifyConfig
from services.oncall import resolve as oncall

MAX_TITLE = 300
MAX_TEXT = 4000
MAX_DOMAIN = 16  # the column's width


def open_incident(
    session: Session,
    *,
    title: str,
    severity: str,
    origin: str,
    actor: Actor,
    now: datetime | None = None,
    summary: str = "",
    domain: str | None = None,
    region: str | None = None,
    component: str | None = None,
    team_id: int | None = None,
    dedup_key: str | None = None,
    ai_detected: bool | None = None,
    ai_recommended: bool | None = None,
    external_ticket: str | None = None,
    simulated: bool = False,
    audit_extra: dict[str, Any] | None = None,
    opening_event: bool = True,
    config: NotifyConfig | None = None,
) -> Incident:
    """Create a triggered incident routed to its owner; escalation starts on the next run."""
    states.require_responder(actor)
    title = _text(title, "title", MAX_TITLE, required=True)
    summary = _text(summary, "summary", MAX_TEXT)
    states.check_severity(severity)
    if domain is not None and not 0 < len(domain) <= MAX_DOMAIN:
        raise InvalidInput(f"A domain name is 1 to {MAX_DOMAIN} characters.")
    if origin not in states.ORIGINS:
        raise InvalidInput(f"Unknown incident origin {origin!r}.")
    now = now or utcnow()
    team, policy_id = route(
        session, domain=domain, region=region, component=component, team_id=team_id
    )
    incident = Incident(
        title=title,
        summary=summary,
        severity=severity,
        status="triggered",
        origin=origin,
        domain=domain,
        team_id=team,
        escalation_policy_id=policy_id,
        escalation_position=0,
        escalation_round=0,
        # Due at once: the runner pages the first step; the timer lives in this row.
        next_escalation_at=now if policy_id is not None else None,
        dedup_key=None if dedup_key is None else dedup_key[:200],
        external_ticket=external_ticket,
        ai_detected=ai_detected,
        ai_recommended=ai_recommended,
        created_by=actor.name,
        created_at=now,
        simulated=simulated,
    )
    try:
        with session.begin_nested():
            session.add(incident)
            session.flush()
    except IntegrityError as error:
        # Only the open-dedup index can refuse a new incident: another opener won the race.
        if incident.dedup_key is None:
            raise
        raise Conflict(
            f"An open incident already carries the key {incident.dedup_key!r} "
            "(another process opened it a moment ago)."
        ) from error
    if opening_event:
        timeline.add_event(
            session,
            incident_id=incident.id,
            kind="created",
            actor=actor.name,
            text=f"Opened ({origin}, {severity}): {title}",
            data={"origin": origin, "component": component},
            at=now,
        )
    audit.record(
        session,
        actor=actor,
        action="incident.create",
        object_type="incident",
        object_id=incident.id,
        after={
            "title": title,
            "severity": severity,
            "origin": origin,
            "domain": domain,
            "component": component,
            "team_id": team,
            "escalation_policy_id": policy_id,
            "dedup_key": incident.dedup_key,
            **(audit_extra or {}),
        },
    )
    _announce(session, incident, "incident.created", f"Incident opened: {title}", now, config)
    if origin == "manual":
        # A person saw something the AI did not: that is a case for the disagreement queue.
        from services.decisions.disagreements import on_incident_opened

        on_incident_opened(session, incident_id=incident.id, now=now)
    return incident


def create_manual(
    session: Session,
    *,
    title: str,
    severity: str,
    actor: Actor,
    now: datetime | None = None,
    summary: str = "",
    domain: str | None = None,
    region: str | None = None,
    team_id: int | None = None,
    external_ticket: str | None = None,
    config: NotifyConfig | None = None,
) -> Incident:
    """Open an incident by hand (from a page or the API)."""
    if external_ticket is not None:
        external_ticket = _text(external_ticket, "ticket id", 100) or None
    return open_incident(
        session,
        title=title,
        severity=severity,
        origin="manual",
        actor=actor,
        now=now,
        summary=summary,
        domain=domain,
        region=region,
        team_id=team_id,
        external_ticket=external_ticket,
        config=config,
    )


def acknowledge(
    session: Session,
    *,
    incident_id: int,
    actor: Actor,
    now: datetime | None = None,
    config: NotifyConfig | None = None,
) -> Incident:
    """Someone is on it: paging stops; reminders follow if the policy re-notifies."""
    states.require_responder(actor)
    incident = get_for_update(session, incident_id=incident_id)
    states.check_transition(incident_id=incident.id, current=incident.status, target="acknowledged")
    now = now or utcnow()
    before = _snapshot(incident)
    incident.status = "acknowledged"
    incident.acknowledged_at, incident.acknowledged_by = now, actor.name
    incident.next_escalation_at = renotify_at(session, incident=incident, now=now)
    _changed(session, incident, actor, "acknowledge", before, now, config, "Acknowledged")
    return incident


def mitigate(
    session: Session,
    *,
    incident_id: int,
    actor: Actor,
    note: str = "",
    now: datetime | None = None,
    config: NotifyConfig | None = None,
) -> Incident:
    """The impact is contained; reminders continue until it is resolved."""
    states.require_responder(actor)
    note = _text(note, "note", MAX_TEXT)
    incident = get_for_update(session, incident_id=incident_id)
    states.check_transition(incident_id=incident.id, current=incident.status, target="mitigated")
    now = now or utcnow()
    before = _snapshot(incident)
    if incident.acknowledged_at is None:
        # Mitigating implies someone took it: that stops paging like an acknowledgement.
        incident.acknowledged_at, incident.acknowledged_by = now, actor.name
        incident.next_escalation_at = renotify_at(session, incident=incident, now=now)
    incident.status, incident.mitigated_at = "mitigated", now
    text = "Mitigated" + (f": {note}" if note else "")
    _changed(session, incident, actor, "mitigate", before, now, config, text)
    return incident


def resolve(
    session: Session,
    *,
    incident_id: int,
    actor: Actor,
    note: str,
    now: datetime | None = None,
    config: NotifyConfig | None = None,
) -> Incident:
    """Close the incident with a resolution note (required); all timers stop."""
    states.require_responder(actor)
    note = (note or "").strip()
    if not note:
        raise states.ResolutionNoteRequired(
            "Write a resolution note: what happened and what fixed it."
        )
    note = _text(note, "resolution note", MAX_TEXT)
    incident = get_for_update(session, incident_id=incident_id)
    states.check_transition(incident_id=incident.id, current=incident.status, target="resolved")
    now = now or utcnow()
    before = _snapshot(incident)
    incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, actor.name
    incident.resolution_note = note
    incident.next_escalation_at = None
    _changed(session, incident, actor, "resolve", before, now, config, f"Resolved: {note}")
    return incident


def get_incident(session: Session, *, incident_id: int) -> Incident:
    """The incident, or NotFound."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"There is no incident #{incident_id}.")
    return incident


def get_for_update(session: Session, *, incident_id: int) -> Incident:
    """The incident, row-locked on PostgreSQL (SQLite write sessions are already exclusive)."""
    incident = session.scalars(
        select(Incident)
        .where(Incident.id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if incident is None:
        raise NotFound(f"There is no incident #{incident_id}.")
    return incident


def find_open(session: Session, *, dedup_key: str) -> Incident | None:
    """The open incident carrying `dedup_key`, if any (oldest first)."""
    return session.scalars(
        select(Incident)
        .where(Incident.dedup_key == dedup_key[:200], Incident.status.in_(states.OPEN_STATES))
        .order_by(Incident.id)
        .limit(1)
    ).first()


def route(
    session: Session,
    *,
    domain: str | None = None,
    region: str | None = None,
    component: str | None = None,
    team_id: int | None = None,
) -> tuple[int | None, int | None]:
    """(team id, escalation policy id) for an explicit team, a component or a domain/region."""
    if team_id is not None:
        if session.get(Team, team_id) is None:
            raise NotFound(f"There is no team #{team_id}.")
        return team_id, team_policy_id(session, team_id=team_id)
    if not (component or domain):
        return None, None
    try:
        row = oncall.find_ownership(session, domain=domain, region=region, component=component)
    except (NotFound, InvalidInput):
        # Unowned: the incident is still opened and listed, only nobody is paged.
        return None, None
    return row.team_id, row.escalation_policy_id or team_policy_id(session, team_id=row.team_id)


def team_policy_id(session: Session, *, team_id: int) -> int | None:
    """The team's own escalation policy (the first, if it has several)."""
    return session.scalar(
        select(EscalationPolicy.id)
        .where(EscalationPolicy.team_id == team_id)
        .order_by(EscalationPolicy.id)
        .limit(1)
    )


def renotify_at(session: Session, *, incident: Incident, now: datetime) -> datetime | None:
    """When to remind about an acknowledged, unresolved incident (None: never)."""
    if incident.escalation_policy_id is None:
        return None
    policy = session.get(EscalationPolicy, incident.escalation_policy_id)
    if policy is None or not policy.renotify_minutes:
        return None
    return now + timedelta(minutes=policy.renotify_minutes)


def _changed(
    session: Session,
    incident: Incident,
    actor: Actor,
    verb: str,
    before: dict[str, Any],
    now: datetime,
    config: NotifyConfig | None,
    text: str,
) -> None:
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="status",
        actor=actor.name,
        text=f"{text} by {actor.name}"[:MAX_TEXT],
        data={"from": before["status"], "to": incident.status},
        at=now,
    )
    audit.record(
        session,
        actor=actor,
        action=f"incident.{verb}",
        object_type="incident",
        object_id=incident.id,
        before=before,
        after=_snapshot(incident),
    )
    _announce(session, incident, f"incident.{incident.status}", text, now, config)


def _announce(
    session: Session,
    incident: Incident,
    event: str,
    message: str,
    now: datetime,
    config: NotifyConfig | None,
) -> None:
    if config is None:
        return
    outbox.announce(
        session,
        incident=incident,
        event=event,
        event_key=f"{event}:{int(now.timestamp())}",
        message=message,
        config=config,
        now=now,
    )


def _snapshot(incident: Incident) -> dict[str, Any]:
    return {
        "status": incident.status,
        "acknowledged_by": incident.acknowledged_by,
        "resolution_note": incident.resolution_note,
        "next_escalation_at": incident.next_escalation_at,
    }


def _text(value: str | None, label: str, limit: int, *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(f"Give the incident a {label}.")
    if len(text) > limit:
        raise InvalidInput(f"Keep the {label} under {limit} characters.")
    return text
