"""Episode page: the drill-down renders from stored data; actions by role, audited."""

from __future__ import annotations

import importlib
import json
from datetime import UTC

import pytest
from anomaly_feed_support import Sample, add_episodes
from dash import Dash
from pages_support import run_callback, text_of
from sqlalchemy import select

from services import audit
from services.anomaly import detect
from services.db import Database
from services.db.models import Anomaly, AnomalyFeedback, Incident, utcnow
from services.errors import Forbidden
from services.oncall.demo import seed_demo_oncall


@pytest.fixture
def page(app: Dash):  # type: ignore[no-untyped-def]
    return importlib.import_module("pages.anomaly_episode")


@pytest.fixture
def sample(db: Database) -> Sample:
    with db.session(write=True) as session:
        return add_episodes(session)


def act(page, trigger: str, sample: Sample, *, label=None, note=None, title=None, incident=None):  # type: ignore[no-untyped-def]
    clicks = {"ack": (1, None, None, None), "feedback": (None, 1, None, None)}
    clicks |= {"create": (None, None, 1, None), "link": (None, None, None, 1)}
    ids = {
        "ack": page.ACK,
        "feedback": page.FEEDBACK,
        "create": page.CREATE,
        "link": page.LINK,
    }
    return run_callback(
        page.act,
        *clicks[trigger],
        sample.spike,
        label,
        note,
        title,
        incident,
        triggered=f"{ids[trigger]}.n_clicks",
    )


def test_episode_page_renders_series_explanation_and_context(
    page, signed_in, sample: Sample
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        layout = page.layout(anomaly_id=str(sample.spike))
    text = text_of(layout)
    assert "prb_util_dl on SITE-0042 C1" in text
    assert "Downlink PRB utilisation on SITE-0042 C1 is 97.4 %" in text
    assert "Typical for Tuesday 18:00" in text
    assert "active_users" in text  # contributing KPI
    assert "Two of three cells on the site deviate" in text  # peers
    assert "late_data" in text
    assert "after the source's watermark" in text
    assert "SITE-0042 C2" in text  # same site group
    assert "Your role can read this episode" in text  # no actions for viewers
    # Alarm text with markup stays text: a string child, never parsed as HTML.
    assert "<b>S1 link degraded</b>" in text
    dumped = json.dumps(layout.to_plotly_json(), default=str)
    assert "dangerously" not in dumped
    graph = _find(layout, page.CHART)
    traces = graph.figure["data"] if isinstance(graph.figure, dict) else graph.figure.data
    kinds = {t["type"] if isinstance(t, dict) else t.type for t in traces}
    assert kinds == {"scatter"}  # SVG, not WebGL
    names = {t["name"] if isinstance(t, dict) else t.name for t in traces}
    assert {"observed", "peak", "expected", "alert threshold"} <= names
    assert any(str(n).startswith("normal range (expected ± 3σ") for n in names)
    # This stored explanation predates the normal range: its band is named the alert band.
    assert "alert band" in text


def test_explanation_panel_names_the_normal_range_and_the_alert_threshold_apart(
    page, signed_in, db: Database, sample: Sample
) -> None:  # type: ignore[no-untyped-def]
    """The words of the chart legend, the caption and the explanation are the same."""
    from components.anomaly_episode import explanation_panel, normal_words
    from services.anomaly import explain, feed
    from services.anomaly.episodes import PeriodResult

    with db.session() as session:
        episode = feed.episode_detail(session, anomaly_id=sample.spike).episode
    alert = detect.band_sigma(detect.DEFAULT_CONFIG)
    peak = PeriodResult(episode.peak_at, 97.4, 58.0, 58.0 - alert, 58.0 + alert, 39.4, 0.9, True)
    doc = explain.explanation(
        explain.Subject("SITE-0042 C1", "prb_util_dl", "%"), peak,
        started_at=episode.started_at, ended_at=None, zone=UTC, facts=explain.Facts(),
    )  # fmt: skip
    text = text_of(explanation_panel(doc, episode))
    assert "Normal range" in text
    assert "55.0–61.0%" in text  # expected 58 +- 3 sigma (sigma 1)
    assert normal_words(detect.NORMAL_SIGMA, detect.NORMAL_COVERAGE) in text
    assert "Alert threshold" in text
    assert f"{58.0 + alert:.1f}" in text
    assert "above the normal range" in text
    with signed_in("viewer"):
        layout = page.layout(anomaly_id=str(sample.spike))
    assert normal_words(detect.NORMAL_SIGMA, detect.NORMAL_COVERAGE) in text_of(layout)


def test_suppressed_episode_shows_its_change_window(page, signed_in, sample: Sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        text = text_of(page.layout(anomaly_id=str(sample.link_loss)))
    assert "#3 Backhaul maintenance" in text
    assert "Suppressed from the wall screen: inside change window #3" in text
    assert "gap" in text
    assert "stale_source" in text
    with signed_in("operator"):
        spike = text_of(page.layout(anomaly_id=str(sample.spike)))
    assert "Two late periods re-evaluated" in spike  # revisions


@pytest.mark.parametrize("bad", ["99999", "abc", "0", None])
def test_unknown_episode_is_a_clear_message(page, signed_in, sample: Sample, bad) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        layout = page.layout(anomaly_id=bad)
    assert "Episode not found" in text_of(layout)


def test_operator_acknowledges_and_gives_feedback(
    page, signed_in, db: Database, sample: Sample
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        layout = page.layout(anomaly_id=str(sample.spike))
        assert _find(layout, page.ACK) is not None
        message, status, history, _ = act(page, "ack", sample)
        assert f"Episode #{sample.spike} acknowledged" in text_of(message)
        assert "acknowledged by page-operator" in text_of(status)
        again, *_ = act(page, "ack", sample)
        assert "already acknowledged" in text_of(again)
        message, _, history, note = act(
            page, "feedback", sample, label="true_anomaly", note="real congestion"
        )
        assert "True anomaly" in text_of(message)
        assert note == ""
        assert "real congestion" in text_of(history)
        refused, *_ = act(page, "feedback", sample, label=None)
        assert "Choose a verdict" in text_of(refused)
    with db.session() as session:
        assert session.get_one(Anomaly, sample.spike).status == "acknowledged"
        assert session.scalar(select(AnomalyFeedback.note)) == "real congestion"


def test_create_then_link_incident(page, signed_in, db: Database, sample: Sample) -> None:  # type: ignore[no-untyped-def]
    with signed_in("engineer"):
        message, status, *_ = act(page, "create", sample, title="Congestion on SITE-0042")
        assert "Incident #" in text_of(message)
        assert "sev1" in text_of(message)
        assert "Congestion on SITE-0042" in text_of(status)
        options = run_callback(page.load_incidents, sample.spike)
        assert len(options) == 1
        again, *_ = act(page, "link", sample, incident=options[0]["value"])
        assert "already linked" in text_of(again)
        nothing, *_ = act(page, "link", sample, incident=None)
        assert "Choose an open incident" in text_of(nothing)
    with db.session() as session:
        assert session.scalar(select(Incident.title)) == "Congestion on SITE-0042"


@pytest.mark.parametrize("role", ["viewer", "executive"])
@pytest.mark.parametrize("trigger", ["ack", "feedback", "create", "link"])
def test_readers_are_refused_and_nothing_changes(
    page, signed_in, db: Database, sample: Sample, role: str, trigger: str
) -> None:  # type: ignore[no-untyped-def]
    with signed_in(role), pytest.raises(Forbidden):
        act(page, trigger, sample, label="not_anomaly", incident=1)
    with signed_in(role), pytest.raises(Forbidden):
        run_callback(page.load_incidents, sample.spike)
    with db.session() as session:
        assert session.get_one(Anomaly, sample.spike).status == "open"
        assert session.scalar(select(AnomalyFeedback.id)) is None
        assert session.scalar(select(Incident.id)) is None
        assert not audit.search(session, action="anomaly.")


def test_crafted_inputs_do_nothing(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    with signed_in("operator"):
        result = run_callback(page.act, 1, None, None, None, "1; drop", None, None, None, None)
    assert all(r is not None for r in result)  # no_update everywhere, no crash


def _find(component, id_: str):  # type: ignore[no-untyped-def]
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, id_)
            if found is not None:
                return found
    return None


def test_episode_names_network_and_ai_owners_with_who_is_on_call(
    page, signed_in, db: Database, sample: Sample
) -> None:  # type: ignore[no-untyped-def]
    with signed_in("viewer"):
        before = text_of(page.layout(anomaly_id=str(sample.spike)))
    # Nothing routed yet: said plainly for both, never left out.
    assert before.count("no owning team") == 2
    with db.session(write=True) as session:
        seed_demo_oncall(session, now=utcnow())
    with signed_in("viewer"):
        layout = page.layout(anomaly_id=str(sample.spike))
    text = text_of(layout)
    assert "Who answers for this" in text
    assert "Network: RAN · North" in text
    assert "RAN North operations" in text
    assert "AI: detector" in text
    assert "AI platform" in text
    assert "no owning team" not in text
