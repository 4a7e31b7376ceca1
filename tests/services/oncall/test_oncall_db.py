"""On-call against a real database (SQLite and PostgreSQL): demo seed, resolve, overrides, iCal."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from testkit import BACKENDS, backend_url, seeded_database

from services import audit
from services.db import Database
from services.db.models import AuditEvent, Ownership, Person, Rotation, Team, UseCase
from services.errors import InvalidInput, NotFound
from services.oncall import ical, overrides, overview, resolve, schedules
from services.oncall import rotations as rot
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_simulator_sources

# Wednesday 2026-11-25, 11:00 in Berlin: the RAN North day desk is staffed.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ACTOR = audit.Actor(name="eng-1", role="engineer")
# One worker builds both databases once, instead of every worker building its own.
pytestmark = pytest.mark.xdist_group("oncall-db")


@pytest.fixture(scope="module", params=BACKENDS)
def demo_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated database with simulator sources, one use case and the demo on-call seed."""
    with (
        backend_url(request.param, tmp_path_factory, "oncall") as url,
        seeded_database(url) as database,
    ):
        with database.session(write=True) as session:
            ensure_simulator_sources(session)
            session.add(
                UseCase(
                    key="congestion_lb",
                    name="Congestion load balancing",
                    trigger="anomaly:congestion",
                    action="lb_change",
                )
            )
            session.flush()
            summary = seed_demo_oncall(session, now=NOW)
            assert summary.teams == 5
            assert summary.added > 0
        yield database


@pytest.fixture
def session(demo_db: Database) -> Iterator[Session]:
    """A session whose writes are rolled back, so every test sees the pristine seed."""
    with demo_db.session() as session:
        yield session


def team_id(session: Session, key: str) -> int:
    return session.scalars(select(Team.id).where(Team.key == key)).one()


def person_id(session: Session, name: str) -> int:
    return session.scalars(select(Person.id).where(Person.name == name)).one()


def rotation_id(session: Session, name: str) -> int:
    return session.scalars(select(Rotation.id).where(Rotation.name == name)).one()


def test_demo_seed_is_idempotent_and_owns_every_subject(session: Session) -> None:
    again = seed_demo_oncall(session, now=NOW + timedelta(days=3))
    assert again.added == 0
    assert session.scalar(select(func.count()).select_from(Team)) == 5
    keys = set(session.execute(select(Ownership.subject_kind, Ownership.subject_key)).all())
    assert {("domain", "RAN"), ("domain", "Transport"), ("domain", "Core")} <= keys
    assert {("region", "RAN:North"), ("region", "RAN:South")} <= keys
    for component in (
        "detector",
        "forecaster",
        "ingest:sim-core",
        "ingest:sim-pm-nokia",
        "usecase:congestion_lb",
    ):
        assert ("component", component) in keys
    # A source added later is picked up by the next run, and nothing else changes.
    ensure_simulator_sources(session)
    session.add(UseCase(key="sleep_cells", name="Cell sleep", trigger="t", action="a"))
    session.flush()
    assert seed_demo_oncall(session, now=NOW).ownerships == 1


def test_who_is_on_call_for_a_domain_with_until_and_escalation(session: Session) -> None:
    answer = resolve.oncall_for(session, domain="RAN", now=NOW)
    assert answer.oncall.team.key == "ran-north"
    assert answer.oncall.person.name == "Leonie Fischer"  # the day desk, layer 2
    assert answer.oncall.rotation == "RAN North day desk"
    assert answer.oncall.until == datetime(2026, 11, 25, 17, tzinfo=UTC)  # 18:00 in Berlin
    steps = [(s.target_kind, s.target_name, [p.name for p in s.people]) for s in answer.escalation]
    assert steps[0] == ("schedule", "On call: RAN North operations", ["Leonie Fischer"])
    assert steps[1] == ("rotation", "RAN North weekly", ["Jonas Weber"])
    assert steps[2] == ("person", "Katrin Vogel", ["Katrin Vogel"])
    assert steps[3][0] == "team"
    assert len(steps[3][2]) == 5
    body = answer.as_dict()
    assert body["team"]["key"] == "ran-north"
    assert body["person"]["name"] == "Leonie Fischer"
    assert body["until"] == "2026-11-25T17:00:00+00:00"
    assert [s["position"] for s in body["escalation"]] == [1, 2, 3, 4]


def test_regions_components_and_unknown_subjects(session: Session) -> None:
    south = resolve.oncall_for(session, domain="RAN", region="South", now=NOW)
    assert south.subject_key == "RAN:South"
    assert south.oncall.team.key == "ran-south"
    fallback = resolve.oncall_for(session, domain="ran", region="Atlantis", now=NOW)
    assert fallback.subject_key == "RAN"
    assert fallback.oncall.team.key == "ran-north"
    transport = resolve.oncall_for(session, domain="transport", now=NOW)
    assert transport.oncall.team.key == "transport"
    assert transport.oncall.person is not None
    for component in ("ingest:sim-core", "detector", "usecase:congestion_lb"):
        answer = resolve.oncall_for(session, component=component, now=NOW)
        assert answer.oncall.team.key == "ai-platform"
        assert answer.oncall.person is not None
    with pytest.raises(NotFound, match="ingest:nope"):
        resolve.oncall_for(session, component="ingest:nope", now=NOW)
    with pytest.raises(NotFound, match="Radio"):
        resolve.oncall_for(session, domain="Radio", now=NOW)
    with pytest.raises(InvalidInput):
        resolve.oncall_for(session, now=NOW)


def test_board_shows_someone_for_every_subject_at_any_hour(session: Session) -> None:
    board = resolve.oncall_board(session, now=NOW)
    assert all(a.oncall.person is not None for a in board)
    kinds = [a.subject_kind for a in board]
    assert kinds == sorted(kinds, key=resolve.SUBJECT_KINDS.index)
    assert len(board) == session.scalar(select(func.count()).select_from(Ownership))
    # Every team's final schedule tiles the next four weeks: never a gap on the wall.
    end = NOW + timedelta(days=28)
    for team in session.scalars(select(Team.id)):
        found = schedules.team_shifts(session, team_id=team, start=NOW, end=end)
        assert found[0].start == NOW
        assert found[-1].end == end
        assert all(a.end == b.start for a, b in itertools.pairwise(found))


def test_core_follows_the_sun_on_weekdays_and_backstop_at_weekends(session: Session) -> None:
    core = team_id(session, "core")
    names = {
        at: resolve.oncall_now(session, team_id=core, now=at).person.name
        for at in (
            datetime(2026, 11, 25, 3, tzinfo=UTC),  # 11:00 Singapore
            datetime(2026, 11, 25, 10, tzinfo=UTC),  # 11:00 Berlin
            datetime(2026, 11, 25, 20, tzinfo=UTC),  # 15:00 New York
            datetime(2026, 11, 28, 10, tzinfo=UTC),  # Saturday
        )
    }
    assert next(iter(names.values())) in {"Wei Ling Tan", "Arjun Nair"}
    assert list(names.values())[1] in {"Clara Dubois", "Stefan Horvat"}
    assert list(names.values())[2] in {"Daniel Ortiz", "Grace Kim"}
    assert list(names.values())[3] in {"Markus Braun", "Ines Costa"}
    day = schedules.team_shifts(session, team_id=core, start=NOW, end=NOW + timedelta(days=7))
    assert day[0].start == NOW
    assert day[-1].end == NOW + timedelta(days=7)
    assert all(a.end == b.start for a, b in itertools.pairwise(day))


def test_next_handoffs(session: Session) -> None:
    changes = resolve.next_handoffs(
        session, team_id=team_id(session, "ran-north"), now=NOW, within=timedelta(days=3)
    )
    first = changes[0]
    assert first.at == datetime(2026, 11, 25, 17, tzinfo=UTC)
    assert (first.previous.name, first.next.name) == ("Leonie Fischer", "Jonas Weber")
    assert all(c.previous != c.next and c.at > NOW for c in changes)


def test_override_moves_shifts_is_audited_and_reports_who_moved(session: Session) -> None:
    start, end = NOW + timedelta(hours=1), NOW + timedelta(hours=3)
    result = overrides.create_override(
        session,
        rotation_id=rotation_id(session, "RAN North weekly"),
        person_id=person_id(session, "Mehmet Yilmaz"),
        starts_at=start,
        ends_at=end,
        actor=ACTOR,
        now=NOW,
        reason="dentist cover",
    )
    moved = {c.person.name: (c.gained, c.lost) for c in result.changes}
    assert moved == {
        "Mehmet Yilmaz": (((start, end),), ()),
        "Leonie Fischer": ((), ((start, end),)),
    }
    now_2h = resolve.oncall_now(
        session, team_id=team_id(session, "ran-north"), now=NOW + 2 * timedelta(hours=1)
    )
    assert (now_2h.person.name, now_2h.rotation, now_2h.until) == ("Mehmet Yilmaz", "override", end)
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (event.action, event.actor, event.after["reason"]) == (
        "oncall.override.create",
        "eng-1",
        "dentist cover",
    )
    removed = overrides.delete_override(
        session, override_id=result.overrides[0].id, actor=ACTOR, now=NOW
    )
    assert {c.person.name for c in removed.changes} == {"Mehmet Yilmaz", "Leonie Fischer"}
    assert audit.verify(session).ok


def test_override_validation(session: Session) -> None:
    weekly = rotation_id(session, "RAN North weekly")
    mehmet = person_id(session, "Mehmet Yilmaz")
    outsider = person_id(session, "Grace Kim")

    def attempt(**kw: object) -> None:
        args: dict[str, object] = {
            "rotation_id": weekly,
            "person_id": mehmet,
            "actor": ACTOR,
            "now": NOW,
            "starts_at": NOW + timedelta(hours=1),
            "ends_at": NOW + timedelta(hours=2),
        }
        overrides.create_override(session, **{**args, **kw})  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match="member"):
        attempt(person_id=outsider)
    with pytest.raises(InvalidInput, match="end after"):
        attempt(ends_at=NOW)
    with pytest.raises(InvalidInput, match="past"):
        attempt(starts_at=NOW - timedelta(days=1))
    with pytest.raises(InvalidInput, match="at most"):
        attempt(ends_at=NOW + timedelta(days=40))
    with pytest.raises(InvalidInput, match="timezone"):
        attempt(starts_at=datetime(2026, 12, 1))
    with pytest.raises(NotFound):
        attempt(rotation_id=10**6)
    with pytest.raises(NotFound):
        attempt(person_id=10**6)


def test_swap_shifts_trades_two_shifts(session: Session) -> None:
    daily = rotation_id(session, "RAN South daily")
    first_at, second_at = NOW + timedelta(days=1), NOW + timedelta(days=2)
    south = team_id(session, "ran-south")
    before = [
        resolve.oncall_now(session, team_id=south, now=at).person.name
        for at in (first_at, second_at)
    ]
    result = overrides.swap_shifts(
        session, rotation_id=daily, first_at=first_at, second_at=second_at, actor=ACTOR, now=NOW
    )
    after = [
        resolve.oncall_now(session, team_id=south, now=at).person.name
        for at in (first_at, second_at)
    ]
    assert after == before[::-1]
    assert {c.person.name for c in result.changes} == set(before)
    assert all(len(c.gained) == 1 and len(c.lost) == 1 for c in result.changes)
    # The shift under way is swapped from now on, not back to its start.
    ongoing = overrides.swap_shifts(
        session,
        rotation_id=daily,
        first_at=NOW,
        second_at=NOW + timedelta(days=5),
        actor=ACTOR,
        now=NOW,
    )
    assert ongoing.overrides[0].starts_at == NOW
    with pytest.raises(InvalidInput, match="over"):
        overrides.swap_shifts(
            session,
            rotation_id=daily,
            first_at=NOW - timedelta(days=2),
            second_at=NOW + timedelta(days=5),
            actor=ACTOR,
            now=NOW,
        )
    with pytest.raises(InvalidInput, match="same person"):
        overrides.swap_shifts(
            session,
            rotation_id=daily,
            first_at=first_at,
            second_at=first_at + timedelta(hours=1),
            actor=ACTOR,
            now=NOW,
        )


def test_malformed_rotation_is_skipped_not_fatal(session: Session) -> None:
    core = team_id(session, "core")
    session.add(
        Rotation(
            team_id=core,
            name="broken",
            kind="hourly",
            layer=9,
            tz="UTC",
            handoff_time="25:00",
            starts_at=NOW,
        )
    )
    session.flush()
    assert resolve.oncall_now(session, team_id=core, now=NOW).person is not None


def test_team_and_person_calendars_parse_back(session: Session) -> None:
    north = team_id(session, "ran-north")
    start, end = NOW, NOW + timedelta(days=7)
    raw = ical.team_calendar(session, team_id=north, start=start, end=end, now=NOW)
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n")
    assert raw.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    events = Calendar.from_ical(raw).walk("VEVENT")
    runs = rot.person_runs(schedules.team_shifts(session, team_id=north, start=start, end=end))
    assert [(e.decoded("dtstart"), e.decoded("dtend")) for e in events] == [
        (r.start, r.end) for r in runs
    ]
    assert len({str(e["uid"]) for e in events}) == len(events)
    assert str(events[0]["summary"]) == "On call: Leonie Fischer (RAN North operations)"
    assert all(e.decoded("dtstart").tzinfo is not None for e in events)

    leonie = person_id(session, "Leonie Fischer")
    mine = Calendar.from_ical(
        ical.person_calendar(session, person_id=leonie, start=start, end=end, now=NOW)
    )
    own = [(e.decoded("dtstart"), e.decoded("dtend")) for e in mine.walk("VEVENT")]
    assert own == [(r.start, r.end) for r in runs if r.person == leonie]
    assert str(mine["x-wr-calname"]) == "On call — Leonie Fischer"
    with pytest.raises(InvalidInput):
        ical.team_calendar(session, team_id=north, start=end, end=start, now=NOW)
    with pytest.raises(NotFound):
        ical.person_calendar(session, person_id=10**6, start=start, end=end, now=NOW)


def test_team_overviews_are_json_ready(session: Session) -> None:
    teams = overview.team_overviews(session, now=NOW, within=timedelta(days=2))
    by_key = {t.oncall.team.key: t for t in teams}
    assert set(by_key) == {"ran-north", "ran-south", "transport", "core", "ai-platform"}
    core = by_key["core"]
    assert [r.layer for r in core.rotations] == [1, 2, 2, 2]
    assert core.rotations[1].restriction["weekdays"] == [0, 1, 2, 3, 4]
    assert "Core" in core.owns
    body = json.loads(json.dumps([t.as_dict() for t in teams]))
    north = next(t for t in body if t["team"]["key"] == "ran-north")
    assert north["person"]["name"] == "Leonie Fischer"
    assert north["next_handoffs"][0]["at"] == "2026-11-25T17:00:00+00:00"
    assert north["next_handoffs"][0]["to"]["name"] == "Jonas Weber"
    assert [m["name"] for m in north["rotations"][0]["members"]][:2] == [
        "Anna Becker",
        "Jonas Weber",
    ]
