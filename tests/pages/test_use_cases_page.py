"""Use cases page: cards with ladder, owner and on call, criteria and guardrails; promotions
for admins; the change calendar with CSV upload and delete for engineers; role checks."""

from __future__ import annotations

import base64
import importlib
import json
from datetime import timedelta

import pytest
from dash import Dash
from pages_support import run_callback, text_of
from sqlalchemy import select
from trust_pages_support import propose, seed_network

from services import audit
from services.db import Database
from services.db.models import ChangeWindow, MaturityChange, UseCase, utcnow
from services.errors import Forbidden


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.use_cases")


@pytest.fixture
def seeded(db: Database) -> Database:
    seed_network(db, history_weeks=2)
    return db


def _csv(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def _iso(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat()


def _approve(change_id: int) -> str:
    return json.dumps({"index": change_id, "type": "use-cases-approve"}, separators=(",", ":"))


def _reject(change_id: int) -> str:
    return json.dumps({"index": change_id, "type": "use-cases-reject"}, separators=(",", ":"))


def test_cards_show_ladder_owner_oncall_criteria_and_guardrails(
    page, signed_in, seeded: Database
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("executive"):
        cards = run_callback(page.load_use_cases, None, 0)
    assert len(cards) == 4
    by_id = {card.id: text_of(card) for card in cards}
    lb = by_id["use-case-cell_congestion_lb"]
    assert "Cell congestion → load-balancing parameter change" in lb
    for label in ("L0", "L1", "L2", "L3", "L4"):
        assert label in lb
    assert "approve-to-execute" in lb
    assert "Owner" in lb
    assert "On call" in lb
    assert "nobody found on call" not in lb
    assert "Promotion to L3" in lb
    assert "Acceptance rate" in lb
    assert "Minimum confidence" in lb
    assert "80%" in lb
    current = next(c for c in cards if c.id == "use-case-cell_congestion_lb")
    assert "trust-step-current" in str(current)


def test_pending_promotions_and_buttons_only_for_admins(page, signed_in, seeded: Database) -> None:  # type: ignore[no-untyped-def]
    change = propose(seeded)
    with signed_in("engineer"):
        table, hide_reason = run_callback(page.load_pending, None, 0)
        layout = str(page.layout())
    assert hide_reason.endswith(" hidden")
    assert "Degraded transport link → traffic reroute" in text_of(table)
    assert "L1 → L2" in text_of(table)
    assert "admins decide" in text_of(table)
    assert "use-cases-approve" not in str(table)
    assert "use-cases-upload" in layout  # engineers upload the change calendar
    with signed_in("admin"):
        table, hide_reason = run_callback(page.load_pending, None, 0)
    assert f"'index': {change}" in str(table)
    assert "hidden" not in hide_reason
    with signed_in("operator"):
        assert "use-cases-upload" not in str(page.layout())


def test_admin_approves_and_rejects(page, signed_in, seeded: Database) -> None:  # type: ignore[no-untyped-def]
    first, second = propose(seeded), propose(seeded, "capacity_carrier_add")
    with signed_in("admin"):
        message, done = run_callback(
            page.decide_promotion,
            [1, None],
            [None, None],
            None,
            triggered=f"{_approve(first)}.n_clicks",
        )
        assert "Degraded transport link → traffic reroute is now at L2" in text_of(message)
        assert done
        message, _ = run_callback(
            page.decide_promotion,
            [None],
            [1],
            "wait a month",
            triggered=f"{_reject(second)}.n_clicks",
        )
        assert "rejected" in text_of(message)
        again, _ = run_callback(
            page.decide_promotion, [1], [None], None, triggered=f"{_approve(first)}.n_clicks"
        )
        assert "already approved" in text_of(again)
        table, _ = run_callback(page.load_pending, None, 0)
    assert "No promotion waiting" in text_of(table)
    with seeded.session() as session:
        level = session.scalar(
            select(UseCase.maturity_level).where(UseCase.key == "transport_link_reroute")
        )
        assert level == 2
        assert (
            session.get_one(MaturityChange, second).evidence["rejection_reason"] == "wait a month"
        )
        assert audit.search(session, action="automation.maturity.approved")


@pytest.mark.parametrize("role", ["viewer", "operator", "engineer", "executive"])
def test_only_admins_decide_promotions(page, signed_in, seeded: Database, role: str) -> None:  # type: ignore[no-untyped-def]
    change = propose(seeded)
    with signed_in(role), pytest.raises(Forbidden):
        run_callback(
            page.decide_promotion, [1], [None], None, triggered=f"{_approve(change)}.n_clicks"
        )
    with seeded.session() as session:
        assert session.get_one(MaturityChange, change).status == "proposed"


def test_upload_calendar_reports_refused_rows(page, signed_in, seeded: Database) -> None:  # type: ignore[no-untyped-def]
    text = (
        "external_id,title,kind,starts_at,ends_at,domains,regions,elements\n"
        f"CHG-9,RAN freeze,freeze,{_iso(-timedelta(hours=1))},{_iso(timedelta(hours=5))},RAN,,\n"
        f"CHG-10,Core upgrade,change,{_iso(timedelta(days=1))},{_iso(timedelta(days=1, hours=2))},"
        "Core,,\n"
        "CHG-11,No times,change,,,,,\n"
    )
    with signed_in("engineer"):
        report, done = run_callback(page.upload_calendar, _csv(text), "calendar.csv")
        rows = run_callback(page.load_windows, None, 0)
        bad, _ = run_callback(page.upload_calendar, _csv("a,b\n1,2\n"), "wrong.csv")
    assert "calendar.csv: 2 window(s) created, 0 updated, 1 row(s) refused" in text_of(report)
    assert "line 4: starts_at and ends_at are required" in text_of(report)
    assert done
    assert [(r["title"], r["status"]) for r in rows] == [
        ("RAN freeze", "in force"),
        ("Core upgrade", "planned"),
    ]
    assert rows[0]["scope"] == "domains: RAN"
    assert "CSV header lacks column(s)" in text_of(bad)
    with seeded.session() as session:
        assert audit.search(session, action="change_window.imported")


def test_delete_window_asks_first(page, signed_in, seeded: Database) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        start, end = _iso(timedelta(hours=1)), _iso(timedelta(hours=3))
        text = f"title,kind,starts_at,ends_at\nFreeze,freeze,{start},{end}\n"
        run_callback(page.upload_calendar, _csv(text), "c.csv")
        rows = run_callback(page.load_windows, None, 0)
        shown, question, _ = run_callback(page.ask_delete, 1, rows)
        assert shown is True
        assert "Delete freeze window “Freeze”" in question
        message, _ = run_callback(page.delete_window, 1, rows)
    assert f"Window #{rows[0]['id']} deleted" in text_of(message)
    with seeded.session() as session:
        assert session.scalar(select(ChangeWindow.id)) is None
        assert audit.search(session, action="change_window.deleted")


@pytest.mark.parametrize("role", ["viewer", "operator", "executive"])
def test_only_engineers_change_the_calendar(page, signed_in, seeded: Database, role: str) -> None:  # type: ignore[no-untyped-def]
    start, end = _iso(timedelta(hours=1)), _iso(timedelta(hours=3))
    text = f"title,kind,starts_at,ends_at\nX,change,{start},{end}\n"
    row = [{"id": "1", "kind": "change", "title": "X"}]
    for callback, args in (
        (page.upload_calendar, (_csv(text), "x.csv")),
        (page.ask_delete, (1, row)),
        (page.delete_window, (1, row)),
    ):
        with signed_in(role), pytest.raises(Forbidden):
            run_callback(callback, *args)
    with seeded.session() as session:
        assert session.scalar(select(ChangeWindow.id)) is None
