"""Data-health builders: tiles, source and event tables, the gap heatmap, record views.

Text that came from data (records, payloads, summaries) is only ever placed as component
children or figure text, which React and Plotly render as text, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go
from dash import html

from components.cards import empty_state, stat_tile, status_pill, tile_row
from components.figures import base_layout
from components.format import age, ago, count, local_time, short_time

if TYPE_CHECKING:  # data shapes only: components never reach the services at run time
    from services.db.models import JobRun
    from services.ingest.health_queries import (
        BatchRow,
        EventRow,
        GapMatrix,
        HealthSummary,
        JobState,
        QuarantineRow,
        RawExcerpt,
        SchedulerState,
        SourceHealth,
    )

# Missing periods per hour: amber for one, red for a whole hour of a 15-minute source.
GAP_COLOURS = [[0.0, "#f2c94c"], [0.5, "#ff8a3d"], [1.0, "#e5484d"]]
KIND_LABELS = {"schema_drift": "schema", "value_drift": "value", "stale": "stale"}
SEVERITY_PILLS = {
    "critical": "pill pill-bad",
    "major": "pill pill-bad",
    "warning": "pill pill-warn",
}


def health_tiles(summary: HealthSummary, *, zone: ZoneInfo, now: datetime) -> html.Div:
    """Scheduler first (nothing moves without it), then freshness, volume, refusals, gaps, drift."""
    active = [s for s in summary.sources if s.freshness.status != "disabled"]
    fresh = sum(1 for s in active if s.freshness.status == "fresh")
    stale = sum(1 for s in active if s.freshness.status == "stale")
    share = summary.quarantined_share
    return tile_row(
        [
            scheduler_tile(summary.scheduler, zone=zone, now=now),
            stat_tile(
                "Sources fresh",
                f"{fresh}/{len(active)}",
                detail=f"{stale} stale" if stale else f"{len(summary.sources)} sources in all",
                tone="bad" if stale else ("ok" if fresh else "neutral"),
            ),
            stat_tile(
                "Records 24 h",
                count(summary.records_24h),
                detail=f"in {count(summary.batches_24h)} batches",
            ),
            stat_tile(
                "Quarantined 24 h",
                count(summary.quarantined_24h),
                detail="nothing refused" if not share else f"{percent(share)} of received",
                tone=_share_tone(share),
            ),
            stat_tile(
                "Open gaps",
                count(summary.open_gaps),
                detail="missing periods, last 24 h",
                tone="warn" if summary.open_gaps else "ok",
            ),
            stat_tile(
                "Open drift events",
                count(summary.open_drift),
                detail="schema or value drift",
                tone="warn" if summary.open_drift else "ok",
            ),
        ]
    )


def scheduler_tile(state: SchedulerState, *, zone: ZoneInfo, now: datetime) -> html.Div:
    """The lease holder and its expiry; a red warning when no scheduler holds the lease."""
    if state.running:
        detail = (
            f"{state.holder} · heartbeat {ago(state.renewed_at, now=now)} · "
            f"lease until {_clock(state.expires_at, zone)}"
        )
        return stat_tile(
            "Scheduler", "Running", detail=detail, tone="ok", id_="data-health-scheduler"
        )
    last = (
        f"{state.holder}'s lease expired {ago(state.expires_at, now=now)}"
        if state.holder
        else "none has started yet"
    )
    return stat_tile(
        "Scheduler",
        "Stopped",
        detail=f"No scheduler running: data does not move ({last}).",
        tone="bad",
        id_="data-health-scheduler",
    )


def sources_table(
    sources: Sequence[SourceHealth],
    *,
    zone: ZoneInfo,
    now: datetime,
    selected: str | None,
    pick_type: str,
) -> html.Div | html.Table:
    """One row per source; its name is a button that focuses the page on that source."""
    if not sources:
        return empty_state("No sources yet", "Sources appear when their first batch arrives.")
    heads = [
        ("Source", ""),
        ("Status", ""),
        ("Cadence", ""),
        ("Newest period", ""),
        ("Last delivery", ""),
        ("Last good batch", ""),
        ("Batches 24 h", "num"),
        ("Error rate 24 h", "num"),
        ("Open gaps", "num"),
    ]
    head = html.Thead(html.Tr([html.Th(text, className=css or None) for text, css in heads]))
    rows = []
    for s in sources:
        f = s.freshness
        rate = s.error_rate_24h
        rows.append(
            html.Tr(
                [
                    html.Td(
                        [
                            html.Button(
                                f.name,
                                id={"type": pick_type, "index": f.name},
                                className="health-link",
                                title=f"Show only {f.name} below",
                            ),
                            html.Div(f.kind, className="muted small"),
                        ],
                        className="nowrap",
                    ),
                    html.Td(status_pill(f.status)),
                    html.Td(cadence(s.expected_cadence_s), className="nowrap"),
                    html.Td(short_time(f.newest_period, zone, now=now), className="nowrap"),
                    html.Td(
                        ago(f.last_received_at, now=now),
                        className="nowrap",
                        title=_stamp(f.last_received_at, zone),
                    ),
                    html.Td(
                        ago(s.last_good_batch_at, now=now),
                        className="nowrap",
                        title=_stamp(s.last_good_batch_at, zone),
                    ),
                    html.Td(count(f.batches_24h), className="num"),
                    html.Td(
                        "—" if rate is None else percent(rate),
                        className=f"num {_rate_class(rate)}".strip(),
                        title=f"{count(f.quarantined_24h)} quarantined "
                        f"of {count(f.records_24h)} received",
                    ),
                    html.Td(
                        count(s.open_gaps),
                        className="num health-warn-text" if s.open_gaps else "num",
                    ),
                ],
                className="health-selected" if f.name == selected else None,
            )
        )
    return html.Table([head, html.Tbody(rows)], className="table", id="data-health-sources-table")


def gap_heatmap(matrix: GapMatrix, *, zone: ZoneInfo, wall: bool = False) -> go.Figure:
    """Rows are elements (or whole sources), columns hours, colour the missing periods."""
    cells = matrix.cells
    fig = go.Figure()
    if cells.empty:
        return base_layout(fig, height=160, wall=wall)
    labels = list(dict.fromkeys(cells["label"]))
    # Every hour of the window as a column, so a quiet hour shows as a quiet hour.
    hours = pd.date_range(
        pd.Timestamp(matrix.since).floor("h"), pd.Timestamp(matrix.until).floor("h"), freq="h"
    )
    grid = (
        cells.pivot_table(index="label", columns="bucket", values="missing", aggfunc="sum")
        .reindex(index=labels, columns=hours)
        .astype("float64")
    )
    detail = cells.drop_duplicates("label").set_index("label").reindex(labels)
    hover = [
        [f"{detail.at[label, 'dn']}<br>{detail.at[label, 'source']}"] * len(hours)
        for label in labels
    ]
    fig.add_trace(
        go.Heatmap(
            z=grid.to_numpy(),
            x=hours.tz_convert(zone).tz_localize(None),
            y=labels,
            customdata=hover,
            colorscale=GAP_COLOURS,
            zmin=1,
            zmax=max(4.0, float(grid.max().max())),
            xgap=1,
            ygap=1,
            colorbar={"thickness": 12, "dtick": 1, "len": 0.9},
            hovertemplate=(
                "%{y} · %{x|%H:%M}<br>%{z} missing period(s)<br>%{customdata}<extra></extra>"
            ),
        )
    )
    row_px = 30 if wall else 20
    base_layout(fig, height=max(200, 90 + row_px * len(labels)), wall=wall)
    fig.update_layout(hovermode="closest", margin={"l": 8, "r": 8, "t": 8, "b": 40})
    fig.update_yaxes(autorange="reversed", automargin=True, type="category", showgrid=False)
    fig.update_xaxes(showgrid=False, tickformat="%H:%M")
    return fig


def gap_note(matrix: GapMatrix) -> str:
    """What the heatmap shows, and what it leaves out."""
    if not matrix.rows_total:
        return "no missing periods in the last 24 h"
    if matrix.rows_shown < matrix.rows_total:
        return (
            f"the {matrix.rows_shown} worst of {count(matrix.rows_total)} elements or sources "
            "with missing periods, last 24 h; colour = missing periods per hour"
        )
    return (
        f"{matrix.rows_total} elements or sources with missing periods, last 24 h; "
        "colour = missing periods per hour"
    )


def events_table(
    events: Sequence[EventRow],
    *,
    zone: ZoneInfo,
    now: datetime,
    resolve_type: str,
) -> html.Div | html.Table:
    """Drift events, open first; each open one has a Resolve button."""
    if not events:
        return empty_state(
            "No drift events", "Schema and value drift by vendor and software version show here."
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("Kind"),
                html.Th("Severity"),
                html.Th("Vendor / version"),
                html.Th("Source"),
                html.Th("Summary"),
                html.Th("Detected"),
                html.Th("Resolved"),
                html.Th(""),
            ]
        )
    )
    rows = [
        html.Tr(
            [
                html.Td(KIND_LABELS.get(e.kind, e.kind), className="nowrap"),
                html.Td(
                    html.Span(
                        e.severity, className=SEVERITY_PILLS.get(e.severity, "pill pill-muted")
                    )
                ),
                html.Td(
                    " ".join(x for x in (e.vendor, e.sw_version) if x) or "—", className="nowrap"
                ),
                html.Td(e.source or "all", className="nowrap"),
                html.Td(e.summary, className="health-summary"),
                html.Td(short_time(e.detected_at, zone, now=now), className="nowrap"),
                html.Td(
                    short_time(e.resolved_at, zone, now=now) if e.resolved_at else "open",
                    className="nowrap",
                ),
                html.Td(
                    None
                    if e.resolved_at
                    else html.Button(
                        "Resolve",
                        id={"type": resolve_type, "index": e.id},
                        className="btn btn-quiet health-btn-small desk-only",
                    )
                ),
            ],
            className="health-resolved" if e.resolved_at else None,
        )
        for e in events
    ]
    return html.Table([head, html.Tbody(rows)], className="table", id="data-health-events-table")


def job_states_table(
    states: Sequence[JobState], *, zone: ZoneInfo, now: datetime
) -> html.Div | html.Table:
    """Per job: last run, the day's runs and failures, and any back-off in force."""
    if not states:
        return empty_state(
            "No job has run yet", "Runs appear once the scheduler holds the lease and starts jobs."
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("Job"),
                html.Th("Last run"),
                html.Th("Last status"),
                html.Th("Runs 24 h", className="num"),
                html.Th("Failed 24 h", className="num"),
                html.Th("Failures in a row", className="num"),
                html.Th("Back-off"),
            ]
        )
    )
    rows = [
        html.Tr(
            [
                html.Td(s.job_id, className="mono nowrap"),
                html.Td(
                    ago(s.last_started_at, now=now),
                    className="nowrap",
                    title=_stamp(s.last_started_at, zone),
                ),
                html.Td(status_pill(_job_pill(s.last_status), s.last_status)),
                html.Td(count(s.runs_24h), className="num"),
                html.Td(
                    count(s.failures_24h),
                    className="num health-bad-text" if s.failures_24h else "num",
                ),
                html.Td(
                    count(s.consecutive_failures),
                    className="num health-bad-text" if s.consecutive_failures else "num",
                ),
                html.Td(
                    f"backing off until {_clock(s.backoff_until, zone)}"
                    if s.backoff_until
                    else "—",
                    className="nowrap health-bad-text" if s.backoff_until else "nowrap",
                ),
            ]
        )
        for s in states
    ]
    return html.Table([head, html.Tbody(rows)], className="table", id="data-health-job-states")


def record_detail(row: QuarantineRow, *, explanation: str, zone: ZoneInfo) -> html.Div:
    """The refused record in full, why it was refused, and where it came from."""
    facts = [
        ("Record", f"#{row.id}"),
        ("Source", row.source),
        ("Received", local_time(row.received_at, zone, seconds=True)),
        ("Batch", f"#{row.batch_id}" if row.batch_id else "— (batch removed)"),
        ("Reason code", row.reason_code),
        ("Field", row.field or "—"),
        ("Status", _record_status(row, zone)),
    ]
    return html.Div(
        className="columns",
        children=[
            html.Div(
                [
                    html.Dl(
                        [item for k, v in facts for item in (html.Dt(k), html.Dd(v))],
                        className="kv",
                    ),
                    html.H3("Why it was refused", className="health-subhead"),
                    html.P(row.reason, className="health-reason"),
                    html.P(f"{row.reason_code}: {explanation}.", className="muted")
                    if explanation != row.reason
                    else html.P(row.reason_code, className="muted mono"),
                ]
            ),
            html.Div(
                [
                    html.H3("Record as received", className="health-subhead"),
                    html.Pre(pretty_json(row.record), className="json-block"),
                ]
            ),
        ],
    )


def raw_view(excerpt: RawExcerpt) -> html.Div:
    """The start of the raw payload as plain text, with how much of it is shown."""
    if excerpt.truncated:
        extent = f"first {count(excerpt.shown_bytes)} of {count(excerpt.total_bytes)} bytes"
    else:
        extent = f"all {count(excerpt.total_bytes)} bytes"
    return html.Div(
        [
            html.P(
                f"Batch #{excerpt.batch_id} · format {excerpt.raw_format} · {extent}",
                className="muted",
            ),
            html.Pre(
                excerpt.text or "(empty)",
                className="json-block health-raw",
                id="data-health-raw-text",
            ),
        ]
    )


def batch_grid_row(batch: BatchRow, *, zone: ZoneInfo) -> dict[str, Any]:
    """A batch as a grid row; `key` is the stable string row id AG Grid wants."""
    reasons = ", ".join(
        f"{code} {n}"
        for code, n in sorted(batch.reasons.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    )
    return {
        "key": f"b{batch.id}",
        "id": batch.id,
        "received_at": local_time(batch.received_at, zone, seconds=True),
        "source": batch.source,
        "format": batch.raw_format,
        "status": batch.status,
        "received": batch.received,
        "accepted": batch.accepted,
        "duplicates": batch.duplicates,
        "corrections": batch.corrections,
        "quarantined": batch.quarantined,
        "late": batch.late,
        "reasons": reasons,
        "error": batch.error or "",
    }


def quarantine_grid_row(row: QuarantineRow, *, zone: ZoneInfo) -> dict[str, Any]:
    """A refused record as a grid row with a compact view of what it said."""
    record = row.record
    return {
        "key": f"q{row.id}",
        "id": row.id,
        "received_at": local_time(row.received_at, zone, seconds=True),
        "source": row.source,
        "reason_code": row.reason_code,
        "reason": row.reason,
        "field": row.field or "",
        "dn": str(record.get("dn") or ""),
        "kpi": str(record.get("counter") or record.get("kpi") or ""),
        "value": compact_value(record.get("value")),
        "period_end": _local_period(record.get("period_end"), zone),
        "status": row.status,
        "batch_id": row.batch_id,
    }


def job_run_grid_row(run: JobRun, *, zone: ZoneInfo) -> dict[str, Any]:
    """A job run as a grid row."""
    return {
        "key": f"j{run.id}",
        "id": run.id,
        "job_id": run.job_id,
        "started_at": local_time(run.started_at, zone, seconds=True),
        "duration": duration(run.started_at, run.finished_at),
        "status": run.status,
        "rows": run.rows,
        "error": run.error or "",
        "host": run.host or "",
    }


def pretty_json(doc: dict[str, Any]) -> str:
    """A record as indented JSON text."""
    return json.dumps(doc, indent=2, sort_keys=True, default=str)


def compact_value(value: Any) -> str:
    """A record's value as short text (refused values are often not numbers)."""
    if value is None:
        return "(empty)"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


def cadence(seconds: int) -> str:
    """`15 min`, `1 h`, `30 s`."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def percent(share: float) -> str:
    """A share as a percentage with sensible precision for small error rates."""
    value = share * 100
    if value == 0:
        return "0 %"
    if value < 0.1:
        return "<0.1 %"
    return f"{value:.1f} %" if value < 10 else f"{value:.0f} %"


def duration(start: datetime, end: datetime | None) -> str:
    """How long a run took; `running` while it has not finished."""
    if end is None:
        return "running"
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 60 else age(start, now=end)


def _local_period(value: object, zone: ZoneInfo) -> str:
    """A record's period end in the NOC's zone when it parses, else as it came."""
    if not isinstance(value, str) or not value:
        return "" if value is None else str(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return local_time(moment, zone) if moment.tzinfo else value


def _record_status(row: QuarantineRow, zone: ZoneInfo) -> str:
    if row.status == "replayed":
        return f"replayed {local_time(row.replayed_at, zone)} in batch #{row.replay_batch_id}"
    return row.status


def _share_tone(share: float | None) -> str:
    if not share:
        return "ok"
    return "bad" if share >= 0.1 else ("warn" if share >= 0.01 else "neutral")


def _rate_class(rate: float | None) -> str:
    if not rate:
        return ""
    return "health-bad-text" if rate >= 0.1 else ("health-warn-text" if rate >= 0.01 else "")


def _job_pill(status: str) -> str:
    # An abandoned run (its scheduler died mid-job) did not finish: shown like a failure.
    return {"ok": "ok", "failed": "failing", "abandoned": "failing", "running": "unknown"}.get(
        status, "unknown"
    )


def _clock(moment: datetime | None, zone: ZoneInfo) -> str:
    return "—" if moment is None else moment.astimezone(zone).strftime("%H:%M:%S")


def _stamp(moment: datetime | None, zone: ZoneInfo) -> str:
    return local_time(moment, zone, seconds=True)
