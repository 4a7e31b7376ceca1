"""Admin: users and roles, wall-screen kiosk tokens, API tokens. Every change is audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import dash
from dash import Input, Output, State, dcc, html
from flask import request

from components.cards import notice, section
from components.format import local_time
from components.forms import field
from components.grid import data_grid
from services import auth
from services.auth import ADMIN_ROLES, ROLE_DESCRIPTIONS, ROLE_SCOPES, Role, Scope
from services.db.models import utcnow
from services.errors import BeaconError, InvalidInput
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

dash.register_page(
    __name__,
    path="/admin",
    name="Admin",
    title="Admin · Beacon",
    order=95,
    roles=ADMIN_ROLES,
)

USERS = "admin-users"
NEW_USERNAME = "admin-new-username"
NEW_DISPLAY = "admin-new-display"
NEW_ROLE = "admin-new-role"
NEW_PASSWORD = "admin-new-password"
CREATE_USER = "admin-create-user"
USER_ROLE = "admin-user-role"
APPLY_ROLE = "admin-apply-role"
TOGGLE_ACTIVE = "admin-toggle-active"
RESET_PASSWORD = "admin-reset-password"
APPLY_PASSWORD = "admin-apply-password"
USER_MESSAGE = "admin-user-message"
KIOSK_GRID = "admin-kiosk-tokens"
KIOSK_NAME = "admin-kiosk-name"
CREATE_KIOSK = "admin-create-kiosk"
REVOKE_KIOSK = "admin-revoke-kiosk"
KIOSK_MESSAGE = "admin-kiosk-message"
API_GRID = "admin-api-tokens"
API_NAME = "admin-api-name"
API_ROLE = "admin-api-role"
API_SCOPES = "admin-api-scopes"
API_EXPIRES = "admin-api-expires"
CREATE_API = "admin-create-api"
REVOKE_API = "admin-revoke-api"
API_MESSAGE = "admin-api-message"
LOAD = "admin-load"

ROLE_OPTIONS = [{"label": r.value, "value": r.value} for r in Role]
USER_COLUMNS = [
    {"field": "username", "headerName": "Username"},
    {"field": "display_name", "headerName": "Name"},
    {"field": "role", "headerName": "Role", "maxWidth": 130},
    {"field": "status", "headerName": "Status", "maxWidth": 120},
    {"field": "last_login", "headerName": "Last sign-in"},
    {"field": "created", "headerName": "Created"},
]
KIOSK_COLUMNS = [
    {"field": "id", "headerName": "#", "maxWidth": 80},
    {"field": "name", "headerName": "Screen"},
    {"field": "prefix", "headerName": "Token starts", "cellClass": "mono"},
    {"field": "created_by", "headerName": "Created by", "maxWidth": 140},
    {"field": "created", "headerName": "Created"},
    {"field": "last_used", "headerName": "Last opened"},
    {"field": "status", "headerName": "Status", "maxWidth": 120},
]
API_COLUMNS = [
    {"field": "id", "headerName": "#", "maxWidth": 80},
    {"field": "name", "headerName": "Client"},
    {"field": "prefix", "headerName": "Token starts", "cellClass": "mono"},
    {"field": "role", "headerName": "Role", "maxWidth": 120},
    {"field": "scopes", "headerName": "Scopes"},
    {"field": "expires", "headerName": "Expires"},
    {"field": "last_used", "headerName": "Last used"},
    {"field": "status", "headerName": "Status", "maxWidth": 120},
]


def layout(**_query: str) -> html.Div:
    return html.Div(
        className="page",
        children=[
            dcc.Store(id=LOAD, data=0),
            html.Div(
                className="page-header",
                children=html.Div(
                    [
                        html.H1("Administration"),
                        html.P(
                            "Users and roles, wall-screen links and API tokens. "
                            "Every change here is written to the audit trail."
                        ),
                    ]
                ),
            ),
            _users_section(),
            _kiosk_section(),
            _api_section(),
            section("Roles", _roles_table(), subtitle="what each role may do"),
        ],
    )


def _users_section() -> html.Section:
    create = html.Div(
        className="form-grid",
        children=[
            field("Username", dcc.Input(id=NEW_USERNAME, className="input", maxLength=64)),
            field("Name", dcc.Input(id=NEW_DISPLAY, className="input", maxLength=200)),
            field(
                "Role",
                dcc.Dropdown(id=NEW_ROLE, options=ROLE_OPTIONS, value="viewer", clearable=False),
            ),
            field(
                "Initial password",
                dcc.Input(id=NEW_PASSWORD, type="password", className="input", maxLength=256),
            ),
            html.Button("Add user", id=CREATE_USER, className="btn"),
        ],
    )
    selected = html.Div(
        className="form-grid",
        children=[
            field(
                "Role of selected user",
                dcc.Dropdown(id=USER_ROLE, options=ROLE_OPTIONS, clearable=False),
            ),
            html.Button("Change role", id=APPLY_ROLE, className="btn btn-quiet"),
            html.Button("Disable / enable", id=TOGGLE_ACTIVE, className="btn btn-quiet"),
            field(
                "New password",
                dcc.Input(id=RESET_PASSWORD, type="password", className="input", maxLength=256),
            ),
            html.Button("Set password", id=APPLY_PASSWORD, className="btn btn-quiet"),
        ],
    )
    return section(
        "Users",
        html.Div(
            [
                data_grid(
                    USERS,
                    columns=USER_COLUMNS,
                    row_id="username",
                    page_size=None,
                    auto_height=True,
                    selectable="singleRow",
                ),
                html.H3("Selected user", style={"margin": "16px 0 8px"}),
                selected,
                html.H3("New user", style={"margin": "16px 0 8px"}),
                create,
                html.Div(id=USER_MESSAGE, style={"marginTop": "12px"}),
            ]
        ),
        subtitle="select a row to change it",
    )


def _kiosk_section() -> html.Section:
    return section(
        "Wall-screen links",
        html.Div(
            [
                html.P(
                    "A kiosk link opens a read-only wall-screen session without a password. "
                    "Revoking it ends that screen's session at once.",
                    className="muted",
                ),
                data_grid(
                    KIOSK_GRID,
                    columns=KIOSK_COLUMNS,
                    row_id="id",
                    page_size=None,
                    auto_height=True,
                    selectable="singleRow",
                ),
                html.Div(
                    className="form-grid",
                    style={"marginTop": "12px"},
                    children=[
                        field(
                            "Screen name",
                            dcc.Input(
                                id=KIOSK_NAME,
                                className="input",
                                maxLength=100,
                                placeholder="NOC wall 1",
                            ),
                        ),
                        html.Button("Create link", id=CREATE_KIOSK, className="btn"),
                        html.Button("Revoke selected", id=REVOKE_KIOSK, className="btn btn-danger"),
                    ],
                ),
                html.Div(id=KIOSK_MESSAGE, style={"marginTop": "12px"}),
            ]
        ),
    )


def _api_section() -> html.Section:
    return section(
        "API tokens",
        html.Div(
            [
                html.P(
                    "Scoped bearer tokens for systems that call Beacon's API. Only a hash is "
                    "stored: the token is shown once.",
                    className="muted",
                ),
                data_grid(
                    API_GRID,
                    columns=API_COLUMNS,
                    row_id="id",
                    page_size=None,
                    auto_height=True,
                    selectable="singleRow",
                ),
                html.Div(
                    className="form-grid",
                    style={"marginTop": "12px"},
                    children=[
                        field(
                            "Client name",
                            dcc.Input(
                                id=API_NAME,
                                className="input",
                                maxLength=100,
                                placeholder="pm-collector",
                            ),
                        ),
                        field(
                            "Role",
                            dcc.Dropdown(
                                id=API_ROLE, options=ROLE_OPTIONS, value="operator", clearable=False
                            ),
                        ),
                        field(
                            "Scopes",
                            dcc.Checklist(
                                id=API_SCOPES,
                                options=[s.value for s in Scope],
                                value=["read", "ingest"],
                                inline=True,
                            ),
                        ),
                        field(
                            "Expires in days",
                            dcc.Input(
                                id=API_EXPIRES,
                                type="number",
                                min=1,
                                max=3650,
                                value=365,
                                className="input",
                            ),
                        ),
                        html.Button("Create token", id=CREATE_API, className="btn"),
                        html.Button("Revoke selected", id=REVOKE_API, className="btn btn-danger"),
                    ],
                ),
                html.Div(id=API_MESSAGE, style={"marginTop": "12px"}),
            ]
        ),
    )


def _roles_table() -> html.Table:
    rows = [
        html.Tr(
            [
                html.Td(html.Strong(role.value)),
                html.Td(ROLE_DESCRIPTIONS[role]),
                html.Td(", ".join(sorted(ROLE_SCOPES[role])), className="mono"),
            ]
        )
        for role in Role
    ]
    head = html.Thead(html.Tr([html.Th("Role"), html.Th("May"), html.Th("API scopes")]))
    return html.Table([head, html.Tbody(rows)], className="table")


# --- reads -------------------------------------------------------------------------------


@dash.callback(
    Output(USERS, "rowData"),
    Output(KIOSK_GRID, "rowData"),
    Output(API_GRID, "rowData"),
    Input(LOAD, "data"),
)
@allow(ADMIN_ROLES)
def load_tables(_version: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Users, kiosk tokens and API tokens as stored (never hashes)."""
    return _user_rows(), _kiosk_rows(), _api_rows()


@dash.callback(
    Output(USER_ROLE, "value"),
    Input(USERS, "selectedRows"),
)
@allow(ADMIN_ROLES)
def select_user(selected: list[dict] | None) -> str | None:
    """Preselect the selected user's role in the role picker."""
    return selected[0]["role"] if selected else None


# --- changes -----------------------------------------------------------------------------


@dash.callback(
    Output(USER_MESSAGE, "children"),
    Output(USERS, "rowData", allow_duplicate=True),
    Output(NEW_PASSWORD, "value"),
    Output(RESET_PASSWORD, "value"),
    Input(CREATE_USER, "n_clicks"),
    Input(APPLY_ROLE, "n_clicks"),
    Input(TOGGLE_ACTIVE, "n_clicks"),
    Input(APPLY_PASSWORD, "n_clicks"),
    State(NEW_USERNAME, "value"),
    State(NEW_DISPLAY, "value"),
    State(NEW_ROLE, "value"),
    State(NEW_PASSWORD, "value"),
    State(USERS, "selectedRows"),
    State(USER_ROLE, "value"),
    State(RESET_PASSWORD, "value"),
    prevent_initial_call=True,
)
@allow(ADMIN_ROLES, mutates=True)
def change_users(
    _create: int | None,
    _role: int | None,
    _toggle: int | None,
    _password: int | None,
    username: str | None,
    display: str | None,
    new_role: str | None,
    password: str | None,
    selected: list[dict] | None,
    selected_role: str | None,
    reset_password: str | None,
) -> tuple:
    """Create a user, or change the selected user's role, status or password."""
    trigger = dash.ctx.triggered_id
    target = selected[0]["username"] if selected else None

    def act(session) -> str:  # type: ignore[no-untyped-def]
        actor = _actor()
        if trigger == CREATE_USER:
            user = auth.create_user(
                session,
                username=username or "",
                role=new_role or "",
                password=password or "",
                actor=actor,
                display_name=display or "",
            )
            return f"User {user.username} created with role {user.role}."
        if target is None:
            raise InvalidInput("select a user in the table first")
        if trigger == APPLY_ROLE:
            user = auth.set_role(session, username=target, role=selected_role or "", actor=actor)
            return f"{user.username} is now {user.role}; their open sessions were ended."
        if trigger == TOGGLE_ACTIVE:
            current = auth.get_user(session, username=target)
            user = auth.set_active(session, username=target, active=not current.active, actor=actor)
            return f"{user.username} is now {'enabled' if user.active else 'disabled'}."
        auth.set_password(session, username=target, password=reset_password or "", actor=actor)
        return f"Password of {target} replaced; their open sessions were ended."

    message = _run(act)
    return message, _user_rows(), "", ""


@dash.callback(
    Output(KIOSK_MESSAGE, "children"),
    Output(KIOSK_GRID, "rowData", allow_duplicate=True),
    Input(CREATE_KIOSK, "n_clicks"),
    Input(REVOKE_KIOSK, "n_clicks"),
    State(KIOSK_NAME, "value"),
    State(KIOSK_GRID, "selectedRows"),
    prevent_initial_call=True,
)
@allow(ADMIN_ROLES, mutates=True)
def change_kiosk_tokens(
    _create: int | None, _revoke: int | None, name: str | None, selected: list[dict] | None
) -> tuple:
    """Create a wall-screen link (shown once) or revoke the selected one."""
    if dash.ctx.triggered_id == CREATE_KIOSK:
        issued: list[auth.IssuedToken] = []

        def create(session) -> str:  # type: ignore[no-untyped-def]
            issued.append(auth.create_kiosk_token(session, name=name or "", actor=_actor()))
            return ""

        message = _run(create)
        if issued:
            url = f"{request.host_url.rstrip('/')}/kiosk/{issued[0].plaintext}"
            message = html.Div(
                [
                    notice(
                        f"Link for “{issued[0].name}” created. Copy it now: it is shown once.",
                        tone="ok",
                    ),
                    html.Div(url, className="secret-box", id="admin-kiosk-url"),
                ]
            )
        return message, _kiosk_rows()

    def revoke(session) -> str:  # type: ignore[no-untyped-def]
        if not selected:
            raise InvalidInput("select a link in the table first")
        auth.revoke_token(session, kind="kiosk", token_id=int(selected[0]["id"]), actor=_actor())
        return f"Link “{selected[0]['name']}” revoked; that screen is signed out."

    return _run(revoke), _kiosk_rows()


@dash.callback(
    Output(API_MESSAGE, "children"),
    Output(API_GRID, "rowData", allow_duplicate=True),
    Input(CREATE_API, "n_clicks"),
    Input(REVOKE_API, "n_clicks"),
    State(API_NAME, "value"),
    State(API_ROLE, "value"),
    State(API_SCOPES, "value"),
    State(API_EXPIRES, "value"),
    State(API_GRID, "selectedRows"),
    prevent_initial_call=True,
)
@allow(ADMIN_ROLES, mutates=True)
def change_api_tokens(
    _create: int | None,
    _revoke: int | None,
    name: str | None,
    role: str | None,
    scopes: list[str] | None,
    expires_days: int | None,
    selected: list[dict] | None,
) -> tuple:
    """Create an API token (shown once) or revoke the selected one."""
    if dash.ctx.triggered_id == CREATE_API:
        issued: list[auth.IssuedToken] = []

        def create(session) -> str:  # type: ignore[no-untyped-def]
            expires = utcnow() + timedelta(days=int(expires_days)) if expires_days else None
            issued.append(
                auth.create_api_token(
                    session,
                    name=name or "",
                    role=role or "",
                    scopes=scopes or [],
                    actor=_actor(),
                    expires_at=expires,
                )
            )
            return ""

        message = _run(create)
        if issued:
            message = html.Div(
                [
                    notice(
                        f"Token for “{issued[0].name}” created. Copy it now: it is shown once.",
                        tone="ok",
                    ),
                    html.Div(issued[0].plaintext, className="secret-box", id="admin-api-token"),
                ]
            )
        return message, _api_rows()

    def revoke(session) -> str:  # type: ignore[no-untyped-def]
        if not selected:
            raise InvalidInput("select a token in the table first")
        auth.revoke_token(session, kind="api", token_id=int(selected[0]["id"]), actor=_actor())
        return f"Token “{selected[0]['name']}” revoked."

    return _run(revoke), _api_rows()


# --- helpers -----------------------------------------------------------------------------


def _run(action: Callable[..., str]) -> html.Div | str:
    """Run a change in one write transaction; domain errors become a visible message."""
    try:
        with beacon().db.session(write=True) as session:
            text = action(session)
    except BeaconError as error:
        return notice(error.message, tone="bad")
    return notice(text, tone="ok") if text else ""


def _actor():  # type: ignore[no-untyped-def]
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    return principal.actor()


def _user_rows() -> list[dict]:
    zone = beacon().settings.zone
    with beacon().db.session() as session:
        return [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "status": "active" if u.active else "disabled",
                "last_login": local_time(u.last_login_at, zone),
                "created": local_time(u.created_at, zone),
            }
            for u in auth.list_users(session)
        ]


def _kiosk_rows() -> list[dict]:
    zone = beacon().settings.zone
    with beacon().db.session() as session:
        return [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.token_prefix + "…",
                "created_by": t.created_by or "",
                "created": local_time(t.created_at, zone),
                "last_used": local_time(t.last_used_at, zone),
                "status": "revoked" if t.revoked_at else "active",
            }
            for t in auth.list_kiosk_tokens(session)
        ]


def _api_rows() -> list[dict]:
    zone = beacon().settings.zone
    now = utcnow()
    with beacon().db.session() as session:
        return [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.token_prefix + "…",
                "role": t.role,
                "scopes": ", ".join(t.scopes),
                "expires": local_time(t.expires_at, zone) if t.expires_at else "never",
                "last_used": local_time(t.last_used_at, zone),
                "status": "revoked"
                if t.revoked_at
                else ("expired" if t.expires_at and t.expires_at <= now else "active"),
            }
            for t in auth.list_api_tokens(session)
        ]
