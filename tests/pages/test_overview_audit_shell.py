"""Overview, audit and shell callbacks on stored data, called as Dash would call them."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from dash import Dash
from pages_support import run_callback, text_of
from security.audit_chain_plugin import mark_tampered
from sqlalchemy import update

from services.config import Settings
from services.db import Database
from services.db.models import AuditEvent, Source
from services.ingest.simfeed import SimulatorFeed


def page(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"pages.{name}")


@pytest.fixture
def simulated(app: Dash, db: Database, settings: Settings) -> SimulatorFeed:
    feed = SimulatorFeed(db, settings.with_overrides(sim_backfill_days=1))
    feed.prepare()
    feed.catch_up()
    return feed


def test_overview_shows_inventory_and_sources(simulated, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        tiles, sources, regions, load, volume = run_callback(page("overview").refresh_overview, 1)
        rows = run_callback(page("overview").load_elements, None)
    tile_text = text_of(tiles)
    assert "Cells 72" in tile_text
    assert "Sources fresh 4/4" in tile_text
    assert "sim-pm-ericsson" in text_of(sources)
    assert "North" in text_of(regions)
    assert {trace.name for trace in load.data} == {"North", "South", "East", "West"}
    assert len(volume.data) == 4
    assert len(rows) == len(simulated.simulator.topology.elements)
    assert {"dn", "vendor", "status"} <= set(rows[0])


def test_overview_on_an_empty_database_says_so(signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        tiles, sources, regions, *_ = run_callback(page("overview").refresh_overview, 1)
    assert "Cells 0" in text_of(tiles)
    assert "No sources yet" in text_of(sources)
    assert "No elements yet" in text_of(regions)


def test_stale_source_raises_the_banner(simulated, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    with db.session(write=True) as session:
        session.execute(
            update(Source).where(Source.name == "sim-core").values(last_received_at=long_ago)
        )
    with signed_in("viewer"):
        pill, pill_class, banner, banner_class = run_callback(page("_shell").refresh_freshness, 1)
    assert pill == "Stale: sim-core"
    assert "pill-bad" in pill_class
    assert "sim-core silent for 3 h" in banner
    assert "hidden" not in banner_class


def test_fresh_sources_hide_the_banner(simulated, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        pill, _, banner, banner_class = run_callback(page("_shell").refresh_freshness, 1)
    assert pill.startswith("Data fresh")
    assert banner == ""
    assert "hidden" in banner_class


def test_audit_search_filters_and_detail(signed_in) -> None:  # type: ignore[no-untyped-def]
    audit_page = page("audit")
    today = datetime.now(UTC).date().isoformat()
    with signed_in("engineer"):
        rows, shown = run_callback(
            audit_page.search_events, None, "user", None, today, today, None, None
        )
        detail = run_callback(audit_page.show_event, [rows[-1]])
        nothing, _ = run_callback(
            audit_page.search_events, "nobody", None, None, None, None, None, None
        )
    assert rows
    assert all(r["action"].startswith("user") for r in rows)
    assert shown.endswith("events")
    assert "user.create" in text_of(detail)
    assert nothing == []


def test_audit_verify_reports_intact_and_broken(signed_in, db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mark_tampered(tmp_path)  # the chain is broken on purpose
    audit_page = page("audit")
    with signed_in("engineer"):
        intact = run_callback(audit_page.verify_chain, 1)
    assert "Chain intact" in text_of(intact)
    with db.session(write=True) as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(actor="mallory"))
    with signed_in("engineer"):
        broken = run_callback(audit_page.verify_chain, 1)
    assert "Chain broken at event #1: content altered" in text_of(broken)
