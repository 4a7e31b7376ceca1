"""Reviews of disagreement cases: one or many, each resolving the case with an outcome and note.

The outcome decides what the AI learns (services/decisions/learning.py); the human decision
that opened the case stands whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.audit import Actor
from services.automation.levels import REVIEW_OUTCOMES
from services.db.models import Disagreement, Review
from services.decisions import learning, states
from services.errors import Conflict, InvalidInput

MAX_NOTE = 2000
MAX_BULK = 200


@dataclass(frozen=True)
class BulkReview:
    """What a bulk review did: the resolved ids, and why the others were skipped."""

    reviewed: list[int]
    skipped: dict[int, str] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)


def review(
    session: Session,
    *,
    disagreement_id: int,
    outcome: str,
    note: str,
    reviewer: Actor,
    now: datetime,
    new_normal: bool = False,
) -> Review:
    """Resolve a case with an outcome and a note; the outcome feeds what the AI learns."""
    states.require_role(reviewer, roles=states.REVIEW_ROLES, doing="review disagreements")
    note = _check_review(outcome, note)
    case = states.case_for_update(session, disagreement_id)
    return _review(
        session,
        case=case,
        outcome=outcome,
        note=note,
        reviewer=reviewer,
        now=now,
        new_normal=new_normal,
    )


def review_many(
    session: Session,
    *,
    disagreement_ids: Iterable[int],
    outcome: str,
    note: str,
    reviewer: Actor,
    now: datetime,
) -> BulkReview:
    """The same outcome and note on many cases; resolved ones are reported, not errors."""
    states.require_role(reviewer, roles=states.REVIEW_ROLES, doing="review disagreements")
    note = _check_review(outcome, note)
    wanted = sorted({int(i) for i in disagreement_ids})
    if not wanted:
        raise InvalidInput("Select at least one case.")
    if len(wanted) > MAX_BULK:
        raise InvalidInput(f"Review at most {MAX_BULK} cases at once.")
    found = {
        c.id: c
        for c in session.scalars(
            select(Disagreement).where(Disagreement.id.in_(wanted)).with_for_update()
        )
    }
    reviewed, skipped = [], {}
    for case_id in wanted:
        case = found.get(case_id)
        if case is None:
            continue
        if case.state != "open":
            skipped[case_id] = f"Disagreement #{case_id} is already {case.state}."
            continue
        _review(
            session, case=case, outcome=outcome, note=note, reviewer=reviewer, now=now, bulk=True
        )
        reviewed.append(case_id)
    return BulkReview(
        reviewed=reviewed, skipped=skipped, missing=[i for i in wanted if i not in found]
    )


def _review(
    session: Session,
    *,
    case: Disagreement,
    outcome: str,
    note: str,
    reviewer: Actor,
    now: datetime,
    new_normal: bool = False,
    bulk: bool = False,
) -> Review:
    if case.state != "open":
        raise Conflict(f"Disagreement #{case.id} is already {case.state}.")
    row = Review(
        disagreement_id=case.id,
        reviewer_id=states.user_id_of(session, reviewer),
        outcome=outcome,
        note=note,
        created_at=now,
    )
    session.add(row)
    session.flush()
    effects = learning.apply_review(
        session, case=case, review=row, reviewer=reviewer, now=now, new_normal=new_normal
    )
    states.move_case(
        session,
        case=case,
        to="resolved",
        actor=reviewer,
        detail={
            "review_id": row.id,
            "outcome": outcome,
            "note": note,
            "effects": effects,
            **({"bulk": True} if bulk else {}),
        },
    )
    return row


def _check_review(outcome: str, note: str) -> str:
    if outcome not in REVIEW_OUTCOMES:
        raise InvalidInput(f"Choose an outcome: {', '.join(REVIEW_OUTCOMES)}.")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"Keep the note under {MAX_NOTE} characters.")
    return note
