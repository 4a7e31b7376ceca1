"""Demo history for the trust pages, and live recommendations from the simulated network.

`backfill_history` writes weeks of simulated recommendations, decisions, executions,
disagreements and reviews (all `simulated=True`; executions and maturity changes say so in
their JSON), deterministic for a given `now` and seed, so adoption trends, the queue and
the maturity ladder have something to show on first start. It writes rows directly with
one audit event for the whole backfill, since none of it happened. `raise_live` keeps a few
recommendations open for a person: from recent episodes and risks first, else from the
busiest cell and the lossiest link in the latest simulated measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import audit
from services.audit import SYSTEM
from services.db.models import Element, Kpi, Measurement, Person, Recommendation, UseCase
from services.decisions import recommend, states
from services.decisions.demo_history import HistoryWriter, ladder, level_at

DEFAULT_WEEKS = 12
SEED = 20261126
LIVE_MIN_OPEN = 3
LIVE_LOOKBACK = timedelta(hours=2)
# Recommendations per week and use case: planning tickets are rarer than radio faults.
WEEKLY = {"carrier_add_ticket": (2, 5)}
DEFAULT_WEEKLY = (8, 16)
FALLBACK_PEOPLE = ("Anna Becker", "Jonas Weber", "Priya Natarajan", "Tomás García")


@dataclass(frozen=True)
class Backfill:
    """What the backfill wrote."""

    recommendations: int
    decisions: int
    executions: int
    disagreements: int
    reviews: int


def backfill_history(
    session: Session, *, now: datetime, weeks: int = DEFAULT_WEEKS, seed: int = SEED
) -> Backfill:
    """Write `weeks` of simulated trust history ending at `now`; a no-op once written."""
    if session.scalar(select(Recommendation.id).where(Recommendation.simulated.is_(True)).limit(1)):
        return Backfill(0, 0, 0, 0, 0)
    now = now.replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(weeks=weeks)
    people = list(session.scalars(select(Person.name).order_by(Person.id).limit(12)))
    writer = HistoryWriter(
        session=session, seed=seed, now=now, weeks=weeks, people=people or list(FALLBACK_PEOPLE)
    )
    rng = writer.rng
    for case in session.scalars(select(UseCase).order_by(UseCase.id)).all():
        steps = ladder(session, case=case, start=start, weeks=weeks)
        elements = _elements(session, case)
        low, high = WEEKLY.get(case.action, DEFAULT_WEEKLY)
        for week in range(weeks):
            for _ in range(rng.randint(low, high)):
                at = start + timedelta(weeks=week, seconds=rng.randint(0, 7 * 86400 - 1))
                element = rng.choice(elements) if elements else None
                if at > now - timedelta(hours=6):
                    continue
                writer.recommendation(
                    case=case, level=level_at(steps, at), at=at, week=week, element=element
                )
    session.flush()
    audit.record(
        session,
        actor=SYSTEM,
        action="demo.decisions_backfill",
        after={"weeks": weeks, **writer.counts},
    )
    return Backfill(**writer.counts)


def raise_live(
    session: Session, *, now: datetime, minimum_open: int = LIVE_MIN_OPEN
) -> list[Recommendation]:
    """Raise from recent simulated episodes and risks; top up from live KPIs if too few are open."""
    raised = recommend.raise_new(session, now=now, simulated=True)
    open_now = session.scalar(
        select(func.count(Recommendation.id)).where(
            Recommendation.state.in_(states.DECIDABLE),
            (Recommendation.expires_at.is_(None)) | (Recommendation.expires_at > now),
        )
    )
    if int(open_now or 0) >= minimum_open:
        return raised
    for action, kpi_name, what in (
        ("lb_param_change", "prb_util_dl", "the busiest cell"),
        ("traffic_reroute", "packet_loss_pct", "the lossiest transport link"),
    ):
        case = session.scalar(
            select(UseCase).where(
                UseCase.action == action, UseCase.enabled.is_(True), UseCase.maturity_level > 0
            )
        )
        top = _top(session, kpi_name=kpi_name, now=now)
        if case is None or top is None:
            continue
        element, value, period = top
        if recommend.pending_for(session, case_id=case.id, element_id=element.id):
            continue
        sure = round(min(0.95, 0.55 + value / 250.0), 3)
        raised.append(
            recommend.create_recommendation(
                session,
                case=case,
                element=element,
                now=now,
                simulated=True,
                confidence=sure,
                severity="major" if sure >= 0.8 else "minor",
                rationale=f"{kpi_name} on {element.name} is {value:.1f} at {period:%H:%M} UTC: "
                f"{what} in the simulated network right now.",
                explanation={
                    "source": {"kind": "live_kpi", "kpi": kpi_name},
                    "kpi": kpi_name,
                    "observed": value,
                    "period_end": period.isoformat(),
                    "data_quality": {"flags": [], "text": "Latest simulated period."},
                },
                context={"kpi": kpi_name},
            )
        )
    return raised


def _elements(session: Session, case: UseCase) -> list[Element]:
    kind = "link" if case.action == "traffic_reroute" else "cell"
    return list(
        session.scalars(
            select(Element).where(Element.element_type == kind).order_by(Element.id).limit(40)
        )
    )


def _top(
    session: Session, *, kpi_name: str, now: datetime
) -> tuple[Element, float, datetime] | None:
    kpi_id = session.scalar(select(Kpi.id).where(Kpi.name == kpi_name))
    if kpi_id is None:
        return None
    latest = session.scalar(
        select(func.max(Measurement.period_end)).where(
            Measurement.kpi_id == kpi_id,
            Measurement.period_end <= now,
            Measurement.period_end >= now - LIVE_LOOKBACK,
        )
    )
    if latest is None:
        return None
    row = session.execute(
        select(Measurement.element_id, Measurement.value)
        .where(
            Measurement.kpi_id == kpi_id,
            Measurement.period_end == latest,
            Measurement.superseded.is_(False),
        )
        .order_by(Measurement.value.desc(), Measurement.element_id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return session.get_one(Element, row.element_id), float(row.value), latest
