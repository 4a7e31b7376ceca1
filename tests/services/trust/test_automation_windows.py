"""Change calendar: create/update by external id, CSV import with per-row errors, scope lookups."""

from __future__ import annotations

from datetime import timedelta

import automation_support as kit
import pytest
from automation_support import CELL, ENGINEER, LINK, NOW, audit_actions, element
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.automation import change_windows as cw
from services.db.models import ChangeWindow
from services.errors import InvalidInput

pytestmark = pytest.mark.xdist_group("automation-windows")
auto_db = kit.auto_db
session = kit.session

CSV = """external_id,title,kind,starts_at,ends_at,domains,regions,elements
CHG-1,Core upgrade,change,2026-11-25T09:00:00Z,2026-11-25T12:00:00Z,Core,,
CHG-2,Year-end freeze,freeze,2026-12-20T00:00:00Z,2027-01-02T00:00:00Z,RAN;Transport,,
CHG-3,Bad kind,outage,2026-11-25T09:00:00Z,2026-11-25T12:00:00Z,,,
CHG-4,Backwards,maintenance,2026-11-25T12:00:00Z,2026-11-25T09:00:00Z,,,
CHG-5,No zone,maintenance,2026-11-25T09:00:00,2026-11-25T12:00:00Z,,,
,,,,,,,
CHG-6,Site works,maintenance,2026-11-25T09:30:00Z,2026-11-25T10:30:00Z,,,"{site}"
""".format(site="SubNetwork=North,ManagedElement=SITE-0001")


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ChangeWindow))


def test_csv_import_keeps_good_rows_and_explains_bad_ones(session: Session) -> None:
    before = count(session)
    result = cw.import_csv(session, text=CSV, actor=ENGINEER)
    assert (result.created, result.updated) == (3, 0)
    assert [(e.line, e.message) for e in result.errors] == [
        (4, "kind must be one of change, maintenance, freeze"),
        (5, "ends_at must be after starts_at"),
        (6, "starts_at needs a time zone (e.g. 2026-11-26T22:00:00Z)"),
    ]
    assert count(session) == before + 3
    freeze = session.scalars(select(ChangeWindow).where(ChangeWindow.external_id == "CHG-2")).one()
    assert freeze.scope == {"domains": ["RAN", "Transport"]}
    assert freeze.source == "csv"
    # A quoted DN keeps its commas: the list separator inside a cell is ";".
    site = session.scalars(select(ChangeWindow).where(ChangeWindow.external_id == "CHG-6")).one()
    assert site.scope == {"elements": ["SubNetwork=North,ManagedElement=SITE-0001"]}
    # Importing again updates in place by external id instead of duplicating.
    again = cw.import_csv(session, text=CSV, actor=ENGINEER)
    assert (again.created, again.updated, len(again.errors)) == (0, 3, 3)
    assert count(session) == before + 3
    actions = audit_actions(session, prefix="change_window.")
    assert actions.count("change_window.created") == 3
    assert actions.count("change_window.updated") == 3
    assert actions.count("change_window.imported") == 2


def test_csv_without_required_columns_is_refused(session: Session) -> None:
    with pytest.raises(InvalidInput, match="lacks column"):
        cw.import_csv(session, text="title,kind\nx,freeze\n", actor=ENGINEER)


def test_rest_payload_validation_and_delete(session: Session) -> None:
    with pytest.raises(InvalidInput, match="title is required"):
        cw.create_window(session, payload={"kind": "freeze"}, actor=ENGINEER)
    with pytest.raises(InvalidInput, match="unknown scope key"):
        cw.create_window(
            session,
            payload={
                "title": "x",
                "kind": "freeze",
                "starts_at": "2026-11-25T09:00:00Z",
                "ends_at": "2026-11-25T10:00:00Z",
                "scope": {"cells": ["a"]},
            },
            actor=ENGINEER,
        )
    window = cw.create_window(
        session,
        payload={
            "title": "Night freeze",
            "kind": "freeze",
            "starts_at": "2026-11-25T09:00:00+01:00",
            "ends_at": "2026-11-25T10:00:00Z",
            "scope": {"regions": "North"},
        },
        actor=ENGINEER,
    )
    body = cw.window_dict(window)
    assert body["starts_at"].startswith("2026-11-25T08:00:00")
    assert body["scope"] == {"regions": ["North"]}
    cw.delete_window(session, window_id=window.id, actor=ENGINEER)
    assert session.get(ChangeWindow, window.id) is None
    assert audit_actions(session, prefix="change_window.")[-1] == "change_window.deleted"


def test_lookups_by_scope_and_time(session: Session) -> None:
    cw.import_csv(session, text=CSV, actor=ENGINEER)
    cell, link = element(session, CELL), element(session, LINK)
    planned = cw.active_planned_work(session, element=cell, domain=None, now=NOW)
    assert [w.external_id for w in planned] == ["CHG-6"]  # the site's works cover its cell
    assert cw.active_planned_work(session, element=link, domain=None, now=NOW) == []
    assert cw.active_freezes(session, element=cell, domain=None, now=NOW) == []
    christmas = NOW + timedelta(days=30)
    assert [
        w.external_id for w in cw.active_freezes(session, element=link, domain=None, now=christmas)
    ] == ["CHG-2"]
    listed = cw.list_windows(session, start=NOW, end=NOW + timedelta(hours=1))
    assert {"CHG-1", "CHG-6"} <= {w.external_id for w in listed}
