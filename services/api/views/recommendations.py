"""Recommendations: list and read them, decide with a reason, execute (or dry-run), roll back."""

from __future__ import annotations

from services.api.blueprint import api, endpoint
from services.api.schemas.trust import (
    DecisionIn,
    DecisionOut,
    DryRunOut,
    ExecuteOut,
    ExecuteQuery,
    ExecutionOut,
    RecommendationDetail,
    RecommendationList,
    RecommendationOut,
    RecommendationPath,
    RecommendationQuery,
    RollbackIn,
)
from services.api.security import caller
from services.auth import ENGINEER_ROLES, OPERATE_ROLES, Scope
from services.automation.dryrun import dry_run
from services.automation.execution import (
    execute_and_commit,
    execution_view,
    rollback_recommendation,
)
from services.db.models import Recommendation, utcnow
from services.decisions.decide import decide
from services.decisions.queries import list_recommendations, recommendation_detail
from services.web.context import beacon

TAGS = ["recommendations"]


@api.get("/recommendations")
@endpoint(scope=Scope.READ, resp=RecommendationList, tags=TAGS)
def get_recommendations(query: RecommendationQuery) -> RecommendationList:
    """Recommendations newest first; `state=pending` means open or awaiting a second approval."""
    with beacon().db.session() as session:
        rows = list_recommendations(
            session,
            state=query.state,
            use_case_id=query.use_case_id,
            simulated=query.simulated,
            limit=query.limit,
            offset=query.offset,
        )
    return RecommendationList(
        items=[RecommendationOut.model_validate(r) for r in rows],
        limit=query.limit,
        offset=query.offset,
    )


@api.get("/recommendations/<int:recommendation_id>")
@endpoint(scope=Scope.READ, resp=RecommendationDetail, errors=(404,), tags=TAGS)
def get_recommendation(path: RecommendationPath) -> RecommendationDetail:
    """One recommendation with its explanation, decisions, executions and disagreement cases."""
    with beacon().db.session() as session:
        detail = recommendation_detail(session, recommendation_id=path.recommendation_id)
    return RecommendationDetail.model_validate(detail)


@api.post("/recommendations/<int:recommendation_id>/decision")
@endpoint(
    scope=Scope.ACT,
    roles=OPERATE_ROLES,
    resp=DecisionOut,
    status=201,
    errors=(404, 409),
    tags=TAGS,
)
def post_decision(path: RecommendationPath, json: DecisionIn) -> tuple[DecisionOut, int]:
    """Accept, reject or override with a mandatory reason code; a rejection or override
    opens a disagreement case. A high-severity L2 recommendation needs two different
    signed-in people, so an API token cannot approve it (403)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        decision = decide(
            session,
            recommendation_id=path.recommendation_id,
            verdict=json.verdict,
            reason_code=json.reason_code,
            note=json.note,
            override_action=json.override_action,
            actor=actor,
            now=utcnow(),
        )
        state = session.get_one(Recommendation, path.recommendation_id).state
        body = DecisionOut(
            id=decision.id,
            recommendation_id=decision.recommendation_id,
            verdict=decision.verdict,
            reason_code=decision.reason_code,
            note=decision.note or "",
            override_action=decision.override_action,
            approval_step=decision.approval_step,
            state=state,
            created_at=decision.created_at,
        )
    return body, 201


@api.post("/recommendations/<int:recommendation_id>/execute")
@endpoint(
    scope=Scope.ACT,
    roles=OPERATE_ROLES,
    resp=ExecuteOut,
    errors=(404, 409),
    tags=TAGS,
)
def post_execute(path: RecommendationPath, query: ExecuteQuery) -> ExecuteOut:
    """Execute through the use case's actuator when every guardrail allows; otherwise 409
    naming the blocking guardrail, with every guardrail's verdict in `details`. Below L3
    nothing runs that no person accepted. `?dry_run=1` shows what would happen instead."""
    actor = caller().actor()
    ctx = beacon()
    now = utcnow()
    if query.dry_run:
        with ctx.db.session() as session:
            preview = dry_run(session, recommendation_id=path.recommendation_id, now=now)
        return ExecuteOut(DryRunOut.model_validate(preview.as_dict()))
    # Its own unit of work: a refusal's audit event is committed before the 409 is raised.
    run = execute_and_commit(ctx.db, recommendation_id=path.recommendation_id, actor=actor, now=now)
    return ExecuteOut(ExecutionOut.model_validate(run))


@api.post("/recommendations/<int:recommendation_id>/rollback")
@endpoint(
    scope=Scope.ACT,
    roles=ENGINEER_ROLES,
    resp=ExecutionOut,
    errors=(404, 409),
    tags=TAGS,
)
def post_rollback(path: RecommendationPath, json: RollbackIn) -> ExecutionOut:
    """Restore the pre-state of the recommendation's latest execution (engineers and admins)."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        execution = rollback_recommendation(
            session,
            recommendation_id=path.recommendation_id,
            actor=actor,
            now=utcnow(),
            reason=json.reason,
        )
        return ExecutionOut.model_validate(execution_view(execution))
