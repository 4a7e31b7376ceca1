"""Every guardrail, allowed and blocked, with its plain-language reason (SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import automation_support as kit
import pytest
from automation_support import CELL, ENGINEER, LINK, NOW, accept, audit_actions, recommend, use_case
from sqlalchemy.orm import Session

from services.automation import change_windows
from services.automation.execution import execute
from services.automation.guardrails import (
    GUARDRAIL_NAMES,
    GuardrailBlocked,
    check_guardrails,
)
from services.db.models import Execution
from services.errors import Conflict

pytestmark = pytest.mark.xdist_group("automation-guardrails")
auto_db = kit.auto_db
session = kit.session


def blocking(session: Session, rec, *, automatic: bool = False):
    report = check_guardrails(session, recommendation=rec, now=NOW, automatic=automatic)
    return report.blocking()


def window(session: Session, kind: str, scope: dict, *, start=NOW - timedelta(hours=1), hours=2):
    return change_windows.create_window(
        session,
        payload={
            "title": f"{kind} test",
            "kind": kind,
            "starts_at": start,
            "ends_at": start + timedelta(hours=hours),
            "scope": scope,
        },
        actor=ENGINEER,
    )


def test_accepted_l2_recommendation_passes_every_guardrail(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    report = check_guardrails(session, recommendation=rec, now=NOW, automatic=False)
    assert report.allowed
    assert report.blocking() is None
    assert [r.name for r in report.results] == list(GUARDRAIL_NAMES)
    assert all(r.detail for r in report.results)


def test_below_l3_execute_is_refused_until_a_human_accepts(session: Session) -> None:
    rec = recommend(session)
    with pytest.raises(GuardrailBlocked) as caught:
        execute(session, recommendation_id=rec.id, actor=ENGINEER, now=NOW)
    error = caught.value
    assert isinstance(error, Conflict)
    assert error.status == 409
    assert error.guardrail == "human_approval"
    assert "Below L3 nothing runs without a person's acceptance" in error.message
    assert error.details["blocking"]["name"] == "human_approval"
    assert audit_actions(session)[-1] == "automation.execute_blocked"
    assert rec.state == "open"
    # Automatic execution at L2 is refused by the maturity level itself.
    assert blocking(session, rec, automatic=True).name == "maturity_level"


def test_l0_shadow_never_executes_even_when_accepted(session: Session) -> None:
    use_case(session, "cell_congestion_lb", maturity_level=0)
    rec = recommend(session)
    accept(session, rec)
    for automatic in (False, True):
        result = blocking(session, rec, automatic=automatic)
        assert result.name == "maturity_level"
        assert "never executed" in result.detail


def test_l1_advisory_does_not_execute(session: Session) -> None:
    use_case(session, "cell_congestion_lb", maturity_level=1)
    rec = recommend(session)
    accept(session, rec)
    assert "advisory" in blocking(session, rec).detail


def test_l3_runs_automatically_without_a_human(session: Session) -> None:
    rec = recommend(session, "sleeping_cell_restart")
    assert rec.maturity_level == 3
    report = check_guardrails(session, recommendation=rec, now=NOW, automatic=True)
    assert report.allowed


def test_confidence_threshold(session: Session) -> None:
    low = recommend(session, confidence=0.5)
    accept(session, low)
    result = blocking(session, low)
    assert result.name == "min_confidence"
    assert result.detail == "Confidence 50% is below this use case's 80% minimum."
    edge = recommend(session, confidence=0.8)
    accept(session, edge)
    assert blocking(session, edge) is None


@pytest.mark.parametrize(
    ("cells", "users", "name", "detail"),
    [
        (4, 10, "blast_radius_cells", "Would touch 4 cells; this use case may touch 3."),
        (1, 600, "blast_radius_users", "Would touch 600 users; this use case may touch 500."),
    ],
)
def test_blast_radius_cap(session: Session, cells: int, users: int, name: str, detail: str) -> None:
    rec = recommend(session, cells=cells, users=users)
    accept(session, rec)
    result = blocking(session, rec)
    assert (result.name, result.detail) == (name, detail)
    within = recommend(session, cells=3, users=500)
    accept(session, within)
    assert blocking(session, within) is None


def test_change_freeze_blocks_by_domain_region_and_element(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    window(session, "freeze", {"regions": ["South"]})
    assert blocking(session, rec) is None  # another region's freeze does not apply
    window(session, "freeze", {"domains": ["Transport"]}, start=NOW - timedelta(hours=3))
    assert blocking(session, rec) is None
    window(session, "freeze", {"elements": ["SubNetwork=North,ManagedElement=SITE-0001"]})
    result = blocking(session, rec)
    assert result.name == "change_freeze"
    assert result.detail.startswith("A change freeze is in force: “freeze test” until")


def test_freeze_over_or_not_yet_started_does_not_block(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    window(session, "freeze", {}, start=NOW - timedelta(hours=5), hours=2)
    window(session, "freeze", {}, start=NOW + timedelta(minutes=1), hours=2)
    assert blocking(session, rec) is None
    window(session, "freeze", {}, start=NOW - timedelta(minutes=1), hours=1)  # network-wide
    assert blocking(session, rec).name == "change_freeze"


def test_planned_work_on_the_element_blocks(session: Session) -> None:
    rec = recommend(session)
    accept(session, rec)
    window(session, "maintenance", {"elements": [CELL]})
    result = blocking(session, rec)
    assert result.name == "planned_work"
    assert "Planned work is in progress" in result.detail


def _past_execution(session: Session, rec, *, minutes_ago: int) -> None:
    session.add(
        Execution(
            recommendation_id=rec.id,
            actuator="simulator",
            idempotency_key=f"past-{rec.id}-{minutes_ago}",
            state="verified",
            triggered_by="eng-1",
            started_at=NOW - timedelta(minutes=minutes_ago),
        )
    )
    session.flush()


def test_rate_limit_per_domain_per_hour(session: Session) -> None:
    use_case(session, "cell_congestion_lb", guardrails={"rate_limit_per_domain_per_hour": 1})
    old = recommend(session, state="executed")
    _past_execution(session, old, minutes_ago=61)
    other_domain = recommend(session, "transport_link_reroute", dn=LINK, state="executed")
    _past_execution(session, other_domain, minutes_ago=10)
    rec = recommend(session)
    accept(session, rec)
    assert blocking(session, rec) is None
    _past_execution(session, old, minutes_ago=30)
    result = blocking(session, rec)
    assert result.name == "rate_limit"
    assert result.detail.startswith("RAN already had 1 automated actions in the last hour")


def test_two_person_approval_for_high_severity_l2(session: Session) -> None:
    rec = recommend(session, severity="major")
    accept(session, rec, by="eng-1")
    result = blocking(session, rec)
    assert result.name == "two_person_approval"
    assert "needs two different approvers; 1 so far" in result.detail
    accept(session, rec, by="eng-1", verdict="approve")  # the same person twice counts once
    assert blocking(session, rec).name == "two_person_approval"
    accept(session, rec, by="eng-2", verdict="approve")
    assert blocking(session, rec) is None


def test_awaiting_second_approval_is_not_accepted(session: Session) -> None:
    rec = recommend(session, severity="critical", state="awaiting_second_approval")
    result = blocking(session, rec)
    assert result.name == "human_approval"
    assert "second, different approver" in result.detail


def test_expired_settled_and_disabled(session: Session) -> None:
    expired = recommend(session, expires_at=NOW - timedelta(minutes=1))
    accept(session, expired)
    assert blocking(session, expired).name == "expiry"
    rejected = recommend(session, state="rejected")
    assert blocking(session, rejected).detail == (
        "The recommendation is rejected, so there is nothing to execute."
    )
    use_case(session, "cell_congestion_lb", enabled=False)
    rec = recommend(session)
    accept(session, rec)
    assert blocking(session, rec).name == "use_case_enabled"
