"""The disagreement queue: cases where human and AI differ, one case in full, and its review."""

from __future__ import annotations

from typing import Any

from services.api.blueprint import api, endpoint
from services.api.schemas.disagreements import (
    DisagreementDetail,
    DisagreementOut,
    DisagreementPage,
    DisagreementPath,
    DisagreementQuery,
    DisagreementReviewIn,
)
from services.api.security import caller
from services.auth import Scope
from services.db.models import utcnow
from services.decisions import disagreements, queries, states
from services.web.context import beacon

TAGS = ["disagreements"]


@api.get("/disagreements")
@endpoint(scope=Scope.READ, resp=DisagreementPage, tags=TAGS)
def list_disagreements(query: DisagreementQuery) -> DisagreementPage:
    """Cases where human and AI differ, open ones first by review due time."""
    now = utcnow()
    filters = {
        "state": query.state,
        "kind": query.kind,
        "use_case_id": query.use_case_id,
        "simulated": query.simulated,
    }
    with beacon().db.session() as session:
        rows = queries.list_cases(
            session, now=now, limit=query.limit, offset=query.offset, **filters
        )
        total = queries.count_cases(session, now=now, **filters)
    return DisagreementPage(
        items=[DisagreementOut.model_validate(_row(r)) for r in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@api.get("/disagreements/<int:disagreement_id>")
@endpoint(scope=Scope.READ, resp=DisagreementDetail, errors=(404,), tags=TAGS)
def get_disagreement(path: DisagreementPath) -> DisagreementDetail:
    """One case: both sides in full, the data quality at the time, reviews and history."""
    with beacon().db.session() as session:
        doc = queries.case_detail(session, disagreement_id=path.disagreement_id, now=utcnow())
    return DisagreementDetail.model_validate(_row(doc))


@api.post("/disagreements/<int:disagreement_id>/review")
@endpoint(
    scope=Scope.ACT,
    roles=states.REVIEW_ROLES,
    resp=DisagreementDetail,
    errors=(404, 409),
    tags=TAGS,
)
def review_disagreement(path: DisagreementPath, json: DisagreementReviewIn) -> DisagreementDetail:
    """Resolve a case with an outcome and a note (409 when already resolved).

    The human decision stands whatever the outcome; the outcome decides what the AI learns.
    """
    actor = caller().actor()
    now = utcnow()
    with beacon().db.session(write=True) as session:
        disagreements.review(
            session,
            disagreement_id=path.disagreement_id,
            outcome=json.outcome,
            note=json.note,
            reviewer=actor,
            now=now,
            new_normal=json.new_normal,
        )
        doc = queries.case_detail(session, disagreement_id=path.disagreement_id, now=now)
    return DisagreementDetail.model_validate(_row(doc))


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    # The service's list row carries the data quality as a sentence under "data_quality";
    # the detail replaces it with the full document.
    quality = doc.get("data_quality")
    text = quality.get("text", "") if isinstance(quality, dict) else str(quality or "")
    return {**doc, "owner_team": doc.get("team"), "data_quality_summary": text}
