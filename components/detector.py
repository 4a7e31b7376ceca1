"""Detector review builders: model facts, the reliability curve, verdict tables, job health.

Take the data the review service returns and give back components and figures; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from components.cards import empty_state, stat_tile, status_pill, tile_row
from components.figures import GRID, TEXT, base_layout
from components.format import age, ago, count, local_time

if TYPE_CHECKING:  # data shapes only: components never reach the services at run time
    from services.anomaly.review import CalibrationReview, Lag, ModelSummary, RunSummary

LABEL_TEXT = {
    "true_anomaly": "True anomaly",
    "not_anomaly": "Not an anomaly",
    "expected": "Expected / explained",
    "new_normal": "New normal",
}
# Same hues as the severity pills and tiles in assets/beacon.css.
SEVERITY_COLOURS = {
    "critical": "#c4202b",
    "major": "#d4580f",
    "minor": "#b38600",
    "warning": "#8a97a8",
}
CURVE = "#4c9aff"
RUN_PILLS = {"ok": "ok", "failed": "failing", "running": "unknown", "skipped": "unknown"}
# Detection runs every minute on 15-minute periods: one period of lag is normal.
LAG_WARN = timedelta(minutes=45)
LAG_BAD = timedelta(hours=3)
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": "hover"}


def model_facts(summary: ModelSummary) -> html.Div:
    """What runs in production: detector, version, thresholds, calibration provenance."""
    overrides = summary.kpi_overrides + summary.use_case_overrides
    override_text = (
        f"{summary.kpi_overrides} per-KPI and {summary.use_case_overrides} per-use-case override(s)"
        if overrides
        else "none: every KPI uses the default"
    )
    facts = [
        ("Detector", html.Span(summary.detector, className="mono")),
        ("Model version", html.Span(summary.model_version, className="mono")),
        ("Default threshold", f"minimum calibrated confidence {summary.default_threshold:.2f}"),
        (
            "Overrides",
            html.Span(
                [override_text, " · ", dcc.Link("edit on Anomalies", href="/anomalies")],
                id="detector-overrides",
            ),
        ),
        ("Period calibration", html.Span(summary.calibration_version, className="mono")),
        ("Fitted on", summary.calibration_fitted_on or "not recorded in calibration.json"),
        ("Calibrated to predict", summary.calibration_target),
    ]
    if summary.episode_calibration_target:
        facts += [
            (
                "Episode calibration",
                html.Span(summary.episode_calibration_version, className="mono"),
            ),
            ("Episodes fitted on", summary.episode_calibration_fitted_on),
            ("Episode confidence predicts", summary.episode_calibration_target),
        ]
    return html.Dl(
        [item for label, value in facts for item in (html.Dt(label), html.Dd(value))],
        className="kv",
    )


def calibration_tiles(review: CalibrationReview, *, minimum: int) -> html.Div:
    """n, ECE and overall share confirmed; ECE only once there are enough verdicts."""
    confirmed = review.by_label.get("true_anomaly", 0)
    ece = (
        stat_tile(
            "Calibration error (ECE)",
            f"{review.ece:.3f}",
            detail="mean |share confirmed − confidence|, count-weighted over 10 bins",
            tone="ok" if review.ece <= 0.1 else "warn",
            id_="detector-ece",
        )
        if review.enough and not math.isnan(review.ece)
        else stat_tile(
            "Calibration error (ECE)",
            "—",
            detail=f"needs at least {minimum} verdicts",
            id_="detector-ece",
        )
    )
    return tile_row(
        [
            stat_tile(
                "Episodes judged",
                count(review.n),
                detail=f"{count(review.current_version)} on the running model version",
                id_="detector-verdicts",
            ),
            ece,
            stat_tile(
                "Confirmed by operators",
                f"{confirmed / review.n:.0%}" if review.n else "—",
                detail=f"{count(confirmed)} of {count(review.n)} judged episodes"
                if review.n
                else "no verdicts yet",
            ),
        ]
    )


def calibration_empty(review: CalibrationReview, *, minimum: int) -> html.Div:
    """The honest state before there are enough verdicts to draw a curve."""
    return empty_state(
        f"Calibration review needs at least {minimum} verdicts; {review.n} so far.",
        "Operators, engineers and admins give verdicts on an episode's page (true anomaly, "
        "expected, not an anomaly, new normal). Each episode counts once, with its latest verdict.",
    )


def reliability_figure(reliability: pd.DataFrame, *, height: int = 340) -> go.Figure:
    """Mean confidence per bin against the share operators confirmed; markers sized by count."""
    filled = reliability[reliability["count"] > 0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line={"dash": "dash", "color": TEXT, "width": 1},
            hoverinfo="skip",
        )
    )
    largest = max(int(filled["count"].max()), 1) if len(filled) else 1
    sizes = [8 + 22 * math.sqrt(n / largest) for n in filled["count"]]
    bounds = zip(filled["bin_low"], filled["bin_high"], strict=True)
    labels = [f"confidence {lo:.1f}–{hi:.1f}" for lo, hi in bounds]
    fig.add_trace(
        go.Scatter(
            x=filled["mean_confidence"],
            y=filled["observed_rate"],
            mode="lines+markers",
            name="episodes by confidence bin",
            line={"color": CURVE, "width": 2},
            marker={"size": sizes, "color": CURVE, "line": {"color": "#ffffff", "width": 1}},
            customdata=list(zip(labels, filled["count"], strict=True)),
            hovertemplate=(
                "%{customdata[0]}<br>mean confidence %{x:.2f}<br>"
                "confirmed %{y:.0%} of %{customdata[1]} episodes<extra></extra>"
            ),
        )
    )
    base_layout(fig, height=height, y_title="share confirmed by operators")
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(range=[0, 1.02], title_text="stored confidence (bin mean)", tickformat=".1f")
    fig.update_yaxes(range=[-0.02, 1.05], tickformat=".0%")
    return fig


def verdict_table(by_label: dict[str, int]) -> html.Table:
    """Latest verdicts by label, and whether each counts as confirmed."""
    total = sum(by_label.values())
    rows = [
        html.Tr(
            [
                html.Td(LABEL_TEXT.get(label, label)),
                html.Td("confirmed" if label == "true_anomaly" else "not confirmed"),
                html.Td(count(n), className="num"),
                html.Td(f"{n / total:.0%}" if total else "—", className="num"),
            ]
        )
        for label, n in by_label.items()
    ]
    head = ["Verdict", "Counts as", "Episodes", "Share"]
    return _table(head, rows, id_="detector-labels", numeric=range(2, 4))


def kpi_table(by_kpi: Sequence) -> html.Table | html.P:
    """Precision per KPI: confirmed / judged."""
    if not by_kpi:
        return html.P("No verdicts yet.", className="muted")
    rows = [
        html.Tr(
            [
                html.Td(p.kpi, className="mono"),
                html.Td(count(p.judged), className="num"),
                html.Td(count(p.confirmed), className="num"),
                html.Td(f"{p.precision:.0%}", className="num"),
            ]
        )
        for p in by_kpi
    ]
    head = ["KPI", "Judged", "Confirmed", "Precision"]
    return _table(head, rows, id_="detector-kpis", numeric=range(1, 4))


def health_tiles(
    lag: Lag, runs: Sequence[RunSummary], *, zone: ZoneInfo, now: datetime
) -> html.Div:
    """How far behind detection is and how its last run ended."""
    if lag.behind is None:
        behind = stat_tile(
            "Detection behind",
            "—",
            detail="no period evaluated yet (the job has not run)",
            tone="warn",
            id_="detector-lag",
        )
    else:
        tone = "bad" if lag.behind > LAG_BAD else "warn" if lag.behind > LAG_WARN else "ok"
        behind = stat_tile(
            "Detection behind",
            age(lag.cursor, now=now),
            detail=f"newest period evaluated {local_time(lag.cursor, zone)}",
            tone=tone,
            id_="detector-lag",
        )
    last = runs[0] if runs else None
    failed = sum(1 for r in runs if r.status == "failed")
    tiles = [
        behind,
        stat_tile(
            "Last run",
            last.status if last else "—",
            detail=ago(last.started_at, now=now) if last else "no runs recorded",
            tone="neutral" if last is None else "ok" if last.status == "ok" else "bad",
        ),
        stat_tile(
            "Failed runs",
            count(failed),
            detail=f"of the last {len(runs)} runs",
            tone="bad" if failed else "ok" if runs else "neutral",
        ),
    ]
    return tile_row(tiles)


def runs_table(runs: Sequence[RunSummary], *, zone: ZoneInfo) -> html.Table | html.Div:
    """The detection job's last runs from the job history."""
    if not runs:
        return empty_state(
            "No detection runs recorded yet.",
            "The scheduler process runs job anomaly.detect every minute; runs appear here.",
        )
    rows = [
        html.Tr(
            [
                html.Td(local_time(r.started_at, zone, seconds=True), className="nowrap"),
                html.Td(status_pill(RUN_PILLS.get(r.status, "unknown"), r.status)),
                html.Td(_num(r.periods), className="num"),
                html.Td(_num(r.reevaluated), className="num"),
                html.Td(_num(r.opened), className="num"),
                html.Td(count(r.failures), className="num"),
                html.Td("—" if r.seconds is None else f"{r.seconds:.1f}", className="num"),
                html.Td(r.error or "", className="muted"),
            ]
        )
        for r in runs
    ]
    head = ["Started", "Status", "Periods", "Re-evaluated", "Opened", "Failures", "Seconds", ""]
    return _table(head, rows, id_="detector-runs", numeric=range(2, 7))


def volume_figure(volume: pd.DataFrame, *, height: int = 300) -> go.Figure:
    """Episodes opened per day, stacked by severity (SVG bars)."""
    fig = go.Figure()
    for severity, part in volume.groupby("severity", sort=False):
        fig.add_trace(
            go.Bar(
                x=pd.to_datetime(part["day"]),
                y=part["episodes"],
                name=str(severity),
                marker={"color": SEVERITY_COLOURS.get(str(severity), TEXT)},
                hovertemplate=f"%{{y}} {severity}<extra></extra>",
            )
        )
    base_layout(fig, height=height, y_title="episodes opened per day")
    # Legend in severity order (Plotly lists stacked bars top-down otherwise).
    fig.update_layout(barmode="stack", bargap=0.25, legend={"traceorder": "normal"})
    fig.update_xaxes(tickformat="%d %b", gridcolor=GRID)
    peak = int(volume.groupby("day")["episodes"].sum().max()) if len(volume) else 0
    # Counts are whole episodes: no fractional ticks on quiet or empty months.
    fig.update_yaxes(rangemode="tozero", tickformat=",d", dtick=1 if peak < 5 else None)
    if peak == 0:
        fig.update_yaxes(range=[0, 5])
    return fig


def volume_note(volume: pd.DataFrame) -> str:
    """Total and daily mean over the window, for the section subtitle."""
    days = volume["day"].nunique()
    total = int(volume["episodes"].sum())
    if not days:
        return ""
    if not total:
        return f"no episodes opened in the last {days} days (UTC)"
    return f"{count(total)} episodes in {days} days (UTC), {total / days:.1f} a day on average"


def _table(head: Sequence[str], rows: list[html.Tr], *, id_: str, numeric: range) -> html.Table:
    cells = [html.Th(h, className="num" if i in numeric else None) for i, h in enumerate(head)]
    return html.Table([html.Thead(html.Tr(cells)), html.Tbody(rows)], className="table", id=id_)


def _num(value: int | None) -> str:
    return "—" if value is None else count(value)
