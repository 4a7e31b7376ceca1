"""Incident page: timeline, roles, links and delivery log; every action by role, audited."""

from __future__ import annotations

import importlib
import json

import pytest
from anomaly_feed_support import add_episodes
from dash import Dash
from pages_support import run_callback, text_of
from sqlalchemy import select

from services import audit
from services.db import Database
from services.db.models import Anomaly, Incident, Notification, Person, utcnow
from services.errors import Forbidden
from services.incidents import lifecycle
from services.notify.config import NotifyConfig, WebhookEndpoint
from services.oncall.demo import seed_demo_oncall


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.incident_detail")


@pytest.fixture
def incident(db: Database) -> int:
    """A triggered RAN incident with a linked episode and one failed webhook delivery."""
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=utcnow())
        sample = add_episodes(session, series=False)
        config = NotifyConfig(webhooks=(WebhookEndpoint("http://127.0.0.1:9/h", "x" * 20),))
        row = lifecycle.create_manual(
            session,
            title="Cell outage <b>North</b>",
            severity="sev2",
            actor=audit.SYSTEM,
            domain="RAN",
            summary="Three cells down",
            config=config,
        )
        session.get(Anomaly, sample.spike).incident_id = row.id
        delivery = session.scalars(
            select(Notification).where(Notification.incident_id == row.id)
        ).first()
        delivery.status, delivery.attempts, delivery.last_error = "failed", 12, "connection refused"
        return row.id


def act(page, trigger: str, number: int, **state):  # type: ignore[no-untyped-def]
    clicks = [1 if id_ == getattr(page, trigger) else None for id_ in page.ACTION_IDS]
    fields = ("note", "resolution", "role", "person", "severity", "ticket")
    values = [state.get(f) for f in fields]
    ai = [state.get("detected"), state.get("recommended"), state.get("correct")]
    return run_callback(
        page.act, *clicks, number, *values, *ai, triggered=f"{getattr(page, trigger)}.n_clicks"
    )


def test_page_shows_timeline_links_roles_and_deliveries(page, signed_in, incident) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        layout = page.layout(incident_id=str(incident))
    text = text_of(layout)
    assert f"#{incident} Cell outage <b>North</b>" in text  # markup stays text
    assert "dangerously" not in json.dumps(layout.to_plotly_json(), default=str)
    assert "SEV2" in text
    assert "triggered" in text
    assert "RAN North operations" in text
    assert "RAN North operations escalation" in text
    assert "Incident commander" in text
    assert "not assigned" in text
    assert "Opened (manual, sev2)" in text  # the timeline
    assert "Episode #" in text  # linked anomaly, a link to its drill-down
    assert "/anomalies/" in json.dumps(layout.to_plotly_json(), default=str)
    assert "connection refused" in text  # the delivery log
    assert "Your role can read this incident" in text
    assert "Retry" not in text  # viewers cannot retry


@pytest.mark.parametrize("bad", ["99999", "abc", "0", None])
def test_unknown_incident_is_a_clear_message(page, signed_in, bad) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        assert "Incident not found" in text_of(page.layout(incident_id=bad))


def test_operator_works_the_incident_to_resolution(page, signed_in, db: Database, incident) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        anna = session.scalars(select(Person.id).where(Person.name == "Anna Becker")).one()
    with signed_in("operator"):
        layout = page.layout(incident_id=str(incident))
        assert "Acknowledge" in text_of(layout)
        assert "Retry" in text_of(layout)
        people = run_callback(page.load_people, incident)
        assert any(p["value"] == anna for p in people)
        message, status, *_ = act(page, "ACK", incident)
        assert "Acknowledged" in text_of(message)
        assert "acknowledged" in text_of(status)
        again, *_ = act(page, "ACK", incident)
        assert "cannot become acknowledged" in text_of(again)
        message, _s, _f, _r, timeline, _d, note, _res = act(
            page, "NOTE_ADD", incident, note="rebooted baseband"
        )
        assert note == ""
        assert "rebooted baseband" in text_of(timeline)
        empty, *_ = act(page, "NOTE_ADD", incident, note="   ")
        assert "Write something" in text_of(empty)
        _m, _s, _f, roles, *_ = act(page, "ROLE_ASSIGN", incident, role="commander", person=anna)
        assert "Anna Becker" in text_of(roles)
        nobody, *_ = act(page, "ROLE_ASSIGN", incident, role="scribe", person=None)
        assert "Choose a person" in text_of(nobody)
        message, status, *_ = act(page, "SEVERITY_SET", incident, severity="sev1")
        assert "SEV1" in text_of(status)
        _m, _s, facts, *_ = act(page, "TICKET_SAVE", incident, ticket="INC-4411")
        assert "INC-4411" in text_of(facts)
        _m, _s, facts, *_ = act(
            page, "TRIAGE_SAVE", incident, detected="yes", recommended="no", correct="yes"
        )
        assert "detected · right" in text_of(facts)
        message, *_ = act(page, "ESCALATE", incident)
        assert "Escalated" in text_of(message), text_of(message)
        refused, *_ = act(page, "RESOLVE", incident, resolution="  ")
        assert "Write a resolution note" in text_of(refused)
        message, status, facts, *_rest, resolution = act(
            page, "RESOLVE", incident, resolution="Baseband replaced"
        )
        assert "Resolved" in text_of(message)
        assert "resolved" in text_of(status)
        assert "Baseband replaced" in text_of(facts)
        assert resolution == ""
    with db.session() as session:
        row = session.get(Incident, incident)
        assert (row.status, row.resolved_by, row.severity) == ("resolved", "page-operator", "sev1")
        actions = {e.action for e in audit.search(session, actor="page-operator")}
    assert {"incident.acknowledge", "incident.note", "incident.resolve"} <= actions
    assert "incident.role.assign" in actions


def test_failed_delivery_is_retried_from_the_log(page, signed_in, db: Database, incident) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        failed = session.scalars(
            select(Notification.id).where(Notification.status == "failed")
        ).one()
    with signed_in("engineer"):
        message, table = run_callback(
            page.retry_delivery,
            [1],
            incident,
            triggered=json.dumps({"index": failed, "type": page.RETRY}, separators=(",", ":"))
            + ".n_clicks",
        )
        assert f"#{failed} queued again" in text_of(message), text_of(message)
        assert "pending" in text_of(table)
    with db.session() as session:
        assert session.get(Notification, failed).status == "pending"
        assert audit.search(session, action="notification.retry")


@pytest.mark.parametrize("role", ["viewer", "executive"])
def test_read_only_roles_cannot_act(page, signed_in, db: Database, incident, role) -> None:  # type: ignore[no-untyped-def]
    with signed_in(role):
        with pytest.raises(Forbidden):
            act(page, "ACK", incident)
        with pytest.raises(Forbidden):
            run_callback(page.retry_delivery, [1], incident)
    with db.session() as session:
        assert session.get(Incident, incident).status == "triggered"
