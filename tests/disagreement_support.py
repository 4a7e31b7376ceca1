"""Trust data for the disagreement and adoption tests: network, use cases, on-call, cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.audit import Actor
from services.automation.use_cases import ensure_use_cases
from services.db.models import Disagreement, Element, UseCase
from services.decisions import decide, recommend
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.oncall.demo import seed_demo_oncall
from services.seed import ensure_simulator_sources, register_topology

DECIDER = Actor(name="op-decider", role="operator")
CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"


@dataclass(frozen=True)
class Rejected:
    """A recommendation a person rejected, and the disagreement case it opened."""

    recommendation_id: int
    case_id: int


def seed_trust(session: Session, *, now: datetime, topology: bool = True) -> None:
    """A one-site-per-region network (optional), the seeded use cases and the demo on-call."""
    if topology:
        simulator = NetworkSimulator(
            SimConfig(start=pd.Timestamp("2026-11-01", tz="UTC"), sites_per_region=1)
        )
        ensure_simulator_sources(session)
        register_topology(session, simulator.topology)
    ensure_use_cases(session, now=now - timedelta(days=90))
    seed_demo_oncall(session, now=now)  # owns "usecase:<key>" once use cases exist


def raise_one(
    session: Session,
    *,
    now: datetime,
    key: str = "cell_congestion_lb",
    dn: str | None = None,
    rationale: str = "prb_util_dl at 97 % against 55 % expected for this hour.",
) -> int:
    """One open recommendation of a use case on a cell, as the detector would raise it."""
    case = session.scalars(select(UseCase).where(UseCase.key == key)).one()
    query = select(Element).where(Element.element_type == "cell").order_by(Element.id)
    if dn is not None:
        query = select(Element).where(Element.dn == dn)
    element = session.scalars(query.limit(1)).one()
    rec = recommend.create_recommendation(
        session,
        case=case,
        element=element,
        now=now,
        simulated=False,
        confidence=0.87,
        severity="minor",
        rationale=rationale,
        explanation={
            "kpi": "prb_util_dl",
            "model_version": "test-1",
            "data_quality": {"flags": ["late_data"], "text": "one period arrived late"},
        },
        context={"kpi": "prb_util_dl"},
    )
    return rec.id


def reject_one(
    session: Session,
    *,
    now: datetime,
    note: str = "Stadium event, expected load",
    reason: str = "wrong_diagnosis",
    actor: Actor = DECIDER,
) -> Rejected:
    """Raise a recommendation and reject it with a reason: the case lands in the queue."""
    rec_id = raise_one(session, now=now)
    decide.decide(
        session,
        recommendation_id=rec_id,
        verdict="reject",
        reason_code=reason,
        note=note,
        actor=actor,
        now=now,
    )
    case_id = session.scalars(
        select(Disagreement.id).where(Disagreement.recommendation_id == rec_id)
    ).one()
    return Rejected(recommendation_id=rec_id, case_id=case_id)
