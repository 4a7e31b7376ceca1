"""The wall screen's callback on stored episodes: counts, feed, health, staleness, no-ops."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from unittest import mock

import pytest
from dash import Dash, Patch, no_update
from pages_support import run_callback, text_of
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from services.anomaly import wall
from services.db import Database
from services.db.models import Anomaly, Element, JobRun, Kpi, Source

NOW = datetime.now(UTC)
_ids = count(1)


@pytest.fixture(autouse=True)
def fresh_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ages are asserted to the minute: anchor them to when each test runs, not to import."""
    monkeypatch.setitem(globals(), "NOW", datetime.now(UTC))


def overview():  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.overview")


def add_element(db: Database, name: str, *, region: str = "North", domain: str = "RAN") -> int:
    with db.session(write=True) as session:
        element = Element(
            dn=f"SubNetwork={region},ManagedElement={name}",
            name=name,
            element_type="cell",
            domain=domain,
            region=region,
        )
        session.add(element)
        session.flush()
        return element.id


def add_episode(db: Database, element_id: int, **fields: Any) -> int:
    """One stored episode as the detection service writes it (defaults: open, ongoing, major)."""
    with db.session(write=True) as session:
        kpi_id = session.scalar(select(Kpi.id).where(Kpi.name == fields.pop("kpi", "prb_util_dl")))
        started = fields.pop("started_at", NOW - timedelta(minutes=30))
        row = Anomaly(
            element_id=element_id,
            kpi_id=kpi_id,
            started_at=started,
            peak_at=started,
            ended_at=fields.pop("ended_at", None),
            observed=95.0,
            expected=50.0,
            band_low=40.0,
            band_high=60.0,
            score=6.0,
            confidence=fields.pop("confidence", 0.9),
            severity=fields.pop("severity", "major"),
            detector="seasonal_robust",
            model_version="test",
            status=fields.pop("status", "open"),
            suppressed=fields.pop("suppressed", False),
            revised=fields.pop("revised", False),
            **fields,
        )
        session.add(row)
        session.flush()
        return row.id


@pytest.fixture
def network(app: Dash, db: Database) -> dict[str, int]:
    """Three cells in two regions and one router; episodes of every kind on them."""
    cells = {
        "N1": add_element(db, "N1"),
        "N2": add_element(db, "N2"),
        "S1": add_element(db, "S1", region="South"),
        "R1": add_element(db, "R1", region="South", domain="Transport"),
    }
    add_episode(db, cells["N1"], severity="critical", confidence=0.97)
    add_episode(db, cells["N1"], severity="minor", kpi="prb_util_ul", status="acknowledged")
    add_episode(db, cells["N2"], severity="major", ended_at=NOW - timedelta(minutes=5))
    add_episode(db, cells["R1"], severity="warning", kpi="link_util", revised=True)
    # Not on the wall: suppressed in a change window, resolved, and ended hours ago (it waits
    # on /anomalies for a verdict instead of crowding what needs eyes now).
    add_episode(db, cells["S1"], severity="critical", suppressed=True)
    add_episode(db, cells["S1"], severity="critical", status="resolved")
    add_episode(
        db,
        cells["S1"],
        severity="critical",
        started_at=NOW - timedelta(hours=5),
        ended_at=NOW - timedelta(hours=3),
    )
    return cells


def refresh(previous: dict | None = None, status: dict | None = None, limit: int = 12) -> tuple:
    return run_callback(overview().refresh_wall, 1, previous, status, {"limit": limit})


def test_counts_exclude_suppressed_and_resolved(network, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        view, status, counts, note, _feed, _regions, _domains, *_ = refresh()
    assert view["counts"] == {
        "critical": 1,
        "major": 1,
        "minor": 1,
        "warning": 1,
        "suppressed": 1,
        "affected": 3,
    }
    text = text_of(counts)
    assert "Critical 1" in text
    assert "Warning 1" in text
    assert "1 suppressed (change windows)" in text
    assert status["ok"] is True
    assert note == "top 4 of 4 open · worst first"


def test_feed_lists_open_episodes_worst_first_with_their_state(network, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        view, *_rest = refresh()
    feed = view["feed"]
    assert [r["severity"] for r in feed] == ["critical", "major", "minor", "warning"]
    assert feed[0]["element"] == "N1"
    assert feed[0]["confidence"] == "97%"
    assert feed[0]["state"] == "ongoing"
    assert feed[0]["for"] == "30 min"
    assert feed[1]["state"].startswith("ended ")
    assert feed[2]["acknowledged"] is True
    assert feed[3]["revised"] is True
    assert feed[3]["area"] == "South · Transport"
    assert "S1" not in {r["element"] for r in feed}  # suppressed and resolved stay off


def test_health_tiles_by_region_and_domain(network, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        view, *_rest = refresh()
    regions = {r["name"]: r for r in view["regions"]}
    assert regions["North"] == {"name": "North", "affected": 2, "total": 2, "worst": "critical"}
    # S1's only open episode is suppressed: South counts just the router.
    assert regions["South"] == {"name": "South", "affected": 1, "total": 2, "worst": "warning"}
    domains = {d["name"]: d for d in view["domains"]}
    assert domains["RAN"]["affected"] == 2
    assert domains["RAN"]["total"] == 3
    assert domains["Transport"]["worst"] == "warning"


def test_feed_limit_keeps_the_worst(network, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        view, _status, _counts, note, *_ = refresh(limit=2)
    assert [r["severity"] for r in view["feed"]] == ["critical", "major"]
    assert note == "top 2 of 4 open · worst first"


def test_unchanged_data_changes_nothing_on_screen(network, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        first = refresh()
        again = refresh(previous=first[0], status=first[1])
    view, status, *panels = again
    assert view is no_update
    assert status["ok"] is True  # the browser still learns the backend answered
    assert all(p is no_update for p in panels)


def test_a_changed_line_is_patched_alone(network, db: Database, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        first = refresh()
    with db.session(write=True) as session:
        session.execute(
            update(Anomaly).where(Anomaly.severity == "warning").values(status="acknowledged")
        )
    with signed_in("viewer"):
        view, _status, counts, _note, feed, regions, *_ = refresh(previous=first[0])
    assert isinstance(feed, Patch)
    operations = feed.to_plotly_json()["operations"]
    assert [op["location"] for op in operations] == [[3]]
    assert counts is no_update
    assert regions is no_update
    assert view["feed"][3]["acknowledged"] is True


def test_a_new_episode_rebuilds_the_feed_and_counts(network, db: Database, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        first = refresh()
    add_episode(db, network["S1"], severity="critical", confidence=0.99)
    with signed_in("viewer"):
        _view, _status, counts, note, feed, regions, domains, *_ = refresh(previous=first[0])
    assert isinstance(feed, list)
    assert "S1" in text_of(feed)
    assert "Critical 2" in text_of(counts)
    assert note == "top 5 of 5 open · worst first"
    assert regions is not no_update
    assert domains is not no_update


def test_stale_source_raises_the_wall_banner(network, db: Database, signed_in) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        session.add(Source(name="pm-east", kind="pm_xml", last_received_at=NOW, stale_after_s=900))
        session.add(
            Source(
                name="ves-core",
                kind="ves",
                last_received_at=NOW - timedelta(hours=2),
                stale_after_s=2700,
            )
        )
    with signed_in("viewer"):
        view, *_p, sources, banner, banner_class = refresh()
    assert banner.startswith("Stale data: ves-core silent for 2 h (limit 45 min)")
    assert "pm-east" not in banner
    assert "hidden" not in banner_class
    assert "ves-core stale 2 h ago" in text_of(sources)
    with db.session(write=True) as session:
        session.execute(update(Source).values(last_received_at=datetime.now(UTC)))
    with signed_in("viewer"):
        *_p, banner, banner_class = refresh(previous=view)
    assert banner == ""
    assert "hidden" in banner_class


def test_empty_wall_says_why(app: Dash, db: Database, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        view, _s, _counts, note, feed, regions, _d, sources, *_ = refresh()
    assert "detector has not run yet" in text_of(feed)
    assert note == "nothing open"
    assert "No elements registered yet" in text_of(regions)
    assert "No data sources yet" in text_of(sources)
    with db.session(write=True) as session:
        session.add(JobRun(job_id=wall.JOB_ID, started_at=NOW, status="ok"))
    with signed_in("viewer"):
        after = refresh(previous=view)
    assert "Detector last ran just now (ok)." in text_of(after[4])


def test_database_failure_keeps_the_last_good_data(network, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        first = refresh()
        failing = OperationalError("SELECT", {}, Exception("server closed the connection"))
        with mock.patch.object(overview(), "wall_snapshot", side_effect=failing):
            view, status, *panels = refresh(previous=first[0], status=first[1])
            _v, later, *_ = refresh(previous=first[0], status=status)
    assert view is no_update
    assert all(p is no_update for p in panels)
    assert status["ok"] is False
    assert status["at"] == first[1]["at"]
    assert status["error"] == "database not answering"
    assert later["failed_since"] == status["failed_since"]  # the first failure is kept


def test_refresh_interval_is_bounded() -> None:
    interval = overview().wall_interval_ms
    assert interval(None) == 15_000
    assert interval("30") == 30_000
    assert interval("0.1") == 2_000
    assert interval("nonsense") == 15_000
    assert interval("99999") == 300_000


def test_kiosk_layout_has_no_desk_panels(app: Dash, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        page = overview().layout(kiosk="1", refresh="3")
    text = repr(page)
    assert "'interval_ms': 3000" in text
    assert "'limit': 8" in text


def test_screens_share_one_answer_per_cache_period(
    network, app: Dash, db: Database, signed_in, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Many screens, one read: the facts are read once per period and per feed length, a
    change shows after the period, and a failed read is not kept."""
    from services.web.shared_cache import SharedCache

    context = app.server.extensions["beacon"]
    monkeypatch.setattr(context, "wall_cache", SharedCache(ttl_s=3600))
    reads = count()
    real = overview().wall_snapshot

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        next(reads)
        return real(*args, **kwargs)

    with signed_in("viewer"), mock.patch.object(overview(), "wall_snapshot", side_effect=counted):
        screens = [refresh() for _ in range(5)]
        other_length = refresh(limit=3)
        assert next(reads) == 2  # one per feed length, whatever the number of screens
        counts = text_of(screens[0][2])
        assert all(text_of(s[2]) == counts for s in screens)  # the same counts on every screen
        add_episode(db, network["N2"], severity="critical", kpi="active_users")
        assert text_of(refresh()[2]) == counts  # within the period: the shared answer
        context.wall_cache = SharedCache(ttl_s=3600)  # the period ends
        assert text_of(refresh()[2]) != counts
    assert other_length[0] is not None


def test_a_failed_shared_read_is_tried_again(app: Dash, signed_in, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from services.web.shared_cache import SharedCache

    cache = SharedCache(ttl_s=3600)
    calls = count()

    def flaky() -> int:
        if next(calls) == 0:
            raise OperationalError("SELECT", {}, Exception("gone"))
        return 7

    with pytest.raises(OperationalError):
        cache.get("k", flaky)
    assert cache.get("k", flaky) == 7
    assert cache.get("k", flaky) == 7
    assert next(calls) == 2  # computed twice: once failed, once kept
