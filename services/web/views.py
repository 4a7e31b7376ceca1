"""Routes outside Dash: login, logout, kiosk entry, liveness and readiness."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template_string, request, session
from flask_login import login_user, logout_user

from services import audit, auth
from services.db.migrate import current_revision, head_revision
from services.db.models import utcnow
from services.web.context import beacon
from services.web.principal import client_ip, current_principal, kiosk_principal, user_principal
from services.web.responses import html_error

blueprint = Blueprint("beacon_web", __name__)

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · Beacon</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/assets/favicon.ico">
<link rel="stylesheet" href="/assets/beacon.css"></head>
<body class="plain-page">
<main class="plain-card login-card">
  <div class="brand-mark">◉ Beacon</div>
  <p class="muted">Network AI operations console</p>
  {% if message %}<div class="form-error" role="alert">{{ message }}</div>{% endif %}
  <form method="post" action="/login" autocomplete="on">
    <input type="hidden" name="next" value="{{ next_path }}">
    <label for="username">Username</label>
    <input id="username" name="username" type="text" value="{{ username }}"
           autocomplete="username" autofocus required maxlength="64">
    <label for="password">Password</label>
    <input id="password" name="password" type="password"
           autocomplete="current-password" required maxlength="256">
    <button id="login-submit" type="submit">Sign in</button>
  </form>
  <p class="muted small">Wall screens open with a kiosk link from an admin, not a password.</p>
</main></body></html>"""


@blueprint.get("/login")
def login_form() -> Response | str:
    if current_principal() is not None:
        return redirect(_safe_next(request.args.get("next")), code=303)
    return _login_page(next_path=_safe_next(request.args.get("next")))


def login_submit() -> Response | tuple[str, int]:
    """POST /login (registered with its rate limits in `init_views`)."""
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    next_path = _safe_next(request.form.get("next"))
    ctx = beacon()
    with ctx.db.session(write=True) as db_session:
        user = auth.authenticate(db_session, username=username, password=password, ip=client_ip())
        principal = (
            user_principal(
                user_id=user.id,
                epoch=user.session_epoch,
                username=user.username,
                role=user.role,
                display=user.display_name,
            )
            if user
            else None
        )
    if principal is None:
        page = _login_page(
            next_path=next_path, username=username[:64], message="Wrong username or password."
        )
        return page, 401
    # A fresh session at login: nothing from before authentication carries over.
    session.clear()
    login_user(principal)
    session["login_at"] = utcnow().isoformat()
    return redirect(next_path, code=303)


@blueprint.post("/logout")
def logout() -> Response:
    principal = current_principal()
    if principal is not None:
        with beacon().db.session(write=True) as db_session:
            if principal.kind == "user" and principal.user_id is not None:
                auth.end_sessions(db_session, user_id=principal.user_id)
            audit.record(db_session, actor=principal.actor(), action="auth.logout")
    logout_user()
    session.clear()
    return redirect("/login", code=303)


@blueprint.get("/kiosk/<token>")
def kiosk_entry(token: str) -> Response:
    ctx = beacon()
    with ctx.db.session(write=True) as db_session:
        kiosk = auth.resolve_kiosk_token(db_session, plaintext=token)
        if kiosk is None:
            return html_error(
                403,
                "Wall-screen link not valid",
                "This kiosk link was revoked or mistyped. Ask an admin for a new one.",
                link="/login",
                link_text="Sign in instead",
            )
        kiosk.last_used_at = utcnow()
        principal = kiosk_principal(token_id=kiosk.id, name=kiosk.name)
        audit.record(
            db_session,
            actor=principal.actor(),
            action="auth.kiosk_open",
            object_type="kiosk_token",
            object_id=kiosk.id,
        )
    session.clear()
    login_user(principal)
    # Wall screens run for weeks: a permanent session, re-checked against the token each request.
    session.permanent = True
    return redirect("/?kiosk=1", code=303)


@blueprint.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


@blueprint.get("/readyz")
def readyz() -> Response:
    db = beacon().db
    try:
        db.ping()
        current, head = current_revision(db), head_revision(db)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason
        return _ready(False, f"database unreachable: {type(exc).__name__}")
    if current != head:
        return _ready(False, f"schema at {current}, code expects {head}")
    return _ready(True, "database reachable, schema current")


def _ready(ok: bool, detail: str) -> Response:
    import json

    body = json.dumps({"status": "ready" if ok else "not ready", "detail": detail})
    return Response(body, status=200 if ok else 503, mimetype="application/json")


def _login_page(*, next_path: str, username: str = "", message: str = "") -> str:
    return render_template_string(
        LOGIN_PAGE, next_path=next_path, username=username, message=message
    )


def _safe_next(raw: str | None) -> str:
    """Only same-site paths: refuses `//evil`, absolute URLs and back-slash tricks."""
    if not raw:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return "/"
    if "\\" in raw:
        return "/"
    return raw
