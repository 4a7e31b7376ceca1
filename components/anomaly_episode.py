"""Episode builders: the series chart with its band, the explanation and data-quality panels.

Everything here renders text from the detector's explanation as component children or
figure text (never markup), so a hostile element name or note stays inert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from components.anomaly import FLAG_TEXT, LABEL_TEXT, number, severity_pill, with_unit
from components.cards import empty_state
from components.figures import base_layout
from components.format import local_time

if TYPE_CHECKING:
    from services.anomaly.feed import EpisodeRow
    from services.anomaly.feed_series import EpisodeSeries

OBSERVED = "#1f6feb"
EXPECTED = "#8a97a8"
BAND = "rgba(138, 151, 168, 0.22)"
ALERT = "#c98a1b"
EPISODE = "rgba(229, 72, 77, 0.12)"
PEAK = "#e5484d"
Y_PAD = 0.08  # headroom above and below what the y axis must show


def normal_words(sigma: float, coverage: float) -> str:
    """How the chart, its caption and the explanation name the shaded range."""
    return f"normal range (expected ± {sigma:g}σ, about {coverage:.0%} of ordinary periods)"


def series_figure(
    series: EpisodeSeries, episode: EpisodeRow, *, zone: ZoneInfo, height: int = 360
) -> go.Figure:
    """Observed line in its normal range, the alert threshold, the episode and its peak.

    The y axis fits the observed values and the normal range; the alert threshold (tens of
    σ out) is drawn where it falls inside that and otherwise stated in the explanation.
    """
    frame = series.frame
    fig = go.Figure()
    times = _local(frame["period_end"], zone)
    unit = "" if episode.unit == "count" else f" {episode.unit}"
    has_band = bool(frame["normal_low"].notna().any())
    if has_band:
        # SVG traces: an episode page may hold other charts, and WebGL contexts are scarce.
        fig.add_trace(
            go.Scatter(
                x=times,
                y=frame["normal_high"],
                mode="lines",
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=times,
                y=frame["normal_low"],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=BAND,
                name=normal_words(series.normal_sigma, series.normal_coverage),
                customdata=frame["normal_high"],
                hovertemplate=(f"normal %{{y:.3g}}–%{{customdata:.3g}}{unit}<extra></extra>"),
            )
        )
        # Only the side the episode deviates to: the other edge adds nothing but clutter.
        edge = "band_high" if episode.observed >= episode.expected else "band_low"
        fig.add_trace(
            go.Scatter(
                x=times,
                y=frame[edge],
                mode="lines",
                name="alert threshold",
                line={"color": ALERT, "dash": "dot", "width": 1.5},
                hovertemplate=f"alert threshold %{{y:.3g}}{unit}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=times,
                y=frame["expected"],
                mode="lines",
                name="expected",
                line={"color": EXPECTED, "dash": "dash", "width": 1.5},
                hovertemplate=f"expected %{{y:.3g}}{unit}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=times,
            y=frame["value"],
            mode="lines",
            name="observed",
            line={"color": OBSERVED, "width": 2},
            hovertemplate=f"observed %{{y:.3g}}{unit}<extra></extra>",
        )
    )
    end = episode.ended_at or series.window_end
    fig.add_vrect(
        x0=episode.started_at.astimezone(zone),
        x1=end.astimezone(zone),
        fillcolor=EPISODE,
        line_width=0,
        layer="below",
        annotation_text="episode" + ("" if episode.ended_at else " (ongoing)"),
        annotation_position="top left",
        annotation_font_color=PEAK,
    )
    fig.add_trace(
        go.Scatter(
            x=[episode.peak_at.astimezone(zone)],
            y=[episode.observed],
            mode="markers",
            name="peak",
            marker={"color": PEAK, "size": 10, "symbol": "diamond"},
            hovertemplate=f"peak %{{y:.3g}}{unit} ({episode.score:+.1f} σ)<extra></extra>",
        )
    )
    if not has_band:
        # Without the detector's ranges for every period, show the alert band at the peak.
        fig.add_trace(
            go.Scatter(
                x=[episode.peak_at.astimezone(zone)] * 2,
                y=[episode.band_low, episode.band_high],
                mode="lines",
                name="alert band at peak",
                line={"color": ALERT, "width": 6},
                opacity=0.5,
                hovertemplate=f"alert band at peak %{{y:.3g}}{unit}<extra></extra>",
            )
        )
    base_layout(fig, height=height, y_title=episode.unit)
    if has_band:
        fig.update_yaxes(range=y_range(frame, episode.observed))
    return fig


def y_range(frame: pd.DataFrame, peak: float) -> list[float] | None:
    """Observed values, the peak and the normal range, padded; None when nothing is finite."""
    values = pd.concat(
        [frame["value"], frame["normal_low"], frame["normal_high"], pd.Series([peak])]
    )
    values = values[pd.notna(values)].astype(float)
    if values.empty:
        return None
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * Y_PAD or max(abs(high) * Y_PAD, 1.0)
    return [low - pad, high + pad]


def explanation_panel(explanation: dict[str, Any], episode: EpisodeRow) -> html.Div:
    """The detector's explanation: summary, observed vs expected, σ, season, contributors."""
    unit = str(explanation.get("unit") or episode.unit)
    observed = _float(explanation.get("observed"), episode.observed)
    expected = _float(explanation.get("expected"), episode.expected)
    band = explanation.get("band") or [episode.band_low, episode.band_high]
    sigma = _float(explanation.get("sigma"), episode.score)
    direction = explanation.get("direction") or ("below" if observed < expected else "above")
    normal = explanation.get("normal") or {}
    facts: list[tuple[str, Any]] = [("Observed", with_unit(observed, unit))]
    if normal.get("range"):
        low, high = (_float(v) for v in normal["range"])
        facts += [
            ("Expected", with_unit(expected, unit)),
            (
                "Normal range",
                f"{number(low)}–{with_unit(high, unit)}: "
                + normal_words(_float(normal.get("sigma")), _float(normal.get("coverage"))),
            ),
            (
                "Alert threshold",
                f"{with_unit(_float(normal.get('alert_threshold')), unit)} (expected ± "
                f"{_float(normal.get('alert_sigma')):.0f}σ): one period beyond it alone is more "
                "likely than not an anomaly",
            ),
            ("Deviation", f"{sigma:+.1f} robust σ, {direction} the normal range"),
        ]
    else:
        # Explanations stored before the normal range existed carry the alert band only.
        facts += [
            (
                "Expected",
                f"{with_unit(expected, unit)} (alert band {number(_float(band[0]))}–"
                f"{with_unit(_float(band[-1]), unit)})",
            ),
            ("Deviation", f"{sigma:+.1f} robust σ, {direction} the expected value"),
        ]
    seasonal = explanation.get("seasonal") or {}
    if seasonal:
        slot = seasonal.get("slot")
        typical = seasonal.get("typical")
        text = seasonal.get("text") or (
            f"Typical for {slot} is {with_unit(_float(typical), unit)}." if slot else ""
        )
        facts.append(("Seasonal context", str(text)))
    children: list[Any] = [
        html.P(
            str(explanation.get("summary") or "No explanation was stored for this episode."),
            className="anomaly-summary",
        ),
        _facts(facts),
    ]
    contributing = explanation.get("contributing_kpis") or []
    if contributing:
        children.append(html.H3("Contributing KPIs on this element"))
        children.append(
            _table(
                ["KPI", "Observed", "Expected", "σ"],
                [
                    [
                        str(c.get("kpi", "")),
                        number(_float(c.get("observed"))),
                        number(_float(c.get("expected"))),
                        f"{_float(c.get('sigma')):+.1f}",
                    ]
                    for c in contributing
                ],
                numeric=frozenset({1, 2, 3}),
            )
        )
    elif episode.related_kpis:
        children.append(
            html.P("Also deviating: " + ", ".join(str(k) for k in episode.related_kpis))
        )
    revisions = explanation.get("revisions") or []
    if revisions:
        children.append(html.H3("Revisions"))
        children.append(
            html.Ul(
                [
                    html.Li(f"{r.get('at', '')}: {r.get('text') or r.get('reason', '')}")
                    for r in revisions
                ]
            )
        )
    return html.Div(children, className="anomaly-explanation")


def quality_panel(
    episode: EpisodeRow, data_quality: dict[str, Any], explanation: dict[str, Any]
) -> html.Div:
    """What the confidence means and what lowered it, flag by flag."""
    factor = data_quality.get("factor")
    history = data_quality.get("history_points")
    text = data_quality.get("text") or (explanation.get("data_quality") or {}).get("text")
    meaning = (
        f"Confidence {episode.confidence:.2f}: of past episodes reported at about this "
        f"confidence, about {episode.confidence:.0%} were real incidents on labelled data "
        "(calibrated for whole episodes: their peak, how long they lasted and whether other "
        "KPIs deviated with them)."
    )
    facts: list[tuple[str, Any]] = [("Confidence", meaning)]
    peak = explanation.get("period_confidence")
    if peak is not None:
        facts.append(
            (
                "Peak period",
                f"{_float(peak):.2f} — the most anomalous single period's own calibrated "
                "confidence; an episode that stays short is a real incident less often than "
                "its peak period alone suggests.",
            )
        )
    if factor is not None:
        facts.append(
            (
                "Data-quality factor",
                f"× {_float(factor):.2f} — the calibrated confidence is multiplied by it "
                "when the data the detector stood on was incomplete or unsure.",
            )
        )
    if history is not None:
        facts.append(("History used", f"{int(history):,} reference periods"))
    facts.append(("Detector", f"{episode.detector} · model {episode.model_version}"))
    flags = [str(f) for f in data_quality.get("flags") or []]
    children: list[Any] = [_facts(facts)]
    if text:
        children.append(html.P(str(text)))
    if flags:
        children.append(
            html.Ul(
                [
                    html.Li(
                        [html.Span(flag, className="pill pill-warn"), " ", FLAG_TEXT.get(flag, "")]
                    )
                    for flag in flags
                ],
                className="anomaly-flags",
            )
        )
    else:
        children.append(html.P("No data-quality problems were flagged.", className="muted"))
    if episode.suppressed:
        children.append(
            html.P(
                "Suppressed from the wall screen: "
                + (episode.suppressed_reason or "inside a change window."),
                className="anomaly-suppressed-note",
            )
        )
    return html.Div(children)


def peers_panel(peers: dict[str, Any]) -> html.Div:
    """How the element's peer group behaved at the same time."""
    if not peers:
        return empty_state("No peer comparison", "The detector stored no peer group for it.")
    head = f"{peers.get('group', 'peer group')}: {peers.get('size', '?')} members"
    if peers.get("median") is not None:
        head += f", median {number(_float(peers.get('median')))}"
    affected = peers.get("affected") or []
    children: list[Any] = [html.P(head)]
    if peers.get("text"):
        children.append(html.P(str(peers["text"])))
    if affected:
        children.append(
            _table(
                ["Also deviating", "σ"],
                [
                    [str(a.get("name", a.get("element_id", ""))), f"{_float(a.get('sigma')):+.1f}"]
                    for a in affected
                ],
                numeric=frozenset({1}),
            )
        )
    return html.Div(children)


def alarms_changes_panel(explanation: dict[str, Any], *, zone: ZoneInfo) -> html.Div:
    """Alarms raised and planned changes that overlap the episode."""
    alarms = explanation.get("alarms") or []
    changes = explanation.get("changes") or []
    if not alarms and not changes:
        return empty_state(
            "No overlapping alarms or changes", "Nothing was raised or planned then."
        )
    children: list[Any] = []
    if changes:
        children += [
            html.H3("Changes and maintenance"),
            _table(
                ["Change", "Kind", "From", "To"],
                [
                    [
                        f"#{c.get('id', '')} {c.get('title', '')}",
                        str(c.get("kind", "")),
                        _when(c.get("starts_at"), zone),
                        _when(c.get("ends_at"), zone),
                    ]
                    for c in changes
                ],
            ),
        ]
    if alarms:
        children += [
            html.H3("Alarms"),
            _table(
                ["Severity", "Alarm", "Raised", "State"],
                [
                    [
                        str(a.get("severity", "")),
                        str(a.get("text", "")),
                        _when(a.get("raised_at"), zone),
                        str(a.get("state", "")),
                    ]
                    for a in alarms
                ],
            ),
        ]
    return html.Div(children)


def similar_panel(similar: Sequence[dict[str, Any]], *, zone: ZoneInfo) -> html.Div:
    """Similar past episodes and the verdicts people gave them."""
    if not similar:
        return empty_state("No similar past episodes", "Nothing comparable was found yet.")
    rows = []
    for item in similar:
        verdict = item.get("verdict")
        anomaly_id = str(item.get("anomaly_id", ""))
        rows.append(
            html.Tr(
                [
                    html.Td(
                        dcc.Link(f"#{anomaly_id}", href=f"/anomalies/{anomaly_id}")
                        if anomaly_id.isdigit()
                        else "—"
                    ),
                    html.Td(_when(item.get("started_at"), zone), className="nowrap"),
                    html.Td(str(item.get("element", ""))),
                    html.Td(str(item.get("kpi", ""))),
                    html.Td(f"{_float(item.get('sigma')):+.1f}", className="num"),
                    html.Td(
                        LABEL_TEXT.get(str(verdict), "no verdict") if verdict else "no verdict"
                    ),
                ]
            )
        )
    head = html.Tr(
        [
            html.Th(h, className="num" if h == "σ" else None)
            for h in ("Episode", "Started", "Element", "KPI", "σ", "Verdict")
        ]
    )
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table")


def group_panel(group: Sequence[EpisodeRow], *, zone: ZoneInfo) -> html.Table | None:
    """Simultaneous episodes on the same site."""
    if not group:
        return None
    rows = [
        html.Tr(
            [
                html.Td(dcc.Link(f"#{g.id}", href=f"/anomalies/{g.id}")),
                html.Td(severity_pill(g.severity)),
                html.Td(g.element),
                html.Td(g.kpi),
                html.Td(f"{g.score:+.1f}", className="num"),
                html.Td(local_time(g.started_at, zone), className="nowrap"),
            ]
        )
        for g in group
    ]
    head = html.Tr(
        [
            html.Th(h, className="num" if h == "σ" else None)
            for h in ("Episode", "Severity", "Element", "KPI", "σ", "Started")
        ]
    )
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table")


def _facts(facts: Sequence[tuple[str, Any]]) -> html.Dl:
    return html.Dl(
        [item for k, v in facts for item in (html.Dt(k), html.Dd(v))], className="kv anomaly-kv"
    )


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: frozenset[int] = frozenset()
) -> html.Table:
    def cls(i: int) -> str | None:
        return "num" if i in numeric else None

    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h, className=cls(i)) for i, h in enumerate(headers)])),
            html.Tbody(
                [html.Tr([html.Td(c, className=cls(i)) for i, c in enumerate(row)]) for row in rows]
            ),
        ],
        className="table",
    )


def _when(value: Any, zone: ZoneInfo) -> str:
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return local_time(moment, zone) if moment.tzinfo else str(value)


def _float(value: Any, default: float = float("nan")) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _local(times: pd.Series, zone: ZoneInfo) -> pd.Series:
    return pd.to_datetime(times, utc=True).dt.tz_convert(zone)
