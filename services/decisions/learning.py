"""What the AI learns from reviews: precision, calibration, and baseline / data-health adjustments.

Judging a recommendation (precision and calibration of use cases):
- accepted, or executed and not rolled back: the AI was right (a person or the outcome agreed);
- a reviewed disagreement: "ai_right" counts as right, "human_right" as wrong; "both
  reasonable", "data_issue" and "inconclusive" are left out (neither side was wrong, the
  data was at fault, or nobody can tell); an unreviewed disagreement is not judged yet
  (the same rule as the automation service's promotion metrics);
- open, shadow and expired recommendations are not judged.

Adjustments, stored as DataHealthEvent rows with `details["origin"] ==
"disagreement_review"`, listed by the data-health page and read by the detector before it
scores a KPI (services/anomaly/reviewed.py):
- kind "new_normal": the element's KPI has a new level since `details["since"]`; history
  before it leaves the baseline;
- kind "data_issue": the AI stood on bad data for `details["window"]`; those values leave
  every later baseline.
A review that says the AI was right about an episode someone labelled "not an anomaly"
adds the reviewer's "true_anomaly" verdict, which the detector's calibration review reads
as the episode's latest verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.anomaly import reviewed
from services.audit import Actor
from services.db.models import (
    Anomaly,
    AnomalyFeedback,
    DataHealthEvent,
    Disagreement,
    Recommendation,
    Review,
)

ORIGIN = "disagreement_review"
MISS_LOOKBACK = timedelta(hours=2)
DATA_ISSUE_SPAN = timedelta(hours=1)  # window marked around a reviewed output without an episode
RIGHT = ("ai_right",)
WRONG = ("human_right",)
AGREED_STATES = ("accepted", "executing", "executed")
CALIBRATION_BINS = 5


@dataclass(frozen=True)
class Judgement:
    """One judged recommendation: its confidence and whether the AI was right."""

    recommendation_id: int
    use_case_id: int
    confidence: float
    created_at: datetime
    correct: bool
    basis: str  # "accepted", "executed" or "review:<outcome>"


@dataclass(frozen=True)
class Precision:
    """Right / judged among a use case's recommendations."""

    right: int
    wrong: int

    @property
    def judged(self) -> int:
        return self.right + self.wrong

    @property
    def value(self) -> float | None:
        """Share of judged recommendations the AI got right (None when none judged)."""
        return self.right / self.judged if self.judged else None


def judgements(
    session: Session,
    *,
    use_case_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Judgement]:
    """Judged recommendations raised in [since, until), by the rules in the module docstring."""
    query = select(Recommendation)
    if use_case_id is not None:
        query = query.where(Recommendation.use_case_id == use_case_id)
    if since is not None:
        query = query.where(Recommendation.created_at >= since)
    if until is not None:
        query = query.where(Recommendation.created_at < until)
    recs = session.scalars(query.order_by(Recommendation.id)).all()
    outcomes = latest_outcomes(session, recommendation_ids=[r.id for r in recs])
    out = []
    for rec in recs:
        outcome = outcomes.get(rec.id)
        if outcome is not None:
            if outcome not in RIGHT + WRONG:
                continue
            correct, basis = outcome in RIGHT, f"review:{outcome}"
        elif rec.state in AGREED_STATES:
            correct, basis = True, "executed" if rec.state == "executed" else "accepted"
        else:
            continue
        out.append(
            Judgement(
                rec.id, rec.use_case_id, float(rec.confidence), rec.created_at, correct, basis
            )
        )
    return out


def latest_outcomes(session: Session, *, recommendation_ids: list[int]) -> dict[int, str]:
    """The latest review outcome of each recommendation's resolved disagreement."""
    out: dict[int, str] = {}
    for chunk in _chunks(recommendation_ids, 500):
        rows = session.execute(
            select(Disagreement.recommendation_id, Review.outcome)
            .join(Review, Review.disagreement_id == Disagreement.id)
            .where(Disagreement.recommendation_id.in_(chunk))
            .order_by(Review.created_at, Review.id)
        ).all()
        out.update({rec_id: outcome for rec_id, outcome in rows})
    return out


def precision(
    session: Session,
    *,
    use_case_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Precision:
    """Precision of a use case's (or every) recommendation from decisions and reviews."""
    judged = judgements(session, use_case_id=use_case_id, since=since, until=until)
    right = sum(1 for j in judged if j.correct)
    return Precision(right=right, wrong=len(judged) - right)


def calibration(
    session: Session, *, use_case_id: int | None = None, bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Stated confidence against how often the AI was right, in equal-width bins."""
    judged = judgements(session, use_case_id=use_case_id)
    rows = []
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        inside = [
            j
            for j in judged
            if low <= j.confidence < high or (index == bins - 1 and j.confidence == 1.0)
        ]
        rows.append(
            {
                "bin_low": low,
                "bin_high": high,
                "count": len(inside),
                "mean_confidence": sum(j.confidence for j in inside) / len(inside)
                if inside
                else None,
                "observed_rate": sum(j.correct for j in inside) / len(inside) if inside else None,
            }
        )
    return rows


def apply_review(
    session: Session,
    *,
    case: Disagreement,
    review: Review,
    reviewer: Actor,
    now: datetime,
    new_normal: bool = False,
) -> list[dict[str, Any]]:
    """Turn a review into what the AI learns; returns the effects (also audited)."""
    effects: list[dict[str, Any]] = []
    anomaly = session.get(Anomaly, case.anomaly_id) if case.anomaly_id else None
    if anomaly is not None and case.kind == "false_positive" and review.outcome == "ai_right":
        feedback = AnomalyFeedback(
            anomaly_id=anomaly.id,
            user_id=review.reviewer_id,
            label="true_anomaly",
            note=f"Review of disagreement #{case.id}: the AI was right. {review.note}".strip(),
            created_at=now,
        )
        session.add(feedback)
        session.flush()
        effects.append(
            {"kind": "anomaly_verdict", "anomaly_id": anomaly.id, "label": "true_anomaly"}
        )
    labelled_new_normal = (case.human_side or {}).get("label") == "new_normal"
    if anomaly is not None and (
        new_normal or (labelled_new_normal and review.outcome in ("human_right", "both_reasonable"))
    ):
        effects.append(_new_normal(session, case=case, review=review, anomaly=anomaly, now=now))
    if review.outcome == "data_issue":
        effects.append(_data_issue(session, case=case, review=review, anomaly=anomaly, now=now))
    for effect in effects:
        audit.record(
            session,
            actor=reviewer,
            action="learning.adjust",
            object_type="disagreement",
            object_id=case.id,
            after=effect,
        )
    return effects


def baseline_resets(
    session: Session, *, element_ids: list[int], kpi_id: int
) -> dict[int, datetime]:
    """Per element, the latest moment a review declared a new normal for this KPI."""
    return reviewed.resets_for(session, kpi_id=kpi_id, element_ids=element_ids)


def data_issues(
    session: Session, *, element_id: int, kpi_id: int | None = None
) -> list[tuple[datetime, datetime]]:
    """Windows a review marked as bad data on the element (and KPI, when given)."""
    return reviewed.issues_for(session, kpi_id=kpi_id, element_id=element_id)


def _new_normal(
    session: Session, *, case: Disagreement, review: Review, anomaly: Anomaly, now: datetime
) -> dict[str, Any]:
    event = DataHealthEvent(
        kind="new_normal",
        severity="info",
        element_id=anomaly.element_id,
        kpi_id=anomaly.kpi_id,
        detected_at=now,
        summary=(
            f"Reviewed as a new normal (disagreement #{case.id}): the level near "
            f"{anomaly.observed:g} since {anomaly.started_at:%Y-%m-%d %H:%M} UTC is expected "
            "from now on."
        ),
        details={
            "origin": ORIGIN,
            "action": "rebaseline",
            "since": anomaly.started_at.isoformat(),
            "level": anomaly.observed,
            "previous_expected": anomaly.expected,
            "disagreement_id": case.id,
            "review_id": review.id,
            "anomaly_id": anomaly.id,
        },
    )
    session.add(event)
    session.flush()
    return {"kind": "new_normal", "data_health_event_id": event.id, "anomaly_id": anomaly.id}


def _data_issue(
    session: Session,
    *,
    case: Disagreement,
    review: Review,
    anomaly: Anomaly | None,
    now: datetime,
) -> dict[str, Any]:
    rec = session.get(Recommendation, case.recommendation_id) if case.recommendation_id else None
    element_id = anomaly.element_id if anomaly is not None else rec and rec.element_id
    if anomaly is not None:
        window = (anomaly.started_at, anomaly.ended_at or now)
    else:
        moment = rec.created_at if rec is not None else case.created_at
        window = (moment - DATA_ISSUE_SPAN, moment + DATA_ISSUE_SPAN)
    event = DataHealthEvent(
        kind="data_issue",
        severity="warning",
        element_id=element_id,
        kpi_id=None if anomaly is None else anomaly.kpi_id,
        detected_at=now,
        summary=(
            f"Reviewed as a data issue (disagreement #{case.id}): the AI output stood on bad "
            f"data between {window[0]:%Y-%m-%d %H:%M} and {window[1]:%Y-%m-%d %H:%M} UTC. "
            f"{review.note}"
        ).strip(),
        details={
            "origin": ORIGIN,
            "action": "lower_confidence",
            "window": [window[0].isoformat(), window[1].isoformat()],
            "disagreement_id": case.id,
            "review_id": review.id,
            "recommendation_id": case.recommendation_id,
            "anomaly_id": case.anomaly_id,
        },
    )
    session.add(event)
    session.flush()
    return {"kind": "data_issue", "data_health_event_id": event.id, "element_id": element_id}


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
