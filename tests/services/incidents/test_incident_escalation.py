"""Escalation with a controllable clock: steps and waits, ack stops it, reminders, restarts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from incident_support import NOW, OPERATOR, actions_of, make_policy, person_id
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db import Database, connect
from services.db.models import Incident, IncidentEvent, Notification, Person, User
from services.incidents import escalation, lifecycle
from services.notify import deliver
from services.notify.config import NotifyConfig

MIN = timedelta(minutes=1)
LOG_ONLY = NotifyConfig()


def open_ran(db: Database, *, policy_id: int | None = None) -> int:
    with db.session(write=True) as session:
        incident = lifecycle.create_manual(
            session,
            title="North cells down",
            severity="sev1",
            actor=OPERATOR,
            now=NOW,
            domain="RAN",
        )
        if policy_id is not None:
            incident.escalation_policy_id = policy_id
        return incident.id


def paged(db: Database, incident_id: int) -> list[tuple[str, str]]:
    """(target, event) of every queued page, oldest first."""
    with db.session() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.incident_id == incident_id)
            .order_by(Notification.id)
        )
        return [(n.target, n.payload["event"]) for n in rows]


def state(db: Database, incident_id: int) -> tuple[int, int, object]:
    with db.session() as session:
        row = session.get_one(Incident, incident_id)
        return row.escalation_position, row.escalation_round, row.next_escalation_at


def test_steps_wait_ack_stops_reminders_follow_and_restart_keeps_timers(db: Database) -> None:
    incident_id = open_ran(db)
    report = escalation.run_escalations(db, now=NOW, config=LOG_ONLY)
    assert (report.paged, report.errors) == (1, [])
    # Step 1 of the demo policy: whoever is on call for RAN North (the day desk).
    assert paged(db, incident_id) == [("Leonie Fischer", "incident.escalated")]
    assert state(db, incident_id) == (1, 0, NOW + 10 * MIN)
    # Nothing happens before the step's wait is over.
    assert escalation.run_escalations(db, now=NOW + 9 * MIN).paged == 0
    # A "restart": a new process knows nothing but what the database holds.
    db.dispose()
    restarted = connect(db.url)
    try:
        assert escalation.run_escalations(restarted, now=NOW + 10 * MIN).paged == 1
    finally:
        restarted.dispose()
    assert paged(db, incident_id)[-1] == ("Jonas Weber", "incident.escalated")  # weekly layer
    assert state(db, incident_id) == (2, 0, NOW + 20 * MIN)
    # The same due moment processed twice (a second runner) pages nobody twice.
    assert escalation.run_escalations(db, now=NOW + 10 * MIN).paged == 0
    with db.session(write=True) as session:
        lifecycle.acknowledge(session, incident_id=incident_id, actor=OPERATOR, now=NOW + 12 * MIN)
    assert state(db, incident_id)[2] == NOW + 72 * MIN  # renotify after 60 minutes
    report = escalation.run_escalations(db, now=NOW + 40 * MIN)
    assert (report.paged, report.reminded) == (0, 0)  # the ack stopped the paging
    report = escalation.run_escalations(db, now=NOW + 72 * MIN)
    assert report.reminded == 1
    assert paged(db, incident_id)[-1] == ("Jonas Weber", "incident.reminder")
    assert state(db, incident_id)[2] == NOW + 132 * MIN
    with db.session(write=True) as session:
        lifecycle.resolve(session, incident_id=incident_id, actor=OPERATOR, note="Power back")
    assert state(db, incident_id)[2] is None
    report = escalation.run_escalations(db, now=NOW + 500 * MIN)
    assert (report.paged, report.reminded) == (0, 0)
    assert len(paged(db, incident_id)) == 3
    assert actions_of(db, object_id=incident_id) == [
        "incident.create",
        "incident.escalate",
        "incident.escalate",
        "incident.acknowledge",
        "incident.remind",
        "incident.resolve",
    ]
    with db.session() as session:
        lines = session.scalars(
            select(IncidentEvent.text)
            .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "escalation")
            .order_by(IncidentEvent.id)
        ).all()
    assert lines[0].startswith("Paged: Leonie Fischer (step 1")
    assert lines[-1].startswith("Reminder: still acknowledged")
    # The log notifier delivers the queued pages (the demo's channel).
    delivered = deliver.deliver_due(db, config=LOG_ONLY, now=NOW + 133 * MIN)
    assert (delivered.delivered, delivered.failed) == (3, 0)


def test_policy_repeats_then_stops_and_skips_steps_with_nobody(db: Database) -> None:
    with db.session(write=True) as session:
        katrin = person_id(session, "Katrin Vogel")
        # Step 1 names a missing person (nobody to page): it is skipped, not waited on.
        policy = make_policy(
            session,
            name="repeat",
            team_key="ran-north",
            steps=[("person", 999_999, 5), ("person", katrin, 5)],
            repeat_count=1,
        )
        policy_id = policy.id
    incident_id = open_ran(db, policy_id=policy_id)
    assert escalation.run_escalations(db, now=NOW).paged == 1
    assert state(db, incident_id) == (2, 0, NOW + 5 * MIN)
    assert escalation.run_escalations(db, now=NOW + 5 * MIN).paged == 1  # round 2
    assert state(db, incident_id) == (2, 1, NOW + 10 * MIN)
    report = escalation.run_escalations(db, now=NOW + 10 * MIN)
    assert (report.paged, report.exhausted) == (0, 1)
    assert state(db, incident_id)[2] is None
    assert escalation.run_escalations(db, now=NOW + 60 * MIN).paged == 0
    assert [t for t, _ in paged(db, incident_id)] == ["Katrin Vogel", "Katrin Vogel"]
    with db.session() as session:
        status = session.get_one(Incident, incident_id).status
    assert status == "triggered"  # still open and listed; only the paging stopped
    assert "incident.escalation.exhausted" in actions_of(db, object_id=incident_id)
    # A responder can still ask for help by hand, which always pages someone.
    with db.session(write=True) as session:
        assert (
            escalation.escalate_now(
                session, incident_id=incident_id, actor=OPERATOR, now=NOW + 61 * MIN
            )
            == "paged"
        )
    assert len(paged(db, incident_id)) == 3


def test_reminder_goes_to_the_person_who_acknowledged(db: Database) -> None:
    with db.session(write=True) as session:
        user_id = session.scalars(select(User.id).where(User.username == "olga")).one()
        nora = session.get_one(Person, person_id(session, "Nora Haddad"))
        nora.user_id = user_id
    incident_id = open_ran(db)
    escalation.run_escalations(db, now=NOW)
    with db.session(write=True) as session:
        lifecycle.acknowledge(session, incident_id=incident_id, actor=OPERATOR, now=NOW + MIN)
        lifecycle.mitigate(session, incident_id=incident_id, actor=OPERATOR, now=NOW + 2 * MIN)
    # Mitigated is still unresolved: the reminder keeps coming.
    assert escalation.run_escalations(db, now=NOW + 61 * MIN).reminded == 1
    assert paged(db, incident_id)[-1] == ("Nora Haddad", "incident.reminder")


def test_one_broken_incident_does_not_stop_the_others(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.session(write=True) as session:
        empty = make_policy(session, name="empty", team_key="ran-north", steps=[]).id
    good, bad, stepless = open_ran(db), open_ran(db), open_ran(db, policy_id=empty)
    real = escalation.advance

    def flaky(session: Session, *, incident_id: int, **kwargs: Any) -> str | None:
        if incident_id == bad:
            raise RuntimeError("boom")
        return real(session, incident_id=incident_id, **kwargs)

    monkeypatch.setattr(escalation, "advance", flaky)
    report = escalation.run_escalations(db, now=NOW)
    assert report.paged == 1
    assert report.exhausted == 1  # a policy without steps ends escalation, visibly
    assert report.errors == [f"#{bad}: RuntimeError: boom"]
    assert state(db, good)[0] == 1
    assert state(db, bad)[2] == NOW  # still due: the next run tries again
    assert state(db, stepless)[2] is None
