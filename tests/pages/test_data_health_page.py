"""Data-health page callbacks on crafted batches, gaps, drift events and job runs."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType

import dash
import pandas as pd
import pytest
from dash import Dash, dcc, html
from pages_support import run_callback, text_of
from sqlalchemy import select

from components.format import count
from services import audit
from services.db import Database
from services.db.models import (
    CounterMapping,
    DataGap,
    DataHealthEvent,
    Element,
    JobRun,
    Kpi,
    QuarantinedRecord,
    SchedulerLease,
    Source,
    utcnow,
)
from services.errors import Forbidden
from services.ingest.pipeline import ingest_records
from services.ingest.records import Rejected
from services.scheduler import LEASE_NAME

CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"
CELL2 = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C2"
CORE = "SubNetwork=Core,ManagedElement=AMF-01"
HOSTILE = "<script>alert('x')</script><b>bold</b>"
RAW = f"dn,kpi,period_end,value\n{HOSTILE}\n".encode() + b"x" * 6000
PAGE_CALLBACKS = (
    ("refresh_sources", (1, None)),
    ("pick_source", ([1], None)),
    ("load_batches", (1, None)),
    ("load_reasons", (1,)),
    ("search_quarantine", (None, None, "7d", "open", 1)),
    ("show_record", ([{"id": 1}], None)),
    ("show_raw", (1, 1)),
    ("load_gaps", (1, None, None)),
    ("load_events", (1, None)),
    ("load_jobs", (1,)),
    ("replay", (1, "pm-north", None, "7d", "open")),
    ("resolve_event", ([1], None)),
)


@dataclass(frozen=True)
class Arranged:
    """What the fixture stored, for assertions."""

    now: datetime
    north_batch: int
    core_batch: int
    open_event: int


@pytest.fixture
def health_page(app: Dash) -> ModuleType:
    # Dash imported the page module when the app was created; take that very module.
    return importlib.import_module("pages.data_health")


@pytest.fixture
def arranged(db: Database) -> Arranged:
    """Two sources with refused records, two gaps, two drift events and a failing job."""
    now = utcnow()
    period = pd.Timestamp(now).floor("15min") - pd.Timedelta(minutes=15)
    north = pd.DataFrame(
        [
            (CELL, "prb_util_dl", period, 42.5),
            (CELL2, "prb_util_dl", period, 40.0),
            (CELL, "pmVendorCounterX", period, 7.0),
            (CELL, "active_users", period, "N/A"),
            (CELL2, "rrc_setup_sr", period, 140.0),
        ],
        columns=["dn", "kpi", "period_end", "value"],
    )
    north_batch = ingest_records(
        db, source="pm-north", records=north, raw=RAW, raw_format="csv", received_at=now
    )
    core = pd.DataFrame(
        [(CORE, "sessions", period, 1200.0), (CORE, "cpu_util", period, "n/a")],
        columns=["dn", "kpi", "period_end", "value"],
    )
    core_batch = ingest_records(
        db,
        source="ves-core",
        records=core,
        raw_format="ves",
        received_at=now - timedelta(minutes=5),
        rejected=[Rejected("malformed_payload", {"line": 3, "text": "{oops"})],
    )
    with db.session(write=True) as session:
        north_id = session.scalar(select(Source.id).where(Source.name == "pm-north"))
        core_id = session.scalar(select(Source.id).where(Source.name == "ves-core"))
        cell = session.scalar(select(Element).where(Element.dn == CELL))
        start = period.to_pydatetime() - timedelta(hours=3)
        session.add_all(
            [
                # Five missing periods for one cell, one period with nothing from the source.
                DataGap(
                    source_id=north_id,
                    element_id=cell.id,
                    period_start=start,
                    period_end=start + timedelta(hours=1),
                ),
                DataGap(source_id=core_id, element_id=None, period_start=start, period_end=start),
                DataGap(
                    source_id=north_id,
                    element_id=cell.id,
                    period_start=start - timedelta(days=2),
                    period_end=start - timedelta(days=2),
                    filled_at=now,
                ),
            ]
        )
        drift = DataHealthEvent(
            kind="schema_drift",
            source_id=north_id,
            vendor="Ericsson",
            sw_version="24.Q2",
            detected_at=now - timedelta(hours=1),
            summary=f"Ericsson 24.Q2: 1 new counter(s) appeared {HOSTILE}",
        )
        session.add(drift)
        session.add(
            DataHealthEvent(
                kind="value_drift",
                vendor="Nokia",
                sw_version="SRAN24A",
                detected_at=now - timedelta(days=1),
                resolved_at=now - timedelta(hours=2),
                summary="prb_util_dl on Nokia SRAN24A is 10x the other Nokia versions",
            )
        )
        for minutes in (30, 20, 1):
            session.add(
                JobRun(
                    job_id="health.gaps",
                    started_at=now - timedelta(minutes=minutes),
                    finished_at=now - timedelta(minutes=minutes) + timedelta(seconds=2),
                    status="failed",
                    error="OperationalError: database is locked",
                )
            )
        session.add(
            JobRun(
                job_id="health.freshness",
                started_at=now - timedelta(minutes=2),
                finished_at=now - timedelta(minutes=2) + timedelta(seconds=1),
                status="ok",
                rows=3,
            )
        )
        session.flush()
        event_id = drift.id
    return Arranged(now, north_batch.batch_id, core_batch.batch_id, event_id)


def test_tiles_count_sources_records_refusals_gaps_and_drift(
    health_page, arranged, signed_in
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        tiles, sources, options = run_callback(health_page.refresh_sources, 1, None)
    text = text_of(tiles)
    assert "Sources fresh 2/2" in text
    assert "Records 24 h 8 in 2 batches" in text
    assert "Quarantined 24 h 5" in text  # 3 refused by pm-north, 2 by ves-core
    assert "62 % of received" in text
    assert "Open gaps 2" in text  # the filled one no longer counts
    assert "Open drift events 1" in text
    assert options == ["pm-north", "ves-core"]
    rows = sources.children[1].children
    north = text_of(rows[0])
    assert north.startswith("pm-north csv fresh 15 min")
    assert "60 %" in north  # 3 of 5 refused
    assert text_of(rows[1]).endswith("1")  # ves-core: one open gap


def test_no_scheduler_running_is_shown_in_red(health_page, arranged, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        tiles, *_ = run_callback(health_page.refresh_sources, 1, None)
    scheduler = tiles.children[0]
    assert scheduler.id == "data-health-scheduler"
    assert "tile-bad" in scheduler.className
    assert "No scheduler running" in text_of(scheduler)
    assert "none has started yet" in text_of(scheduler)


def test_expired_and_live_scheduler_leases(health_page, arranged, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        session.add(
            SchedulerLease(
                name=LEASE_NAME,
                holder="noc-1:4242:abcd",
                acquired_at=arranged.now - timedelta(minutes=10),
                expires_at=arranged.now - timedelta(minutes=9),
            )
        )
    with signed_in("engineer"):
        expired, *_ = run_callback(health_page.refresh_sources, 1, None)
    assert "No scheduler running" in text_of(expired.children[0])
    assert "noc-1:4242:abcd's lease expired 9 min ago" in text_of(expired.children[0])
    with db.session(write=True) as session:
        lease = session.get(SchedulerLease, LEASE_NAME)
        lease.acquired_at = utcnow()
        lease.expires_at = utcnow() + timedelta(seconds=30)
    with signed_in("engineer"):
        live, *_ = run_callback(health_page.refresh_sources, 1, None)
    tile = live.children[0]
    assert "tile-ok" in tile.className
    assert "Running" in text_of(tile)
    assert "noc-1:4242:abcd · heartbeat just now · lease until" in text_of(tile)


def test_clicking_a_source_focuses_and_unfocuses(health_page, arranged, signed_in) -> None:  # type: ignore[no-untyped-def]
    click = json.dumps({"index": "ves-core", "type": health_page.PICK}, separators=(",", ":"))
    with signed_in("engineer"):
        picked = run_callback(
            health_page.pick_source, [None, 1], None, triggered=f"{click}.n_clicks"
        )
        again = run_callback(
            health_page.pick_source, [None, 2], "ves-core", triggered=f"{click}.n_clicks"
        )
        redrawn = run_callback(health_page.pick_source, [None, None], "ves-core")
        _, sources, _ = run_callback(health_page.refresh_sources, 1, "ves-core")
    assert picked == "ves-core"
    assert again is None
    assert redrawn is dash.no_update
    assert sources.children[1].children[1].className == "health-selected"


def test_batch_history_newest_first_and_by_source(health_page, arranged, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        rows, shown = run_callback(health_page.load_batches, 1, None)
        core_rows, core_shown = run_callback(health_page.load_batches, 1, "ves-core")
    assert [r["id"] for r in rows] == [arranged.north_batch, arranged.core_batch]
    north = rows[0]
    assert north["source"] == "pm-north"
    assert north["status"] == "done"
    assert (north["received"], north["accepted"], north["quarantined"]) == (5, 2, 3)
    assert "unknown_counter 1" in north["reasons"]
    assert shown == "newest 2 batches"
    assert [r["source"] for r in core_rows] == ["ves-core"]
    assert core_rows[0]["reasons"].startswith("malformed_payload 1")
    assert core_shown == "newest 1 batches of ves-core"


def test_quarantine_filters_by_reason_source_and_time(health_page, arranged, signed_in) -> None:  # type: ignore[no-untyped-def]
    search = health_page.search_quarantine
    with signed_in("engineer"):
        everything, shown = run_callback(search, None, None, "7d", "open", 1)
        not_numeric, _ = run_callback(search, None, "not_numeric", "7d", "open", 1)
        core_only, _ = run_callback(search, "ves-core", "not_numeric", "7d", "open", 1)
        replayed, _ = run_callback(search, None, None, "7d", "replayed", 1)
        options = run_callback(health_page.load_reasons, 1)
    assert len(everything) == 5
    assert shown == "5 records"
    assert {r["source"] for r in not_numeric} == {"pm-north", "ves-core"}
    assert len(not_numeric) == 2
    assert [(r["dn"], r["kpi"], r["value"]) for r in core_only] == [(CORE, "cpu_util", "n/a")]
    assert replayed == []
    assert {"label": "not_numeric (2 open)", "value": "not_numeric"} in options


def test_quarantine_time_window_leaves_out_older_records(
    health_page, arranged, signed_in, db
) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        old = session.scalar(
            select(QuarantinedRecord).where(QuarantinedRecord.reason_code == "out_of_range")
        )
        old.received_at = arranged.now - timedelta(hours=3)
    with signed_in("engineer"):
        hour, _ = run_callback(health_page.search_quarantine, None, None, "1h", "open", 1)
        day, _ = run_callback(health_page.search_quarantine, None, None, "24h", "open", 1)
    assert len(hour) == 4
    assert "out_of_range" not in {r["reason_code"] for r in hour}
    assert len(day) == 5


def test_selected_record_shows_reason_and_escaped_raw_batch(
    health_page, arranged, signed_in
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        rows, _ = run_callback(
            health_page.search_quarantine, "pm-north", "unknown_counter", "7d", "open", 1
        )
        detail, raw, disabled, shown = run_callback(health_page.show_record, rows, None)
        again = run_callback(health_page.show_record, rows, shown)
        excerpt = run_callback(health_page.show_raw, 1, shown)
    text = text_of(detail)
    assert "counter pmVendorCounterX is not mapped to a Beacon KPI" in text
    assert "the counter is not mapped to a Beacon KPI (kept; replay after mapping)" in text
    assert '"kpi": "pmVendorCounterX"' in text
    assert (raw, disabled, shown) == ("", False, rows[0]["id"])
    assert again == (dash.no_update,) * 4  # a refresh re-selecting the same row changes nothing
    pre = excerpt.children[1]
    assert isinstance(pre, html.Pre)
    assert isinstance(pre.children, str)  # plain text: React escapes it
    assert HOSTILE in pre.children
    assert f"first {count(4096)} of {count(len(RAW))} bytes" in text_of(excerpt)
    assert not _has_markup_component(excerpt)


def test_replay_after_a_mapping_fix_moves_records_out_and_is_audited(
    health_page, arranged, signed_in, db
) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        kpi = session.scalar(select(Kpi).where(Kpi.name == "prb_util_ul"))
        session.add(CounterMapping(vendor="*", counter="pmVendorCounterX", kpi_id=kpi.id))
    with signed_in("engineer"):
        message, rows, shown, selection = run_callback(
            health_page.replay, 1, None, "unknown_counter", "7d", "open"
        )
        left, _ = run_callback(
            health_page.search_quarantine, None, "unknown_counter", "7d", "open", 1
        )
    assert "Replayed 1 open records (unknown_counter): 1 accepted" in text_of(message)
    assert "0 quarantined again" in text_of(message)
    assert message.id == "data-health-replay-done"
    assert rows == left == []
    assert shown == "0 records"
    assert selection == []
    with db.session() as session:
        record = session.scalar(
            select(QuarantinedRecord).where(QuarantinedRecord.reason_code == "unknown_counter")
        )
        events = audit.search(session, action="quarantine.replay")
    assert record.status == "replayed"
    assert len(events) == 1
    assert events[0].actor == "page-engineer"
    assert events[0].after["accepted"] == 1


def test_replay_by_reason_across_sources_reports_each_outcome(
    health_page, arranged, signed_in, db
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("admin"):
        message, rows, *_ = run_callback(health_page.replay, 1, None, "not_numeric", "7d", "open")
    # Still not numbers: both come straight back, as new open records of the replay batches.
    assert "Replayed 2 open records (not_numeric): 0 accepted" in text_of(message)
    assert "2 quarantined again" in text_of(message)
    assert len(rows) == 2
    with db.session() as session:
        assert len(audit.search(session, action="quarantine.replay")) == 2


def test_replay_without_a_filter_is_refused(health_page, arranged, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        message, rows, shown, selection = run_callback(
            health_page.replay, 1, None, None, "7d", "open"
        )
        unclicked = run_callback(health_page.replay, None, "pm-north", None, "7d", "open")
    assert "Choose a source (at the top) or a reason first" in text_of(message)
    assert "notice-warn" in message.className
    assert (rows, shown, selection) == (dash.no_update,) * 3
    assert unclicked == (dash.no_update,) * 4
    with db.session() as session:
        assert audit.search(session, action="quarantine.replay") == []
        assert (
            session.scalar(select(QuarantinedRecord.id).where(QuarantinedRecord.status != "open"))
            is None
        )


def test_replay_of_unreplayable_records_says_why(health_page, arranged, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    # A payload its parser refused whole never became a record: nothing to validate again.
    with db.session(write=True) as session:
        source = Source(name="xml-drop", kind="pm_xml")
        session.add(source)
        session.flush()
        session.add(
            QuarantinedRecord(
                source_id=source.id,
                reason_code="malformed_payload",
                reason="not well-formed XML: no end tag",
                record={"file": "A2026.xml", "error": "no end tag"},
            )
        )
    with signed_in("engineer"):
        message, *_ = run_callback(
            health_page.replay, 1, "xml-drop", "malformed_payload", "7d", "open"
        )
        nothing, *_ = run_callback(health_page.replay, 1, "pm-north", "too_old", "7d", "open")
    assert "Nothing replayed: the 1 matching records never became records" in text_of(message)
    assert "Nothing replayed: no open quarantined records match" in text_of(nothing)


def test_gap_heatmap_rows_and_empty_state(health_page, arranged, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        figure, css, empty, note = run_callback(health_page.load_gaps, 1, None, None)
        core_figure, *_ = run_callback(health_page.load_gaps, 1, "ves-core", {"wall": True})
    heatmap = figure.data[0]
    assert heatmap.type == "heatmap"
    assert list(heatmap.y) == ["C1", "ves-core · whole source"]
    missing = pd.DataFrame(heatmap.z).sum(axis=1).tolist()
    assert missing == [5, 1]
    assert len(heatmap.x) == 25  # every hour of the last 24 h
    assert (css, empty) == ("chart", None)
    assert note == (
        "2 elements or sources with missing periods, last 24 h; colour = missing periods per hour"
    )
    assert list(core_figure.data[0].y) == ["ves-core · whole source"]

    with db.session(write=True) as session:
        for gap in session.scalars(select(DataGap)):
            gap.filled_at = utcnow()
    with signed_in("engineer"):
        figure, css, empty, note = run_callback(health_page.load_gaps, 1, None, None)
    assert figure.data == ()
    assert "health-chart-empty" in css
    assert "No missing periods" in text_of(empty)
    assert note == "no missing periods in the last 24 h"


def test_gap_heatmap_keeps_the_forty_worst(health_page, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with db.session(write=True) as session:
        source = Source(name="wide", kind="csv")
        session.add(source)
        session.flush()
        for i in range(45):
            element = Element(
                dn=f"SubNetwork=X,ManagedElement=E{i:02d},EUtranCellFDD=C1",
                name="C1",
                element_type="cell",
                domain="RAN",
            )
            session.add(element)
            session.flush()
            end = pd.Timestamp(now).floor("15min").to_pydatetime()
            session.add(
                DataGap(
                    source_id=source.id,
                    element_id=element.id,
                    period_start=end - timedelta(minutes=15 * i),
                    period_end=end,
                )
            )
    with signed_in("engineer"):
        figure, _, _, note = run_callback(health_page.load_gaps, 1, None, None)
    assert len(figure.data[0].y) == 40
    assert figure.data[0].y[0] == "E44 · C1"  # the longest gap first, named apart from the others
    assert note.startswith("the 40 worst of 45 elements or sources")


def test_drift_events_resolve_and_audit(health_page, arranged, signed_in, db) -> None:  # type: ignore[no-untyped-def]
    click = json.dumps({"index": arranged.open_event, "type": health_page.RESOLVE})
    with signed_in("engineer"):
        listed = run_callback(health_page.load_events, 1, None)
        message, events = run_callback(
            health_page.resolve_event, [1], None, triggered=f"{click}.n_clicks"
        )
        twice, _ = run_callback(health_page.resolve_event, [2], None, triggered=f"{click}.n_clicks")
        redrawn = run_callback(health_page.resolve_event, [None], None)
    rows = listed.children[1].children
    assert text_of(rows[0]).startswith("schema warning Ericsson 24.Q2 pm-north")
    assert HOSTILE in text_of(rows[0])  # the summary is text, shown as written
    assert "open Resolve" in text_of(rows[0])
    assert text_of(rows[1]).startswith("value warning Nokia SRAN24A all")
    assert "Resolve" not in text_of(rows[1])
    assert f"Event #{arranged.open_event} resolved" in text_of(message)
    assert "open Resolve" not in text_of(events)
    assert "already resolved" in text_of(twice)
    assert redrawn == (dash.no_update, dash.no_update)
    with db.session() as session:
        assert session.get(DataHealthEvent, arranged.open_event).resolved_at is not None
        trail = audit.search(session, action="health.event.resolve")
    assert len(trail) == 1
    assert trail[0].actor == "page-engineer"
    assert trail[0].object_id == str(arranged.open_event)
    assert trail[0].before["resolved_at"] is None


def test_job_history_shows_failures_and_back_off(health_page, arranged, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        states, runs = run_callback(health_page.load_jobs, 1)
    rows = {text_of(r).split(" ")[0]: text_of(r) for r in states.children[1].children}
    gaps = rows["health.gaps"]
    assert "failed 3 3 3 backing off until" in gaps  # runs, failed, in a row
    assert "backing off" not in rows["health.freshness"]
    assert [r["job_id"] for r in runs] == [
        "health.gaps",
        "health.freshness",
        "health.gaps",
        "health.gaps",
    ]
    assert runs[0]["status"] == "failed"
    assert runs[0]["error"] == "OperationalError: database is locked"
    assert runs[0]["duration"] == "2.0 s"


def test_empty_database_shows_empty_states(health_page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        tiles, sources, options = run_callback(health_page.refresh_sources, 1, None)
        events = run_callback(health_page.load_events, 1, None)
        states, runs = run_callback(health_page.load_jobs, 1)
        rows, shown = run_callback(health_page.load_batches, 1, None)
    assert "Sources fresh 0/0" in text_of(tiles)
    assert "No sources yet" in text_of(sources)
    assert options == []
    assert "No drift events" in text_of(events)
    assert "No job has run yet" in text_of(states)
    assert (runs, rows, shown) == ([], [], "newest 0 batches")


@pytest.mark.parametrize("role", ["viewer", "operator", "executive"])
def test_other_roles_are_refused_by_every_callback(health_page, signed_in, role: str) -> None:  # type: ignore[no-untyped-def]
    with signed_in(role):
        for name, args in PAGE_CALLBACKS:
            with pytest.raises(Forbidden):
                run_callback(getattr(health_page, name), *args, triggered="x.n_clicks")


def test_every_page_callback_is_covered_by_the_role_test(app: Dash) -> None:
    policies = [
        policy
        for output, policy in app.server.extensions["beacon"].callbacks.items()
        if "data-health" in output
    ]
    assert {p.name for p in policies} == {name for name, _ in PAGE_CALLBACKS}
    assert {p.name for p in policies if p.mutates} == {"replay", "resolve_event"}
    assert all(p.roles == {"engineer", "admin"} and not p.kiosk for p in policies)


def _has_markup_component(component: object) -> bool:
    """True when any part of the tree would render its text as markup."""
    if isinstance(component, dcc.Markdown):
        return True
    if getattr(component, "dangerously_allow_html", False):
        return True
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        return any(_has_markup_component(c) for c in children)
    return (
        children is not None and not isinstance(children, str) and _has_markup_component(children)
    )
