"""Demo on-call data: realistic teams, rotations, escalation and ownership for the wall."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.audit import SYSTEM
from services.db.models import (
    EscalationPolicy,
    EscalationStep,
    Ownership,
    Person,
    Rotation,
    RotationMember,
    Source,
    Team,
    TeamMember,
    UseCase,
)

AI_TEAM = "ai-platform"
WEEKDAYS = [0, 1, 2, 3, 4]


@dataclass(frozen=True)
class DemoPerson:
    name: str
    tz: str
    phone: str

    @property
    def email(self) -> str:
        # Mail systems still expect ASCII local parts: "Marković" becomes "markovic".
        folded = unicodedata.normalize("NFKD", self.name).encode("ascii", "ignore").decode()
        local = folded.lower().replace(" ", ".").replace("'", "")
        return f"{local}@noc.example.net"


@dataclass(frozen=True)
class DemoRotation:
    name: str
    kind: str
    tz: str
    handoff: str
    members: tuple[str, ...]
    layer: int = 1
    weekday: int | None = None
    shift_hours: int | None = None
    restriction: dict[str, Any] | None = None


@dataclass(frozen=True)
class DemoTeam:
    key: str
    name: str
    description: str
    people: tuple[DemoPerson, ...]
    rotations: tuple[DemoRotation, ...]
    lead: str
    owns: tuple[tuple[str, str], ...]  # (subject_kind, subject_key)


def _p(name: str, tz: str, phone: str) -> DemoPerson:
    return DemoPerson(name, tz, phone)


# Every team has a 24/7 layer 1, so the wall screen always shows a name; higher layers add
# business-hours desks and a follow-the-sun layer on top.
TEAMS: tuple[DemoTeam, ...] = (
    DemoTeam(
        key="ran-north",
        name="RAN North operations",
        description="Radio access network, regions North and East; national RAN owner.",
        people=(
            _p("Anna Becker", "Europe/Berlin", "+49 30 5550 1101"),
            _p("Jonas Weber", "Europe/Berlin", "+49 30 5550 1102"),
            _p("Leonie Fischer", "Europe/Berlin", "+49 30 5550 1103"),
            _p("Mehmet Yilmaz", "Europe/Berlin", "+49 30 5550 1104"),
            _p("Katrin Vogel", "Europe/Berlin", "+49 30 5550 1105"),
        ),
        rotations=(
            DemoRotation(
                "RAN North weekly",
                "weekly",
                "Europe/Berlin",
                "09:00",
                ("Anna Becker", "Jonas Weber", "Leonie Fischer", "Mehmet Yilmaz"),
                weekday=0,
            ),
            DemoRotation(
                "RAN North day desk",
                "daily",
                "Europe/Berlin",
                "08:00",
                ("Katrin Vogel", "Leonie Fischer", "Jonas Weber"),
                layer=2,
                restriction={"from": "08:00", "to": "18:00", "weekdays": WEEKDAYS},
            ),
        ),
        lead="Katrin Vogel",
        owns=(("domain", "RAN"), ("region", "RAN:North"), ("region", "RAN:East")),
    ),
    DemoTeam(
        key="ran-south",
        name="RAN South operations",
        description="Radio access network, regions South and West.",
        people=(
            _p("Lukas Schmid", "Europe/Berlin", "+49 89 5550 2101"),
            _p("Sofia Romano", "Europe/Rome", "+39 02 5550 2102"),
            _p("Pablo García", "Europe/Madrid", "+34 91 555 2103"),
            _p("Elena Marković", "Europe/Berlin", "+49 89 5550 2104"),
        ),
        rotations=(
            DemoRotation(
                "RAN South daily",
                "daily",
                "Europe/Berlin",
                "08:00",
                ("Lukas Schmid", "Sofia Romano", "Pablo García", "Elena Marković"),
            ),
        ),
        lead="Elena Marković",
        owns=(("region", "RAN:South"), ("region", "RAN:West")),
    ),
    DemoTeam(
        key="transport",
        name="Transport",
        description="Backhaul links and aggregation routers.",
        people=(
            _p("Oliver Hughes", "Europe/London", "+44 20 5550 3101"),
            _p("Priya Patel", "Europe/London", "+44 20 5550 3102"),
            _p("Tom O'Brien", "Europe/Dublin", "+353 1 555 3103"),
            _p("Hannah Clarke", "Europe/London", "+44 20 5550 3104"),
        ),
        rotations=(
            DemoRotation(
                "Transport 12-hour shifts",
                "custom",
                "Europe/London",
                "07:00",
                ("Oliver Hughes", "Priya Patel", "Tom O'Brien", "Hannah Clarke"),
                shift_hours=12,
            ),
        ),
        lead="Hannah Clarke",
        owns=(("domain", "Transport"),),
    ),
    DemoTeam(
        key="core",
        name="Core",
        description="Core network functions; follow-the-sun on weekdays.",
        people=(
            _p("Markus Braun", "Europe/Berlin", "+49 69 5550 4101"),
            _p("Ines Costa", "Europe/Lisbon", "+351 21 555 4102"),
            _p("Wei Ling Tan", "Asia/Singapore", "+65 5550 4103"),
            _p("Arjun Nair", "Asia/Singapore", "+65 5550 4104"),
            _p("Clara Dubois", "Europe/Paris", "+33 1 5550 4105"),
            _p("Stefan Horvat", "Europe/Berlin", "+49 69 5550 4106"),
            _p("Daniel Ortiz", "America/New_York", "+1 212 555 4107"),
            _p("Grace Kim", "America/New_York", "+1 212 555 4108"),
        ),
        rotations=(
            DemoRotation(
                "Core backstop",
                "weekly",
                "Europe/Berlin",
                "09:00",
                ("Markus Braun", "Ines Costa"),
                weekday=0,
            ),
            DemoRotation(
                "Core follow-the-sun APAC",
                "daily",
                "Asia/Singapore",
                "08:00",
                ("Wei Ling Tan", "Arjun Nair"),
                layer=2,
                restriction={"from": "08:00", "to": "16:00", "weekdays": WEEKDAYS},
            ),
            DemoRotation(
                "Core follow-the-sun EMEA",
                "daily",
                "Europe/Berlin",
                "09:00",
                ("Clara Dubois", "Stefan Horvat"),
                layer=2,
                restriction={"from": "09:00", "to": "17:00", "weekdays": WEEKDAYS},
            ),
            DemoRotation(
                "Core follow-the-sun Americas",
                "daily",
                "America/New_York",
                "11:00",
                ("Daniel Ortiz", "Grace Kim"),
                layer=2,
                restriction={"from": "11:00", "to": "19:00", "weekdays": WEEKDAYS},
            ),
        ),
        lead="Markus Braun",
        owns=(("domain", "Core"),),
    ),
    DemoTeam(
        key=AI_TEAM,
        name="AI platform",
        description="Owns the AI itself: ingest, detector, forecaster, automation use cases.",
        people=(
            _p("Maya Lindqvist", "Europe/Stockholm", "+46 8 5550 5101"),
            _p("Rafael Souza", "Europe/Lisbon", "+351 21 555 5102"),
            _p("Nora Haddad", "Europe/Berlin", "+49 30 5550 5103"),
            _p("Felix Wagner", "Europe/Berlin", "+49 30 5550 5104"),
            _p("Aiko Tanaka", "Europe/Berlin", "+49 30 5550 5105"),
        ),
        rotations=(
            DemoRotation(
                "AI platform weekly",
                "weekly",
                "Europe/Berlin",
                "10:00",
                ("Maya Lindqvist", "Rafael Souza", "Nora Haddad", "Felix Wagner"),
                weekday=1,
            ),
            DemoRotation(
                "AI platform day desk",
                "daily",
                "Europe/Berlin",
                "09:00",
                ("Aiko Tanaka", "Nora Haddad", "Rafael Souza"),
                layer=2,
                restriction={"from": "09:00", "to": "18:00", "weekdays": WEEKDAYS},
            ),
        ),
        lead="Maya Lindqvist",
        owns=(
            ("component", "detector"),
            ("component", "forecaster"),
            ("component", "scheduler"),
        ),
    ),
)


@dataclass(frozen=True)
class DemoSummary:
    """What one seeding run added (all zero on a re-run)."""

    teams: int
    people: int
    rotations: int
    policies: int
    ownerships: int

    @property
    def added(self) -> int:
        return self.teams + self.people + self.rotations + self.policies + self.ownerships


def seed_demo_oncall(session: Session, *, now: datetime) -> DemoSummary:
    """Create the demo teams, rotations, escalation policies and ownership map; idempotent."""
    counts = dict.fromkeys(("teams", "people", "rotations", "policies", "ownerships"), 0)
    # Rotations start on a Monday a few weeks back, so "now" is mid-schedule from the start.
    monday = (now.astimezone(UTC) - timedelta(days=28)).date()
    starts_at = datetime.combine(monday - timedelta(days=monday.weekday()), time(), UTC)
    teams = {}
    for spec in TEAMS:
        team, added = _team(session, spec)
        counts["teams"] += added
        people = {p.name: _person(session, p, counts) for p in spec.people}
        for person in people.values():
            _member(session, team.id, person.id)
        rotations = [
            _rotation(session, team.id, r, people, starts_at, counts) for r in spec.rotations
        ]
        policy = _policy(session, team, rotations, people[spec.lead], counts)
        teams[spec.key] = (team, policy)
        for kind, key in spec.owns:
            _own(session, kind, key, team.id, policy.id, counts)
    ai_team, ai_policy = teams[AI_TEAM]
    for key in _ai_components(session):
        _own(session, "component", key, ai_team.id, ai_policy.id, counts)
    summary = DemoSummary(**counts)
    if summary.added:
        audit.record(session, actor=SYSTEM, action="seed.oncall", after=counts)
    return summary


def _ai_components(session: Session) -> list[str]:
    sources = [
        f"ingest:{name}" for name in session.scalars(select(Source.name).order_by(Source.name))
    ]
    cases = [f"usecase:{key}" for key in session.scalars(select(UseCase.key).order_by(UseCase.key))]
    return sources + cases


def _team(session: Session, spec: DemoTeam) -> tuple[Team, int]:
    team = session.scalars(select(Team).where(Team.key == spec.key)).first()
    if team is not None:
        return team, 0
    team = Team(key=spec.key, name=spec.name, description=spec.description)
    session.add(team)
    session.flush()
    return team, 1


def _person(session: Session, spec: DemoPerson, counts: dict[str, int]) -> Person:
    person = session.scalars(select(Person).where(Person.email == spec.email)).first()
    if person is None:
        person = Person(
            name=spec.name,
            email=spec.email,
            phone=spec.phone,
            tz=spec.tz,
            contacts={"email": spec.email, "sms": spec.phone},
        )
        session.add(person)
        session.flush()
        counts["people"] += 1
    return person


def _member(session: Session, team_id: int, person_id: int) -> None:
    exists = session.scalar(
        select(TeamMember.id).where(
            TeamMember.team_id == team_id, TeamMember.person_id == person_id
        )
    )
    if exists is None:
        session.add(TeamMember(team_id=team_id, person_id=person_id))
        session.flush()


def _rotation(
    session: Session,
    team_id: int,
    spec: DemoRotation,
    people: dict[str, Person],
    starts_at: datetime,
    counts: dict[str, int],
) -> Rotation:
    rotation = session.scalars(
        select(Rotation).where(Rotation.team_id == team_id, Rotation.name == spec.name)
    ).first()
    if rotation is not None:
        return rotation
    rotation = Rotation(
        team_id=team_id,
        name=spec.name,
        kind=spec.kind,
        layer=spec.layer,
        tz=spec.tz,
        handoff_time=spec.handoff,
        handoff_weekday=spec.weekday,
        shift_hours=spec.shift_hours,
        starts_at=starts_at,
        restriction=spec.restriction or {},
    )
    session.add(rotation)
    session.flush()
    for position, name in enumerate(spec.members):
        session.add(
            RotationMember(rotation_id=rotation.id, person_id=people[name].id, position=position)
        )
    session.flush()
    counts["rotations"] += 1
    return rotation


def _policy(
    session: Session,
    team: Team,
    rotations: list[Rotation],
    lead: Person,
    counts: dict[str, int],
) -> EscalationPolicy:
    name = f"{team.name} escalation"
    policy = session.scalars(select(EscalationPolicy).where(EscalationPolicy.name == name)).first()
    if policy is not None:
        return policy
    policy = EscalationPolicy(name=name, team_id=team.id, repeat_count=2, renotify_minutes=60)
    session.add(policy)
    session.flush()
    # Whoever the wall shows first, then the 24/7 layer's on-call, then the lead, then everyone.
    steps = [("schedule", team.id, 10)]
    if len(rotations) > 1:
        steps.append(("rotation", rotations[0].id, 10))
    steps += [("person", lead.id, 15), ("team", team.id, 30)]
    for position, (kind, target, wait) in enumerate(steps, start=1):
        session.add(
            EscalationStep(
                policy_id=policy.id,
                position=position,
                target_kind=kind,
                target_id=target,
                wait_minutes=wait,
            )
        )
    session.flush()
    counts["policies"] += 1
    return policy


def _own(
    session: Session, kind: str, key: str, team_id: int, policy_id: int, counts: dict[str, int]
) -> None:
    exists = session.scalar(
        select(Ownership.id).where(Ownership.subject_kind == kind, Ownership.subject_key == key)
    )
    if exists is None:
        session.add(
            Ownership(
                subject_kind=kind, subject_key=key, team_id=team_id, escalation_policy_id=policy_id
            )
        )
        session.flush()
        counts["ownerships"] += 1
