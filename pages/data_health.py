"""Data health: source freshness, batches, the quarantine, gaps, drift and scheduled jobs."""

from __future__ import annotations

from datetime import timedelta

import dash
import dash_ag_grid as dag
from dash import ALL, Input, Output, State, dcc, html

from components.cards import empty_state, notice, section
from components.format import count
from components.forms import field
from components.grid import data_grid
from components.health import (
    batch_grid_row,
    events_table,
    gap_heatmap,
    gap_note,
    health_tiles,
    job_run_grid_row,
    job_states_table,
    quarantine_grid_row,
    raw_view,
    record_detail,
    sources_table,
)
from pages._params import positive_id
from services.auth import ENGINEER_ROLES
from services.db.models import utcnow
from services.errors import BeaconError, InvalidInput
from services.ingest import health_queries
from services.ingest.reasons import sentence
from services.ingest.replay import replay_quarantine
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

dash.register_page(
    __name__,
    path="/data-health",
    name="Data health",
    title="Data health · Beacon",
    order=20,
    roles=ENGINEER_ROLES,
)

REFRESH = "data-health-refresh"
MODE = "data-health-mode"
SOURCE = "data-health-source"
TILES = "data-health-tiles"
SOURCES = "data-health-sources"
PICK = "data-health-pick"  # pattern-matching type of the source buttons
BATCHES = "data-health-batches"
BATCH_COUNT = "data-health-batch-count"
BATCH_EXPORT = "data-health-batch-export"
REASON = "data-health-reason"
WINDOW = "data-health-window"
STATUS = "data-health-status"
QUARANTINE = "data-health-quarantine"
QUARANTINE_COUNT = "data-health-quarantine-count"
QUARANTINE_EXPORT = "data-health-quarantine-export"
REPLAY = "data-health-replay"
REPLAY_MESSAGE = "data-health-replay-message"
DETAIL = "data-health-detail"
DETAIL_ID = "data-health-detail-id"
RAW_BUTTON = "data-health-raw-button"
RAW = "data-health-raw"
GAPS = "data-health-gaps"
GAP_EMPTY = "data-health-gap-empty"
GAP_NOTE = "data-health-gap-note"
EVENTS = "data-health-events"
EVENT_MESSAGE = "data-health-event-message"
RESOLVE = "data-health-resolve"  # pattern-matching type of the Resolve buttons
JOB_STATES = "data-health-job-states-panel"
JOBS = "data-health-jobs"
REFRESH_MS = 30_000
BATCH_LIMIT = 500
QUARANTINE_LIMIT = 2000
JOB_LIMIT = 500

WINDOWS = {
    "1h": ("last hour", timedelta(hours=1)),
    "6h": ("last 6 h", timedelta(hours=6)),
    "24h": ("last 24 h", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "all": ("any time", None),
}
STATUSES = {"open": "open", "replayed": "replayed", "all": "any status"}
FAILED_ROW = {"health-row-failed": "params.data.status === 'failed'"}

COUNT_COLUMN = {"type": "numericColumn", "minWidth": 92, "filter": "agNumberColumnFilter"}
# Most telling columns first: on a narrow screen the rest scroll into view.
BATCH_COLUMNS = [
    {"field": "id", "headerName": "#", "minWidth": 75, "maxWidth": 100},
    {"field": "received_at", "headerName": "Received at", "minWidth": 180, "sort": "desc"},
    {"field": "source", "headerName": "Source", "minWidth": 145},
    {"field": "status", "headerName": "Status", "minWidth": 100},
    {"field": "received", "headerName": "Records", **COUNT_COLUMN, "minWidth": 105},
    {"field": "accepted", "headerName": "Accepted", **COUNT_COLUMN, "minWidth": 110},
    {"field": "quarantined", "headerName": "Quar.", **COUNT_COLUMN, "headerTooltip": "quarantined"},
    {"field": "reasons", "headerName": "Reasons", "minWidth": 230, "tooltipField": "reasons"},
    {"field": "duplicates", "headerName": "Dupl.", **COUNT_COLUMN, "headerTooltip": "duplicates"},
    {"field": "corrections", "headerName": "Corr.", **COUNT_COLUMN, "headerTooltip": "corrections"},
    {"field": "late", "headerName": "Late", **COUNT_COLUMN},
    {"field": "error", "headerName": "Error", "minWidth": 220, "tooltipField": "error"},
    {"field": "format", "headerName": "Format", "minWidth": 115},
]
QUARANTINE_COLUMNS = [
    {"field": "received_at", "headerName": "Received", "minWidth": 185, "sort": "desc"},
    {"field": "source", "headerName": "Source", "minWidth": 150},
    {"field": "reason_code", "headerName": "Reason code", "minWidth": 150},
    {"field": "reason", "headerName": "Reason", "minWidth": 260, "tooltipField": "reason"},
    {"field": "field", "headerName": "Field", "maxWidth": 120},
    {"field": "dn", "headerName": "DN", "minWidth": 260, "cellClass": "mono", "tooltipField": "dn"},
    {"field": "kpi", "headerName": "KPI / counter", "minWidth": 150},
    {"field": "value", "headerName": "Value", "maxWidth": 140},
    {"field": "period_end", "headerName": "Period end", "minWidth": 170},
    {"field": "status", "headerName": "Status", "maxWidth": 110},
    {"field": "batch_id", "headerName": "Batch", "maxWidth": 100},
]
JOB_COLUMNS = [
    {"field": "id", "headerName": "#", "maxWidth": 90},
    {"field": "job_id", "headerName": "Job", "minWidth": 170, "cellClass": "mono"},
    {"field": "started_at", "headerName": "Started", "minWidth": 185, "sort": "desc"},
    {"field": "duration", "headerName": "Duration", "maxWidth": 120},
    {"field": "status", "headerName": "Status", "maxWidth": 110},
    {"field": "rows", "headerName": "Rows", **COUNT_COLUMN},
    {"field": "error", "headerName": "Error", "minWidth": 280, "tooltipField": "error"},
    {"field": "host", "headerName": "Host", "minWidth": 150},
]


def layout(kiosk: str | None = None, **_query: str) -> html.Div:
    """The page frame; every panel fills from stored data on load and every 30 s."""
    principal = current_principal()
    wall = kiosk == "1" or (principal is not None and principal.is_kiosk)
    graph_config = {"displaylogo": False, "displayModeBar": False if wall else "hover"}
    return html.Div(
        className="page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=MODE, data={"wall": wall}),
            dcc.Store(id=DETAIL_ID),
            html.Div(
                className="page-header",
                children=[
                    html.Div(
                        [
                            html.H1("Data health"),
                            html.P(
                                "Is the data moving, complete and trustworthy? Freshness, "
                                "refusals, gaps, drift and the jobs that move it."
                            ),
                        ]
                    ),
                    html.Div(
                        field(
                            "Focus on source",
                            dcc.Dropdown(id=SOURCE, placeholder="all sources", clearable=True),
                        ),
                        className="health-source-filter",
                    ),
                ],
            ),
            html.Div(id=TILES),
            section(
                "Sources",
                html.Div(id=SOURCES),
                subtitle="select a source to focus the sections below",
            ),
            section(
                "Batch history",
                _failed_rows(
                    data_grid(
                        BATCHES,
                        columns=BATCH_COLUMNS,
                        row_id="key",
                        height="420px",
                        export_name="beacon-batches.csv",
                    )
                ),
                subtitle=html.Span(id=BATCH_COUNT),
                actions=html.Button("Export CSV", id=BATCH_EXPORT, className="btn btn-quiet"),
                class_name="desk-only",
            ),
            _quarantine_section(),
            section(
                "Gaps",
                html.Div(
                    [
                        dcc.Graph(id=GAPS, config=graph_config, className="chart"),
                        html.Div(id=GAP_EMPTY),
                    ]
                ),
                subtitle=html.Span(id=GAP_NOTE),
            ),
            section(
                "Drift events",
                html.Div([html.Div(id=EVENT_MESSAGE), html.Div(id=EVENTS)]),
                subtitle="schema and value drift by vendor and software version; open first",
            ),
            section(
                "Scheduled jobs",
                html.Div(
                    [
                        html.Div(id=JOB_STATES),
                        html.Div(
                            _failed_rows(
                                data_grid(
                                    JOBS,
                                    columns=JOB_COLUMNS,
                                    row_id="key",
                                    page_size=25,
                                    auto_height=True,
                                )
                            ),
                            className="desk-only health-job-runs",
                        ),
                    ]
                ),
                subtitle=f"each job's record and the newest {JOB_LIMIT} runs; failures back off",
            ),
        ],
    )


def _quarantine_section() -> html.Section:
    filters = html.Div(
        className="form-grid",
        children=[
            field("Reason", dcc.Dropdown(id=REASON, placeholder="any reason")),
            field(
                "Received",
                dcc.Dropdown(
                    id=WINDOW,
                    options=[{"label": text, "value": key} for key, (text, _) in WINDOWS.items()],
                    value="7d",
                    clearable=False,
                ),
            ),
            field(
                "Status",
                dcc.Dropdown(
                    id=STATUS,
                    options=[{"label": text, "value": key} for key, text in STATUSES.items()],
                    value="open",
                    clearable=False,
                ),
            ),
            html.Button(
                "Replay filtered",
                id=REPLAY,
                className="btn",
                title="Send every open record of the chosen source and/or reason through "
                "validation again (after a mapping or rule fix)",
            ),
        ],
    )
    detail = html.Div(
        [
            html.Div(
                className="section-head health-detail-head",
                children=[
                    html.Div(html.H2("Selected record"), className="section-titles"),
                    html.Div(
                        html.Button(
                            "Show raw batch",
                            id=RAW_BUTTON,
                            className="btn btn-quiet",
                            disabled=True,
                        ),
                        className="section-actions",
                    ),
                ],
            ),
            html.Div(
                id=DETAIL,
                className="health-detail",
                children=html.P("Select a record to see it in full.", className="muted"),
            ),
            html.Div(id=RAW, className="health-detail"),
        ],
        className="health-detail-panel",
    )
    return section(
        "Quarantine",
        html.Div(
            [
                filters,
                html.Div(id=REPLAY_MESSAGE, className="health-message"),
                data_grid(
                    QUARANTINE,
                    columns=QUARANTINE_COLUMNS,
                    row_id="key",
                    height="440px",
                    selectable="singleRow",
                    export_name="beacon-quarantine.csv",
                ),
                detail,
            ]
        ),
        subtitle=html.Span(id=QUARANTINE_COUNT),
        actions=html.Button("Export CSV", id=QUARANTINE_EXPORT, className="btn btn-quiet"),
        class_name="desk-only",
    )


def _failed_rows(grid: dag.AgGrid) -> dag.AgGrid:
    # data_grid has no parameter for row classes; the grid takes them as a plain prop.
    grid.rowClassRules = FAILED_ROW
    return grid


# --- reads -------------------------------------------------------------------------------


@dash.callback(
    Output(TILES, "children"),
    Output(SOURCES, "children"),
    Output(SOURCE, "options"),
    Input(REFRESH, "n_intervals"),
    Input(SOURCE, "value"),
)
@allow(ENGINEER_ROLES)
def refresh_sources(_n: int | None, source: str | None) -> tuple:
    """Tiles and the sources table; the focus picker lists every source."""
    ctx = beacon()
    now = utcnow()
    with ctx.db.session() as session:
        summary = health_queries.summary(session, now=now)
    zone = ctx.settings.zone
    return (
        health_tiles(summary, zone=zone, now=now),
        sources_table(summary.sources, zone=zone, now=now, selected=source, pick_type=PICK),
        [s.name for s in summary.sources],
    )


@dash.callback(
    Output(SOURCE, "value"),
    Input({"type": PICK, "index": ALL}, "n_clicks"),
    State(SOURCE, "value"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES)
def pick_source(_clicks: list[int | None] | None, current: str | None) -> str | None:
    """Focus on the clicked source; clicking the focused one again shows all sources."""
    picked = _clicked_index()
    if picked is None:
        return dash.no_update
    return None if picked == current else str(picked)


@dash.callback(
    Output(BATCHES, "rowData"),
    Output(BATCH_COUNT, "children"),
    Input(REFRESH, "n_intervals"),
    Input(SOURCE, "value"),
)
@allow(ENGINEER_ROLES)
def load_batches(_n: int | None, source: str | None) -> tuple[list[dict], str]:
    """The newest batches, of one source when focused."""
    ctx = beacon()
    with ctx.db.session() as session:
        batches = health_queries.batch_history(session, source=source, limit=BATCH_LIMIT)
    rows = [batch_grid_row(b, zone=ctx.settings.zone) for b in batches]
    failed = sum(1 for b in batches if b.status == "failed")
    shown = f"newest {count(len(rows))} batches" + (f" of {source}" if source else "")
    return rows, shown + (f" · {failed} failed" if failed else "")


@dash.callback(
    Output(REASON, "options"),
    Input(REFRESH, "n_intervals"),
)
@allow(ENGINEER_ROLES)
def load_reasons(_n: int | None) -> list[dict]:
    """Reason codes present in the quarantine, with their open counts."""
    with beacon().db.session() as session:
        reasons = health_queries.quarantine_reasons(session)
    return [{"label": f"{code} ({count(n)} open)", "value": code} for code, n in reasons.items()]


@dash.callback(
    Output(QUARANTINE, "rowData"),
    Output(QUARANTINE_COUNT, "children"),
    Input(SOURCE, "value"),
    Input(REASON, "value"),
    Input(WINDOW, "value"),
    Input(STATUS, "value"),
    Input(REFRESH, "n_intervals"),
)
@allow(ENGINEER_ROLES)
def search_quarantine(
    source: str | None,
    reason: str | None,
    window: str | None,
    status: str | None,
    _n: int | None,
) -> tuple[list[dict], str]:
    """Refused records matching the filters, newest first (at most QUARANTINE_LIMIT)."""
    return _quarantine(source, reason, window, status)


@dash.callback(
    Output(DETAIL, "children"),
    Output(RAW, "children"),
    Output(RAW_BUTTON, "disabled"),
    Output(DETAIL_ID, "data"),
    Input(QUARANTINE, "selectedRows"),
    State(DETAIL_ID, "data"),
)
@allow(ENGINEER_ROLES)
def show_record(selected: list[dict] | None, shown: int | None) -> tuple:
    """The selected record in full, read fresh; the raw view closes for a new record."""
    if not selected:
        return html.P("Select a record to see it in full.", className="muted"), "", True, None
    record_id = positive_id(selected[0].get("id"))
    if record_id is None or record_id == shown:
        return dash.no_update, dash.no_update, dash.no_update, dash.no_update  # a refresh
    ctx = beacon()
    try:
        with ctx.db.session() as session:
            row = health_queries.quarantine_record(session, record_id=record_id)
    except BeaconError as error:
        return html.P(error.message, className="muted"), "", True, None
    detail = record_detail(row, explanation=sentence(row.reason_code), zone=ctx.settings.zone)
    return detail, "", row.batch_id is None, record_id


@dash.callback(
    Output(RAW, "children", allow_duplicate=True),
    Input(RAW_BUTTON, "n_clicks"),
    State(DETAIL_ID, "data"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES)
def show_raw(clicks: int | None, record_id: int | None) -> html.Div | html.P:
    """The first few kilobytes of the selected record's batch, as plain text."""
    record_id = positive_id(record_id)
    if not clicks or record_id is None:
        return dash.no_update
    try:
        with beacon().db.session() as session:
            row = health_queries.quarantine_record(session, record_id=record_id)
            if row.batch_id is None:
                raise InvalidInput("the batch of this record was removed")
            excerpt = health_queries.raw_excerpt(session, batch_id=row.batch_id)
    except BeaconError as error:
        return html.P(error.message, className="muted")
    return raw_view(excerpt)


@dash.callback(
    Output(GAPS, "figure"),
    Output(GAPS, "className"),
    Output(GAP_EMPTY, "children"),
    Output(GAP_NOTE, "children"),
    Input(REFRESH, "n_intervals"),
    Input(SOURCE, "value"),
    State(MODE, "data"),
)
@allow(ENGINEER_ROLES)
def load_gaps(_n: int | None, source: str | None, mode: dict | None = None) -> tuple:
    """The gap heatmap of the last 24 h, or an empty state when nothing is missing."""
    ctx = beacon()
    with ctx.db.session() as session:
        matrix = health_queries.gap_matrix(session, source=source)
    figure = gap_heatmap(matrix, zone=ctx.settings.zone, wall=bool((mode or {}).get("wall")))
    if matrix.cells.empty:
        empty = empty_state(
            "No missing periods",
            "Every element delivered every period of the last 24 h"
            + (f" from {source}." if source else "."),
        )
        return figure, "chart health-chart-empty", empty, gap_note(matrix)
    return figure, "chart", None, gap_note(matrix)


@dash.callback(
    Output(EVENTS, "children"),
    Input(REFRESH, "n_intervals"),
    Input(SOURCE, "value"),
)
@allow(ENGINEER_ROLES)
def load_events(_n: int | None, source: str | None) -> html.Div | html.Table:
    """Open drift events and those resolved in the last week."""
    return _events(source)


@dash.callback(
    Output(JOB_STATES, "children"),
    Output(JOBS, "rowData"),
    Input(REFRESH, "n_intervals"),
)
@allow(ENGINEER_ROLES)
def load_jobs(_n: int | None) -> tuple:
    """Each job's record (failures in a row, back-off) and the newest runs."""
    ctx = beacon()
    zone = ctx.settings.zone
    now = utcnow()
    with ctx.db.session() as session:
        states = health_queries.job_states(session, now=now)
        runs = [
            job_run_grid_row(r, zone=zone)
            for r in health_queries.job_runs(session, limit=JOB_LIMIT)
        ]
    return job_states_table(states, zone=zone, now=now), runs


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(REPLAY_MESSAGE, "children"),
    Output(QUARANTINE, "rowData", allow_duplicate=True),
    Output(QUARANTINE_COUNT, "children", allow_duplicate=True),
    Output(QUARANTINE, "selectedRows"),
    Input(REPLAY, "n_clicks"),
    State(SOURCE, "value"),
    State(REASON, "value"),
    State(WINDOW, "value"),
    State(STATUS, "value"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES, mutates=True)
def replay(
    clicks: int | None,
    source: str | None,
    reason: str | None,
    window: str | None,
    status: str | None,
) -> tuple:
    """Replay every open record of the chosen source and/or reason; audited per batch."""
    if not clicks:
        return dash.no_update, dash.no_update, dash.no_update, dash.no_update
    if not source and not reason:
        message = notice(
            "Choose a source (at the top) or a reason first: replay works on a filtered set, "
            "never on the whole quarantine.",
            tone="warn",
            id_="data-health-replay-refused",
        )
        return message, dash.no_update, dash.no_update, dash.no_update
    message = _replay(source, reason)
    rows, shown = _quarantine(source, reason, window, status)
    # The selected record may have left the list: clear it so its detail does not linger.
    return message, rows, shown, []


@dash.callback(
    Output(EVENT_MESSAGE, "children"),
    Output(EVENTS, "children", allow_duplicate=True),
    Input({"type": RESOLVE, "index": ALL}, "n_clicks"),
    State(SOURCE, "value"),
    prevent_initial_call=True,
)
@allow(ENGINEER_ROLES, mutates=True)
def resolve_event(_clicks: list[int | None] | None, source: str | None) -> tuple:
    """Mark the clicked drift event resolved; audited."""
    event_id = positive_id(_clicked_index())
    if event_id is None:
        return dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    try:
        with beacon().db.session(write=True) as session:
            event = health_queries.resolve_event(
                session, event_id=event_id, actor=principal.actor()
            )
            text = f"Event #{event.id} resolved: {event.summary}"
    except BeaconError as error:
        return notice(error.message, tone="warn"), _events(source)
    return notice(text, tone="ok"), _events(source)


dash.clientside_callback(
    "function(n) { return n ? true : false; }",
    Output(BATCHES, "exportDataAsCsv"),
    Input(BATCH_EXPORT, "n_clicks"),
    prevent_initial_call=True,
)
dash.clientside_callback(
    "function(n) { return n ? true : false; }",
    Output(QUARANTINE, "exportDataAsCsv"),
    Input(QUARANTINE_EXPORT, "n_clicks"),
    prevent_initial_call=True,
)


# --- helpers -----------------------------------------------------------------------------


def _clicked_index() -> str | int | None:
    """The `index` of the pattern-matched button that was really clicked, if any.

    Re-rendering a table adds fresh buttons, which fires the callback without a click.
    """
    triggered = dash.ctx.triggered
    if not triggered or not triggered[0].get("value"):
        return None
    trigger = dash.ctx.triggered_id
    return trigger.get("index") if isinstance(trigger, dict) else None


def _quarantine(
    source: str | None, reason: str | None, window: str | None, status: str | None
) -> tuple[list[dict], str]:
    ctx = beacon()
    span = WINDOWS.get(window or "7d", WINDOWS["7d"])[1]
    since = utcnow() - span if span else None
    wanted = None if status == "all" else (status or "open")
    with ctx.db.session() as session:
        page = health_queries.quarantine_page(
            session,
            source=source,
            reason_code=reason,
            since=since,
            status=wanted,
            limit=QUARANTINE_LIMIT,
        )
    rows = [quarantine_grid_row(r, zone=ctx.settings.zone) for r in page.rows]
    shown = f"{count(page.total)} records"
    if page.total > len(rows):
        shown = f"newest {count(len(rows))} of {shown}; narrow the filters"
    return rows, shown


def _replay(source: str | None, reason: str | None) -> html.Div:
    """One replay per source, so each outcome is exact; every batch is audited by the service."""
    ctx = beacon()
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    with ctx.db.session() as session:
        sources = (
            [source]
            if source
            else health_queries.open_quarantine_sources(session, reason_code=reason)
        )
    replayed = accepted = stored = again = skipped = 0
    batches: list[int] = []
    problems: list[str] = []
    for name in sources:
        try:
            outcome = replay_quarantine(
                ctx.db, actor=principal.actor(), reason_code=reason or None, source=name
            )
        except BeaconError as error:
            problems.append(f"{name}: {error.message}" if not source else error.message)
            continue
        replayed += outcome.replayed
        skipped += outcome.skipped
        if outcome.batch is not None:
            accepted += outcome.batch.accepted
            stored += outcome.batch.duplicates
            again += outcome.batch.quarantined
            batches.append(outcome.batch.batch_id)
    if not replayed:
        if skipped:
            problems.insert(
                0,
                f"the {count(skipped)} matching records never became records (the payload "
                "itself was refused); they stay open until the sender re-sends",
            )
        text = "; ".join(problems) or "no open quarantined records match"
        return notice(f"Nothing replayed: {text}.", tone="warn", id_="data-health-replay-refused")
    what = " · ".join(x for x in (source, reason) if x)
    text = (
        f"Replayed {count(replayed)} open records ({what}): {count(accepted)} accepted, "
        f"{count(stored)} already stored, {count(again)} quarantined again"
    )
    if batches:
        text += " (batch " + ", ".join(f"#{b}" for b in batches) + ")"
    if skipped:
        text += f"; {count(skipped)} left open: the payload never became a record"
    if problems:
        text += "; not replayed: " + "; ".join(problems)
    return notice(text + ".", tone="ok", id_="data-health-replay-done")


def _events(source: str | None) -> html.Div | html.Table:
    ctx = beacon()
    now = utcnow()
    with ctx.db.session() as session:
        events = health_queries.drift_events(session, source=source, now=now)
    return events_table(events, zone=ctx.settings.zone, now=now, resolve_type=RESOLVE)
