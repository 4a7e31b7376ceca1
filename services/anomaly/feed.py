"""Read side of the anomaly feed: filtered, paginated episode lists, counts and episode detail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from services.anomaly.severity import SEVERITIES
from services.db.models import (
    Anomaly,
    AnomalyFeedback,
    AuditEvent,
    Element,
    Incident,
    Kpi,
    User,
)
from services.errors import InvalidInput, NotFound

STATUSES = ("open", "acknowledged", "resolved")
LABELS = ("true_anomaly", "expected", "not_anomaly", "new_normal")
LABEL_TEXT = {
    "true_anomaly": "True anomaly",
    "expected": "Expected / explained",
    "not_anomaly": "Not an anomaly",
    "new_normal": "New normal",
}
MAX_PAGE = 5000
AUDIT_OBJECT = "anomaly"


@dataclass(frozen=True)
class FeedFilters:
    """What the feed is narrowed to; every given filter must match."""

    severities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    min_confidence: float | None = None
    ongoing: bool | None = None
    suppressed: bool | None = None
    region: str | None = None
    domain: str | None = None
    kpi: str | None = None
    element: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def validated(self) -> FeedFilters:
        """Refuse values that cannot match anything, so a typo is not an empty page."""
        unknown = set(self.severities) - set(SEVERITIES)
        if unknown:
            raise InvalidInput(f"Unknown severity {sorted(unknown)}; use {', '.join(SEVERITIES)}.")
        unknown = set(self.statuses) - set(STATUSES)
        if unknown:
            raise InvalidInput(f"Unknown status {sorted(unknown)}; use {', '.join(STATUSES)}.")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise InvalidInput("Minimum confidence is between 0 and 1.")
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("The time range ends before it starts.")
        return self


@dataclass(frozen=True)
class EpisodeRow:
    """One episode as the feed lists it, with its element and KPI."""

    id: int
    element_id: int
    element: str
    dn: str
    element_type: str
    region: str | None
    domain: str
    kpi: str
    unit: str
    severity: str
    confidence: float
    score: float
    observed: float
    expected: float
    band_low: float
    band_high: float
    status: str
    started_at: datetime
    peak_at: datetime
    ended_at: datetime | None
    last_evaluated_at: datetime
    suppressed: bool
    suppressed_reason: str | None
    revised: bool
    incident_id: int | None
    group_key: str | None
    related_kpis: list[Any]
    flags: list[str]
    summary: str
    detector: str
    model_version: str
    acknowledged_at: datetime | None

    @property
    def ongoing(self) -> bool:
        """Still anomalous at the last evaluated period."""
        return self.ended_at is None


@dataclass(frozen=True)
class FeedPage:
    """One page of the feed and how many episodes match in all."""

    rows: list[EpisodeRow]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class FeedCounts:
    """Counts over the filtered feed, for the tiles above the grid."""

    total: int
    by_severity: dict[str, int]
    by_status: dict[str, int]
    ongoing: int
    suppressed: int


@dataclass(frozen=True)
class FeedbackItem:
    """A human verdict on an episode."""

    id: int
    label: str
    note: str
    user: str | None
    created_at: datetime


@dataclass(frozen=True)
class HistoryItem:
    """One audited action on an episode."""

    at: datetime
    actor: str
    role: str | None
    action: str
    after: dict[str, Any] | None


@dataclass(frozen=True)
class IncidentRef:
    """The incident an episode is linked to."""

    id: int
    title: str
    severity: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class EpisodeDetail:
    """An episode with everything its page shows."""

    episode: EpisodeRow
    explanation: dict[str, Any]
    data_quality: dict[str, Any]
    kpi_description: str
    higher_is_worse: bool
    acknowledged_by: str | None
    feedback: list[FeedbackItem]
    history: list[HistoryItem]
    incident: IncidentRef | None
    group: list[EpisodeRow] = field(default_factory=list)


def feed_statement(filters: FeedFilters) -> Select[tuple[Anomaly, Element, Kpi]]:
    """Episodes with element and KPI, newest start first, narrowed by `filters`."""
    filters = filters.validated()
    statement = (
        select(Anomaly, Element, Kpi)
        .join(Element, Element.id == Anomaly.element_id)
        .join(Kpi, Kpi.id == Anomaly.kpi_id)
    )
    for condition in _conditions(filters):
        statement = statement.where(condition)
    return statement.order_by(Anomaly.started_at.desc(), Anomaly.id.desc())


def list_episodes(
    session: Session, *, filters: FeedFilters, limit: int = 100, offset: int = 0
) -> FeedPage:
    """One page of matching episodes and the total that match."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"Page size is 1..{MAX_PAGE} and the offset is not negative.")
    statement = feed_statement(filters)
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = [
        episode_row(anomaly, element, kpi)
        for anomaly, element, kpi in session.execute(statement.limit(limit).offset(offset))
    ]
    return FeedPage(rows=rows, total=int(total or 0), limit=limit, offset=offset)


def feed_counts(session: Session, *, filters: FeedFilters) -> FeedCounts:
    """Matching episodes by severity and status, and how many are ongoing or suppressed."""
    base = feed_statement(filters).order_by(None).subquery()
    anomaly = base.c
    by_severity = dict(
        session.execute(select(anomaly.severity, func.count()).group_by(anomaly.severity)).all()
    )
    by_status = dict(
        session.execute(select(anomaly.status, func.count()).group_by(anomaly.status)).all()
    )
    ongoing = session.scalar(
        select(func.count()).select_from(base).where(anomaly.ended_at.is_(None))
    )
    suppressed = session.scalar(
        select(func.count()).select_from(base).where(anomaly.suppressed.is_(True))
    )
    return FeedCounts(
        total=sum(by_status.values()),
        by_severity={s: int(by_severity.get(s, 0)) for s in SEVERITIES},
        by_status={s: int(by_status.get(s, 0)) for s in STATUSES},
        ongoing=int(ongoing or 0),
        suppressed=int(suppressed or 0),
    )


def any_episodes(session: Session) -> bool:
    """True once detection has stored at least one episode (for the empty state)."""
    return session.scalar(select(Anomaly.id).limit(1)) is not None


def filter_options(session: Session) -> dict[str, list[str]]:
    """Regions, domains and KPIs that exist, for the filter drop-downs."""
    regions = session.scalars(
        select(Element.region)
        .where(Element.region.is_not(None))
        .distinct()
        .order_by(Element.region)
    )
    domains = session.scalars(select(Element.domain).distinct().order_by(Element.domain))
    kpis = session.scalars(select(Kpi.name).order_by(Kpi.name))
    return {"regions": list(regions), "domains": list(domains), "kpis": list(kpis)}


def get_episode(session: Session, *, anomaly_id: int) -> EpisodeRow:
    """One episode as a feed row; NotFound when there is no such id."""
    found = session.execute(
        select(Anomaly, Element, Kpi)
        .join(Element, Element.id == Anomaly.element_id)
        .join(Kpi, Kpi.id == Anomaly.kpi_id)
        .where(Anomaly.id == anomaly_id)
    ).first()
    if found is None:
        raise NotFound(f"There is no anomaly episode #{anomaly_id}.")
    return episode_row(*found)


def episode_detail(session: Session, *, anomaly_id: int) -> EpisodeDetail:
    """An episode with its explanation, verdicts, audited actions, incident and site group."""
    episode = get_episode(session, anomaly_id=anomaly_id)
    anomaly = session.get_one(Anomaly, anomaly_id)
    kpi = session.get_one(Kpi, anomaly.kpi_id)
    feedback = [
        FeedbackItem(id=f.id, label=f.label, note=f.note, user=name, created_at=f.created_at)
        for f, name in session.execute(
            select(AnomalyFeedback, User.username)
            .outerjoin(User, User.id == AnomalyFeedback.user_id)
            .where(AnomalyFeedback.anomaly_id == anomaly_id)
            .order_by(AnomalyFeedback.created_at.desc(), AnomalyFeedback.id.desc())
        )
    ]
    history = [
        HistoryItem(at=e.at, actor=e.actor, role=e.actor_role, action=e.action, after=e.after)
        for e in session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == AUDIT_OBJECT)
            .where(AuditEvent.object_id == str(anomaly_id))
            .order_by(AuditEvent.seq.desc())
            .limit(200)
        )
    ]
    incident = None
    if anomaly.incident_id is not None:
        row = session.get(Incident, anomaly.incident_id)
        if row is not None:
            incident = IncidentRef(
                id=row.id,
                title=row.title,
                severity=row.severity,
                status=row.status,
                created_at=row.created_at,
            )
    acknowledged_by = None
    if anomaly.acknowledged_by is not None:
        acknowledged_by = session.scalar(
            select(User.username).where(User.id == anomaly.acknowledged_by)
        )
    return EpisodeDetail(
        episode=episode,
        explanation=dict(anomaly.explanation or {}),
        data_quality=dict(anomaly.data_quality or {}),
        kpi_description=kpi.description,
        higher_is_worse=kpi.higher_is_worse,
        acknowledged_by=acknowledged_by,
        feedback=feedback,
        history=history,
        incident=incident,
        group=group_members(session, anomaly=anomaly),
    )


def group_members(session: Session, *, anomaly: Anomaly) -> list[EpisodeRow]:
    """Other episodes sharing the episode's site group (simultaneous on one site)."""
    if not anomaly.group_key:
        return []
    rows = session.execute(
        select(Anomaly, Element, Kpi)
        .join(Element, Element.id == Anomaly.element_id)
        .join(Kpi, Kpi.id == Anomaly.kpi_id)
        .where(Anomaly.group_key == anomaly.group_key)
        .where(Anomaly.id != anomaly.id)
        .order_by(Anomaly.severity_score.desc(), Anomaly.id)
        .limit(50)
    )
    return [episode_row(*row) for row in rows]


def episode_row(anomaly: Anomaly, element: Element, kpi: Kpi) -> EpisodeRow:
    """Flatten the ORM rows into the immutable shape pages and the API read."""
    explanation = anomaly.explanation or {}
    quality = anomaly.data_quality or {}
    return EpisodeRow(
        id=anomaly.id,
        element_id=element.id,
        element=element.name,
        dn=element.dn,
        element_type=element.element_type,
        region=element.region,
        domain=element.domain,
        kpi=kpi.name,
        unit=kpi.unit,
        severity=anomaly.severity,
        confidence=float(anomaly.confidence),
        score=float(anomaly.score),
        observed=float(anomaly.observed),
        expected=float(anomaly.expected),
        band_low=float(anomaly.band_low),
        band_high=float(anomaly.band_high),
        status=anomaly.status,
        started_at=anomaly.started_at,
        peak_at=anomaly.peak_at,
        ended_at=anomaly.ended_at,
        last_evaluated_at=anomaly.last_evaluated_at,
        suppressed=bool(anomaly.suppressed),
        suppressed_reason=anomaly.suppressed_reason,
        revised=bool(anomaly.revised),
        incident_id=anomaly.incident_id,
        group_key=anomaly.group_key,
        related_kpis=list(anomaly.related_kpis or []),
        flags=[str(f) for f in quality.get("flags") or []],
        summary=str(explanation.get("summary") or ""),
        detector=anomaly.detector,
        model_version=anomaly.model_version,
        acknowledged_at=anomaly.acknowledged_at,
    )


def _conditions(filters: FeedFilters) -> Sequence[Any]:
    conditions: list[Any] = []
    if filters.severities:
        conditions.append(Anomaly.severity.in_(filters.severities))
    if filters.statuses:
        conditions.append(Anomaly.status.in_(filters.statuses))
    if filters.min_confidence is not None:
        conditions.append(Anomaly.confidence >= filters.min_confidence)
    if filters.ongoing is not None:
        conditions.append(
            Anomaly.ended_at.is_(None) if filters.ongoing else Anomaly.ended_at.is_not(None)
        )
    if filters.suppressed is not None:
        conditions.append(Anomaly.suppressed.is_(filters.suppressed))
    if filters.region:
        conditions.append(Element.region == filters.region)
    if filters.domain:
        conditions.append(Element.domain == filters.domain)
    if filters.kpi:
        conditions.append(Kpi.name == filters.kpi)
    if filters.element:
        # autoescape: a `%` or `_` typed by the user is matched literally.
        needle = filters.element.strip().lower()
        conditions.append(
            or_(
                func.lower(Element.name).contains(needle, autoescape=True),
                func.lower(Element.dn).contains(needle, autoescape=True),
            )
        )
    # An episode belongs to a time range when it overlaps it, not only when it started in it.
    if filters.until is not None:
        conditions.append(Anomaly.started_at < filters.until)
    if filters.since is not None:
        conditions.append(or_(Anomaly.ended_at.is_(None), Anomaly.ended_at >= filters.since))
    return conditions
