"""Rows of the simulated trust history: one recommendation at a time, with what followed it.

Deterministic for one seed: every draw comes from the writer's own random generator in a
fixed order. People accept more, and sooner, as the weeks pass and as confidence rises;
L3 use cases mostly act on their own; a few executions are rolled back; older
disagreements are reviewed, the newest wait in the queue (some past their SLA).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.automation.levels import REASON_LABELS
from services.db.models import (
    Decision,
    Disagreement,
    Element,
    Execution,
    MaturityChange,
    Recommendation,
    Review,
    UseCase,
)
from services.decisions import context, plans, recommend, states

SEVERITIES = (("critical", 0.08), ("major", 0.3), ("minor", 0.45), ("warning", 0.17))
OUTCOMES = (
    ("human_right", 0.42),
    ("ai_right", 0.28),
    ("both_reasonable", 0.14),
    ("data_issue", 0.1),
    ("inconclusive", 0.06),
)
REJECT_REASONS = (
    ("wrong_diagnosis", 0.3),
    ("maintenance_in_progress", 0.2),
    ("risk_too_high", 0.2),
    ("already_handled", 0.12),
    ("data_issue", 0.12),
    ("other", 0.06),
)
NOTES = {
    "wrong_diagnosis": "Traffic event at the stadium, not a fault.",
    "maintenance_in_progress": "Field team on site; change ticket CHG-4411 covers it.",
    "risk_too_high": "Too many users on the neighbours tonight; retry in the morning.",
    "already_handled": "Fixed by the vendor TAC before we saw this.",
    "data_issue": "Counters from this node were frozen for an hour.",
    "right_diagnosis_wrong_action": "Antenna tilt change is the better fix here.",
    "other": "",
}
REVIEW_NOTES = {
    "human_right": "The operator's context was right; the detector lacked the event calendar.",
    "ai_right": "KPIs degraded afterwards; the recommendation would have helped.",
    "both_reasonable": "Either action was defensible with what was known.",
    "data_issue": "Input counters were stale; marked for data health.",
    "inconclusive": "Not enough evidence either way.",
}
QUALITY_OK = {"ok": True, "text": "Data was complete and fresh.", "simulated": True}


@dataclass
class HistoryWriter:
    """Writes one simulated recommendation and its decisions, execution, case and review."""

    session: Session
    seed: int
    now: datetime
    weeks: int
    people: list[str]
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("recommendations", "decisions", "executions", "disagreements", "reviews"), 0
        )
    )

    def __post_init__(self) -> None:
        # Demo data, not security: a seeded generator makes the history reproducible.
        self.rng = random.Random(self.seed)  # noqa: S311
        self.owners: dict[int, context.Assignment] = {}
        self.plans: dict[tuple[int, str], tuple[list[Element], plans.Plan]] = {}

    def pick(self, weighted: tuple[tuple[str, float], ...]) -> str:
        """One value drawn by weight."""
        roll, total = self.rng.random() * sum(w for _, w in weighted), 0.0
        for value, weight in weighted:
            total += weight
            if roll < total:
                return value
        return weighted[-1][0]

    def recommendation(
        self, *, case: UseCase, level: int, at: datetime, week: int, element: Element | None
    ) -> None:
        """A recommendation raised at `at` and everything that followed it."""
        rng = self.rng
        cells, plan = self._plan(case, element)
        what = case.name.split("→")[0].strip().lower()
        rec = Recommendation(
            use_case_id=case.id,
            element_id=None if element is None else element.id,
            action=case.action,
            parameters={} if plan is None else plan.parameters,
            rationale=f"Simulated history: {what} on {element.name if element else 'an element'}.",
            explanation={
                "source": {"kind": "simulated_history"},
                "element": None if element is None else {"dn": element.dn, "name": element.name},
            },
            confidence=round(rng.uniform(0.55, 0.98), 3),
            severity=self.pick(SEVERITIES),
            expected_impact="" if plan is None else plan.impact,
            blast_radius_cells=len(cells),
            blast_radius_users=rng.randint(0, 400) if cells else 0,
            rollback_plan={} if plan is None else plan.rollback,
            maturity_level=level,
            state="shadow" if level == 0 else "expired",
            simulated=True,
            created_at=at,
            expires_at=at + recommend.EXPIRY.get(case.action, recommend.DEFAULT_EXPIRY),
        )
        self.session.add(rec)
        self.session.flush()
        self.counts["recommendations"] += 1
        if level == 0:
            return
        if level >= 3 and rng.random() < 0.7:  # automatic: no person in the loop
            self.execution(rec=rec, at=at + timedelta(minutes=1), automatic=True)
            return
        if rng.random() < 0.08:
            return  # nobody decided in time: it expired
        self.decision(rec=rec, at=at, week=week, level=level)

    def decision(self, *, rec: Recommendation, at: datetime, week: int, level: int) -> None:
        """A person's verdict (two for high-severity L2), and what it led to."""
        rng = self.rng
        trust = 0.45 + 0.3 * week / max(1, self.weeks - 1) + 0.6 * (rec.confidence - 0.75)
        roll = rng.random()
        verdict = "accept" if roll < trust else "override" if roll < trust + 0.1 else "reject"
        if verdict == "accept":
            reason = "other"
        elif verdict == "override":
            reason = "right_diagnosis_wrong_action"
        else:
            reason = self.pick(REJECT_REASONS)
        when = at + timedelta(minutes=rng.uniform(3, 30 + 200 * (1 - week / self.weeks)))
        first = rng.choice(self.people)
        decision = self._decide(rec=rec, verdict=verdict, reason=reason, at=when, step=1)
        if verdict == "accept" and states.needs_second_approval(rec):
            when += timedelta(minutes=rng.uniform(2, 40))
            self._decide(rec=rec, verdict="accept", reason="other", at=when, step=2)
        rec.decided_at = when
        if verdict == "accept":
            rec.state = "accepted"
            if level >= 2:
                self.execution(rec=rec, at=when + timedelta(minutes=2), automatic=False)
            return
        rec.state = "rejected" if verdict == "reject" else "overridden"
        human = {
            "kind": "decision",
            "decision_id": decision.id,
            "verdict": verdict,
            "reason_code": reason,
            "reason": REASON_LABELS[reason],
            "note": decision.note,
            "override_action": decision.override_action,
            "by": first,
            "at": when.isoformat(),
        }
        kind = "rejected" if verdict == "reject" else "overridden"
        self.case(rec=rec, kind=kind, at=when, human=human)

    def execution(self, *, rec: Recommendation, at: datetime, automatic: bool) -> None:
        """An execution, verified or rolled back; a rolled-back automatic one opens a case."""
        rng = self.rng
        rolled = rng.random() < (0.08 if automatic else 0.05)
        harmful = rolled and rng.random() < 0.5
        by = "system" if automatic else rng.choice(self.people)
        back_at = at + timedelta(hours=1) if rolled else None
        execution = Execution(
            recommendation_id=rec.id,
            actuator="simulator",
            idempotency_key=f"demo-rec{rec.id}",
            state="rolled_back" if rolled else "verified",
            triggered_by=by,
            guardrails={"automatic": automatic, "level": rec.maturity_level, "simulated": True},
            verification={"outcome": "worse" if harmful else "ok", "simulated": True},
            rollback={"plan": dict(rec.rollback_plan or {}), "harmful": harmful} if rolled else {},
            started_at=at,
            finished_at=at + timedelta(minutes=1),
            verify_after=at + timedelta(hours=1),
            rolled_back_at=back_at,
            rolled_back_by=by if rolled else None,
        )
        self.session.add(execution)
        self.session.flush()
        self.counts["executions"] += 1
        rec.state = "rolled_back" if rolled else "executed"
        if rolled and automatic and back_at is not None:
            why = "KPIs were worse after the change." if harmful else "An engineer undid it."
            human = {"kind": "rollback", "by": by, "reason": why, "at": back_at.isoformat()}
            self.case(
                rec=rec, kind="rolled_back", at=back_at, human=human, execution_id=execution.id
            )

    def case(
        self,
        *,
        rec: Recommendation,
        kind: str,
        at: datetime,
        human: dict[str, Any],
        execution_id: int | None = None,
    ) -> None:
        """A disagreement case; reviewed when old enough, escalated when its SLA passed."""
        rng = self.rng
        due = at + states.REVIEW_SLA[kind]
        # Cases older than a week have been reviewed; most of this week's wait in the queue.
        age = self.now - at
        reviewed = age > timedelta(days=7) or (age > timedelta(days=1) and rng.random() < 0.35)
        review_at = at + timedelta(hours=rng.uniform(2, 90)) if reviewed else None
        late = (review_at is not None and review_at > due) or (review_at is None and due < self.now)
        who = self.owners.get(rec.use_case_id)
        if who is None:
            use_case = self.session.get(UseCase, rec.use_case_id)
            who = self.owners[rec.use_case_id] = context.assign(
                self.session, use_case=use_case, now=self.now
            )
        case = Disagreement(
            kind=kind,
            state="resolved" if reviewed else "open",
            use_case_id=rec.use_case_id,
            recommendation_id=rec.id,
            execution_id=execution_id,
            ai_side={
                "kind": "recommendation",
                "recommendation_id": rec.id,
                "action": rec.action,
                "confidence": rec.confidence,
                "severity": rec.severity,
                "rationale": rec.rationale,
            },
            human_side=human,
            data_quality={"captured_at": at.isoformat(), **QUALITY_OK},
            due_at=due + states.ESCALATION_GRACE if late else due,
            escalated_at=due if late else None,
            assigned_team_id=who.team_id,
            assignee_person_id=who.person_id,
            simulated=True,
            created_at=at,
        )
        self.session.add(case)
        self.session.flush()
        self.counts["disagreements"] += 1
        if review_at is not None:
            outcome = self.pick(OUTCOMES)
            note = REVIEW_NOTES[outcome]
            self.session.add(
                Review(disagreement_id=case.id, outcome=outcome, note=note, created_at=review_at)
            )
            self.counts["reviews"] += 1

    def _plan(
        self, case: UseCase, element: Element | None
    ) -> tuple[list[Element], plans.Plan | None]:
        # Cached per element and action: the history repeats the same few of each.
        if element is None:
            return [], None
        key = (element.id, case.action)
        if key not in self.plans:
            cells = plans.blast_cells(self.session, element=element, action=case.action)
            plan = plans.plan_for(case.action, element=element, cells=cells, context={})
            self.plans[key] = (cells, plan)
        return self.plans[key]

    def _decide(
        self, *, rec: Recommendation, verdict: str, reason: str, at: datetime, step: int
    ) -> Decision:
        decision = Decision(
            recommendation_id=rec.id,
            verdict=verdict,
            reason_code=reason,
            note=NOTES.get(reason, ""),
            override_action="tilt_change" if verdict == "override" else None,
            approval_step=step,
            created_at=at,
        )
        self.session.add(decision)
        self.session.flush()
        self.counts["decisions"] += 1
        return decision


def ladder(
    session: Session, *, case: UseCase, start: datetime, weeks: int
) -> list[tuple[datetime, int]]:
    """(since, level) steps reaching today's level; recorded as approved simulated promotions."""
    existing = session.scalar(
        select(MaturityChange.id).where(MaturityChange.use_case_id == case.id).limit(1)
    )
    target = case.maturity_level
    if target <= 1 or existing is not None:
        return [(start, target)]
    gap = max(1, weeks // target)
    steps = [(start, 1)] + [
        (start + timedelta(weeks=gap * (level - 1)), level) for level in range(2, target + 1)
    ]
    for (_, before), (at, after) in pairwise(steps):
        session.add(
            MaturityChange(
                use_case_id=case.id,
                from_level=before,
                to_level=after,
                kind="promotion",
                status="approved",
                reason="Simulated history: promotion criteria met.",
                evidence={"simulated": True},
                proposed_at=at,
                decided_at=at,
            )
        )
    return steps


def level_at(steps: list[tuple[datetime, int]], at: datetime) -> int:
    """The level in force at `at`."""
    level = steps[0][1]
    for since, step in steps:
        if at >= since:
            level = step
    return level
