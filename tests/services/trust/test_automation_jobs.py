"""The scheduler jobs on committed data: automatic execution, then verification and rollback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from automation_support import (
    CELL,
    ENGINEER,
    NOW,
    audit_actions,
    measure,
    recommend,
    seed,
    use_case,
)
from sqlalchemy import select
from testkit import seeded_database

from services import audit
from services.automation.execution import execute_and_commit, run_automatic
from services.automation.guardrails import GuardrailBlocked
from services.automation.verification import verify_due
from services.db.models import Execution, Recommendation


def test_run_automatic_then_verify_due_rolls_back_a_harmful_action(database_url: str) -> None:
    with seeded_database(database_url) as db:
        seed(db)
        with db.session(write=True) as session:
            measure(session, CELL, "dl_throughput_mbps", [50.0, 51.0, 49.0, 50.0], end=NOW)
            restart = recommend(session, "sleeping_cell_restart").id
            congestion = recommend(session).id  # L2: stays for a human
            use_case(session, "sleeping_cell_restart", guardrails={"verification_minutes": 30})
        assert run_automatic(db, now=NOW) == [restart]
        # An API-style call that is refused keeps its audit event (committed, then raised).
        with pytest.raises(GuardrailBlocked, match="human_approval"):
            execute_and_commit(db, recommendation_id=congestion, actor=ENGINEER, now=NOW)
        assert verify_due(db, now=NOW + timedelta(minutes=29)) == []  # window still open
        with db.session(write=True) as session:
            measure(
                session, CELL, "dl_throughput_mbps", [3.0, 2.0], end=NOW + timedelta(minutes=30)
            )
        [judged] = verify_due(db, now=NOW + timedelta(minutes=31))
        with db.session() as session:
            run = session.get(Execution, judged)
            assert run.recommendation_id == restart
            assert run.state == "rolled_back"
            assert run.verification["outcome"] == "worse"
            assert session.get(Recommendation, congestion).state == "open"
            assert use_case(session, "sleeping_cell_restart").maturity_level == 2
            actions = audit_actions(session)
            # The job never attempts L2 items; the refusal is the engineer's call above.
            assert actions == [
                "automation.seed",
                "automation.execute_started",
                "automation.executed",
                "automation.execute_blocked",
                "automation.verification.worse",
                "automation.rolled_back",
                "automation.maturity.demoted",
            ]
            assert audit.verify(session).ok
            assert session.scalars(select(Execution.id)).all() == [judged]
        assert verify_due(db, now=NOW + timedelta(hours=2)) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_jobs_log_and_continue_past_a_bad_item(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with seeded_database(database_url) as db:
        seed(db)
        with db.session(write=True) as session:
            # A webhook use case without its URL and secret configured raises, ...
            use_case(
                session,
                "capacity_carrier_add",
                maturity_level=3,
                guardrails={"actuator": "webhook"},
            )
            broken = recommend(session, "capacity_carrier_add").id
            # ... an action on no element fails in the actuator, ...
            nowhere = recommend(session, "sleeping_cell_restart")
            nowhere.element_id = None
            # ... and the next item still runs.
            good = recommend(session, "sleeping_cell_restart", dn=CELL.replace("C1", "C2")).id
        assert run_automatic(db, now=NOW) == [nowhere.id, good]
        assert "automatic execution of recommendation" in caplog.text
        with db.session() as session:
            states = dict(
                session.execute(select(Execution.recommendation_id, Execution.state)).all()
            )
            assert states == {nowhere.id: "failed", good: "succeeded"}
            assert session.get(Recommendation, broken).state == "open"
