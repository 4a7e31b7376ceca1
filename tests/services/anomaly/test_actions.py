"""Actions on episodes: role checks, acknowledgement, feedback, incidents, saved views, audit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anomaly_feed_support import Sample, add_episodes
from sqlalchemy import select

from services import audit, auth
from services.anomaly import actions
from services.audit import Actor
from services.db import Database, connect, upgrade_to_head
from services.db.models import (
    Anomaly,
    AnomalyFeedback,
    Disagreement,
    Incident,
    IncidentEvent,
    UserView,
)
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.seed import ensure_kpis

OPERATOR = Actor(name="olga", role="operator")
ENGINEER = Actor(name="erik", role="engineer")
READERS = [
    Actor(name="vera", role="viewer"),
    Actor(name="ed", role="executive"),
    Actor(name="wall", role="viewer", kind="kiosk"),
]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    upgrade_to_head(database)
    with database.session(write=True) as session:
        ensure_kpis(session)
        for actor in (OPERATOR, ENGINEER, READERS[0]):
            auth.create_user(
                session,
                username=actor.name,
                role=actor.role or "viewer",
                password="user-pass-12345",
                actor=audit.SYSTEM,
            )
    yield database
    database.dispose()


@pytest.fixture
def sample(db: Database) -> Sample:
    with db.session(write=True) as session:
        return add_episodes(session, series=False)


def events(db: Database, action: str) -> list:  # type: ignore[type-arg]
    with db.session() as session:
        return audit.search(session, action=action)


def test_acknowledge_sets_status_user_and_audit(db: Database, sample: Sample) -> None:
    with db.session(write=True) as session:
        actions.acknowledge(session, anomaly_id=sample.spike, actor=OPERATOR)
        actions.acknowledge(session, anomaly_id=sample.drop, actor=OPERATOR)
    with db.session() as session:
        spike = session.get_one(Anomaly, sample.spike)
        drop = session.get_one(Anomaly, sample.drop)
        user = auth.get_user(session, username="olga")
        assert spike.status == "acknowledged"  # still ongoing
        assert drop.status == "resolved"  # ended and seen by a person
        assert spike.acknowledged_by == user.id
        assert spike.acknowledged_at is not None
    logged = events(db, "anomaly.acknowledge")
    assert {e.object_id for e in logged} == {str(sample.spike), str(sample.drop)}
    assert all(e.object_type == "anomaly" and e.actor == "olga" for e in logged)
    with db.session(write=True) as session, pytest.raises(Conflict):
        actions.acknowledge(session, anomaly_id=sample.spike, actor=OPERATOR)


def test_bulk_acknowledge_reports_skipped_and_missing(db: Database, sample: Sample) -> None:
    with db.session(write=True) as session:
        result = actions.acknowledge_many(
            session, anomaly_ids=[sample.spike, sample.old, sample.link_loss, 999], actor=ENGINEER
        )
    assert result.acknowledged == [sample.spike, sample.link_loss]
    assert result.skipped == [sample.old]
    assert result.missing == [999]
    bulk = events(db, "anomaly.acknowledge")
    assert len(bulk) == 2
    assert all(e.after["bulk"] for e in bulk)
    with db.session(write=True) as session, pytest.raises(InvalidInput):
        actions.acknowledge_many(session, anomaly_ids=[], actor=ENGINEER)


@pytest.mark.parametrize("actor", READERS, ids=lambda a: f"{a.kind}-{a.role}")
def test_readers_cannot_act_and_nothing_changes(db: Database, sample: Sample, actor: Actor) -> None:
    calls = [
        lambda s: actions.acknowledge(s, anomaly_id=sample.spike, actor=actor),
        lambda s: actions.acknowledge_many(s, anomaly_ids=[sample.spike], actor=actor),
        lambda s: actions.give_feedback(
            s, anomaly_id=sample.spike, label="not_anomaly", note="", actor=actor
        ),
        lambda s: actions.create_incident(s, anomaly_id=sample.spike, actor=actor),
        lambda s: actions.link_incident(s, anomaly_id=sample.spike, incident_id=1, actor=actor),
    ]
    for call in calls:
        with db.session(write=True) as session, pytest.raises(Forbidden):
            call(session)
    with db.session() as session:
        assert session.get_one(Anomaly, sample.spike).status == "open"
        assert session.scalar(select(AnomalyFeedback.id)) is None
        assert session.scalar(select(Incident.id)) is None
        assert not audit.search(session, action="anomaly.")


def test_feedback_is_stored_with_user_and_audited(db: Database, sample: Sample) -> None:
    with db.session(write=True) as session:
        actions.give_feedback(
            session,
            anomaly_id=sample.drop,
            label="expected",
            note="  planned cell lock  ",
            actor=OPERATOR,
        )
    with db.session() as session:
        stored = session.scalars(select(AnomalyFeedback)).one()
        assert (stored.label, stored.note) == ("expected", "planned cell lock")
        assert stored.user_id == auth.get_user(session, username="olga").id
    logged = events(db, "anomaly.feedback")[0]
    assert logged.after["label"] == "expected"
    assert logged.object_id == str(sample.drop)
    with db.session(write=True) as session:
        with pytest.raises(InvalidInput):
            actions.give_feedback(
                session, anomaly_id=sample.drop, label="meh", note="", actor=OPERATOR
            )
        with pytest.raises(InvalidInput):
            actions.give_feedback(
                session, anomaly_id=sample.drop, label="expected", note="x" * 2001, actor=OPERATOR
            )
        with pytest.raises(NotFound):
            actions.give_feedback(
                session, anomaly_id=999, label="expected", note="", actor=OPERATOR
            )


def test_create_incident_links_the_site_group(db: Database, sample: Sample) -> None:
    with db.session(write=True) as session:
        incident = actions.create_incident(session, anomaly_id=sample.spike, actor=OPERATOR)
        incident_id = incident.id
    with db.session() as session:
        incident = session.get_one(Incident, incident_id)
        assert (incident.origin, incident.severity, incident.status) == (
            "anomaly",
            "sev1",
            "triggered",
        )
        assert "prb_util_dl" in incident.title
        assert incident.created_by == "olga"
        linked = session.scalars(select(Anomaly.id).where(Anomaly.incident_id == incident_id))
        assert sorted(linked) == sorted([sample.spike, sample.drop])
        timeline = session.scalars(
            select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
        ).all()
        assert {e.data["anomaly_id"] for e in timeline} == {sample.spike, sample.drop}
        assert all(e.kind == "anomaly" for e in timeline)
    assert events(db, "incident.create")[0].after["anomalies"] == [sample.spike, sample.drop]
    assert len(events(db, "anomaly.incident.link")) == 2
    with db.session(write=True) as session, pytest.raises(Conflict):
        actions.create_incident(session, anomaly_id=sample.drop, actor=OPERATOR)


def test_link_to_an_existing_incident(db: Database, sample: Sample) -> None:
    with db.session(write=True) as session:
        incident = actions.create_incident(
            session, anomaly_id=sample.link_loss, actor=OPERATOR, title="Backhaul loss"
        )
        incident_id = incident.id
        assert [i.id for i in actions.open_incidents(session)] == [incident_id]
        actions.link_incident(
            session, anomaly_id=sample.old, incident_id=incident_id, actor=ENGINEER
        )
    with db.session() as session:
        assert session.get_one(Anomaly, sample.old).incident_id == incident_id
        assert session.get_one(Incident, incident_id).title == "Backhaul loss"
    with db.session(write=True) as session:
        with pytest.raises(Conflict):
            actions.link_incident(
                session, anomaly_id=sample.old, incident_id=incident_id, actor=ENGINEER
            )
        with pytest.raises(NotFound):
            actions.link_incident(session, anomaly_id=sample.old, incident_id=999, actor=ENGINEER)
        session.get_one(Incident, incident_id).status = "resolved"
        with pytest.raises(Conflict):
            actions.link_incident(
                session, anomaly_id=sample.spike, incident_id=incident_id, actor=ENGINEER
            )


def test_saved_views_are_personal_and_audited(db: Database) -> None:
    viewer = READERS[0]
    with db.session(write=True) as session:
        first = actions.save_view(
            session, name="North critical", state={"severity": ["critical"]}, actor=viewer
        )
        actions.save_view(
            session, name="North critical", state={"severity": ["major"]}, actor=viewer
        )
        actions.save_view(session, name="Mine", state={}, actor=OPERATOR)
        first_id = first.id
    with db.session() as session:
        views = actions.list_views(session, actor=viewer)
        assert [(v.name, v.state) for v in views] == [("North critical", {"severity": ["major"]})]
        assert [v.name for v in actions.list_views(session, actor=OPERATOR)] == ["Mine"]
    with db.session(write=True) as session:
        with pytest.raises(NotFound):  # another user's view
            actions.delete_view(session, view_id=first_id, actor=OPERATOR)
        with pytest.raises(InvalidInput):
            actions.save_view(session, name=" ", state={}, actor=viewer)
        with pytest.raises(Forbidden):
            actions.save_view(session, name="wall", state={}, actor=READERS[2])
        actions.delete_view(session, view_id=first_id, actor=viewer)
    with db.session() as session:
        assert session.scalar(select(UserView.id).where(UserView.id == first_id)) is None
    assert len(events(db, "view.save")) == 3
    assert len(events(db, "view.delete")) == 1


def test_not_an_anomaly_opens_a_disagreement_case(db: Database, sample: Sample) -> None:
    with db.session(write=True) as session:
        actions.give_feedback(
            session, anomaly_id=sample.drop, label="expected", note="", actor=OPERATOR
        )
        actions.give_feedback(
            session, anomaly_id=sample.drop, label="not_anomaly", note="sensor", actor=OPERATOR
        )
    with db.session() as session:
        cases = session.scalars(select(Disagreement)).all()
        # "Expected" agrees that something happened; "not an anomaly" disagrees with the AI.
        assert [(c.kind, c.anomaly_id) for c in cases] == [("false_positive", sample.drop)]
