"""Adoption page: summary in words, ladders, weekly SVG charts, simulated label, CSV export."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dash
import pandas as pd
import plotly.graph_objects as go
import pytest
from dash import Dash
from disagreement_support import seed_trust
from flask_login import login_user
from pages_support import run_callback, text_of
from sqlalchemy import delete

from components.adoption import rate_trend, response_times
from services.db import Database
from services.db.models import UseCase, utcnow
from services.decisions.demo import backfill_history
from services.errors import Forbidden
from services.web.principal import kiosk_principal

ROLES = ("viewer", "operator", "engineer", "executive", "admin")


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    # Dash imported the page module when the app was created; take that very module.
    return importlib.import_module("pages.adoption")


@pytest.fixture
def history(db: Database) -> None:
    now = utcnow()
    with db.session(write=True) as session:
        seed_trust(session, now=now, topology=False)
        backfill_history(session, now=now, weeks=12)


@contextmanager
def as_kiosk(app: Dash) -> Iterator[None]:
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        login_user(kiosk_principal(token_id=1, name="noc wall"))
        yield


def test_every_role_reads_it_and_wall_screens_do_not(page, app: Dash, signed_in) -> None:  # type: ignore[no-untyped-def]
    for role in ROLES:
        with signed_in(role):
            run_callback(page.load_report, 12, None)
            csv = run_callback(
                page.download_csv, 1, None, 12, triggered=f"{page.CSV_SUMMARY}.n_clicks"
            )
            assert csv["filename"].endswith(".csv")
    with as_kiosk(app):
        with pytest.raises(Forbidden):
            run_callback(page.load_report, 12, None)
        with pytest.raises(Forbidden):
            run_callback(page.download_csv, 1, None, 12, triggered=f"{page.CSV_SUMMARY}.n_clicks")
    assert set(page.PAGE_ROLES) == set(ROLES)


def test_report_in_plain_words_with_ladders_and_svg_charts(  # type: ignore[no-untyped-def]
    page, signed_in, history: None
) -> None:
    with signed_in("executive"):
        simulated, tiles, times, charts, cards = run_callback(page.load_report, 12, None)
    assert "Simulated history" in text_of(simulated)
    assert "not how the AI performs" in text_of(simulated)
    summary = text_of(tiles)
    for needle in (
        "AI use cases",
        "1 advisory · 2 approve-to-execute · 1 automatic with guardrails",
        "Accepted as proposed",
        "changed by a person",
        "AI right when checked",
        "Typical wait for a decision",
        "Actions run automatically",
        "Incidents with AI involvement",
    ):
        assert needle in summary, needle
    assert "Not enough data yet to compare time to acknowledge" in text_of(times)
    graphs = _graphs(charts)
    assert [g.id for g in graphs] == ["adoption-network-decisions", "adoption-network-rates"]
    assert len(cards) == 4
    first = cards[0]
    assert first.id == "adoption-case-cell_congestion_lb"
    text = text_of(first)
    assert "At L2 for" in text
    assert "approve-to-execute" in text
    assert "Why people rejected or changed it" in text
    assert "Wrong diagnosis" in text
    assert "points, last 4 weeks vs the 4 before" in text or "steady" in text
    ladder = _find(first, "adoption-ladder-cell_congestion_lb")
    classes = [step.className for step in ladder.children]
    assert classes[2] == "adoption-step adoption-step-current"
    assert classes[4] == "adoption-step adoption-step-ahead"
    for graph in [*graphs, *_graphs(cards)]:
        # SVG traces only: a page of charts must never run out of WebGL contexts.
        assert all(isinstance(t, go.Bar | go.Scatter) for t in graph.figure.data), graph.id
    weekly = _find(first, "adoption-decisions-cell_congestion_lb").figure
    assert len(weekly.data[0].x) == 12


def test_without_use_cases_it_says_so(page, signed_in, db: Database) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        # Start-up seeds the use cases; an operator may have none configured.
        session.execute(delete(UseCase))
    with signed_in("viewer"):
        simulated, tiles, _, charts, cards = run_callback(page.load_report, 12, None)
    assert simulated is None
    assert charts is None
    assert "No AI use cases configured" in text_of(cards)
    assert "AI use cases" in text_of(tiles)


def test_csv_downloads_are_built_on_the_server(page, signed_in, history: None) -> None:  # type: ignore[no-untyped-def]
    with signed_in("executive"):
        summary = run_callback(
            page.download_csv, 1, None, 8, triggered=f"{page.CSV_SUMMARY}.n_clicks"
        )
        trend = run_callback(page.download_csv, None, 1, 8, triggered=f"{page.CSV_TREND}.n_clicks")
        nothing = run_callback(page.download_csv, None, None, 8, triggered=None)
        crafted = run_callback(
            page.download_csv, None, 1, "<script>", triggered=f"{page.CSV_TREND}.n_clicks"
        )
    assert summary["filename"].startswith("beacon-adoption-summary-")
    assert summary["content"].startswith("use_case,maturity_level,recommendations,decided")
    assert summary["content"].count("\n") == 6  # header, network, four use cases
    assert trend["content"].startswith("week,use_case_id,use_case,recommendations")
    assert trend["content"].count("\n") == 1 + 8 * 5  # eight weeks × (network + four)
    assert nothing is dash.no_update
    # A crafted span falls back to the default instead of failing.
    assert crafted["content"].count("\n") == 1 + page.DEFAULT_WEEKS * 5


def test_response_times_compare_only_with_enough_incidents() -> None:
    none: dict[str, Any] = {
        "before": {"incidents": 3, "mtta_minutes": 20.0, "mttr_minutes": 200.0},
        "after": {"incidents": 0, "mtta_minutes": None, "mttr_minutes": None},
        "comparable_severities": [],
    }
    text = text_of(response_times(none, id_="t"))
    assert "Not enough data yet" in text
    assert "no incidents with AI involvement yet" in text
    both = {
        "before": {"incidents": 4, "mtta_minutes": 30.0, "mttr_minutes": 240.0},
        "after": {"incidents": 2, "mtta_minutes": 12.0, "mttr_minutes": 95.0},
        "comparable_severities": ["sev2"],
    }
    text = text_of(response_times(both, id_="t"))
    assert "Before AI (4)" in text
    assert "With AI (2)" in text
    assert "30 min" in text
    assert "4.0 h" in text
    assert "95 min" in text
    assert "severities sev2" in text


def test_rate_trend_in_points() -> None:
    def weeks(accepted: list[int]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "decided": [10] * len(accepted),
                "accepted": accepted,
                "overridden": [0] * len(accepted),
                "rejected": [10 - a for a in accepted],
                "judged": [10] * len(accepted),
                "right": accepted,
            }
        )

    rising = weeks([5, 5, 5, 5, 7, 7, 7, 7])
    assert rate_trend(rising, "acceptance_rate") == "▲ 20 points, last 4 weeks vs the 4 before"
    assert rate_trend(rising, "rejection_rate").startswith("▼ 20 points")
    assert rate_trend(weeks([5] * 8), "precision") == "steady over the last 4 weeks"
    assert rate_trend(weeks([5] * 5), "acceptance_rate") == "trend: not enough weeks yet"


def _graphs(component: Any) -> list[Any]:
    out: list[Any] = []
    if isinstance(component, list | tuple):
        for child in component:
            out += _graphs(child)
        return out
    if isinstance(component, dash.dcc.Graph):
        return [component]
    children = getattr(component, "children", None)
    if children is not None and not isinstance(children, str | int | float):
        out += _graphs(children)
    return out


def _find(component: Any, id_: str) -> Any:
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, id_)
            if found is not None:
                return found
    return None
