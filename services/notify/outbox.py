"""The outbox: notifications queued in the caller's transaction, deduplicated by key.

A row commits with the event that caused it, or not at all, so a crash can neither lose a
page nor send one for an event that was rolled back. The delivery job drains the rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services import audit
from services.db.models import Incident, Notification, utcnow
from services.errors import Conflict, NotFound
from services.notify.config import NotifyConfig
from services.oncall.schedules import PersonRef

NOTIFIERS = ("webhook", "email", "log")
STATUSES = ("pending", "delivered", "failed")
MAX_KEY = 200


def enqueue(
    session: Session,
    *,
    notifier: str,
    target: str,
    dedup_key: str,
    payload: dict[str, Any],
    incident_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue one message unless one with the same key exists; True when a row was added."""
    if notifier not in NOTIFIERS:
        raise ValueError(f"unknown notifier {notifier!r}")
    now = now or utcnow()
    values = {
        "notifier": notifier,
        "target": target[:500],
        "dedup_key": dedup_key[:MAX_KEY],
        "incident_id": incident_id,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # ON CONFLICT DO NOTHING: a duplicate is skipped without aborting the caller's
        # transaction (a failed plain INSERT would poison it on PostgreSQL).
        statement = (
            make(Notification)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(Notification.id)
        )
        # RETURNING, not rowcount: with implicit RETURNING psycopg reports rowcount -1.
        return session.execute(statement).scalar_one_or_none() is not None
    exists = session.scalar(
        select(Notification.id).where(Notification.dedup_key == values["dedup_key"])
    )
    if exists is not None:
        return False
    session.execute(insert(Notification).values(**values))
    return True


def page(
    session: Session,
    *,
    incident: Incident,
    people: Sequence[PersonRef],
    event: str,
    event_key: str,
    message: str,
    config: NotifyConfig,
    now: datetime,
) -> int:
    """Queue a page to each person (e-mail, log) and to every webhook; returns rows added."""
    added = 0
    recipients = [p.as_dict() for p in people]
    doc = incident_doc(incident)
    for person in people:
        if config.smtp is not None and person.email:
            added += enqueue(
                session,
                notifier="email",
                target=person.email,
                dedup_key=dedup_key(incident.id, event_key, "email", person.email),
                payload=_email(incident, message=message, to=person.email),
                incident_id=incident.id,
                now=now,
            )
        if config.log:
            added += enqueue(
                session,
                notifier="log",
                target=person.name,
                dedup_key=dedup_key(incident.id, event_key, "log", str(person.id)),
                payload={"message": message, "to": person.name, "event": event},
                incident_id=incident.id,
                now=now,
            )
    added += _webhooks(
        session,
        incident=incident,
        event=event,
        event_key=event_key,
        message=message,
        config=config,
        now=now,
        extra={"recipients": recipients, "incident": doc},
    )
    return added


def announce(
    session: Session,
    *,
    incident: Incident,
    event: str,
    event_key: str,
    message: str,
    config: NotifyConfig,
    now: datetime,
) -> int:
    """Queue a status event (created, acknowledged, resolved …) to every webhook."""
    return _webhooks(
        session,
        incident=incident,
        event=event,
        event_key=event_key,
        message=message,
        config=config,
        now=now,
        extra={"incident": incident_doc(incident)},
    )


def delivery_log(session: Session, *, incident_id: int, limit: int = 500) -> list[Notification]:
    """Every notification sent (or being sent) for an incident, newest first."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.incident_id == incident_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def retry(
    session: Session, *, notification_id: int, actor: audit.Actor, now: datetime | None = None
) -> Notification:
    """Put a failed notification back in the queue, due now (audited)."""
    row = session.get(Notification, notification_id)
    if row is None:
        raise NotFound(f"There is no notification #{notification_id}.")
    if row.status != "failed":
        raise Conflict(f"Notification #{notification_id} is {row.status}, not failed.")
    row.status, row.next_attempt_at = "pending", now or utcnow()
    audit.record(
        session,
        actor=actor,
        action="notification.retry",
        object_type="notification",
        object_id=row.id,
        before={"status": "failed", "attempts": row.attempts, "last_error": row.last_error},
        after={"status": "pending"},
    )
    return row


def dedup_key(incident_id: int | None, event_key: str, notifier: str, target: str) -> str:
    """A stable key per (incident, event, channel, recipient); long targets are hashed."""
    digest = hashlib.sha256(target.encode()).hexdigest()[:16]
    return f"incident:{incident_id}:{event_key}:{notifier}:{digest}"[:MAX_KEY]


def incident_doc(incident: Incident) -> dict[str, Any]:
    """The incident as receivers see it."""
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "origin": incident.origin,
        "domain": incident.domain,
        "team_id": incident.team_id,
        "external_ticket": incident.external_ticket,
        "created_at": _iso(incident.created_at),
    }


def _webhooks(
    session: Session,
    *,
    incident: Incident,
    event: str,
    event_key: str,
    message: str,
    config: NotifyConfig,
    now: datetime,
    extra: dict[str, Any],
) -> int:
    added = 0
    for endpoint in config.webhooks:
        key = dedup_key(incident.id, event_key, "webhook", endpoint.url)
        payload = {"event": event, "message": message, "at": _iso(now), "delivery_id": key, **extra}
        added += enqueue(
            session,
            notifier="webhook",
            target=endpoint.url,
            dedup_key=key,
            payload=payload,
            incident_id=incident.id,
            now=now,
        )
    return added


def _email(incident: Incident, *, message: str, to: str) -> dict[str, Any]:
    subject = f"[Beacon {incident.severity.upper()}] #{incident.id} {incident.title}"[:250]
    text = (
        f"{message}\n\nIncident #{incident.id}: {incident.title}\n"
        f"Severity: {incident.severity}  Status: {incident.status}  "
        f"Domain: {incident.domain or '-'}\n\n{incident.summary or ''}"
    ).rstrip() + "\n"
    return {"to": to, "subject": subject, "text": text}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
