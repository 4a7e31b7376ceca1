"""Shown for any path that is not a page."""

from __future__ import annotations

import dash
from dash import dcc, html

from services.auth import ALL_ROLES

dash.register_page(
    __name__,
    path="/404",
    name="Not found",
    title="Not found · Beacon",
    order=999,
    roles=ALL_ROLES,
    kiosk=True,
)


def layout(**_query: str) -> html.Div:
    return html.Div(
        className="page-message",
        children=[
            html.H2("No such page"),
            html.P("The address does not match any Beacon page."),
            dcc.Link("Go to the overview", href="/"),
        ],
    )
