"""Recommendations page: layout by role, the grid, the detail with its dry run, decisions with
reasons, two-person approval, bulk decisions, execute and roll back, role checks on each action."""

from __future__ import annotations

import importlib
import json

import pytest
from dash import Dash
from pages_support import run_callback, text_of
from sqlalchemy import select
from trust_pages_support import TrustSample, raise_sample, seed_network

from services import audit
from services.db import Database
from services.db.models import Execution, Recommendation
from services.errors import Forbidden

DECIDE = "recommendations-decide.n_clicks"


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.recommendations")


@pytest.fixture
def sample(db: Database) -> TrustSample:
    seed_network(db)
    return raise_sample(db)


def _json(component) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(component.to_plotly_json(), default=str)


def state_of(db: Database, rec_id: int) -> str:
    with db.session() as session:
        return session.get_one(Recommendation, rec_id).state


def test_layout_by_role(page, signed_in, sample: TrustSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        viewer = _json(page.layout())
    with signed_in("operator"):
        operator = _json(page.layout())
    with signed_in("engineer"):
        tree = page.layout(id=str(sample.ticket))
        engineer = _json(tree)
    assert page.DECIDE not in viewer
    assert f'"id": "{page.BULK}"' not in viewer
    assert "Your role can read recommendations" in viewer
    assert page.DECIDE in operator
    assert page.EXECUTE in operator
    assert page.ROLLBACK not in operator
    assert page.ROLLBACK in engineer
    # Every reason of the taxonomy is offered.
    for label in ("Wrong diagnosis", "Right diagnosis, wrong action", "Risk too high", "Other"):
        assert label in operator
    store = next(c for c in tree.children if getattr(c, "id", None) == page.SELECTED)
    assert store.data == sample.ticket  # ?id= preselects a recommendation


def test_grid_lists_pending_recommendations(page, signed_in, sample: TrustSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("executive"):
        rows, shown, tiles, banner, empty = run_callback(page.load_grid, "pending", None, None, 0)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {str(sample.ticket), str(sample.major), str(sample.simulated)}
    ticket = by_id[str(sample.ticket)]
    assert ticket["use_case"] == "Capacity breach forecast → carrier-add planning ticket"
    assert (ticket["level"], ticket["action"], ticket["confidence"]) == (
        "L2",
        "carrier_add_ticket",
        0.91,
    )
    assert ticket["blast"] == "1 · 0"
    assert ticket["expires_in"].startswith("in 13 d")  # tickets stay actionable for two weeks
    assert ticket["simulated"] == "live"
    assert by_id[str(sample.simulated)]["simulated"] == "simulated"
    assert shown == "3 recommendations"
    assert "Waiting for a decision 3" in text_of(tiles)
    assert banner is None
    assert empty is None
    with signed_in("viewer"):
        rows, *_ = run_callback(page.load_grid, "rejected", None, None, 0)
        assert rows == []
        *_, empty = run_callback(page.load_grid, "rejected", None, None, 0)
    assert "No recommendations match" in text_of(empty)


def test_detail_shows_why_impact_rollback_and_dry_run(page, signed_in, sample: TrustSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        assert run_callback(page.pick, {"rowId": str(sample.major)}) == sample.major
        detail = text_of(run_callback(page.show_detail, sample.major, 0))
        minor = text_of(run_callback(page.show_detail, sample.ticket, 0))
        simulated = text_of(run_callback(page.show_detail, sample.simulated, 0))
        missing = text_of(run_callback(page.show_detail, 99999, 0))
    assert "forecast to cross 85" in detail
    assert "planning ticket asks for an extra carrier" in detail  # expected impact
    assert "Close the planning ticket" in detail  # rollback plan
    assert "Guardrails now (dry run" in detail
    assert "Execute is blocked by Human approval" in detail
    assert "needs two different people to accept it" in detail
    assert "needs two different people" not in minor
    assert "simulated" in simulated
    assert "There is no recommendation #99999" in missing
    # Who answers for it: the cell's network owner and the use case's owner, with who is on call.
    assert "Who answers for this" in detail
    assert "Network: RAN" in detail
    assert "AI: usecase:capacity_carrier_add" in detail
    assert "no owning team" not in detail


def test_decision_needs_a_reason_then_is_recorded(
    page, signed_in, db: Database, sample: TrustSample
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        message, done, _ = run_callback(
            page.decide_one, 1, sample.ticket, "reject", None, "", None, triggered=DECIDE
        )
        assert "Give a reason" in text_of(message)
        assert done is page.dash.no_update
        message, done, note = run_callback(
            page.decide_one,
            1,
            sample.ticket,
            "reject",
            "maintenance_in_progress",
            "site visit today",
            None,
            triggered=DECIDE,
        )
    assert "rejected" in text_of(message)
    assert done
    assert note == ""
    assert state_of(db, sample.ticket) == "rejected"
    with db.session() as session:
        event = audit.search(session, action="recommendation.rejected")[0]
        assert event.actor == "page-operator"
        assert event.after["reason_code"] == "maintenance_in_progress"


def test_two_person_approval(page, signed_in, db: Database, sample: TrustSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        message, *_ = run_callback(
            page.decide_one, 1, sample.major, "accept", "other", "", None, triggered=DECIDE
        )
        assert "A different person must now accept it too" in text_of(message)
        detail = text_of(run_callback(page.show_detail, sample.major, 1))
        assert "Needs second approval" in detail
        assert "Accepted by page-operator" in detail
        again, *_ = run_callback(
            page.decide_one, 1, sample.major, "accept", "other", "", None, triggered=DECIDE
        )
        assert "needs a second approver" in text_of(again)
    assert state_of(db, sample.major) == "awaiting_second_approval"
    with signed_in("engineer"):
        message, *_ = run_callback(
            page.decide_one, 1, sample.major, "accept", "other", "", None, triggered=DECIDE
        )
        detail = text_of(run_callback(page.show_detail, sample.major, 2))
    assert "accepted" in text_of(message)
    assert "Approved by two people" in detail
    assert state_of(db, sample.major) == "accepted"


def test_override_needs_an_action(page, signed_in, db: Database, sample: TrustSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        refused, *_ = run_callback(
            page.decide_one, 1, sample.ticket, "override", "other", "", "", triggered=DECIDE
        )
        done, *_ = run_callback(
            page.decide_one,
            1,
            sample.ticket,
            "override",
            "right_diagnosis_wrong_action",
            "",
            "manual_capacity_review",
            triggered=DECIDE,
        )
    assert "names the action taken instead" in text_of(refused)
    assert "overridden" in text_of(done)
    assert state_of(db, sample.ticket) == "overridden"


def test_bulk_decision_asks_then_decides(
    page, signed_in, db: Database, sample: TrustSample
) -> None:  # type: ignore[no-untyped-def]
    selected = [{"id": str(sample.ticket)}, {"id": str(sample.simulated)}, {"id": "x"}]
    with signed_in("operator"):
        shown, _, message = run_callback(page.ask_bulk, 1, selected, "reject", None)
        assert shown is False
        assert "Choose a reason" in text_of(message)
        shown, question, _ = run_callback(page.ask_bulk, 1, selected, "reject", "data_issue")
        assert shown is True
        assert "Reject 2 recommendation(s) with reason “Data issue”" in question
        note, done = run_callback(page.decide_bulk, 1, selected, "reject", "data_issue", "feed gap")
    assert "Decided 2 recommendation(s)" in text_of(note)
    assert done
    assert state_of(db, sample.ticket) == "rejected"
    assert state_of(db, sample.simulated) == "rejected"
    with db.session() as session:
        assert all(
            e.after.get("bulk") for e in audit.search(session, action="recommendation.rejected")
        )


def test_execute_is_blocked_until_accepted_then_runs_and_rolls_back(
    page, signed_in, db: Database, sample: TrustSample
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        blocked, _ = run_callback(page.execute_selected, 1, sample.ticket)
        assert "Blocked by guardrail human_approval" in text_of(blocked)
        assert "accept it first" in text_of(blocked)
        run_callback(
            page.decide_one, 1, sample.ticket, "accept", "other", "", None, triggered=DECIDE
        )
        done, _ = run_callback(page.execute_selected, 1, sample.ticket)
        assert "Executed" in text_of(done)
    assert state_of(db, sample.ticket) == "executed"
    with signed_in("engineer"):
        refused, *_ = run_callback(page.rollback_selected, 1, sample.ticket, "")
        assert "a rollback needs a reason" in text_of(refused)
        message, _, cleared = run_callback(page.rollback_selected, 1, sample.ticket, "duplicate")
    assert "rolled back" in text_of(message)
    assert cleared == ""
    assert state_of(db, sample.ticket) == "rolled_back"
    with db.session() as session:
        actions = {e.action for e in audit.search(session, limit=100)}
    assert {
        "automation.execute_blocked",
        "automation.executed",
        "automation.rolled_back",
    } <= actions


def test_rollback_recommended_banner(page, signed_in, db: Database, sample: TrustSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        run_callback(
            page.decide_one, 1, sample.ticket, "accept", "other", "", None, triggered=DECIDE
        )
        run_callback(page.execute_selected, 1, sample.ticket)
    with db.session(write=True) as session:
        execution = session.scalars(select(Execution)).one()
        # What verification writes when the KPIs got worse at L2.
        execution.state = "rollback_recommended"
        execution.verification = {"outcome": "worse", "kpis": {"prb_util_dl": {"verdict": "worse"}}}
    with signed_in("viewer"):
        _, _, tiles, banner, _ = run_callback(page.load_grid, "all", None, None, 0)
        detail = text_of(run_callback(page.show_detail, sample.ticket, 0))
    assert "Rollback recommended" in text_of(banner)
    assert "worse: prb_util_dl" in text_of(banner)
    assert "Rollback recommended 1" in text_of(tiles)
    assert "Rollback recommended" in detail


@pytest.mark.parametrize("role", ["viewer", "executive"])
def test_readers_cannot_act(page, signed_in, db: Database, sample: TrustSample, role: str) -> None:  # type: ignore[no-untyped-def]
    selected = [{"id": str(sample.ticket)}]
    for callback, args in (
        (page.decide_one, (1, sample.ticket, "accept", "other", "", None)),
        (page.ask_bulk, (1, selected, "accept", "other")),
        (page.decide_bulk, (1, selected, "accept", "other", "")),
        (page.execute_selected, (1, sample.ticket)),
        (page.rollback_selected, (1, sample.ticket, "because")),
    ):
        with signed_in(role), pytest.raises(Forbidden):
            run_callback(callback, *args, triggered=DECIDE)
    assert state_of(db, sample.ticket) == "open"


def test_operators_cannot_roll_back(page, signed_in, db: Database, sample: TrustSample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"), pytest.raises(Forbidden):
        run_callback(page.rollback_selected, 1, sample.ticket, "because")
    with db.session() as session:
        assert not audit.search(session, action="automation.rolled_back")
