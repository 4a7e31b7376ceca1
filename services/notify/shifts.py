"""Tell people their on-call shifts moved (overrides and swaps), through the same outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from services.notify import outbox
from services.notify.config import NotifyConfig
from services.oncall.overrides import OverrideResult, ShiftChange


def notify_shift_changes(
    session: Session, *, result: OverrideResult, config: NotifyConfig, now: datetime
) -> int:
    """Queue one message per person whose on-call time moved; returns rows added."""
    batch = "-".join(str(o.id) for o in result.overrides) or "removed"
    added = 0
    for change in result.changes:
        text = describe(change)
        key = f"shift:{batch}:{int(now.timestamp())}"
        person = change.person
        if config.smtp is not None and person.email:
            added += outbox.enqueue(
                session,
                notifier="email",
                target=person.email,
                dedup_key=outbox.dedup_key(None, key, "email", person.email),
                payload={
                    "to": person.email,
                    "subject": "Your on-call shifts changed",
                    "text": text,
                },
                now=now,
            )
        if config.log:
            added += outbox.enqueue(
                session,
                notifier="log",
                target=person.name,
                dedup_key=outbox.dedup_key(None, key, "log", str(person.id)),
                payload={"to": person.name, "message": text, "event": "oncall.shift_changed"},
                now=now,
            )
    return added


def describe(change: ShiftChange) -> str:
    """Plain text of what moved, in UTC (mail clients show the recipient's zone poorly)."""
    lines = [f"Hello {change.person.name}, your on-call time changed:"]
    lines += [f"  + on call {_span(start, end)}" for start, end in change.gained]
    lines += [f"  - no longer on call {_span(start, end)}" for start, end in change.lost]
    return "\n".join(lines) + "\n"


def _span(start: datetime, end: datetime) -> str:
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return f"{start:%a %d %b %H:%M} – {end:%a %d %b %H:%M} UTC"
