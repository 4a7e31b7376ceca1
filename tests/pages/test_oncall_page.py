"""On-call page: who is on call now, hand-offs, calendar, escalation; edits by role, audited."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from dash import Dash
from pages_support import run_callback, text_of
from sqlalchemy import select

from services import audit
from services.db import Database
from services.db.models import Notification, OncallOverride, Person, Rotation, utcnow
from services.errors import Forbidden
from services.oncall.demo import seed_demo_oncall


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.oncall")


@pytest.fixture
def demo(db: Database) -> None:
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=utcnow())


def _find(component, id_):  # type: ignore[no-untyped-def]
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str):
            found = _find(child, id_)
            if found is not None:
                return found
    return None


def test_board_shows_who_is_on_call_now(page, signed_in, demo) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        layout = page.layout()
        domains, ai, figure, handoffs, ical, escalation, ownership, updated = run_callback(
            page.load_board, None, 0
        )
    assert "Only engineers" not in text_of(layout)
    assert _find(layout, page.OV_ADD) is None  # viewers read only
    assert "Engineers and admins add overrides" in text_of(layout)
    network = text_of(domains)
    for domain in ("RAN", "Transport", "Core"):
        assert domain in network
    assert "RAN North operations" in network
    assert "also regions East, North" in network
    assert "RAN South · West" in network  # regions with their own team, on one card
    assert "until" in network
    assert "Nobody on call" not in network
    assert "AI platform" in text_of(ai)
    assert "detector" in text_of(ai)
    # The rotation calendar: one bar per stretch, SVG bars, a row per team.
    traces = figure.data
    assert {t.type for t in traces} == {"bar"}
    assert {t.y[0] for t in traces} == {
        "RAN North operations",
        "RAN South operations",
        "Transport",
        "Core",
        "AI platform",
    }
    assert "Transport" in text_of(handoffs)
    escalation_text = text_of(escalation)
    assert "On call: Transport" in escalation_text
    assert "10 min" in escalation_text
    assert "whole team" in escalation_text
    assert "forecaster" in text_of(ownership)
    links = [a.href for a in _walk(ical) if getattr(a, "href", None)]
    assert any(h.endswith("/calendar.ics") and "/teams/" in h for h in links)
    assert any("/people/" in h for h in links)
    assert updated.startswith("as of ")


def test_empty_board_says_what_is_missing(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        domains, ai, *_rest = run_callback(page.load_board, None, 0)
    assert "No network domain has an owner yet" in text_of(domains)
    assert "No AI component has an owner yet" in text_of(ai)


def test_engineer_adds_override_swaps_and_removes_with_notifications(
    page, signed_in, db: Database, demo
) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        rotation = session.scalars(
            select(Rotation).where(Rotation.name == "Transport 12-hour shifts")
        ).one()
        person = session.scalars(select(Person).where(Person.name == "Hannah Clarke")).one()
        rotation_id, person_id = rotation.id, person.id
    with signed_in("engineer"):
        layout = page.layout()
        assert _find(layout, page.OV_ADD) is not None
        rotations, _swap, members, removable = run_callback(page.load_edit_options, True, 0)
        assert {"label": "Transport · Transport 12-hour shifts", "value": rotation_id} in rotations
        assert any(o["value"] == person_id for o in members[str(rotation_id)])
        assert removable == []
        settings_zone = _zone(page)
        start = (utcnow() + timedelta(hours=2)).astimezone(settings_zone)
        end = start + timedelta(hours=30)
        message, done = _change(
            page,
            "add",
            rotation=rotation_id,
            person=person_id,
            start=start.strftime(page.LOCAL_INPUT),
            end=end.strftime(page.LOCAL_INPUT),
            reason="covering a training day",
        )
        assert "Override #" in text_of(message), text_of(message)
        assert "Hannah Clarke" in text_of(message)
        assert done
        refused, _ = _change(page, "add", rotation=rotation_id, person=None)
        assert "Choose who takes the shift" in text_of(refused)
        bad_time, _ = _change(page, "add", rotation=rotation_id, person=person_id, start="soon")
        assert "is not a date and time" in text_of(bad_time)
        *_, removable = run_callback(page.load_edit_options, True, 1)
        assert len(removable) == 1
        # Beyond the override, so the two 12-hour shifts belong to different people.
        first = (utcnow() + timedelta(hours=50)).astimezone(settings_zone)
        second = first + timedelta(hours=12)
        swapped, _ = _change(
            page,
            "swap",
            swap_rotation=rotation_id,
            first=first.strftime(page.LOCAL_INPUT),
            second=second.strftime(page.LOCAL_INPUT),
        )
        assert "Shifts swapped" in text_of(swapped), text_of(swapped)
        removed, _ = _change(page, "remove", override=removable[0]["value"])
        assert "Override removed" in text_of(removed)
    with db.session() as session:
        actions = [e.action for e in audit.search(session, text_filter="oncall")]
        assert "oncall.override.create" in actions
        assert "oncall.override.delete" in actions
        assert "oncall.swap" in actions
        assert audit.search(session, action="oncall.override.create")[0].actor == "page-engineer"
        queued = session.scalars(select(Notification).where(Notification.notifier == "log")).all()
        assert any(n.payload.get("event") == "oncall.shift_changed" for n in queued)


@pytest.mark.parametrize("role", ["viewer", "operator", "executive"])
def test_only_engineers_and_admins_change_schedules(
    page, signed_in, db: Database, demo, role
) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        rotation_id = session.scalars(select(Rotation.id)).first()
        person_id = session.scalars(select(Person.id)).first()
    with signed_in(role):
        layout = page.layout()
        assert _find(layout, page.OV_ADD) is None
        with pytest.raises(Forbidden):
            _change(page, "add", rotation=rotation_id, person=person_id)
        with pytest.raises(Forbidden):
            run_callback(page.load_edit_options, True, 0)
    with db.session() as session:
        assert session.scalar(select(OncallOverride.id)) is None


def _zone(page):  # type: ignore[no-untyped-def]
    return page.beacon().settings.zone


def _change(
    page,
    action,
    *,
    rotation=None,
    person=None,
    start=None,
    end=None,
    reason=None,  # type: ignore[no-untyped-def]
    swap_rotation=None,
    first=None,
    second=None,
    override=None,
):
    clicks = {"add": (1, None, None), "swap": (None, 1, None), "remove": (None, None, 1)}
    ids = {"add": page.OV_ADD, "swap": page.SW_GO, "remove": page.RM_GO}
    return run_callback(
        page.change_schedule,
        *clicks[action],
        rotation, person, start, end, reason,
        swap_rotation, first, second, None,
        override,
        triggered=f"{ids[action]}.n_clicks",
    )  # fmt: skip


def _walk(component):  # type: ignore[no-untyped-def]
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str):
            yield from _walk(child)
