"""The wall's "On call now" tile: per domain and for the AI, redrawn only when it changes."""

from __future__ import annotations

import importlib
from datetime import timedelta
from unittest import mock

from dash import Dash, no_update
from pages_support import run_callback, text_of
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from services import audit
from services.db import Database
from services.db.models import Person, Rotation, Source, utcnow
from services.oncall import overrides
from services.oncall.demo import seed_demo_oncall


def overview():  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.overview")


def seed(db: Database) -> None:
    with db.session(write=True) as session:
        session.add(Source(name="sim-core", kind="simulator", stale_after_s=2700))
        session.flush()
        seed_demo_oncall(session, now=utcnow())


def test_tile_names_who_is_on_call_per_domain_and_for_the_ai(
    app: Dash, db: Database, signed_in
) -> None:  # type: ignore[no-untyped-def]
    seed(db)
    with signed_in("viewer"):
        view, tiles = run_callback(overview().refresh_oncall, 1, None)
    labels = [t["label"] for t in view]
    assert labels == ["Core", "RAN", "Transport", "AI platform"]
    assert all(t["person"] for t in view)
    assert view[-1]["ai"] is True
    assert all(t["until"].startswith("until ") for t in view)
    text = text_of(tiles)
    assert text.startswith("On call now")
    assert "AI platform" in text
    for tile in view:
        assert tile["person"] in text


def test_unchanged_tile_is_not_redrawn_and_a_change_is(app: Dash, db: Database, signed_in) -> None:  # type: ignore[no-untyped-def]
    seed(db)
    with signed_in("viewer"):
        first, _ = run_callback(overview().refresh_oncall, 1, None)
        assert run_callback(overview().refresh_oncall, 2, first) == (no_update, no_update)
    transport = next(t for t in first if t["label"] == "Transport")
    with db.session(write=True) as session:
        rotation = session.scalars(select(Rotation).where(Rotation.name.like("Transport%"))).one()
        other = session.scalars(
            select(Person).where(
                Person.name.in_(["Oliver Hughes", "Priya Patel"]),
                Person.name != transport["person"],
            )
        ).first()
        now = utcnow()
        overrides.create_override(
            session,
            rotation_id=rotation.id,
            person_id=other.id,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=3),
            actor=audit.SYSTEM,
            now=now,
        )
    with signed_in("viewer"):
        view, tiles = run_callback(overview().refresh_oncall, 3, first)
    assert next(t for t in view if t["label"] == "Transport")["person"] == other.name
    assert other.name in text_of(tiles)


def test_empty_and_failing_database(app: Dash, db: Database, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        view, tiles = run_callback(overview().refresh_oncall, 1, None)
        assert view == []
        assert "no ownership recorded yet" in text_of(tiles)
        with mock.patch.object(
            overview(), "oncall_board", side_effect=OperationalError("x", {}, Exception("down"))
        ):
            assert run_callback(overview().refresh_oncall, 2, view) == (no_update, no_update)
