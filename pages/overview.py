"""Overview: the live network inventory and the newest data from every source."""

from __future__ import annotations

from datetime import datetime

import dash
from dash import Input, Output, State, dcc, html

from components.cards import empty_state, section, stat_tile, status_pill, tile_row
from components.figures import period_volume_lines, region_trend
from components.format import ago, count, short_time
from components.grid import data_grid
from services import inventory
from services.auth import ALL_ROLES
from services.db.models import Kpi
from services.ingest.health import SourceFreshness, source_freshness
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

REFRESH = "overview-refresh"
MODE = "overview-mode"
TILES = "overview-tiles"
SOURCES = "overview-sources"
LOAD_CHART = "overview-load"
INGEST_CHART = "overview-ingest"
REGIONS = "overview-regions"
ELEMENTS = "overview-elements"
ELEMENTS_FILTER = "overview-elements-filter"
REFRESH_MS = 30_000
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
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Network overview"),
                        html.P("Live inventory and the newest data from every source."),
                    ]
                ),
            ),
            html.Div(id=TILES),
            html.Div(
                className="columns",
                children=[
                    section(
                        "Sources",
                        html.Div(id=SOURCES),
                        subtitle="newest data per source · last 24 h volume",
                    ),
                    section(
                        "Network load",
                        dcc.Graph(id=LOAD_CHART, config=graph_config, className="chart"),
                        subtitle="DL PRB utilisation, hourly mean by region, last 48 h",
                    ),
                ],
            ),
            html.Div(
                className="columns",
                children=[
                    section("Inventory by region", html.Div(id=REGIONS), class_name="desk-only"),
                    section(
                        "Data completeness",
                        dcc.Graph(id=INGEST_CHART, config=graph_config, className="chart"),
                        subtitle="records stored per 15-minute period by source, last 24 h",
                    ),
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
    """Tiles, sources, regions and charts from the database."""
    wall = bool((mode or {}).get("wall"))
    ctx = beacon()
    zone = ctx.settings.zone
    with ctx.db.session() as session:
        summary = inventory.summary(session)
        freshness = source_freshness(session)
        regions = inventory.region_table(session)
        trend = inventory.kpi_trend_by_region(session, kpi=LOAD_KPI)
        volume = inventory.period_volume(session)
        kpi = session.query(Kpi).filter(Kpi.name == LOAD_KPI).one_or_none()
    threshold = kpi.capacity_threshold if kpi else None
    return (
        _tiles(summary, freshness),
        _sources_table(freshness, zone),
        _regions_table(regions),
        region_trend(trend, unit="%", threshold=threshold, wall=wall, height=300 if wall else 320),
        period_volume_lines(volume, wall=wall, height=300),
    )


@dash.callback(
    Output(ELEMENTS, "rowData"),
    Input(REFRESH, "n_intervals"),
    prevent_initial_call=False,
)
@allow(ALL_ROLES, kiosk=True)
def load_elements(n: int | None) -> list[dict] | object:
    """The inventory grid; reloaded every tenth refresh since inventory changes slowly."""
    if n and n % 10:
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


def _tiles(summary: inventory.InventorySummary, freshness: list[SourceFreshness]) -> html.Div:
    types = summary.by_type
    fresh = sum(1 for f in freshness if f.status == "fresh")
    stale = sum(1 for f in freshness if f.status == "stale")
    active = [f for f in freshness if f.status != "disabled"]
    vendors = " · ".join(f"{v} {count(n)}" for v, n in sorted(summary.vendors.items()))
    return tile_row(
        [
            stat_tile("Cells", count(types.get("cell", 0)), detail=vendors or None),
            stat_tile("Sites", count(types.get("site", 0))),
            stat_tile(
                "Transport links",
                count(types.get("link", 0)),
                detail=f"{count(types.get('router', 0))} routers",
            ),
            stat_tile("Core nodes", count(types.get("core", 0))),
            stat_tile(
                "New elements",
                count(summary.new_elements),
                detail="seen in data, still learning a baseline",
                tone="warn" if summary.new_elements else "neutral",
            ),
            stat_tile(
                "Sources fresh",
                f"{fresh}/{len(active)}",
                detail=f"{stale} stale" if stale else "all delivering",
                tone="bad" if stale else ("ok" if fresh else "neutral"),
            ),
            stat_tile(
                "Measurements 24 h",
                count(summary.measurements_24h),
                detail=f"newest period {ago(summary.newest_period)}"
                if summary.newest_period
                else "no data yet",
            ),
        ]
    )


def _sources_table(freshness: list[SourceFreshness], zone) -> html.Div | html.Table:  # type: ignore[no-untyped-def]
    if not freshness:
        return empty_state("No sources yet", "Sources appear when their first batch arrives.")
    head = html.Thead(
        html.Tr(
            [
                html.Th("Source"),
                html.Th("Status"),
                html.Th("Newest period"),
                html.Th("Delivered"),
                html.Th("Records", className="num"),
                html.Th("Refused", className="num"),
            ]
        )
    )
    rows = [
        html.Tr(
            [
                html.Td(
                    [html.Div(f.name), html.Div(f.kind, className="muted small desk-only")],
                    className="nowrap",
                ),
                html.Td(status_pill(f.status)),
                html.Td(short_time(f.newest_period, zone), className="nowrap"),
                html.Td(_delivery(f.last_received_at, f.status), className="nowrap"),
                html.Td(count(f.records_24h), className="num"),
                html.Td(count(f.quarantined_24h), className="num"),
            ]
        )
        for f in freshness
    ]
    return html.Table([head, html.Tbody(rows)], className="table", id="overview-sources-table")


def _delivery(moment: datetime | None, status: str) -> str:
    if moment is None:
        return "never"
    return ago(moment) + (" — stale" if status == "stale" else "")


def _regions_table(frame) -> html.Div | html.Table:  # type: ignore[no-untyped-def]
    if frame.empty:
        return empty_state("No elements yet", "The inventory fills as elements are registered.")
    head = html.Thead(
        html.Tr(
            [
                html.Th("Region / domain"),
                html.Th("Sites", className="num"),
                html.Th("Cells", className="num"),
                html.Th("Links", className="num"),
                html.Th("Routers & core", className="num"),
                html.Th("New", className="num"),
            ]
        )
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(str(row.region)),
                    html.Td(count(row.sites), className="num"),
                    html.Td(count(row.cells), className="num"),
                    html.Td(count(row.links), className="num"),
                    html.Td(count(row.nodes), className="num"),
                    html.Td(count(row.new), className="num"),
                ]
            )
            for row in frame.itertuples(index=False)
        ]
    )
    return html.Table([head, body], className="table")
