"""Shared constants and helpers of the incident tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.db import Database
from services.db.models import EscalationPolicy, EscalationStep, Person, Team

# Wednesday 2026-11-25, 11:00 in Berlin: the RAN North day desk (Leonie Fischer) is on call.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
OPERATOR = audit.Actor(name="olga", role="operator")
VIEWER = audit.Actor(name="vera", role="viewer")
KIOSK = audit.Actor(name="wall", role="viewer", kind="kiosk")


def actions_of(db: Database, *, object_id: int | None = None, prefix: str = "") -> list[str]:
    """Audit actions oldest first, optionally of one object and action family."""
    with db.session() as session:
        rows = audit.search(session, action=prefix or None, limit=5000)
    return [
        r.action
        for r in reversed(rows)
        if object_id is None or (r.object_type, r.object_id) == ("incident", str(object_id))
    ]


def person_id(session: Session, name: str) -> int:
    return session.scalars(select(Person.id).where(Person.name == name)).one()


def team_id(session: Session, key: str) -> int:
    return session.scalars(select(Team.id).where(Team.key == key)).one()


def make_policy(
    session: Session,
    *,
    name: str,
    team_key: str,
    steps: list[tuple[str, int, int]],
    repeat_count: int = 0,
    renotify_minutes: int | None = None,
) -> EscalationPolicy:
    """A test policy ("test-" names are removed after each test): (kind, target id, wait)."""
    policy = EscalationPolicy(
        name=f"test-{name}",
        team_id=team_id(session, team_key),
        repeat_count=repeat_count,
        renotify_minutes=renotify_minutes,
    )
    session.add(policy)
    session.flush()
    for position, (kind, target, wait) in enumerate(steps, start=1):
        session.add(
            EscalationStep(
                policy_id=policy.id,
                position=position,
                target_kind=kind,
                target_id=target,
                wait_minutes=wait,
            )
        )
    session.flush()
    return policy
