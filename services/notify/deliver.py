"""The delivery job: send due outbox rows, back off exponentially, never drop a message.

Each row is sent outside any transaction and its outcome written in its own, so a crash
between the two sends it again on the next run: delivery is at least once, and receivers
deduplicate on the delivery id (webhooks) or Message-ID (e-mail).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.db import Database
from services.db.models import Notification, utcnow
from services.incidents import timeline
from services.notify import webhook
from services.notify.config import NotifyConfig
from services.notify.mail import send_email
from services.notify.webhook import Outcome

log = logging.getLogger(__name__)
page_log = logging.getLogger("beacon.pages")

JOB_ID = "notify.deliver"
JOB_EVERY_S = 15


@dataclass
class DeliveryReport:
    """What one run did: rows delivered, rescheduled after a failure, and given up on."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def backoff_for(attempts: int, *, config: NotifyConfig) -> timedelta:
    """Wait after the `attempts`-th failed attempt: base, 2×base, 4×base … capped."""
    seconds = config.backoff_base_s * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, config.backoff_max_s))


def due_ids(session: Session, *, now: datetime, limit: int) -> list[int]:
    """Pending rows whose next attempt is due, oldest first."""
    return list(
        session.scalars(
            select(Notification.id)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
    )


def deliver_due(
    db: Database, *, config: NotifyConfig, now: datetime | None = None, limit: int = 200
) -> DeliveryReport:
    """Send every due notification once; one failing row never stops the others."""
    now = now or utcnow()
    report = DeliveryReport()
    with db.session() as session:
        ids = due_ids(session, now=now, limit=limit)
    if not ids:
        return report
    with webhook.http_session(config) as http:
        for notification_id in ids:
            try:
                status = deliver_one(
                    db, notification_id=notification_id, config=config, now=now, http=http
                )
            except Exception as exc:  # a bad row is logged and left pending for the next run
                log.exception("delivering notification %s failed", notification_id)
                report.errors.append(f"#{notification_id}: {type(exc).__name__}: {exc}"[:300])
                continue
            if status == "delivered":
                report.delivered += 1
            elif status == "failed":
                report.failed += 1
            elif status == "pending":
                report.retrying += 1
    return report


def deliver_one(
    db: Database,
    *,
    notification_id: int,
    config: NotifyConfig,
    now: datetime,
    http: requests.Session,
) -> str | None:
    """Attempt one notification and record the outcome; returns its new status."""
    with db.session() as session:
        row = session.get(Notification, notification_id)
        if row is None or row.status != "pending":
            return None
        notifier, target, payload = row.notifier, row.target, dict(row.payload)
        key, attempt = row.dedup_key, row.attempts + 1
    outcome = _send(
        notifier, target=target, payload=payload, key=key, attempt=attempt, config=config, http=http
    )
    with db.session(write=True) as session:
        row = session.get(Notification, notification_id, with_for_update=True)
        if row is None or row.status != "pending":
            return None  # handled meanwhile (a manual retry or a second runner)
        return _record(session, row, outcome, now=now, config=config)


def _send(
    notifier: str,
    *,
    target: str,
    payload: dict[str, Any],
    key: str,
    attempt: int,
    config: NotifyConfig,
    http: requests.Session,
) -> Outcome:
    if notifier == "log":
        page_log.warning("PAGE to %s: %s", payload.get("to", target), payload.get("message", ""))
        return Outcome(ok=True)
    if notifier == "email":
        if config.smtp is None:
            return Outcome(ok=False, error="no SMTP relay is configured")
        return send_email(
            config.smtp,
            to=target,
            subject=str(payload.get("subject", "Beacon incident")),
            text=str(payload.get("text", "")),
            message_id=key,
        )
    if notifier == "webhook":
        endpoint = config.endpoint(target)
        if endpoint is None:
            return Outcome(ok=False, error=f"webhook {target} is no longer configured")
        return webhook.post(
            http,
            endpoint,
            payload=payload,
            delivery_id=key,
            attempt=attempt,
            timeout_s=config.http_timeout_s,
        )
    return Outcome(ok=False, error=f"unknown notifier {notifier!r}")


def _record(
    session: Session, row: Notification, outcome: Outcome, *, now: datetime, config: NotifyConfig
) -> str:
    row.attempts += 1
    if outcome.ok:
        row.status, row.delivered_at, row.last_error = "delivered", now, None
        _audit(session, row, "notification.deliver")
        return row.status
    row.last_error = outcome.error
    if row.attempts >= config.max_attempts:
        # Kept, visible in the incident's delivery log, and retryable by hand: never lost.
        row.status = "failed"
        _audit(session, row, "notification.fail")
        if row.incident_id is not None:
            timeline.add_event(
                session,
                incident_id=row.incident_id,
                kind="notification",
                text=(
                    f"{row.notifier} to {row.target} failed after {row.attempts} attempts: "
                    f"{outcome.error}"
                )[:2000],
                data={"notification_id": row.id},
                at=now,
            )
        return row.status
    wait = backoff_for(row.attempts, config=config)
    if outcome.retry_after_s is not None:
        wait = max(wait, timedelta(seconds=min(outcome.retry_after_s, config.backoff_max_s)))
    row.next_attempt_at = now + wait
    return row.status


def _audit(session: Session, row: Notification, action: str) -> None:
    audit.record(
        session,
        actor=audit.SYSTEM,
        action=action,
        object_type="notification",
        object_id=row.id,
        before={"status": "pending"},
        after={
            "status": row.status,
            "notifier": row.notifier,
            "target": row.target,
            "incident_id": row.incident_id,
            "attempts": row.attempts,
            "error": row.last_error,
        },
    )
