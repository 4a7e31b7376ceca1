"""Flask-side wiring: sessions, login, the request guard, errors and health routes."""

from __future__ import annotations

from datetime import timedelta

from dash.exceptions import DependencyException
from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import AnonymousUserMixin, LoginManager
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.proxy_fix import ProxyFix

from services.db.engine import database_unavailable
from services.errors import BeaconError
from services.web import guard, views
from services.web.context import EXTENSION_KEY, BeaconContext
from services.web.loaders import load_principal_from_request, load_principal_from_session
from services.web.responses import from_domain_error, html_error, json_error


def init_web(server: Flask, context: BeaconContext) -> None:
    """Configure `server` for Beacon: cookies, login manager, guard, routes, errors."""
    settings = context.settings
    server.extensions[EXTENSION_KEY] = context
    server.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="beacon_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
    )
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.user_loader(load_principal_from_session)
    manager.request_loader(load_principal_from_request)
    manager.init_app(server)

    if settings.trusted_proxies:
        # Behind N proxies the client is the Nth address from the right of X-Forwarded-For;
        # without this every request comes from the proxy (one sign-in limit for everyone,
        # the proxy's address in the audit trail). Untrusted headers are never read.
        n = settings.trusted_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    guard.install(server)
    server.register_blueprint(views.blueprint)
    _register_login_with_limits(server, context)
    _register_error_handlers(server)


def _register_login_with_limits(server: Flask, context: BeaconContext) -> None:
    limiter = Limiter(
        key_func=get_remote_address,
        app=server,
        storage_uri=context.settings.ratelimit_storage,
        default_limits=[],
        # A broken limiter store must not lock everyone out of the console.
        swallow_errors=True,
    )
    only_failures = {"deduct_when": lambda response: response.status_code == 401}
    limit = context.settings.login_rate_limit
    view = limiter.limit(limit, methods=["POST"], scope="login-ip", **only_failures)(
        views.login_submit
    )
    view = limiter.limit(
        limit, key_func=_login_username, methods=["POST"], scope="login-user", **only_failures
    )(view)
    server.add_url_rule("/login", "login_submit", view, methods=["POST"])


def _login_username() -> str:
    return "user:" + request.form.get("username", "").strip().lower()[:64]


def degraded() -> Response:
    """503 while the database is away: what to tell a browser or a client, not a traceback."""
    # The error page must not ask flask-login for the user: that would be another query.
    g._login_user = AnonymousUserMixin()
    if request.path.startswith(("/_dash", "/api/", "/eventListener/")):
        response = json_error(
            503, "database_unavailable", "the database is not answering; try again shortly"
        )
    else:
        response = html_error(
            503,
            "Beacon is degraded",
            "The database is not answering. Beacon reconnects by itself; reload in a moment.",
            link=request.path,
            link_text="Reload",
        )
    response.headers["Retry-After"] = "10"
    return response


def _register_error_handlers(server: Flask) -> None:
    @server.errorhandler(BeaconError)
    def _domain_error(error: BeaconError):  # type: ignore[no-untyped-def]
        return from_domain_error(error)

    @server.errorhandler(DependencyException)
    def _unknown_component_file(_error: DependencyException):  # type: ignore[no-untyped-def]
        # Dash raises this for a script path no component library has: a 404, not a 500.
        return json_error(404, "not_found", "no such component file")

    @server.errorhandler(429)
    def _too_many(_error):  # type: ignore[no-untyped-def]
        if request.path == "/login":
            return html_error(
                429,
                "Too many sign-in attempts",
                "Sign-in is paused for this account and address. Wait a minute and retry.",
                link="/login",
                link_text="Back to sign in",
            )
        return json_error(429, "rate_limited", "too many requests; slow down")

    @server.errorhandler(DBAPIError)
    def _database_error(error: DBAPIError):  # type: ignore[no-untyped-def]
        if not database_unavailable(error):
            raise error  # a real bug: the 500 handler answers it
        return degraded()

    @server.errorhandler(500)
    def _server_error(_error):  # type: ignore[no-untyped-def]
        # Never a traceback or an HTML page to a client that expects JSON.
        if request.path.startswith(("/_dash", "/api/")):
            return json_error(500, "internal_error", "the server failed; the error is logged")
        return html_error(500, "Something failed", "The error is logged. Try again shortly.")

    @server.errorhandler(413)
    def _too_large(_error):  # type: ignore[no-untyped-def]
        if request.path == "/login":  # a person at a form: a page, not JSON
            return html_error(
                413, "Request too large", "The sign-in form sent too much data.", link="/login"
            )
        return json_error(413, "payload_too_large", "request body is larger than allowed")
