"""Incident lifecycle: routing, the status machine, roles, notes, triage, queries, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from anomaly_feed_support import add_episodes
from incident_support import KIOSK, NOW, OPERATOR, VIEWER, actions_of, person_id, team_id
from sqlalchemy import select

from services import audit
from services.db import Database
from services.db.models import Alarm, ChangeWindow, Disagreement, Incident, IncidentEvent
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.incidents import lifecycle, openers, queries, states, triage
from services.incidents.queries import IncidentFilters
from services.notify.config import NotifyConfig, WebhookEndpoint


def open_ran(db: Database, **extra: object) -> int:
    with db.session(write=True) as session:
        incident = lifecycle.create_manual(
            session,
            title="Cell outages in North",
            severity="sev2",
            actor=OPERATOR,
            now=NOW,
            domain="RAN",
            region="North",
            **extra,  # type: ignore[arg-type]
        )
        return incident.id


def test_manual_incident_is_routed_to_the_owner_and_due_for_escalation(db: Database) -> None:
    incident_id = open_ran(db)
    with db.session() as session:
        incident = session.get_one(Incident, incident_id)
        assert incident.status == "triggered"
        assert incident.team_id == team_id(session, "ran-north")
        assert incident.escalation_policy_id is not None
        assert incident.next_escalation_at == NOW  # the runner pages step 1 straight away
        assert (incident.escalation_position, incident.escalation_round) == (0, 0)
        kinds = session.scalars(
            select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident_id)
        ).all()
        assert kinds == ["created"]
    assert actions_of(db, object_id=incident_id) == ["incident.create"]


def test_unowned_domain_is_listed_but_nobody_is_paged(db: Database) -> None:
    with db.session(write=True) as session:
        incident = lifecycle.create_manual(
            session, title="Odd thing", severity="sev4", actor=OPERATOR, now=NOW, domain="Space"
        )
        assert (incident.team_id, incident.escalation_policy_id) == (None, None)
        assert incident.next_escalation_at is None


def test_state_machine_and_resolution_note(db: Database) -> None:
    incident_id = open_ran(db)
    with db.session(write=True) as session, pytest.raises(states.ResolutionNoteRequired):
        lifecycle.resolve(session, incident_id=incident_id, actor=OPERATOR, note="  ")
    with db.session(write=True) as session:
        incident = lifecycle.acknowledge(
            session, incident_id=incident_id, actor=OPERATOR, now=NOW + timedelta(minutes=3)
        )
        assert incident.status == "acknowledged"
        assert incident.acknowledged_by == "olga"
        # The demo policy re-notifies after 60 minutes while unresolved.
        assert incident.next_escalation_at == NOW + timedelta(minutes=63)
    with db.session(write=True) as session, pytest.raises(states.IllegalTransition) as err:
        lifecycle.acknowledge(session, incident_id=incident_id, actor=OPERATOR)
    assert err.value.status == 409
    assert err.value.details == {"from": "acknowledged", "to": "acknowledged"}
    with db.session(write=True) as session:
        lifecycle.mitigate(session, incident_id=incident_id, actor=OPERATOR, note="traffic moved")
    with db.session(write=True) as session, pytest.raises(states.IllegalTransition):
        lifecycle.acknowledge(session, incident_id=incident_id, actor=OPERATOR)
    for note in ("", "   ", None):
        with db.session(write=True) as session, pytest.raises(states.ResolutionNoteRequired):
            lifecycle.resolve(session, incident_id=incident_id, actor=OPERATOR, note=note)  # type: ignore[arg-type]
    with db.session(write=True) as session:
        incident = lifecycle.resolve(
            session, incident_id=incident_id, actor=OPERATOR, note="Fibre cut repaired"
        )
        assert incident.next_escalation_at is None
    for move in (
        lambda s: lifecycle.acknowledge(s, incident_id=incident_id, actor=OPERATOR),
        lambda s: lifecycle.mitigate(s, incident_id=incident_id, actor=OPERATOR),
        lambda s: lifecycle.resolve(s, incident_id=incident_id, actor=OPERATOR, note="again"),
    ):
        with db.session(write=True) as session, pytest.raises(states.IllegalTransition):
            move(session)
    with db.session() as session:
        incident = session.get_one(Incident, incident_id)
        assert (incident.status, incident.resolution_note) == ("resolved", "Fibre cut repaired")
        statuses = [
            (e.data["from"], e.data["to"])
            for e in session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "status")
                .order_by(IncidentEvent.id)
            )
        ]
    assert statuses == [
        ("triggered", "acknowledged"),
        ("acknowledged", "mitigated"),
        ("mitigated", "resolved"),
    ]
    assert actions_of(db, object_id=incident_id) == [
        "incident.create",
        "incident.acknowledge",
        "incident.mitigate",
        "incident.resolve",
    ]


def test_triggered_can_be_resolved_directly_and_mitigate_acknowledges(db: Database) -> None:
    first, second = open_ran(db), open_ran(db)
    with db.session(write=True) as session:
        lifecycle.resolve(session, incident_id=first, actor=OPERATOR, note="false alarm")
        incident = lifecycle.mitigate(session, incident_id=second, actor=OPERATOR, now=NOW)
        assert incident.acknowledged_at == NOW  # paging stops like an acknowledgement
        assert incident.next_escalation_at == NOW + timedelta(minutes=60)


@pytest.mark.parametrize("actor", [VIEWER, KIOSK], ids=["viewer", "kiosk"])
def test_readers_cannot_act(db: Database, actor: audit.Actor) -> None:
    incident_id = open_ran(db)
    for act in (
        lambda s: lifecycle.create_manual(s, title="x", severity="sev3", actor=actor),
        lambda s: lifecycle.acknowledge(s, incident_id=incident_id, actor=actor),
        lambda s: lifecycle.resolve(s, incident_id=incident_id, actor=actor, note="n"),
        lambda s: triage.add_note(s, incident_id=incident_id, text="hi", actor=actor),
    ):
        with db.session(write=True) as session, pytest.raises(Forbidden):
            act(session)


def test_validation_errors(db: Database) -> None:
    with db.session(write=True) as session:
        with pytest.raises(InvalidInput):
            lifecycle.create_manual(session, title=" ", severity="sev2", actor=OPERATOR)
        with pytest.raises(InvalidInput):
            lifecycle.create_manual(session, title="x", severity="p1", actor=OPERATOR)
        with pytest.raises(InvalidInput):
            lifecycle.create_manual(session, title="x" * 301, severity="sev2", actor=OPERATOR)
        with pytest.raises(NotFound):
            lifecycle.acknowledge(session, incident_id=9999, actor=OPERATOR)
        with pytest.raises(NotFound):
            lifecycle.create_manual(
                session, title="x", severity="sev2", actor=OPERATOR, team_id=9999
            )


def test_roles_notes_change_windows_ticket_and_ai_triage(db: Database) -> None:
    incident_id = open_ran(db)
    with db.session(write=True) as session:
        leonie, nora = person_id(session, "Leonie Fischer"), person_id(session, "Nora Haddad")
        triage.assign_role(
            session, incident_id=incident_id, role="commander", person_id=leonie, actor=OPERATOR
        )
        triage.assign_role(
            session, incident_id=incident_id, role="ai_liaison", person_id=nora, actor=OPERATOR
        )
        with pytest.raises(Conflict):
            triage.assign_role(
                session,
                incident_id=incident_id,
                role="commander",
                person_id=leonie,
                actor=OPERATOR,
            )
        with pytest.raises(InvalidInput):
            triage.assign_role(
                session, incident_id=incident_id, role="chef", person_id=leonie, actor=OPERATOR
            )
        triage.assign_role(
            session, incident_id=incident_id, role="scribe", person_id=leonie, actor=OPERATOR
        )
        triage.clear_role(session, incident_id=incident_id, role="scribe", actor=OPERATOR)
        triage.add_note(session, incident_id=incident_id, text="Vendor engaged", actor=OPERATOR)
        with pytest.raises(InvalidInput):
            triage.add_note(session, incident_id=incident_id, text=" ", actor=OPERATOR)
        window = ChangeWindow(
            title="Router upgrade", kind="change", starts_at=NOW, ends_at=NOW + timedelta(hours=2)
        )
        session.add(window)
        session.flush()
        window_id = window.id
        triage.link_change_window(
            session, incident_id=incident_id, change_window_id=window_id, actor=OPERATOR
        )
        with pytest.raises(Conflict):
            triage.link_change_window(
                session, incident_id=incident_id, change_window_id=window_id, actor=OPERATOR
            )
        triage.set_external_ticket(
            session, incident_id=incident_id, ticket="INC-20231", actor=OPERATOR
        )
        with pytest.raises(InvalidInput):
            triage.set_external_ticket(
                session, incident_id=incident_id, ticket="bad ticket!", actor=OPERATOR
            )
        with pytest.raises(InvalidInput):
            triage.set_ai_triage(
                session,
                incident_id=incident_id,
                actor=OPERATOR,
                ai_detected=False,
                ai_recommended=False,
                ai_correct=True,
            )
        triage.set_ai_triage(
            session,
            incident_id=incident_id,
            actor=OPERATOR,
            ai_detected=True,
            ai_recommended=False,
            ai_correct=True,
        )
        triage.set_severity(session, incident_id=incident_id, severity="sev1", actor=OPERATOR)
    with db.session() as session:
        detail = queries.incident_detail(session, incident_id=incident_id)
        body = detail.as_dict()
    assert {r: p.name for r, p in detail.roles.items()} == {
        "commander": "Leonie Fischer",
        "ai_liaison": "Nora Haddad",
    }
    assert body["external_ticket"] == "INC-20231"
    assert body["severity"] == "sev1"
    assert (body["ai_detected"], body["ai_recommended"], body["ai_correct"]) == (True, False, True)
    assert body["change_windows"] == [
        {"id": window_id, "title": "Router upgrade", "kind": "change"}
    ]
    assert body["team"] == "RAN North operations"
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds == [
        "created",
        "role",
        "role",
        "role",
        "role",
        "note",
        "change_window",
        "ticket",
        "triage",
        "triage",
    ]
    assert actions_of(db, object_id=incident_id) == [
        "incident.create",
        "incident.role.assign",
        "incident.role.assign",
        "incident.role.assign",
        "incident.role.clear",
        "incident.note",
        "incident.change_window.link",
        "incident.ticket",
        "incident.ai_triage",
        "incident.severity",
    ]
    with db.session(write=True) as session:
        triage.unlink_change_window(
            session, incident_id=incident_id, change_window_id=window_id, actor=OPERATOR
        )
        lifecycle.resolve(session, incident_id=incident_id, actor=OPERATOR, note="done")
        # The review goes on after resolution: notes yes, new roles no.
        triage.add_note(session, incident_id=incident_id, text="Post-mortem", actor=OPERATOR)
        with pytest.raises(states.IllegalTransition):
            triage.assign_role(
                session, incident_id=incident_id, role="scribe", person_id=leonie, actor=OPERATOR
            )
        counts = queries.ai_triage_counts(session)
    assert counts["resolved"] == 1
    assert (counts["ai_detected"], counts["ai_right"]) == (1, 1)


def test_list_filters(db: Database) -> None:
    ran = open_ran(db)
    with db.session(write=True) as session:
        core = lifecycle.create_manual(
            session,
            title="Core signalling storm",
            severity="sev1",
            actor=OPERATOR,
            now=NOW + timedelta(minutes=5),
            domain="Core",
            external_ticket="CHG-7",
        ).id
        lifecycle.resolve(session, incident_id=ran, actor=OPERATOR, note="fixed")
        triage.set_ai_triage(
            session,
            incident_id=core,
            actor=OPERATOR,
            ai_detected=True,
            ai_recommended=None,
            ai_correct=None,
        )
    with db.session() as session:

        def ids(**filters: object) -> list[int]:
            page = queries.list_incidents(session, filters=IncidentFilters(**filters))  # type: ignore[arg-type]
            return [r.id for r in page.rows]

        assert ids() == [core, ran]  # newest first
        assert ids(open_only=True) == [core]
        assert ids(status=["resolved"]) == [ran]
        assert ids(severity=["sev1"]) == [core]
        assert ids(origin=["manual"]) == [core, ran]
        assert ids(domain="ran") == [ran]
        assert ids(team_id=team_id(session, "core")) == [core]
        assert ids(ai_involved=True) == [core]
        assert ids(ai_involved=False) == [ran]
        assert ids(text="chg-7") == [core]
        assert ids(text="storm") == [core]
        assert ids(since=NOW + timedelta(minutes=1)) == [core]
        assert ids(until=NOW + timedelta(minutes=1)) == [ran]
        page = queries.list_incidents(session, limit=1, offset=1)
        assert (page.total, [r.id for r in page.rows]) == (2, [ran])
        assert page.teams == {team_id(session, "ran-north"): "RAN North operations"}
        with pytest.raises(InvalidInput):
            queries.list_incidents(session, filters=IncidentFilters(status=["open"]))
        with pytest.raises(InvalidInput):
            queries.list_incidents(session, limit=0)


def test_alarm_incidents_are_deduplicated_while_open(db: Database) -> None:
    with db.session(write=True) as session:
        alarms = [
            Alarm(
                fingerprint="fp-1",
                severity="major",
                probable_cause="linkDown",
                specific_problem="LOS on port 3",
                element_ref="router-7",
                raised_at=NOW + timedelta(minutes=i),
            )
            for i in range(3)
        ]
        session.add_all(alarms)
        session.flush()
        first = openers.create_from_alarm(session, alarm_id=alarms[0].id, actor=OPERATOR, now=NOW)
        again = openers.create_from_alarm(session, alarm_id=alarms[1].id, actor=OPERATOR, now=NOW)
        twice = openers.create_from_alarm(session, alarm_id=alarms[1].id, actor=OPERATOR, now=NOW)
        assert first.created
        assert not again.created
        assert not twice.created
        assert again.incident.id == first.incident.id
        assert first.incident.severity == "sev2"
        assert first.incident.origin == "alarm"
        assert "LOS on port 3" in first.incident.title
        lifecycle.resolve(session, incident_id=first.incident.id, actor=OPERATOR, note="ok")
        after = openers.create_from_alarm(session, alarm_id=alarms[2].id, actor=OPERATOR, now=NOW)
        assert after.created
        assert after.incident.id != first.incident.id
        alarm_lines = session.scalars(
            select(IncidentEvent.data).where(
                IncidentEvent.incident_id == first.incident.id, IncidentEvent.kind == "alarm"
            )
        ).all()
        assert [d["alarm_id"] for d in alarm_lines] == [alarms[0].id, alarms[1].id]
        with pytest.raises(NotFound):
            openers.create_from_alarm(session, alarm_id=999_999, actor=OPERATOR)
    assert actions_of(db, prefix="incident.alarm.link") == ["incident.alarm.link"]


def test_grouped_episodes_open_one_incident_routed_to_the_domain(db: Database) -> None:
    with db.session(write=True) as session:
        sample = add_episodes(session, series=False)
        incident = openers.create_from_episodes(
            session, anomaly_ids=[sample.spike, sample.drop], actor=OPERATOR, now=NOW
        )
        assert incident.origin == "anomaly"
        assert incident.ai_detected is True
        assert incident.team_id is not None  # the element's domain has an owner
        assert incident.next_escalation_at == NOW
        with pytest.raises(Conflict):
            openers.create_from_episodes(
                session, anomaly_ids=[sample.drop], actor=OPERATOR, now=NOW
            )
        with pytest.raises(InvalidInput):
            openers.create_from_episodes(session, anomaly_ids=[], actor=OPERATOR)


def test_status_changes_are_announced_to_webhooks_when_configured(db: Database) -> None:
    config = NotifyConfig(webhooks=(WebhookEndpoint("http://127.0.0.1:9/hook", "s3cret"),))
    incident_id = open_ran(db, config=config)
    with db.session(write=True) as session:
        lifecycle.acknowledge(session, incident_id=incident_id, actor=OPERATOR, config=config)
        log = queries.incident_detail(session, incident_id=incident_id).notifications
    assert sorted(n.payload["event"] for n in log) == ["incident.acknowledged", "incident.created"]
    assert {n.notifier for n in log} == {"webhook"}


def test_a_manual_incident_enters_the_disagreement_queue_as_a_miss(db: Database) -> None:
    incident_id = open_ran(db)
    with db.session() as session:
        cases = session.scalars(
            select(Disagreement).where(Disagreement.incident_id == incident_id)
        ).all()
        assert [(c.kind, c.state) for c in cases] == [("missed", "open")]


def test_a_second_open_incident_with_the_same_key_is_refused(db: Database) -> None:
    # Two openers racing (each checked find_open before the other committed): one wins.
    with db.session(write=True) as session:
        first = lifecycle.open_incident(
            session, title="Source stale", severity="sev3", origin="heartbeat",
            actor=audit.SYSTEM, now=NOW, component="detector", dedup_key="heartbeat:x",
        )  # fmt: skip
        with pytest.raises(Conflict, match="already carries the key 'heartbeat:x'"):
            lifecycle.open_incident(
                session, title="Source stale", severity="sev3", origin="heartbeat",
                actor=audit.SYSTEM, now=NOW, component="detector", dedup_key="heartbeat:x",
            )  # fmt: skip
        # The winner is untouched by the refused twin (its savepoint rolled back alone).
        assert lifecycle.find_open(session, dedup_key="heartbeat:x").id == first.id
        lifecycle.resolve(
            session, incident_id=first.id, actor=OPERATOR, note="fixed the feed", now=NOW
        )
        # Once resolved, the key is free again.
        again = lifecycle.open_incident(
            session, title="Source stale again", severity="sev3", origin="heartbeat",
            actor=audit.SYSTEM, now=NOW, component="detector", dedup_key="heartbeat:x",
        )  # fmt: skip
        assert again.id != first.id
