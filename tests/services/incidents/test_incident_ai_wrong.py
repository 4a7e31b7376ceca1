"""Responders judging the AI wrong on an incident puts the case in the disagreement queue."""

from __future__ import annotations

import pytest
from anomaly_feed_support import add_episodes
from incident_support import NOW, OPERATOR, team_id
from sqlalchemy import select

from services.db import Database
from services.db.models import Disagreement
from services.errors import Conflict
from services.incidents import lifecycle, openers, triage


def cases_of(db: Database, incident_id: int) -> list[Disagreement]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Disagreement)
                .where(Disagreement.incident_id == incident_id)
                .order_by(Disagreement.id)
            )
        )


def judge(db: Database, incident_id: int, *, correct: bool | None, recommended: bool = False):  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        triage.set_ai_triage(
            session,
            incident_id=incident_id,
            actor=OPERATOR,
            ai_detected=True,
            ai_recommended=recommended,
            ai_correct=correct,
            now=NOW,
        )


def test_ai_judged_wrong_on_an_episode_incident_opens_one_case(db: Database) -> None:
    with db.session(write=True) as session:
        sample = add_episodes(session, series=False)
        incident_id = openers.create_from_episodes(
            session, anomaly_ids=[sample.spike, sample.drop], actor=OPERATOR, now=NOW
        ).id
    judge(db, incident_id, correct=True)
    assert cases_of(db, incident_id) == []  # right, or not known: nothing to review
    judge(db, incident_id, correct=False)
    [case] = cases_of(db, incident_id)
    assert (case.kind, case.state) == ("ai_wrong", "open")
    # Both sides: the episode the AI raised, and the responders' verdict with who gave it.
    assert case.anomaly_id in (sample.spike, sample.drop)
    assert case.ai_side["kind"] == "anomaly"
    assert case.ai_side["incident_id"] == incident_id
    assert case.human_side["kind"] == "triage"
    assert case.human_side["by"] == OPERATOR.name
    with db.session() as session:
        # Assigned to the detector's owner: the AI platform team.
        assert case.assigned_team_id == team_id(session, "ai-platform")
    assert case.due_at is not None
    # The same verdict again changes nothing; flipping back and forth keeps one open case.
    with pytest.raises(Conflict), db.session(write=True) as session:
        triage.set_ai_triage(
            session,
            incident_id=incident_id,
            actor=OPERATOR,
            ai_detected=True,
            ai_recommended=False,
            ai_correct=False,
        )
    judge(db, incident_id, correct=None)
    judge(db, incident_id, correct=False, recommended=True)
    assert [c.id for c in cases_of(db, incident_id)] == [case.id]


def test_ai_wrong_without_a_linked_episode_says_what_the_responders_recorded(
    db: Database,
) -> None:
    with db.session(write=True) as session:
        incident_id = lifecycle.create_manual(
            session, title="Core latency", severity="sev3", actor=OPERATOR, now=NOW, domain="Core"
        ).id
    judge(db, incident_id, correct=False, recommended=True)
    kinds = {c.kind: c for c in cases_of(db, incident_id)}
    # A manual incident is a miss as well; the wrong verdict is its own case.
    assert set(kinds) == {"missed", "ai_wrong"}
    side = kinds["ai_wrong"].ai_side
    assert side["kind"] == "incident_triage"
    assert side["text"] == (
        "The responders recorded that the AI detected and recommended on this incident, "
        "with no episode linked to it."
    )
