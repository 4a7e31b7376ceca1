"""Incidents opened from what Beacon sees: grouped anomaly episodes and fault alarms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.db.models import Alarm, Anomaly, Element, Incident, IncidentEvent, Kpi, utcnow
from services.errors import Conflict, InvalidInput, NotFound
from services.incidents import lifecycle, states, timeline
from services.notify.config import NotifyConfig

# Episode and alarm severity -> incident severity (sev1 is the worst).
SEVERITY_MAP = {"critical": "sev1", "major": "sev2", "minor": "sev3", "warning": "sev4"}
MAX_EPISODES = 500


@dataclass(frozen=True)
class Opened:
    """The incident an event landed on, and whether it was opened just now (False: dedup)."""

    incident: Incident
    created: bool


def create_from_episodes(
    session: Session,
    *,
    anomaly_ids: Sequence[int],
    actor: Actor,
    now: datetime | None = None,
    title: str | None = None,
    config: NotifyConfig | None = None,
) -> Incident:
    """One incident for a group of unlinked episodes (the first leads); each is linked."""
    states.require_responder(actor)
    wanted = list(dict.fromkeys(int(i) for i in anomaly_ids))
    if not wanted:
        raise InvalidInput("Choose at least one anomaly episode.")
    if len(wanted) > MAX_EPISODES:
        raise InvalidInput(f"Group at most {MAX_EPISODES} episodes in one incident.")
    found = {a.id: a for a in session.scalars(select(Anomaly).where(Anomaly.id.in_(wanted)))}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"There is no anomaly episode #{missing[0]}.")
    linked = [found[i] for i in wanted if found[i].incident_id is not None]
    if linked:
        raise Conflict(
            f"Episode #{linked[0].id} is already linked to incident #{linked[0].incident_id}."
        )
    members = [found[i] for i in wanted]
    lead = members[0]
    element = session.get_one(Element, lead.element_id)
    kpi = session.get_one(Kpi, lead.kpi_id)
    direction = "below" if lead.observed < lead.expected else "above"
    worst = min(SEVERITY_MAP.get(m.severity, "sev3") for m in members)
    incident = lifecycle.open_incident(
        session,
        title=(title or "").strip() or f"{kpi.name} {direction} expected on {element.name}",
        severity=worst,
        origin="anomaly",
        actor=actor,
        now=now,
        summary=str((lead.explanation or {}).get("summary") or ""),
        domain=element.domain,
        region=element.region,
        dedup_key=f"anomaly:{lead.group_key or lead.id}",
        ai_detected=True,
        audit_extra={"anomalies": [m.id for m in members]},
        # The "Opened from anomaly episode" lines below say how it started.
        opening_event=False,
        config=config,
    )
    for member in members:
        link_episode(session, anomaly=member, incident=incident, actor=actor, created=True, now=now)
    return incident


def link_episode(
    session: Session,
    *,
    anomaly: Anomaly,
    incident: Incident,
    actor: Actor,
    created: bool,
    now: datetime | None = None,
) -> None:
    """Attach an episode to an incident: timeline line and audit event."""
    before = anomaly.incident_id
    anomaly.incident_id = incident.id
    element = session.get_one(Element, anomaly.element_id)
    kpi = session.get_one(Kpi, anomaly.kpi_id)
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="anomaly",
        actor=actor.name,
        text=(
            f"{'Opened from' if created else 'Linked'} anomaly episode #{anomaly.id}: "
            f"{kpi.name} on {element.name} ({anomaly.severity}, "
            f"confidence {anomaly.confidence:.0%})"
        ),
        data={"anomaly_id": anomaly.id, "group_key": anomaly.group_key},
        at=now,
    )
    audit.record(
        session,
        actor=actor,
        action="anomaly.incident.link",
        object_type="anomaly",
        object_id=anomaly.id,
        before={"incident_id": before},
        after={"incident_id": incident.id, "created": created},
    )


def create_from_alarm(
    session: Session,
    *,
    alarm_id: int,
    actor: Actor,
    now: datetime | None = None,
    title: str | None = None,
    config: NotifyConfig | None = None,
) -> Opened:
    """An incident for a fault alarm; a repeat of an alarm already open lands on its incident."""
    states.require_responder(actor)
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"There is no alarm #{alarm_id}.")
    now = now or utcnow()
    key = f"alarm:{alarm.fingerprint}"
    existing = lifecycle.find_open(session, dedup_key=key)
    if existing is not None:
        if not _alarm_noted(session, existing.id, alarm.id):
            _note_alarm(session, existing, alarm, actor, now, again=True)
            audit.record(
                session,
                actor=actor,
                action="incident.alarm.link",
                object_type="incident",
                object_id=existing.id,
                after={"alarm_id": alarm.id, "fingerprint": alarm.fingerprint},
            )
        return Opened(existing, False)
    element = None if alarm.element_id is None else session.get(Element, alarm.element_id)
    where = alarm.element_ref or (element.name if element else "unknown element")
    problem = alarm.specific_problem or alarm.probable_cause or (alarm.text or "")[:120]
    incident = lifecycle.open_incident(
        session,
        title=(title or "").strip()
        or f"{alarm.severity.title()} alarm: {problem} on {where}"[:300],
        severity=SEVERITY_MAP.get(alarm.severity.lower(), "sev3"),
        origin="alarm",
        actor=actor,
        now=now,
        summary=alarm.text or "",
        domain=element.domain if element else None,
        region=element.region if element else None,
        dedup_key=key,
        ai_detected=False,
        audit_extra={"alarm_id": alarm.id},
        config=config,
    )
    _note_alarm(session, incident, alarm, actor, now, again=False)
    return Opened(incident, True)


def _alarm_noted(session: Session, incident_id: int, alarm_id: int) -> bool:
    rows = session.scalars(
        select(IncidentEvent.data).where(
            IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "alarm"
        )
    )
    return any((data or {}).get("alarm_id") == alarm_id for data in rows)


def _note_alarm(
    session: Session, incident: Incident, alarm: Alarm, actor: Actor, now: datetime, *, again: bool
) -> None:
    timeline.add_event(
        session,
        incident_id=incident.id,
        kind="alarm",
        actor=actor.name,
        text=(
            f"{'Alarm raised again' if again else 'Alarm'} #{alarm.id} ({alarm.severity}): "
            f"{alarm.specific_problem or alarm.probable_cause or alarm.text}"
        )[:2000],
        data={"alarm_id": alarm.id, "fingerprint": alarm.fingerprint},
        at=now,
    )
