"""Human verdicts on recommendations: accept, reject or override, always with a reason code.

A high-severity recommendation of an L2 use case needs two people: the first acceptance
moves it to "awaiting_second_approval", and only a different signed-in user completes it.
A rejection or override stands at once and opens a disagreement case for review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.audit import SYSTEM, Actor
from services.automation.levels import REASON_CODES, REASON_LABELS, VERDICTS
from services.db import Database
from services.db.models import Decision, Recommendation
from services.decisions import disagreements, states
from services.errors import Conflict, Forbidden, InvalidInput, NotFound

MAX_NOTE = 2000
MAX_BULK = 200
EXPIRE_BATCH = 500


@dataclass(frozen=True)
class BulkDecision:
    """What a bulk decision did: the decided ids, and why the others were skipped."""

    decided: list[int]
    skipped: dict[int, str] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)


def decide(
    session: Session,
    *,
    recommendation_id: int,
    verdict: str,
    reason_code: str | None,
    actor: Actor,
    now: datetime,
    note: str = "",
    override_action: str | None = None,
    override_parameters: dict[str, Any] | None = None,
) -> Decision:
    """Record one verdict and move the recommendation on; audited."""
    states.require_role(actor, roles=states.DECIDE_ROLES, doing="decide on recommendations")
    note = _check(verdict, reason_code, note, override_action)
    recommendation = _get_for_update(session, recommendation_id)
    return _decide(
        session,
        recommendation=recommendation,
        verdict=verdict,
        reason_code=str(reason_code),
        note=note,
        override_action=(override_action or "").strip() or None,
        override_parameters=dict(override_parameters or {}),
        actor=actor,
        now=now,
    )


def decide_many(
    session: Session,
    *,
    recommendation_ids: Iterable[int],
    verdict: str,
    reason_code: str | None,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> BulkDecision:
    """The same verdict and reason on many recommendations; each is checked on its own."""
    states.require_role(actor, roles=states.DECIDE_ROLES, doing="decide on recommendations")
    if verdict == "override":
        raise InvalidInput("Override one recommendation at a time: each needs its own action.")
    note = _check(verdict, reason_code, note, None)
    wanted = sorted({int(i) for i in recommendation_ids})
    if not wanted:
        raise InvalidInput("Select at least one recommendation.")
    if len(wanted) > MAX_BULK:
        raise InvalidInput(f"Decide on at most {MAX_BULK} recommendations at once.")
    found = {
        r.id: r
        for r in session.scalars(
            select(Recommendation).where(Recommendation.id.in_(wanted)).with_for_update()
        )
    }
    decided: list[int] = []
    skipped: dict[int, str] = {}
    for rec_id in wanted:
        recommendation = found.get(rec_id)
        if recommendation is None:
            continue
        try:
            # A savepoint per item: one refusal leaves the others' changes intact.
            with session.begin_nested():
                _decide(
                    session,
                    recommendation=recommendation,
                    verdict=verdict,
                    reason_code=str(reason_code),
                    note=note,
                    override_action=None,
                    override_parameters={},
                    actor=actor,
                    now=now,
                    bulk=True,
                )
        except (Conflict, Forbidden) as exc:
            skipped[rec_id] = exc.message
            continue
        decided.append(rec_id)
    return BulkDecision(
        decided=decided, skipped=skipped, missing=[i for i in wanted if i not in found]
    )


def expire_due(session: Session, *, now: datetime, actor: Actor = SYSTEM) -> list[int]:
    """Expire pending recommendations whose expiry has passed; audited one by one."""
    rows = session.scalars(
        select(Recommendation)
        .where(
            Recommendation.state.in_(states.PENDING),
            Recommendation.expires_at.is_not(None),
            Recommendation.expires_at <= now,
        )
        .order_by(Recommendation.expires_at, Recommendation.id)
        .limit(EXPIRE_BATCH)
    ).all()
    for recommendation in rows:
        states.move_recommendation(
            session, recommendation=recommendation, to="expired", actor=actor, now=now
        )
    return [r.id for r in rows]


def expire_job(db: Database, *, now: datetime) -> list[int]:
    """Scheduler entry: expire due recommendations in the job's own transaction."""
    with db.session(write=True) as session:
        return expire_due(session, now=now)


def decisions_of(session: Session, *, recommendation_id: int) -> list[Decision]:
    """Every decision on a recommendation, oldest first."""
    return list(
        session.scalars(
            select(Decision)
            .where(Decision.recommendation_id == recommendation_id)
            .order_by(Decision.created_at, Decision.id)
        )
    )


def _check(verdict: str, reason_code: str | None, note: str, override_action: str | None) -> str:
    if verdict not in VERDICTS:
        raise InvalidInput(f"Choose a verdict: {', '.join(VERDICTS)}.")
    if not reason_code:
        raise InvalidInput(
            "Give a reason: " + "; ".join(REASON_LABELS[c] for c in REASON_CODES) + "."
        )
    if reason_code not in REASON_CODES:
        raise InvalidInput(f"Unknown reason {reason_code!r}; use one of {', '.join(REASON_CODES)}.")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"Keep the note under {MAX_NOTE} characters.")
    action = (override_action or "").strip()
    if verdict == "override" and not action:
        raise InvalidInput("An override names the action taken instead.")
    if len(action) > 64:
        raise InvalidInput("Keep the override action under 64 characters.")
    return note


def _decide(
    session: Session,
    *,
    recommendation: Recommendation,
    verdict: str,
    reason_code: str,
    note: str,
    override_action: str | None,
    override_parameters: dict[str, Any],
    actor: Actor,
    now: datetime,
    bulk: bool = False,
) -> Decision:
    if recommendation.state == "shadow":
        raise Conflict(
            f"Recommendation #{recommendation.id} is a shadow (L0) recommendation: it is only "
            "recorded to measure the AI; there is nothing to decide."
        )
    if recommendation.state not in states.DECIDABLE:
        raise Conflict(
            f"Recommendation #{recommendation.id} is already "
            f"{recommendation.state.replace('_', ' ')}."
        )
    if states.is_expired(recommendation, now=now):
        raise Conflict(f"Recommendation #{recommendation.id} has expired; nothing to decide.")
    if verdict == "override" and override_action == recommendation.action:
        raise InvalidInput("An override names a different action from the recommended one.")
    user_id = states.user_id_of(session, actor)
    step, target = _next_step(session, recommendation, verdict, actor, user_id)
    decision = Decision(
        recommendation_id=recommendation.id,
        user_id=user_id,
        verdict=verdict,
        reason_code=reason_code,
        note=note,
        override_action=override_action,
        override_parameters=override_parameters,
        approval_step=step,
        created_at=now,
    )
    session.add(decision)
    session.flush()
    detail = {
        "decision_id": decision.id,
        "verdict": verdict,
        "reason_code": reason_code,
        "note": note,
        "approval_step": step,
        **({"override_action": override_action} if override_action else {}),
        **({"bulk": True} if bulk else {}),
    }
    states.move_recommendation(
        session, recommendation=recommendation, to=target, actor=actor, now=now, detail=detail
    )
    if verdict in ("reject", "override"):
        disagreements.open_case(
            session,
            kind="rejected" if verdict == "reject" else "overridden",
            recommendation_id=recommendation.id,
            decision_id=decision.id,
            actor=actor,
            now=now,
        )
    return decision


def _next_step(
    session: Session,
    recommendation: Recommendation,
    verdict: str,
    actor: Actor,
    user_id: int | None,
) -> tuple[int, str]:
    """(approval step, target state) of this verdict on the recommendation as it stands."""
    two_person = states.needs_second_approval(recommendation)
    if recommendation.state == "open":
        if verdict == "accept" and two_person:
            if user_id is None:
                raise Forbidden(
                    "Two-person approval needs signed-in people; an API token cannot approve "
                    f"high-severity recommendation #{recommendation.id}."
                )
            return 1, "awaiting_second_approval"
        return 1, {"accept": "accepted", "reject": "rejected", "override": "overridden"}[verdict]
    first = session.scalar(
        select(Decision.user_id)
        .where(
            Decision.recommendation_id == recommendation.id,
            Decision.verdict == "accept",
            Decision.approval_step == 1,
        )
        .order_by(Decision.id.desc())
        .limit(1)
    )
    # Stopping is never blocked: anyone, the first approver too, may reject while it waits.
    if verdict != "reject" and (user_id is None or user_id == first):
        raise Forbidden(
            f"Recommendation #{recommendation.id} needs a second approver: "
            "a different signed-in person must decide."
        )
    return 2, {"accept": "accepted", "reject": "rejected", "override": "overridden"}[verdict]


def _get_for_update(session: Session, recommendation_id: int) -> Recommendation:
    # Row lock on PostgreSQL: two people deciding at once are serialised, not both applied.
    row = session.scalar(
        select(Recommendation).where(Recommendation.id == recommendation_id).with_for_update()
    )
    if row is None:
        raise NotFound(f"There is no recommendation #{recommendation_id}.")
    return row
