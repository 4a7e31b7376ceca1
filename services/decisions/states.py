"""State machines of recommendations and disagreement cases, and who may act on them.

Every state change goes through `move_recommendation` / `move_case`, which refuse an
illegal step with Conflict and write the audit event in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.auth import ENGINEER_ROLES, OPERATE_ROLES
from services.db.models import Disagreement, Recommendation, User
from services.errors import Conflict, Forbidden, NotFound

# Which step may follow which. Terminal states have no entry. "executing"/"executed"/
# "rolled_back" are reached through the automation service's execute and rollback.
RECOMMENDATION_FLOW: dict[str, frozenset[str]] = {
    "open": frozenset(
        {"accepted", "awaiting_second_approval", "rejected", "overridden", "expired", "executing"}
    ),
    "awaiting_second_approval": frozenset({"accepted", "rejected", "overridden", "expired"}),
    "accepted": frozenset({"executing", "expired"}),
    "overridden": frozenset({"executing"}),
    "executing": frozenset({"executed", "accepted", "rolled_back"}),
    "executed": frozenset({"rolled_back"}),
    "shadow": frozenset({"expired"}),
}
# A human can still decide on these; the others are settled.
DECIDABLE = ("open", "awaiting_second_approval")
PENDING = ("open", "awaiting_second_approval", "shadow")

CASE_STATES = ("open", "resolved")
CASE_FLOW: dict[str, frozenset[str]] = {"open": frozenset({"resolved"})}

# Two-person approval: L2 actions of these severities need a second, different person.
HIGH_SEVERITIES = ("critical", "major")
TWO_PERSON_LEVEL = 2

# Review SLA per kind: a rolled-back automatic action may have hurt the network, so it is
# looked at first; the rest within three days. Escalation gives the next person half again.
REVIEW_SLA: dict[str, timedelta] = {
    "rolled_back": timedelta(hours=24),
    "missed": timedelta(hours=48),
    "ai_wrong": timedelta(hours=48),
    "rejected": timedelta(hours=72),
    "overridden": timedelta(hours=72),
    "false_positive": timedelta(hours=72),
}
ESCALATION_GRACE = timedelta(hours=24)

DECIDE_ROLES = OPERATE_ROLES  # operators, engineers and admins decide on recommendations
REVIEW_ROLES = ENGINEER_ROLES  # reviews change what the AI learns: engineers and admins


def require_role(actor: Actor, *, roles: frozenset[str], doing: str) -> None:
    """Refuse wall screens and roles outside `roles`, naming who can."""
    if actor.kind == "kiosk":
        raise Forbidden("Wall screens are read-only.")
    if actor.kind == "system":
        return
    if actor.role not in roles:
        allowed = ", ".join(sorted(roles))
        raise Forbidden(f"The {actor.role or 'unknown'} role cannot {doing}; {allowed} can.")


def needs_second_approval(recommendation: Recommendation) -> bool:
    """True for a high-severity recommendation of an L2 (approve-to-execute) use case."""
    return (
        recommendation.maturity_level == TWO_PERSON_LEVEL
        and recommendation.severity in HIGH_SEVERITIES
    )


def is_expired(recommendation: Recommendation, *, now: datetime) -> bool:
    """True when the recommendation's expiry has passed."""
    return recommendation.expires_at is not None and recommendation.expires_at <= now


def move_recommendation(
    session: Session,
    *,
    recommendation: Recommendation,
    to: str,
    actor: Actor,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Recommendation:
    """Change a recommendation's state if the flow allows it; audited."""
    before = recommendation.state
    if to not in RECOMMENDATION_FLOW.get(before, frozenset()):
        raise Conflict(
            f"Recommendation #{recommendation.id} is {before.replace('_', ' ')}; "
            f"it cannot become {to.replace('_', ' ')}."
        )
    recommendation.state = to
    if to in ("accepted", "rejected", "overridden") and recommendation.decided_at is None:
        recommendation.decided_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"recommendation.{to}",
        object_type="recommendation",
        object_id=recommendation.id,
        before={"state": before},
        after={"state": to, **(detail or {})},
    )
    return recommendation


def move_case(
    session: Session,
    *,
    case: Disagreement,
    to: str,
    actor: Actor,
    detail: dict[str, Any] | None = None,
) -> Disagreement:
    """Change a disagreement case's state if the flow allows it; audited."""
    before = case.state
    if to not in CASE_FLOW.get(before, frozenset()):
        raise Conflict(f"Disagreement #{case.id} is {before}; it cannot become {to}.")
    case.state = to
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"disagreement.{to}",
        object_type="disagreement",
        object_id=case.id,
        before={"state": before},
        after={"state": to, **(detail or {})},
    )
    return case


def user_id_of(session: Session, actor: Actor) -> int | None:
    """The actor's user row id; API tokens and the system act without one."""
    if actor.kind != "user":
        return None
    return session.scalar(select(User.id).where(User.username == actor.name))


def case_for_update(session: Session, disagreement_id: int) -> Disagreement:
    """The case, row-locked on PostgreSQL so two reviewers are serialised; NotFound otherwise."""
    case = session.scalar(
        select(Disagreement).where(Disagreement.id == disagreement_id).with_for_update()
    )
    if case is None:
        raise NotFound(f"There is no disagreement #{disagreement_id}.")
    return case
