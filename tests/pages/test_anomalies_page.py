"""Anomaly feed page: layout by role, feed and filters, views, bulk acknowledge, thresholds."""

from __future__ import annotations

import importlib
import json

import pytest
from anomaly_feed_support import Sample, add_episodes
from dash import Dash
from pages_support import run_callback, text_of

from services import audit
from services.anomaly import thresholds
from services.db import Database
from services.db.models import Anomaly
from services.errors import Forbidden

DEFAULT_FILTERS = ([], ["open", "acknowledged"], None, None, None, None, "7d", "", "include")


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    # Dash imported the page module when the app was created; take that very module.
    return importlib.import_module("pages.anomalies")


@pytest.fixture
def sample(db: Database) -> Sample:
    with db.session(write=True) as session:
        return add_episodes(session, series=False)


def feed_rows(page, *filters):  # type: ignore[no-untyped-def]
    return run_callback(page.load_feed, *(filters or DEFAULT_FILTERS), None, None)


def test_layout_by_role(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        viewer = json.dumps(page.layout().to_plotly_json(), default=str)
    with signed_in("engineer"):
        engineer = json.dumps(page.layout().to_plotly_json(), default=str)
    assert "Detection thresholds" in viewer
    assert "Detection thresholds" in engineer
    assert page.TH_SET not in viewer
    assert page.TH_SET in engineer
    with signed_in("viewer"):
        assert find(page.layout(), page.ACK).hidden is True
    with signed_in("operator"):
        assert find(page.layout(), page.ACK).hidden is False


def find(component, id_: str):  # type: ignore[no-untyped-def]
    """The component with this id inside a layout tree."""
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = find(child, id_)
            if found is not None:
                return found
    return None


def test_feed_lists_stored_episodes_with_counts(page, signed_in, sample: Sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        rows, shown, tiles, empty = feed_rows(page)
    # The resolved warning is outside the default filters (open/acknowledged, 7 days).
    assert [r["id"] for r in rows] == [str(sample.drop), str(sample.spike), str(sample.link_loss)]
    assert rows[1]["link"] == f"[#{sample.spike}](/anomalies/{sample.spike})"
    assert rows[1]["ongoing"] == "ongoing"
    assert rows[2]["suppressed"] == "yes"
    assert shown == "3 episodes"
    assert "Critical 1" in text_of(tiles)
    assert empty is None


def test_filters_narrow_the_feed(page, signed_in, sample: Sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        critical, *_ = feed_rows(
            page, ["critical"], [], None, None, None, None, "all", "", "include"
        )
        old, *_ = feed_rows(page, [], ["resolved"], 0.4, None, None, None, "all", "c1", "include")
        hidden, *_ = feed_rows(page, [], [], None, "South", None, None, "all", "", "hide")
        kpi, *_ = feed_rows(page, [], [], None, None, "RAN", "rrc_setup_sr", "24h", "", "include")
    assert [r["id"] for r in critical] == [str(sample.spike)]
    assert [r["id"] for r in old] == [str(sample.old)]
    assert hidden == []
    assert [r["id"] for r in kpi] == [str(sample.drop)]


def test_empty_states(page, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        rows, _, _, empty = feed_rows(page)
    assert rows == []
    assert "No anomaly episodes yet" in text_of(empty)
    assert "Detection runs every minute" in text_of(empty)
    with db.session(write=True) as session:
        add_episodes(session, series=False)
    with signed_in("viewer"):
        rows, _, _, empty = feed_rows(page, ["critical"], ["resolved"], *DEFAULT_FILTERS[2:])
    assert rows == []
    assert "No episodes match these filters" in text_of(empty)


def test_bulk_acknowledge_asks_then_acts(page, signed_in, db: Database, sample: Sample) -> None:  # type: ignore[no-untyped-def]
    selected = [{"id": str(sample.spike)}, {"id": str(sample.drop)}, {"id": "x"}]
    with signed_in("operator"):
        shown, message, _ = run_callback(
            page.ask_acknowledge, 1, selected, triggered="anomalies-ack.n_clicks"
        )
        assert shown is True
        assert "Acknowledge 2" in message
        refused = run_callback(page.ask_acknowledge, 1, [], triggered="anomalies-ack.n_clicks")
        assert "Select episodes" in text_of(refused[2])
        note, done = run_callback(
            page.acknowledge_selected,
            1,
            selected,
            triggered="anomalies-ack-confirm.submit_n_clicks",
        )
    assert "Acknowledged 2 episode(s)" in text_of(note)
    assert done
    with db.session() as session:
        assert session.get_one(Anomaly, sample.spike).status == "acknowledged"
        assert session.get_one(Anomaly, sample.drop).status == "resolved"
        assert len(audit.search(session, action="anomaly.acknowledge")) == 2


@pytest.mark.parametrize("role", ["viewer", "executive"])
def test_readers_cannot_acknowledge(
    page, signed_in, db: Database, sample: Sample, role: str
) -> None:  # type: ignore[no-untyped-def]
    with signed_in(role), pytest.raises(Forbidden):
        run_callback(
            page.acknowledge_selected,
            1,
            [{"id": str(sample.spike)}],
            triggered="anomalies-ack-confirm.submit_n_clicks",
        )
    with signed_in(role), pytest.raises(Forbidden):
        run_callback(page.ask_acknowledge, 1, [{"id": str(sample.spike)}])
    with db.session() as session:
        assert session.get_one(Anomaly, sample.spike).status == "open"
        assert not audit.search(session, action="anomaly.acknowledge")


def test_saved_views_round_trip(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    filters = (["critical"], ["open"], 0.6, "North", "RAN", "prb_util_dl", "24h", "C1", "hide")
    with signed_in("viewer"):
        message, changed, view_id = run_callback(
            page.change_view,
            1,
            None,
            "North PRB",
            None,
            *filters,
            triggered="anomalies-save-view.n_clicks",
        )
        assert "saved" in text_of(message)
        assert changed
        assert view_id
        *_, views = run_callback(page.load_options, None, None)
        assert views == [{"label": "North PRB", "value": view_id}]
        restored = run_callback(page.apply_view, view_id)
        assert restored == (*filters, "North PRB")
        message, *_ = run_callback(
            page.change_view,
            None,
            1,
            None,
            view_id,
            *filters,
            triggered="anomalies-delete-view.n_clicks",
        )
        assert "deleted" in text_of(message)
        *_, views = run_callback(page.load_options, None, None)
        assert views == []


def test_thresholds_panel_and_edit_by_engineer(page, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        panel = text_of(run_callback(page.load_thresholds, None, None))
    default = thresholds.DEFAULT_MIN_CONFIDENCE
    assert f"Default: {default:.2f}" in " ".join(panel.split()).replace(" .", ".")
    assert "prb_util_dl" in panel
    with signed_in("engineer"):
        names = run_callback(page.threshold_names, "kpi")
        label = f"prb_util_dl ({thresholds.DEFAULT_MIN_CONFIDENCE:.2f})"
        assert {"label": label, "value": "prb_util_dl"} in names
        message, done = run_callback(
            page.change_threshold,
            1,
            None,
            "kpi",
            "prb_util_dl",
            0.75,
            triggered="anomalies-threshold-set.n_clicks",
        )
        assert "now 0.75" in text_of(message)
        assert done
        bad, _ = run_callback(
            page.change_threshold,
            1,
            None,
            "kpi",
            "prb_util_dl",
            3,
            triggered="anomalies-threshold-set.n_clicks",
        )
        assert "at most 1" in text_of(bad)
    with db.session() as session:
        assert thresholds.effective_thresholds(session).for_kpi("prb_util_dl") == 0.75


@pytest.mark.parametrize("role", ["viewer", "operator", "executive"])
def test_only_engineers_edit_thresholds(page, signed_in, db: Database, role: str) -> None:  # type: ignore[no-untyped-def]
    with signed_in(role), pytest.raises(Forbidden):
        run_callback(
            page.change_threshold,
            1,
            None,
            "kpi",
            "prb_util_dl",
            0.9,
            triggered="anomalies-threshold-set.n_clicks",
        )
    with db.session() as session:
        assert thresholds.effective_thresholds(session).kpi == {}
