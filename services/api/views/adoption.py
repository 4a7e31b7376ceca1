"""Adoption: how far each AI use case has moved from advisory to automated, for executives."""

from __future__ import annotations

from services import adoption
from services.api.blueprint import api, endpoint
from services.api.schemas.adoption import AdoptionQuery, AdoptionReport
from services.auth import Scope
from services.db.models import utcnow
from services.web.context import beacon


@api.get("/adoption")
@endpoint(scope=Scope.READ, resp=AdoptionReport, tags=["adoption"])
def get_adoption(query: AdoptionQuery) -> AdoptionReport:
    """Network summary and, per use case, maturity ladder, rates, precision and automation."""
    with beacon().db.session() as session:
        report = adoption.adoption_report(session, now=utcnow(), weeks=query.weeks)
    return AdoptionReport.model_validate(report)
