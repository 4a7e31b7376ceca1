"""The frame around every page: top bar with navigation, freshness, clock and user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash
from dash import dcc, html

SHELL = "shell"
SHELL_CONFIG = "shell-config"
SHELL_CLOCK = "shell-clock"
SHELL_CLOCK_TICK = "shell-clock-tick"
SHELL_REFRESH = "shell-refresh"
SHELL_FRESHNESS = "shell-freshness"
SHELL_STALE_BANNER = "shell-stale-banner"
SHELL_NAV = "shell-nav"
FRESHNESS_REFRESH_MS = 30_000


@dataclass(frozen=True)
class NavItem:
    name: str
    path: str
    group: str | None = None  # pages of one group share a drop-down menu in the top bar


@dataclass(frozen=True)
class ShellUser:
    display_name: str
    role: str
    kiosk: bool


def app_shell(*, user: ShellUser, nav: Sequence[NavItem], tz_name: str) -> html.Div:
    """The whole frame; pages render into Dash's page container inside it."""
    theme = "theme-wall kiosk" if user.kiosk else "theme-desk"
    return html.Div(
        id=SHELL,
        className=f"shell {theme}",
        children=[
            dcc.Store(id=SHELL_CONFIG, data={"tz": tz_name, "kiosk": user.kiosk}),
            dcc.Interval(id=SHELL_CLOCK_TICK, interval=1000),
            dcc.Interval(id=SHELL_REFRESH, interval=FRESHNESS_REFRESH_MS),
            _top_bar(user=user, nav=nav, tz_name=tz_name),
            html.Div(id=SHELL_STALE_BANNER, className="stale-banner hidden", role="alert"),
            html.Main(dash.page_container, className="content"),
        ],
    )


def nav_entries(nav: Sequence[NavItem]) -> list[Any]:
    """Top-level links and group menus, in the order their first page appears.

    A group with a single page the user may open is shown as a plain link: a menu with
    one entry only costs a click.
    """
    groups: dict[str, list[NavItem]] = {}
    order: list[str | NavItem] = []
    for item in nav:
        if item.group is None:
            order.append(item)
            continue
        if item.group not in groups:
            groups[item.group] = []
            order.append(item.group)
        groups[item.group].append(item)
    entries: list[Any] = []
    for entry in order:
        if isinstance(entry, NavItem):
            entries.append(_nav_link(entry))
        elif len(groups[entry]) == 1:
            entries.append(_nav_link(groups[entry][0]))
        else:
            entries.append(_nav_group(entry, groups[entry]))
    return entries


def _nav_link(item: NavItem) -> dcc.Link:
    return dcc.Link(item.name, href=item.path, className="nav-link", id=f"nav-{_slug(item.name)}")


def _nav_group(name: str, items: Sequence[NavItem]) -> html.Div:
    return html.Div(
        className="nav-group",
        children=[
            html.Button(
                [name, html.Span("▾", className="nav-caret")],
                type="button",
                className="nav-link nav-group-label",
                id=f"nav-group-{_slug(name)}",
                **{"aria-haspopup": "true"},
            ),
            html.Div([_nav_link(item) for item in items], className="nav-menu", role="menu"),
        ],
    )


def _top_bar(*, user: ShellUser, nav: Sequence[NavItem], tz_name: str) -> html.Header:
    links = nav_entries(nav)
    right: list[Any] = [
        html.Span("checking data…", id=SHELL_FRESHNESS, className="pill pill-muted"),
        html.Div(
            [
                html.Span("--:--:--", id=SHELL_CLOCK, className="clock-time"),
                html.Span(tz_name, className="clock-zone"),
            ],
            className="clock",
        ),
    ]
    if not user.kiosk:
        right.append(_user_menu(user))
    return html.Header(
        className="topbar",
        children=[
            dcc.Link(
                [html.Span("◉", className="brand-dot"), " Beacon"], href="/", className="brand"
            ),
            html.Nav(links, id=SHELL_NAV, className="nav"),
            html.Div(right, className="topbar-right"),
        ],
    )


def _user_menu(user: ShellUser) -> html.Div:
    return html.Div(
        className="user-menu",
        children=[
            html.Span(user.display_name, className="user-name"),
            html.Span(user.role, className="role-badge"),
            html.Form(
                html.Button(
                    "Sign out", type="submit", className="btn btn-quiet", id="shell-logout"
                ),
                method="POST",
                action="/logout",
            ),
        ],
    )


def freshness_pill(
    *, stale_sources: Sequence[str], newest_age: str, has_data: bool
) -> tuple[str, str]:
    """Text and class for the freshness indicator."""
    if not has_data:
        return "No data yet", "pill pill-muted"
    if stale_sources:
        return f"Stale: {', '.join(stale_sources[:2])}", "pill pill-bad"
    return f"Data fresh · {newest_age}", "pill pill-ok"


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
