"""Heartbeats of the AI: stale sources, failing and silent jobs raise deduplicated incidents."""

from __future__ import annotations

from datetime import timedelta

from incident_support import NOW, OPERATOR, actions_of, team_id
from sqlalchemy import select

from services import heartbeats
from services.db import Database
from services.db.models import Incident, IncidentEvent, JobRun, Source
from services.incidents import escalation, lifecycle

MIN = timedelta(minutes=1)
EXPECTED = {"anomaly.detect": 60, "forecast.nightly": 3600}


def heartbeat_incidents(db: Database) -> list[Incident]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Incident).where(Incident.origin == "heartbeat").order_by(Incident.id)
            )
        )


def heartbeat_states(db: Database, incident_id: int) -> list[str]:
    with db.session() as session:
        rows = session.scalars(
            select(IncidentEvent.data)
            .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "heartbeat")
            .order_by(IncidentEvent.id)
        )
        return [d["state"] for d in rows]


def add_runs(db: Database, job_id: str, statuses: list[str], *, last_at: object = NOW) -> None:
    with db.session(write=True) as session:
        for i, status in enumerate(statuses):
            started = last_at - (len(statuses) - i) * MIN  # type: ignore[operator]
            session.add(
                JobRun(
                    job_id=job_id,
                    started_at=started,
                    finished_at=started + timedelta(seconds=5),
                    status=status,
                    error="ValueError: bad input" if status == "failed" else None,
                )
            )


def test_stale_source_opens_one_incident_for_the_ai_owner(db: Database) -> None:
    with db.session(write=True) as session:
        source = session.scalars(select(Source).order_by(Source.name)).first()
        assert source is not None
        name = source.name
        source.last_received_at = NOW - timedelta(hours=2)
        fresh = session.scalars(select(Source).where(Source.name != name)).all()
        for other in fresh:
            other.last_received_at = NOW - MIN
    report = heartbeats.check_heartbeats(db, now=NOW)
    assert (len(report.opened), report.errors) == (1, [])
    (incident,) = heartbeat_incidents(db)
    assert incident.dedup_key == f"heartbeat:stale:{name}"
    assert name in incident.title
    with db.session() as session:
        assert incident.team_id == team_id(session, "ai-platform")
    assert incident.next_escalation_at == NOW  # the AI's on-call is paged like anyone else
    # Still stale on the next runs: the same incident, nothing new.
    report = heartbeats.check_heartbeats(db, now=NOW + 5 * MIN)
    assert (report.opened, report.ongoing) == ([], [incident.id])
    assert len(heartbeat_incidents(db)) == 1
    # Recovery is written on the timeline once; a relapse too; closing stays with people.
    with db.session(write=True) as session:
        session.scalars(select(Source).where(Source.name == name)).one().last_received_at = (
            NOW + 9 * MIN
        )
    assert heartbeats.check_heartbeats(db, now=NOW + 10 * MIN).recovered == [incident.id]
    assert heartbeats.check_heartbeats(db, now=NOW + 11 * MIN).recovered == []
    later = NOW + 9 * MIN + timedelta(hours=2)
    with db.session(write=True) as session:
        for other in session.scalars(select(Source).where(Source.name != name)):
            other.last_received_at = later
    assert heartbeats.check_heartbeats(db, now=later).ongoing == [incident.id]
    assert heartbeat_states(db, incident.id) == ["failing", "recovered", "failing"]
    with db.session() as session:
        assert session.get_one(Incident, incident.id).status == "triggered"
    # Once resolved, the next failure opens a new incident.
    with db.session(write=True) as session:
        lifecycle.resolve(session, incident_id=incident.id, actor=OPERATOR, note="feed restarted")
    assert len(heartbeats.check_heartbeats(db, now=later).opened) == 1
    assert actions_of(db, object_id=incident.id) == [
        "incident.create",
        "incident.heartbeat.failing",
        "incident.heartbeat.recovered",
        "incident.heartbeat.failing",
        "incident.resolve",
    ]


def test_failing_job_pages_the_detector_owner(db: Database) -> None:
    add_runs(db, "anomaly.detect", ["ok", "failed", "failed"])
    add_runs(db, "health.gaps", ["failed", "failed", "failed"])
    assert heartbeats.check_heartbeats(db, now=NOW).opened == [
        i.id for i in heartbeat_incidents(db)
    ]
    (gaps,) = heartbeat_incidents(db)  # two failures in a row are not enough yet
    assert gaps.dedup_key == "heartbeat:job:health.gaps"
    assert "ValueError: bad input" in gaps.summary
    add_runs(db, "anomaly.detect", ["failed"], last_at=NOW + 2 * MIN)
    report = heartbeats.check_heartbeats(db, now=NOW + 2 * MIN)
    assert len(report.opened) == 1
    detector = heartbeat_incidents(db)[-1]
    assert (detector.dedup_key, detector.severity) == ("heartbeat:job:anomaly.detect", "sev2")
    with db.session() as session:
        assert detector.team_id == team_id(session, "ai-platform")  # owner of "detector"
    # The detector's on-call is paged by the escalation runner.
    assert escalation.run_escalations(db, now=NOW + 2 * MIN).paged == 2


def test_a_job_that_stopped_running_is_an_incident(db: Database) -> None:
    add_runs(db, "anomaly.detect", ["ok"], last_at=NOW - 5 * MIN)
    add_runs(db, "forecast.nightly", ["ok"], last_at=NOW - 2 * timedelta(hours=1))
    # Not yet: the detector runs every minute but gets at least ten before it counts as missing.
    report = heartbeats.check_heartbeats(db, now=NOW, expected=EXPECTED)
    assert report.opened == []
    report = heartbeats.check_heartbeats(db, now=NOW + 10 * MIN, expected=EXPECTED)
    (incident,) = heartbeat_incidents(db)
    assert report.opened == [incident.id]
    assert incident.dedup_key == "heartbeat:missed:anomaly.detect"
    assert incident.title.startswith("The detector did not run")
    # A job that never ran at all (a fresh install) is not judged.
    report = heartbeats.check_heartbeats(
        db, now=NOW + 10 * MIN, expected={**EXPECTED, "forecast.rollup": 3600}
    )
    assert (report.opened, report.ongoing) == ([], [incident.id])
    # A run that does not check that job (no expectations given) does not call it recovered.
    assert heartbeats.check_heartbeats(db, now=NOW + 11 * MIN).recovered == []
    # Once it runs again, it has recovered.
    add_runs(db, "anomaly.detect", ["ok"], last_at=NOW + 12 * MIN)
    report = heartbeats.check_heartbeats(db, now=NOW + 12 * MIN, expected=EXPECTED)
    assert report.recovered == [incident.id]


def test_a_failing_job_that_is_also_late_is_one_incident(db: Database) -> None:
    add_runs(db, "anomaly.detect", ["failed", "failed", "failed"], last_at=NOW - 30 * MIN)
    report = heartbeats.check_heartbeats(db, now=NOW, expected=EXPECTED)
    (incident,) = heartbeat_incidents(db)
    assert report.opened == [incident.id]
    assert incident.dedup_key == "heartbeat:job:anomaly.detect"
