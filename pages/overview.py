"""Overview: the NOC wall screen (open anomaly episodes, health, freshness), then desk panels."""

from __future__ import annotations

import logging
from typing import Any

import dash
from dash import ClientsideFunction, Input, Output, State, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from components.cards import section
from components.figures import period_volume_lines, region_trend
from components.grid import data_grid
from components.overview import inventory_tiles, regions_table, sources_table
from components.wall import (
    FEED_HEAD,
    LOADING,
    feed_rows,
    oncall_updates,
    oncall_view,
    panel_updates,
    wall_view,
)
from services import inventory
from services.anomaly.wall import FEED_LIMIT, wall_snapshot
from services.auth import ALL_ROLES
from services.db.models import Kpi, utcnow
from services.ingest.health import source_freshness
from services.oncall.resolve import oncall_board
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

dash.register_page(
    __name__,
    path="/",
    name="Overview",
    title="Overview · Beacon",
    order=0,
    roles=ALL_ROLES,
    kiosk=True,
)

log = logging.getLogger(__name__)

REFRESH = "overview-refresh"
MODE = "overview-mode"
TILES = "overview-tiles"
SOURCES = "overview-sources"
LOAD_CHART = "overview-load"
INGEST_CHART = "overview-ingest"
REGIONS = "overview-regions"
ELEMENTS = "overview-elements"
ELEMENTS_FILTER = "overview-elements-filter"
WALL = "overview-wall"
WALL_BODY = "overview-wall-body"
WALL_REFRESH = "overview-wall-refresh"
WALL_TICK = "overview-wall-tick"
WALL_CONFIG = "overview-wall-config"
WALL_VIEW = "overview-wall-view"
WALL_STATUS = "overview-wall-status"
WALL_SEEN = "overview-wall-seen"
WALL_UPDATED = "overview-wall-updated"
WALL_DATE = "overview-wall-date"
WALL_BANNER = "overview-wall-banner"
WALL_COUNTS = "overview-wall-counts"
WALL_FEED = "overview-wall-feed"
WALL_FEED_NOTE = "overview-wall-feed-note"
WALL_REGIONS = "overview-wall-regions"
WALL_DOMAINS = "overview-wall-domains"
WALL_SOURCES = "overview-wall-sources"
WALL_ONCALL = "overview-wall-oncall"
WALL_ONCALL_VIEW = "overview-wall-oncall-view"

REFRESH_MS = 30_000  # desk panels: inventory and volumes change slowly
WALL_REFRESH_S = 15
# `?refresh=N` may slow a screen down or, for tests, speed it up, but never below this.
WALL_REFRESH_MIN_S = 2
WALL_REFRESH_MAX_S = 300
# Lines of the feed a 16:9 wall fits without scrolling (type scales with the screen width).
WALL_FEED_ROWS = 8
LOAD_KPI = "prb_util_dl"

ELEMENT_COLUMNS = [
    {"field": "name", "headerName": "Name", "pinned": "left", "minWidth": 150},
    {"field": "element_type", "headerName": "Type", "maxWidth": 120},
    {"field": "domain", "headerName": "Domain", "maxWidth": 130},
    {"field": "region", "headerName": "Region", "maxWidth": 130},
    {"field": "vendor", "headerName": "Vendor", "maxWidth": 140},
    {"field": "sw_version", "headerName": "Software", "maxWidth": 140},
    {"field": "technology", "headerName": "Tech", "maxWidth": 100},
    {"field": "status", "headerName": "Baseline", "maxWidth": 130},
    {"field": "dn", "headerName": "Distinguished name", "minWidth": 360, "cellClass": "mono"},
]


def wall_interval_ms(refresh: str | None) -> int:
    """The wall's refresh period: 15 s unless `?refresh=` asks for another, within limits."""
    try:
        seconds = float(refresh) if refresh else WALL_REFRESH_S
    except ValueError:
        seconds = WALL_REFRESH_S
    return int(min(max(seconds, WALL_REFRESH_MIN_S), WALL_REFRESH_MAX_S) * 1000)


def layout(kiosk: str | None = None, refresh: str | None = None, **_query: str) -> html.Div:
    """The wall content first (live every 15 s), then the desk panels (every 30 s)."""
    principal = current_principal()
    wall = kiosk == "1" or (principal is not None and principal.is_kiosk)
    graph_config = {"displaylogo": False, "displayModeBar": False if wall else "hover"}
    interval_ms = wall_interval_ms(refresh)
    return html.Div(
        className="page overview-page",
        children=[
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Store(id=MODE, data={"wall": wall}),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Network overview"),
                        html.P("Open anomaly episodes, network health and data freshness."),
                    ]
                ),
            ),
            _wall(interval_ms, limit=WALL_FEED_ROWS if wall else FEED_LIMIT),
            html.Div(id=TILES, className="overview-inventory"),
            html.Div(
                className="columns desk-only",
                children=[
                    section(
                        "Sources",
                        html.Div(id=SOURCES),
                        subtitle="newest data per source · last 24 h volume",
                    ),
                    section(
                        "Data completeness",
                        dcc.Graph(id=INGEST_CHART, config=graph_config, className="chart"),
                        subtitle="records stored per 15-minute period by source, last 24 h",
                    ),
                ],
            ),
            html.Div(
                className="columns desk-only",
                children=[
                    section(
                        "Network load",
                        dcc.Graph(id=LOAD_CHART, config=graph_config, className="chart"),
                        subtitle="DL PRB utilisation, hourly mean by region, last 48 h",
                    ),
                    section("Inventory by region", html.Div(id=REGIONS)),
                ],
            ),
            section(
                "Elements",
                data_grid(ELEMENTS, columns=ELEMENT_COLUMNS, row_id="dn", height="520px"),
                subtitle="every managed element; filter any column",
                class_name="desk-only",
                actions=dcc.Input(
                    id=ELEMENTS_FILTER,
                    type="search",
                    debounce=True,
                    placeholder="Search name, DN, vendor…",
                    style={"width": "280px"},
                ),
            ),
        ],
    )


def _wall(interval_ms: int, *, limit: int) -> html.Div:
    """The wall panels, empty until the first refresh fills them (a moment after load)."""
    return html.Div(
        id=WALL,
        className="wall",
        children=[
            dcc.Interval(id=WALL_REFRESH, interval=interval_ms),
            dcc.Interval(id=WALL_TICK, interval=1000),
            dcc.Store(
                id=WALL_CONFIG,
                data={"tz": beacon().settings.tz, "interval_ms": interval_ms, "limit": limit},
            ),
            dcc.Store(id=WALL_VIEW),
            dcc.Store(id=WALL_STATUS),
            dcc.Store(id=WALL_SEEN),
            dcc.Store(id=WALL_ONCALL_VIEW),
            html.Div(
                [
                    html.H2("Network status", className="wall-title"),
                    html.Span(id=WALL_DATE, className="wall-date"),
                    html.Span("Waiting for the first data…", id=WALL_UPDATED),
                ],
                className="wall-head",
            ),
            html.Div(id=WALL_BANNER, className="wall-banner hidden", role="alert"),
            html.Div(
                id=WALL_BODY,
                className="wall-body",
                children=[
                    # Counts and who is on call share the top row: a wall has no spare line.
                    html.Div(
                        className="wall-top",
                        children=[
                            html.Div(id=WALL_COUNTS, className="wall-counts"),
                            html.Div(
                                html.Div("On call now: loading…", className="wall-oncall-empty"),
                                id=WALL_ONCALL,
                                className="wall-oncall",
                            ),
                        ],
                    ),
                    html.Div(
                        className="wall-main",
                        children=[
                            section(
                                "Open anomaly episodes",
                                html.Table(
                                    [FEED_HEAD, html.Tbody(feed_rows([], LOADING), id=WALL_FEED)],
                                    className="table wall-feed",
                                ),
                                subtitle=html.Span(id=WALL_FEED_NOTE),
                                class_name="wall-feed-card",
                            ),
                            html.Div(
                                className="wall-side",
                                children=[
                                    section(
                                        "Health by region",
                                        html.Div(id=WALL_REGIONS, className="wall-areas"),
                                        subtitle="elements with open episodes / all",
                                    ),
                                    section(
                                        "Health by domain",
                                        html.Div(id=WALL_DOMAINS, className="wall-areas"),
                                    ),
                                    section(
                                        "Data freshness",
                                        html.Div(id=WALL_SOURCES),
                                        subtitle="newest delivery per source",
                                    ),
                                ],
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )


@dash.callback(
    Output(WALL_VIEW, "data"),
    Output(WALL_STATUS, "data"),
    Output(WALL_COUNTS, "children"),
    Output(WALL_FEED_NOTE, "children"),
    Output(WALL_FEED, "children"),
    Output(WALL_REGIONS, "children"),
    Output(WALL_DOMAINS, "children"),
    Output(WALL_SOURCES, "children"),
    Output(WALL_BANNER, "children"),
    Output(WALL_BANNER, "className"),
    Input(WALL_REFRESH, "n_intervals"),
    State(WALL_VIEW, "data"),
    State(WALL_STATUS, "data"),
    State(WALL_CONFIG, "data"),
)
@allow(ALL_ROLES, kiosk=True)
def refresh_wall(
    _n: int | None,
    previous: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> tuple:
    """Redraw only the wall panels whose data changed; keep the last good data on failure."""
    ctx = beacon()
    now = utcnow()
    limit = _feed_limit(config)

    def read() -> tuple[Any, Any]:
        with ctx.db.session() as session:
            return (
                wall_snapshot(session, limit=limit, now=now),
                source_freshness(session, now=now),
            )

    try:
        # Every screen shows the same facts: read them once per few seconds per worker.
        snapshot, freshness = ctx.wall_cache.get(("wall", limit), read)
    except SQLAlchemyError as exc:
        # Panels keep what they show; the browser ages it and says the backend is failing.
        log.warning("wall refresh failed: %s", exc.__class__.__name__)
        failed = {
            "ok": False,
            "at": (status or {}).get("at"),
            "failed_since": (status or {}).get("failed_since") or now.isoformat(),
            "error": "database not answering",
        }
        return (dash.no_update, failed, *([dash.no_update] * 8))
    view = wall_view(snapshot, freshness, zone=ctx.settings.zone, now=now)
    stored, *panels = panel_updates(view, previous)
    return (stored, {"ok": True, "at": now.isoformat(), "failed_since": None}, *panels)


@dash.callback(
    Output(WALL_ONCALL_VIEW, "data"),
    Output(WALL_ONCALL, "children"),
    Input(WALL_REFRESH, "n_intervals"),
    State(WALL_ONCALL_VIEW, "data"),
)
@allow(ALL_ROLES, kiosk=True)
def refresh_oncall(_n: int | None, previous: list[dict[str, Any]] | None = None) -> tuple:
    """Who is on call per domain and for the AI; redrawn only when someone changes."""
    ctx = beacon()
    now = utcnow()

    def read() -> list[Any]:
        with ctx.db.session() as session:
            return oncall_board(session, now=now)

    try:
        answers = ctx.wall_cache.get("oncall", read)
    except SQLAlchemyError as exc:
        # The tile keeps the last names it showed; the wall's own label says data is old.
        log.warning("wall on-call refresh failed: %s", exc.__class__.__name__)
        return dash.no_update, dash.no_update
    return oncall_updates(oncall_view(answers, zone=ctx.settings.zone, now=now), previous)


def _feed_limit(config: dict[str, Any] | None) -> int:
    """Feed lines to show; the limit comes from the browser, so it is bounded here."""
    try:
        return min(max(int((config or {}).get("limit") or FEED_LIMIT), 1), 50)
    except (TypeError, ValueError):
        return FEED_LIMIT


dash.clientside_callback(
    ClientsideFunction(namespace="wall", function_name="seen"),
    Output(WALL_SEEN, "data"),
    Input(WALL_STATUS, "data"),
    State(WALL_SEEN, "data"),
)
dash.clientside_callback(
    ClientsideFunction(namespace="wall", function_name="tick"),
    Output(WALL_UPDATED, "children"),
    Output(WALL_UPDATED, "className"),
    Output(WALL_BODY, "className"),
    Output(WALL_DATE, "children"),
    Input(WALL_TICK, "n_intervals"),
    Input(WALL_SEEN, "data"),
    State(WALL_CONFIG, "data"),
)


@dash.callback(
    Output(TILES, "children"),
    Output(SOURCES, "children"),
    Output(REGIONS, "children"),
    Output(LOAD_CHART, "figure"),
    Output(INGEST_CHART, "figure"),
    Input(REFRESH, "n_intervals"),
    State(MODE, "data"),
)
@allow(ALL_ROLES, kiosk=True)
def refresh_overview(_n: int | None, mode: dict | None = None) -> tuple:
    """Inventory tiles, sources, regions and charts; the wall skips what it does not show."""
    wall = bool((mode or {}).get("wall"))
    ctx = beacon()
    zone = ctx.settings.zone
    with ctx.db.session() as session:
        summary = inventory.summary(session)
        freshness = source_freshness(session)
        if wall:
            # Hidden on the wall; the load trend is the one query that grows with the network.
            return inventory_tiles(summary, freshness), *([dash.no_update] * 4)
        regions = inventory.region_table(session)
        trend = inventory.kpi_trend_by_region(session, kpi=LOAD_KPI)
        volume = inventory.period_volume(session)
        kpi = session.query(Kpi).filter(Kpi.name == LOAD_KPI).one_or_none()
    threshold = kpi.capacity_threshold if kpi else None
    return (
        inventory_tiles(summary, freshness),
        sources_table(freshness, zone, table_id="overview-sources-table"),
        regions_table(regions),
        region_trend(trend, unit="%", threshold=threshold, height=320),
        period_volume_lines(volume, height=300),
    )


@dash.callback(
    Output(ELEMENTS, "rowData"),
    Input(REFRESH, "n_intervals"),
    State(MODE, "data"),
    prevent_initial_call=False,
)
@allow(ALL_ROLES, kiosk=True)
def load_elements(n: int | None, mode: dict | None = None) -> list[dict] | object:
    """The inventory grid, at the desk only; reloaded every tenth refresh (inventory is slow)."""
    if (mode or {}).get("wall") or (n and n % 10):
        return dash.no_update
    with beacon().db.session() as session:
        frame = inventory.elements_frame(session)
    frame["status"] = frame["is_new"].map({True: "new · learning", False: "established"})
    keep = [c["field"] for c in ELEMENT_COLUMNS]
    return frame[keep].astype(object).where(frame[keep].notna(), None).to_dict("records")


dash.clientside_callback(
    """
    function(text) {
        return {"quickFilterText": text || ""};
    }
    """,
    Output(ELEMENTS, "dashGridOptions", allow_duplicate=True),
    Input(ELEMENTS_FILTER, "value"),
    prevent_initial_call=True,
)
