"""Who answers for one AI output: the network owner of the element and the AI component's owner.

Every anomaly episode and every forecast names both on its page, so the person reading it
knows whom to call about the network and whom to call about the AI itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from services.db.models import Element, Recommendation, UseCase
from services.errors import NotFound
from services.oncall.resolve import OnCall, oncall_for

DETECTOR = "detector"
FORECASTER = "forecaster"


@dataclass(frozen=True)
class OwnerLine:
    """One answer: what it covers, the owning team and who is on call for it now."""

    label: str  # "Network: RAN North" or "AI: detector"
    subject: str  # the ownership key asked for, e.g. "domain:RAN" or "component:detector"
    oncall: OnCall | None  # None: no team owns it (said on the page, never hidden)
    ai: bool


def owners_of_output(
    session: Session,
    *,
    now: datetime,
    domain: str | None,
    region: str | None,
    component: str,
) -> list[OwnerLine]:
    """The network owner (region, else domain) and the AI component's owner, in that order."""
    network = f"{domain}{f' · {region}' if region else ''}" if domain else "unknown domain"
    lines = [
        _line(
            session,
            now=now,
            label=f"Network: {network}",
            subject=f"domain:{domain}",
            ai=False,
            domain=domain,
            region=region,
        )
        if domain
        else OwnerLine(f"Network: {network}", "domain:", None, ai=False)
    ]
    lines.append(
        _line(
            session,
            now=now,
            label=f"AI: {component}",
            subject=f"component:{component}",
            ai=True,
            component=component,
        )
    )
    return lines


def _line(
    session: Session,
    *,
    now: datetime,
    label: str,
    subject: str,
    ai: bool,
    domain: str | None = None,
    region: str | None = None,
    component: str | None = None,
) -> OwnerLine:
    try:
        answer = oncall_for(session, now=now, domain=domain, region=region, component=component)
    except NotFound:
        return OwnerLine(label, subject, None, ai=ai)
    return OwnerLine(label, subject, answer.oncall, ai=ai)


def owners_of_recommendation(
    session: Session, *, now: datetime, recommendation_id: int
) -> list[OwnerLine]:
    """The element's network owner and the use case's owner ("usecase:<key>")."""
    rec = session.get(Recommendation, recommendation_id)
    if rec is None:
        return []
    element = session.get(Element, rec.element_id) if rec.element_id is not None else None
    case = session.get(UseCase, rec.use_case_id) if rec.use_case_id is not None else None
    return owners_of_output(
        session,
        now=now,
        domain=None if element is None else element.domain,
        region=None if element is None else element.region,
        component=f"usecase:{case.key}" if case is not None else DETECTOR,
    )
