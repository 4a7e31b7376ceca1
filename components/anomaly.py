"""Anomaly feed builders: grid rows, count tiles, the thresholds panel, history and pills.

Text that came from data (element names, notes, explanations) is only ever placed as
component children, which React renders as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dash import html

from components.cards import empty_state, stat_tile, tile_row
from components.format import age, count, local_time

if TYPE_CHECKING:  # data shapes only: components never reach the services at run time
    from services.anomaly.feed import EpisodeRow, FeedbackItem, FeedCounts, HistoryItem
    from services.anomaly.thresholds import ThresholdRow

SEVERITY_ORDER = ("critical", "major", "minor", "warning")
# Tile classes tile-critical etc. are defined in the anomaly block of assets/beacon.css.
SEVERITY_TONES = {"critical": "critical", "major": "major", "minor": "minor", "warning": "neutral"}
SEVERITY_PILLS = {
    "critical": "pill anomaly-sev anomaly-sev-critical",
    "major": "pill anomaly-sev anomaly-sev-major",
    "minor": "pill anomaly-sev anomaly-sev-minor",
    "warning": "pill anomaly-sev anomaly-sev-warning",
}
STATUS_PILLS = {
    "open": "pill pill-bad",
    "acknowledged": "pill pill-warn",
    "resolved": "pill pill-ok",
}
LABEL_TEXT = {
    "true_anomaly": "True anomaly",
    "expected": "Expected / explained",
    "not_anomaly": "Not an anomaly",
    "new_normal": "New normal",
}
ACTION_TEXT = {
    "anomaly.acknowledge": "acknowledged",
    "anomaly.feedback": "gave feedback",
    "anomaly.incident.link": "linked an incident",
}
FLAG_TEXT = {
    "gap": "Periods are missing around the episode: the baseline stood on fewer points.",
    "stale_source": "The source was late or silent: the newest periods may be incomplete.",
    "late_data": "Some values arrived after the source's watermark.",
    "drift": "A schema or value drift event touches this element: its old baseline may "
    "no longer describe it.",
    "cold_start": "The element has little history of its own: the expectation leans on peers.",
    "suspect": "The source flagged some values as suspect.",
    "revised": "Late or corrected data changed this episode after it was first reported.",
}
# Row classes: ongoing episodes stand out; suppressed ones (change windows) are muted.
ROW_CLASSES = {
    "anomaly-row-ongoing": "params.data.ongoing.startsWith('ongoing')",
    "anomaly-row-suppressed": "params.data.suppressed === 'yes'",
}
SEVERITY_CELLS = {f"anomaly-cell-{s}": f"params.value === '{s}'" for s in SEVERITY_ORDER}
STATUS_CELLS = {f"anomaly-cell-{s}": f"params.value === '{s}'" for s in ("open", "acknowledged")}
NUMBER = {"type": "numericColumn"}
_COLUMNS = [
    {
        "field": "link",
        "headerName": "#",
        "cellRenderer": "markdown",
        "minWidth": 80,
        "maxWidth": 95,
        "filter": False,
    },
    {
        "field": "severity",
        "headerName": "Severity",
        "minWidth": 110,
        "maxWidth": 120,
        "cellClassRules": SEVERITY_CELLS,
    },
    {"field": "element", "headerName": "Element", "minWidth": 150, "tooltipField": "dn"},
    {"field": "kpi", "headerName": "KPI", "minWidth": 140},
    {"field": "deviation", "headerName": "Observed / expected", "minWidth": 165},
    {"field": "sigma", "headerName": "σ", **NUMBER, "minWidth": 65, "maxWidth": 80},
    {"field": "confidence", "headerName": "Conf.", **NUMBER, "minWidth": 75, "maxWidth": 90},
    {
        "field": "status",
        "headerName": "Status",
        "minWidth": 115,
        "maxWidth": 135,
        "cellClassRules": STATUS_CELLS,
    },
    # Local "YYYY-MM-DD HH:MM" sorts correctly as text.
    {"field": "started", "headerName": "Started", "minWidth": 165, "sort": "desc"},
    {"field": "ongoing", "headerName": "State", "minWidth": 165, "tooltipField": "ongoing"},
    {"field": "region", "headerName": "Region", "minWidth": 85},
    {"field": "domain", "headerName": "Domain", "minWidth": 85},
    {"field": "flags", "headerName": "Data quality", "minWidth": 120, "tooltipField": "flags"},
    {"field": "incident", "headerName": "Incident", "minWidth": 85, "maxWidth": 110},
]
# The page's filters run in the database over every episode; a grid column filter would only
# narrow the rows already loaded, which reads like a second, contradicting filter.
FEED_COLUMNS = [{**column, "filter": False} for column in _COLUMNS]


def feed_grid_row(row: EpisodeRow, *, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """One episode as a grid row (strings formatted for reading, numbers for sorting)."""
    return {
        "id": str(row.id),
        "link": f"[#{row.id}](/anomalies/{row.id})",
        "severity": row.severity,
        "element": row.element,
        "dn": row.dn,
        "kpi": row.kpi,
        "deviation": deviation_text(row.observed, row.expected, row.unit),
        "sigma": round(row.score, 1),
        "confidence": round(row.confidence, 2),
        "status": row.status,
        "started": local_time(row.started_at, zone),
        "started_iso": row.started_at.isoformat(),
        "ongoing": _state(row, now=now),
        "region": row.region or "—",
        "domain": row.domain,
        "flags": ", ".join(row.flags),
        "suppressed": "yes" if row.suppressed else "",
        "incident": f"#{row.incident_id}" if row.incident_id else "",
    }


def _state(row: EpisodeRow, *, now: datetime) -> str:
    state = "ongoing" if row.ongoing else f"ended {age(row.ended_at, now=now)} ago"
    return f"{state} · suppressed" if row.suppressed else state


def deviation_text(observed: float, expected: float, unit: str) -> str:
    """`92.1 % vs 61.0 %`: observed, then expected."""
    return f"{with_unit(observed, unit)} vs {with_unit(expected, unit)}"


def with_unit(value: float | None, unit: str) -> str:
    """A value with its unit (`count` units are implied)."""
    text = number(value)
    return text if unit in ("", "count") or value is None else f"{text} {unit}"


def number(value: float | None) -> str:
    """A measurement readable at a glance: 3 significant figures, thousands separated."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return count(value)
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def severity_pill(severity: str) -> html.Span:
    """A pill coloured by severity."""
    return html.Span(severity, className=SEVERITY_PILLS.get(severity, "pill pill-muted"))


def status_pill(status: str) -> html.Span:
    """A pill for open, acknowledged or resolved."""
    return html.Span(status, className=STATUS_PILLS.get(status, "pill pill-muted"))


def count_tiles(counts: FeedCounts) -> html.Div:
    """Episodes matching the filters, by severity, then ongoing and suppressed."""
    tiles = [
        stat_tile(
            severity.capitalize(),
            count(counts.by_severity.get(severity, 0)),
            tone=SEVERITY_TONES[severity] if counts.by_severity.get(severity) else "neutral",
        )
        for severity in SEVERITY_ORDER
    ]
    tiles += [
        stat_tile("Ongoing", count(counts.ongoing), detail="still anomalous now"),
        stat_tile(
            "Open",
            count(counts.by_status.get("open", 0)),
            detail="not yet acknowledged",
            tone="warn" if counts.by_status.get("open") else "ok",
        ),
        stat_tile("Suppressed", count(counts.suppressed), detail="inside change windows"),
    ]
    return tile_row(tiles)


def feed_empty(*, stored: bool, first_results: str) -> html.Div:
    """Why the grid is empty: nothing detected yet, or the filters exclude everything."""
    if stored:
        return empty_state(
            "No episodes match these filters",
            "Widen the time range, clear a filter or include resolved episodes.",
        )
    return empty_state(
        "No anomaly episodes yet",
        f"Detection runs every minute on each new complete period; {first_results}",
    )


def thresholds_panel(rows: Sequence[ThresholdRow], *, default: float) -> html.Div:
    """The effective thresholds: the default, then every KPI and use case, overrides marked."""
    body = []
    for row in rows:
        overridden = row.override is not None
        body.append(
            html.Tr(
                [
                    html.Td("KPI" if row.scope == "kpi" else "Use case", className="nowrap"),
                    html.Td(html.Span(row.name, className="mono")),
                    html.Td(row.label, className="muted"),
                    html.Td(f"{row.effective:.2f}", className="num"),
                    html.Td(
                        html.Span("override", className="pill pill-warn")
                        if overridden
                        else html.Span("default", className="pill pill-muted")
                    ),
                ],
                className="anomaly-threshold-override" if overridden else None,
            )
        )
    return html.Div(
        [
            html.P(
                [
                    "An episode opens when one period's calibrated confidence reaches the "
                    "threshold of its KPI (0.50: that period is more likely than not part of "
                    "a real incident). The episode then reports its own calibrated confidence, "
                    "the chance that the episode as a whole is a real incident: lower for a "
                    "short blip no other KPI shares, higher for a lasting, corroborated one. "
                    "Default: ",
                    html.Strong(f"{default:.2f}", id="anomalies-threshold-default"),
                    ".",
                ]
            ),
            html.Table(
                [
                    html.Thead(
                        html.Tr(
                            [
                                html.Th("Scope"),
                                html.Th("Name"),
                                html.Th("What"),
                                html.Th("Min. confidence", className="num"),
                                html.Th("Source"),
                            ]
                        )
                    ),
                    html.Tbody(body),
                ],
                className="table anomaly-thresholds",
            ),
        ]
    )


def history_list(
    history: Sequence[HistoryItem], feedback: Sequence[FeedbackItem], *, zone: ZoneInfo
) -> html.Div:
    """Audited actions on the episode, newest first, with each verdict's note."""
    if not history and not feedback:
        return empty_state("No actions yet", "Acknowledgements, verdicts and incidents show here.")
    items = []
    for event in history:
        after = event.after or {}
        what = ACTION_TEXT.get(event.action, event.action)
        detail: list[Any] = []
        if event.action == "anomaly.feedback":
            detail = [
                html.Strong(LABEL_TEXT.get(str(after.get("label")), str(after.get("label")))),
                html.Span(f" — {after['note']}" if after.get("note") else ""),
            ]
        elif event.action == "anomaly.acknowledge":
            detail = [
                f"status {after.get('status', '')}" + (" (bulk)" if after.get("bulk") else "")
            ]
        elif event.action == "anomaly.incident.link":
            verb = "opened" if after.get("created") else "linked to"
            detail = [f"{verb} incident #{after.get('incident_id')}"]
        items.append(
            html.Li(
                [
                    html.Span(local_time(event.at, zone), className="mono anomaly-history-time"),
                    html.Span(f"{event.actor} ({event.role or 'no role'}) {what}: "),
                    *detail,
                ]
            )
        )
    counts = _label_counts(feedback)
    summary = html.P(
        "Verdicts so far: " + ", ".join(f"{LABEL_TEXT[k]} {n}" for k, n in counts.items()),
        className="muted",
    )
    return html.Div(
        [summary if counts else None, html.Ul(items, className="anomaly-history")],
    )


def _label_counts(feedback: Sequence[FeedbackItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in feedback:
        if item.label in LABEL_TEXT:
            counts[item.label] = counts.get(item.label, 0) + 1
    return counts
