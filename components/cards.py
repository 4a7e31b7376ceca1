"""Cards, stat tiles and status pills."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import html

STATUS_CLASSES = {
    "ok": "pill pill-ok",
    "fresh": "pill pill-ok",
    "stale": "pill pill-bad",
    "failing": "pill pill-bad",
    "unknown": "pill pill-muted",
    "revoked": "pill pill-muted",
    "active": "pill pill-ok",
    "disabled": "pill pill-muted",
}


def section(
    title: str,
    body: Any,
    *,
    subtitle: Any = None,
    actions: Any = None,
    id_: str | None = None,
    class_name: str = "",
) -> html.Section:
    """A titled card; `actions` sit at the right of the title row."""
    header = [html.H2(title)]
    if subtitle is not None:
        header.append(html.Span(subtitle, className="section-subtitle"))
    head_children: list[Any] = [html.Div(header, className="section-titles")]
    if actions is not None:
        head_children.append(html.Div(actions, className="section-actions"))
    props = {"id": id_} if id_ else {}
    return html.Section(
        [
            html.Div(head_children, className="section-head"),
            html.Div(body, className="section-body"),
        ],
        className=f"card {class_name}".strip(),
        **props,
    )


def stat_tile(
    label: str,
    value: str,
    *,
    detail: str | None = None,
    tone: str = "neutral",
    id_: str | None = None,
) -> html.Div:
    """A large number with its label; `tone` colours it (neutral, ok, warn, bad)."""
    props = {"id": id_} if id_ else {}
    children = [html.Div(label, className="tile-label"), html.Div(value, className="tile-value")]
    if detail:
        children.append(html.Div(detail, className="tile-detail"))
    return html.Div(children, className=f"tile tile-{tone}", **props)


def tile_row(tiles: Sequence[html.Div]) -> html.Div:
    return html.Div(list(tiles), className="tile-row")


def status_pill(status: str, text: str | None = None) -> html.Span:
    """A coloured pill for a status word."""
    return html.Span(text or status, className=STATUS_CLASSES.get(status, "pill pill-muted"))


def notice(text: str, *, tone: str = "info", id_: str | None = None) -> html.Div:
    """A one-line message box (info, ok, warn, bad)."""
    props = {"id": id_} if id_ else {}
    return html.Div(text, className=f"notice notice-{tone}", role="status", **props)


def empty_state(title: str, hint: str) -> html.Div:
    """What a panel shows when there is honestly nothing to show yet."""
    return html.Div([html.Strong(title), html.P(hint)], className="empty-state")
