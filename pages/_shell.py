"""The app shell: serves the frame for the signed-in principal and keeps it live."""

from __future__ import annotations

from dash import Dash, Input, Output, html

from components.format import age
from components.shell import (
    SHELL,
    SHELL_CLOCK,
    SHELL_CLOCK_TICK,
    SHELL_CONFIG,
    SHELL_FRESHNESS,
    SHELL_NAV,
    SHELL_REFRESH,
    SHELL_STALE_BANNER,
    NavItem,
    ShellUser,
    app_shell,
    freshness_pill,
)
from services.auth import ALL_ROLES
from services.ingest.health import source_freshness, stale_sources
from services.web.authz import allow, page_allows
from services.web.context import beacon
from services.web.principal import current_principal

# The top bar groups pages by what people come to do; pages not listed stand on their own.
NAV_GROUPS = {
    "/anomalies": "Network",
    "/forecasts": "Network",
    "/data-health": "Network",
    "/oncall": "Operations",
    "/incidents": "Operations",
    "/recommendations": "AI oversight",
    "/use-cases": "AI oversight",
    "/disagreements": "AI oversight",
    "/detector": "AI oversight",
    "/adoption": "AI oversight",
    "/audit": "System",
    "/admin": "System",
}


def serve_layout() -> html.Div:
    """The shell for whoever asks: navigation lists only the pages their role may open."""
    ctx = beacon()
    principal = current_principal()
    if principal is None:  # the guard refuses anonymous layout requests; belt and braces
        return html.Div("Sign in first.", className="page-message")
    nav = [
        NavItem(name=page.name, path=page.path, group=NAV_GROUPS.get(page.path))
        for page in ctx.pages
        if page.path_template is None
        and page.module.split(".")[-1] != "not_found_404"
        and page_allows(page, role=principal.role, kiosk=principal.is_kiosk)
    ]
    user = ShellUser(
        display_name=principal.display_name, role=principal.role, kiosk=principal.is_kiosk
    )
    return app_shell(user=user, nav=nav, tz_name=ctx.settings.tz)


@allow(ALL_ROLES, kiosk=True)
def refresh_freshness(_n: int | None) -> tuple[str, str, str, str]:
    """Freshness pill and stale banner, from the sources' newest deliveries."""
    with beacon().db.session() as session:
        freshness = [f for f in source_freshness(session) if f.status != "disabled"]
    stale = stale_sources(freshness)
    received = [f.last_received_at for f in freshness if f.last_received_at is not None]
    newest = max(received) if received else None
    text, css = freshness_pill(stale_sources=stale, newest_age=age(newest), has_data=bool(newest))
    if not stale:
        return text, css, "", "stale-banner hidden"
    details = "; ".join(
        f"{f.name} silent for {age(f.last_received_at)}" for f in freshness if f.status == "stale"
    )
    banner = f"Stale data — what you see may be out of date: {details}."
    return text, css, banner, "stale-banner"


# The clock runs in the browser: no request per second, and it keeps ticking if the server
# is briefly unreachable.
CLOCK_JS = """
function(_n, config) {
    const tz = (config && config.tz) || "UTC";
    const fmt = new Intl.DateTimeFormat("en-GB", {
        timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
    return fmt.format(new Date());
}
"""

# `?kiosk=1` (or `?theme=wall`) turns any screen into the dark wall theme without chrome.
THEME_JS = """
function(search, config) {
    const params = new URLSearchParams(search || "");
    const wall = (config && config.kiosk) || params.get("kiosk") === "1"
        || params.get("theme") === "wall";
    return wall ? "shell theme-wall kiosk" : "shell theme-desk";
}
"""

# Highlight the navigation entry of the current page.
NAV_JS = """
function(pathname) {
    document.querySelectorAll("#shell-nav a.nav-link").forEach(function(link) {
        const href = link.getAttribute("href");
        const active = href === "/" ? pathname === "/" : (pathname || "").startsWith(href);
        link.classList.toggle("active", active);
    });
    // A group's label lights up with its current page; following a link closes the menu.
    document.querySelectorAll("#shell-nav .nav-group").forEach(function(group) {
        const label = group.querySelector(".nav-group-label");
        label.classList.toggle("active", !!group.querySelector("a.nav-link.active"));
        label.blur();
    });
    if (document.activeElement && document.activeElement.closest("#shell-nav")) {
        document.activeElement.blur();
    }
    return window.dash_clientside.no_update;
}
"""


def register_callbacks(app: Dash) -> None:
    """Bind the shell's callbacks to `app`: each app needs its own, a module runs only once."""
    app.callback(
        Output(SHELL_FRESHNESS, "children"),
        Output(SHELL_FRESHNESS, "className"),
        Output(SHELL_STALE_BANNER, "children"),
        Output(SHELL_STALE_BANNER, "className"),
        Input(SHELL_REFRESH, "n_intervals"),
    )(refresh_freshness)
    app.clientside_callback(
        CLOCK_JS,
        Output(SHELL_CLOCK, "children"),
        Input(SHELL_CLOCK_TICK, "n_intervals"),
        Input(SHELL_CONFIG, "data"),
    )
    app.clientside_callback(
        THEME_JS,
        Output(SHELL, "className"),
        Input("_pages_location", "search"),
        Input(SHELL_CONFIG, "data"),
    )
    app.clientside_callback(
        NAV_JS, Output(SHELL_NAV, "title"), Input("_pages_location", "pathname")
    )
