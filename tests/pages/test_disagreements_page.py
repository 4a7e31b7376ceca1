"""Disagreements page: the queue with owner and SLA, both sides of a case, reviews."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dash
import pytest
from dash import Dash
from disagreement_support import Rejected, reject_one, seed_trust
from flask_login import login_user
from pages_support import run_callback, text_of
from sqlalchemy import select

from services import audit
from services.db import Database
from services.db.models import Disagreement, Review, utcnow
from services.decisions.demo import backfill_history
from services.errors import Forbidden
from services.oncall import resolve
from services.web.principal import kiosk_principal

READERS = ("viewer", "operator", "executive")


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    # Dash imported the page module when the app was created; take that very module.
    return importlib.import_module("pages.disagreements")


@pytest.fixture
def case(db: Database) -> Rejected:
    now = utcnow()
    with db.session(write=True) as session:
        seed_trust(session, now=now)
        backfill_history(session, now=now, weeks=3)
        return reject_one(session, now=now)


@contextmanager
def as_kiosk(app: Dash) -> Iterator[None]:
    """Run code as a wall screen (a read-only kiosk session)."""
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        login_user(kiosk_principal(token_id=1, name="noc wall"))
        yield


def _open_ids(db: Database, *, simulated: bool) -> list[int]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Disagreement.id).where(
                    Disagreement.state == "open", Disagreement.simulated.is_(simulated)
                )
            )
        )


def test_every_action_refuses_other_roles_and_wall_screens(  # type: ignore[no-untyped-def]
    page, app: Dash, signed_in, db: Database, case: Rejected
) -> None:
    selected = [{"id": str(case.case_id)}]
    actions = (
        (page.submit_review, (1, case.case_id, "ai_right", "", [])),
        (page.ask_bulk, (1, selected, "ai_right")),
        (page.bulk_review, (1, selected, "ai_right", "")),
    )
    for role in READERS:
        with signed_in(role):
            for callback, args in actions:
                with pytest.raises(Forbidden):
                    run_callback(callback, *args)
    with as_kiosk(app):
        for callback, args in actions:
            with pytest.raises(Forbidden, match="read-only"):
                run_callback(callback, *args)
        # The page is not a wall page: its reads are refused to kiosks too.
        with pytest.raises(Forbidden):
            run_callback(page.load_queue, "open", None, None, [], None, None)
    with db.session() as session:
        reviewed = select(Review.id).where(Review.disagreement_id == case.case_id)
        assert session.scalar(reviewed) is None
    assert frozenset({"engineer", "admin"}) == page.REVIEW_ROLES


def test_queue_shows_owner_oncall_sla_and_simulated_label(  # type: ignore[no-untyped-def]
    page, signed_in, db: Database, case: Rejected
) -> None:
    with signed_in("viewer"):
        rows, shown, tiles, empty, sim = run_callback(
            page.load_queue, "open", None, None, [], None, None
        )
    row = next(r for r in rows if r["id"] == str(case.case_id))
    with db.session() as session:
        owner = resolve.oncall_for(session, now=utcnow(), component="usecase:cell_congestion_lb")
    assert row["ref"] == f"#{case.case_id}"
    assert row["kind_text"] == "Rejected"
    assert row["owner"] == f"{owner.oncall.team.name} · {owner.oncall.person.name} on call"
    assert row["assignee"] == owner.oncall.person.name
    assert row["due"].startswith("due in 2 d")
    assert "op-decider: reject — Wrong diagnosis" in row["human"]
    assert "lb_param_change (87%)" in row["ai"]
    assert all(r["state"] == "open" for r in rows)
    assert any(r["ref"].endswith("sim.") for r in rows)
    assert shown == f"{len(rows)} cases"
    assert empty is None
    assert "Overdue" in text_of(tiles)
    assert "simulated history from the demo" in text_of(sim)


def test_filters_overdue_kind_use_case_and_resolved(  # type: ignore[no-untyped-def]
    page, signed_in, db: Database, case: Rejected
) -> None:
    assert page.to_filters(state="open", kind=None, use_case=None, overdue=[]) == {
        "state": "open",
        "kind": None,
        "use_case_id": None,
    }
    assert page.to_filters(state="all", kind="missed", use_case="2", overdue=["overdue"]) == {
        "state": "overdue",
        "kind": "missed",
        "use_case_id": 2,
    }
    # Crafted values fall back to "no filter" instead of failing.
    assert page.to_filters(state="<x>", kind="evil", use_case={"a": 1}, overdue="yes") == {
        "state": None,
        "kind": None,
        "use_case_id": None,
    }
    with signed_in("operator"):
        overdue, *_ = run_callback(page.load_queue, "open", None, None, ["overdue"], None, None)
        assert all("overdue" in r["sla"] for r in overdue)
        assert str(case.case_id) not in {r["id"] for r in overdue}
        missed, _, _, empty, _ = run_callback(page.load_queue, "all", "missed", None, [], 1, 0)
        assert missed == []
        assert "No cases match these filters" in text_of(empty)
        resolved, *_ = run_callback(page.load_queue, "resolved", None, None, [], None, None)
        assert resolved
        assert all(r["sla"] == "resolved" for r in resolved)
        assert all(r["outcome_text"] for r in resolved)
        assert any(r["review_note"] for r in resolved)  # notes are on the list


def test_clicking_a_row_opens_its_case_with_both_sides(  # type: ignore[no-untyped-def]
    page, signed_in, case: Rejected
) -> None:
    clicked = {"rowId": str(case.case_id), "colId": "ai", "value": "x"}
    with signed_in("viewer"):
        assert run_callback(page.select_case, clicked) == case.case_id
        tick = {"rowId": str(case.case_id), "colId": "ag-Grid-SelectionColumn"}
        assert run_callback(page.select_case, tick) is dash.no_update
        panel, title, form_hidden, new_normal_hidden = run_callback(page.show_case, case.case_id, 0)
    text = text_of(panel)
    assert title.startswith(f"#{case.case_id} · Cell congestion")
    for needle in (
        "What the AI said",
        "87%",
        "prb_util_dl at 97 %",
        "What the person decided",
        "op-decider",
        "Wrong diagnosis",
        "Stadium event, expected load",
        "Data quality at the time",
        "AI input flagged: late_data",
        f"Recommendation #{case.recommendation_id}",
    ):
        assert needle in text, needle
    assert form_hidden is True  # viewers read, they do not review
    assert new_normal_hidden is True  # no anomaly episode behind this case
    link = _find(panel, "disagreements-link-recommendation")
    assert link.href == f"/recommendations?id={case.recommendation_id}"
    with signed_in("engineer"):
        _, _, form_hidden, _ = run_callback(page.show_case, case.case_id, 0)
        assert form_hidden is False
        missing, _, hidden, _ = run_callback(page.show_case, 99999, 0)
    assert "There is no disagreement #99999" in text_of(missing)
    assert hidden is True


def test_engineer_reviews_a_case(page, signed_in, db: Database, case: Rejected) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        message, changed = run_callback(page.submit_review, 1, case.case_id, None, "", [])
        assert "Choose an outcome first" in text_of(message)
        assert changed is dash.no_update
        message, changed = run_callback(
            page.submit_review, 1, case.case_id, "human_right", "Event load", []
        )
        assert f"Case #{case.case_id} resolved: Person was right" in text_of(message)
        assert isinstance(changed, float)
        again, _ = run_callback(page.submit_review, 1, case.case_id, "ai_right", "", [])
        assert "already resolved" in text_of(again)
        panel, _, form_hidden, _ = run_callback(page.show_case, case.case_id, changed)
    assert form_hidden is True  # resolved: nothing left to review
    assert "Person was right" in text_of(panel)
    assert "Event load" in text_of(panel)
    with db.session() as session:
        review = session.scalars(select(Review).where(Review.disagreement_id == case.case_id)).one()
        assert (review.outcome, review.note) == ("human_right", "Event load")
        [event] = audit.search(session, action="disagreement.resolved")
        assert event.actor == "page-engineer"


def test_bulk_review_asks_first_then_resolves_the_ticked_cases(  # type: ignore[no-untyped-def]
    page, signed_in, db: Database, case: Rejected
) -> None:
    ids = [*_open_ids(db, simulated=True)[:2], case.case_id]
    ticked: list[Any] = [{"id": str(i)} for i in ids]
    with signed_in("admin"):
        shown, _, message = run_callback(page.ask_bulk, 1, [], "ai_right")
        assert shown is False
        assert "Tick cases in the queue first" in text_of(message)
        shown, _, message = run_callback(page.ask_bulk, 1, ticked, None)
        assert "Choose an outcome" in text_of(message)
        shown, question, message = run_callback(page.ask_bulk, 1, ticked, "inconclusive")
        assert shown is True
        assert f"Resolve {len(ids)} ticked case(s) as “Inconclusive”" in question
        # Crafted rows are ignored, not errors.
        crafted = [*ticked, {"id": "drop table"}, "x", {"nope": 1}]
        result, changed = run_callback(page.bulk_review, 1, crafted, "inconclusive", "batch")
        assert f"Reviewed {len(ids)} case(s)" in text_of(result)
        assert isinstance(changed, float)
        result, _ = run_callback(page.bulk_review, 1, ticked, "inconclusive", "batch")
        assert f"{len(ids)} were already resolved" in text_of(result)
        nothing = run_callback(page.bulk_review, 1, "not a list", "inconclusive", "")
        assert nothing == (dash.no_update, dash.no_update)
    with db.session() as session:
        states = session.scalars(select(Disagreement.state).where(Disagreement.id.in_(ids)))
        assert set(states) == {"resolved"}
        notes = session.scalars(select(Review.note).where(Review.disagreement_id.in_(ids)))
        assert set(notes) == {"batch"}


def test_layout_shows_review_controls_only_to_reviewers(page, signed_in, case: Rejected) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        layout = page.layout()
    assert _find(layout, page.BULK_FORM).hidden is True
    assert "The human decision stands" in text_of(layout)
    assert "“New normal” and “data issue”" in text_of(layout)
    with signed_in("engineer"):
        layout = page.layout(case=str(case.case_id))
    assert _find(layout, page.BULK_FORM).hidden is False
    assert _find(layout, page.SELECTED).data == case.case_id


def _find(component: Any, id_: str) -> Any:
    """The component with this id inside a tree."""
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, id_)
            if found is not None:
                return found
    return None
