"""Desk panels of the overview: inventory tiles, the sources table and inventory by region."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pandas as pd
from dash import html

from components.cards import empty_state, stat_tile, status_pill, tile_row
from components.format import ago, count, short_time

if TYPE_CHECKING:  # data shapes only: components never reach the services at run time
    from services.ingest.health import SourceFreshness
    from services.inventory import InventorySummary


def inventory_tiles(summary: InventorySummary, freshness: Sequence[SourceFreshness]) -> html.Div:
    """What the network holds and how much data arrived, one tile per figure."""
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


def sources_table(
    freshness: Sequence[SourceFreshness], zone: ZoneInfo, *, table_id: str
) -> html.Div | html.Table:
    """Every source with its newest period, last delivery and last-24-h volume."""
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
    return html.Table([head, html.Tbody(rows)], className="table", id=table_id)


def _delivery(moment: datetime | None, status: str) -> str:
    if moment is None:
        return "never"
    return ago(moment) + (" — stale" if status == "stale" else "")


def regions_table(frame: pd.DataFrame) -> html.Div | html.Table:
    """Elements per region by type, and how many are still learning a baseline."""
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
