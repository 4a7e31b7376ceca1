"""The rows adoption metrics are computed from, loaded once per report as pandas frames."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models import Decision, Disagreement, Execution, Recommendation, Review
from services.decisions import learning

CHUNK = 500


def frames(session: Session, *, since: datetime, until: datetime) -> dict[str, pd.DataFrame]:
    """Recommendations raised in [since, until) with their decisions, executions and cases."""
    recs = _frame(
        session.execute(
            select(
                Recommendation.id,
                Recommendation.use_case_id,
                Recommendation.created_at,
                Recommendation.state,
                Recommendation.simulated,
            ).where(Recommendation.created_at >= since, Recommendation.created_at < until)
        ).all(),
        ["id", "use_case_id", "created_at", "state", "simulated"],
    )
    ids = recs["id"].tolist()
    decisions = _frame(
        _in(
            session,
            Decision,
            ids,
            (
                Decision.id,
                Decision.recommendation_id,
                Decision.verdict,
                Decision.reason_code,
                Decision.created_at,
            ),
        ),
        ["id", "rec_id", "verdict", "reason_code", "at"],
    )
    rows = _in(
        session,
        Execution,
        ids,
        (
            Execution.recommendation_id,
            Execution.state,
            Execution.guardrails,
            Execution.rollback,
            Execution.started_at,
            Execution.dry_run,
        ),
    )
    executions = _frame(
        [
            (
                r[0],
                r[1] == "rolled_back",
                bool((r[2] or {}).get("automatic")),
                bool((r[3] or {}).get("harmful")),
                r[4],
            )
            for r in rows
            if not r[5]
        ],
        ["rec_id", "rolled_back", "automatic", "harmful", "at"],
    )
    cases = _frame(
        session.execute(
            select(
                Disagreement.id,
                Disagreement.use_case_id,
                Disagreement.kind,
                Disagreement.state,
                Disagreement.created_at,
                Disagreement.due_at,
            ).where(Disagreement.created_at >= since, Disagreement.created_at < until)
        ).all(),
        ["id", "use_case_id", "kind", "state", "at", "due_at"],
    )
    reviews = _frame(
        session.execute(
            select(
                Review.disagreement_id, Review.outcome, Review.created_at, Disagreement.use_case_id
            )
            .join(Disagreement, Disagreement.id == Review.disagreement_id)
            .where(Review.created_at >= since, Review.created_at < until)
        ).all(),
        ["case_id", "outcome", "at", "use_case_id"],
    )
    judged = _frame(
        [
            (j.recommendation_id, j.correct)
            for j in learning.judgements(session, since=since, until=until)
        ],
        ["rec_id", "correct"],
    )
    return {
        "recs": recs,
        "decisions": decisions,
        "executions": executions,
        "cases": cases,
        "reviews": reviews,
        "judged": judged,
    }


def _in(session: Session, model: Any, ids: list[int], columns: tuple[Any, ...]) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        rows += session.execute(select(*columns).where(model.recommendation_id.in_(chunk))).all()
    return rows


def _frame(rows: list[Any], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    for column in ("created_at", "at", "due_at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
