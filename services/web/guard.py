"""The request guard: every route is authorised here before it runs (fail closed)."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from dash import Dash
from flask import Flask, Response, current_app, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from services import audit
from services.web.authz import CallbackPolicy, page_allows
from services.web.context import ROUTER_OUTPUT, beacon
from services.web.principal import Principal, current_principal
from services.web.responses import html_error, json_error

log = logging.getLogger(__name__)

PUBLIC_EXACT = frozenset({"/login", "/healthz", "/readyz", "/favicon.ico", "/_favicon.ico"})
PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/kiosk/")
CALLBACK_PATH = "/_dash-update-component"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Bearer-token clients (and VES senders) speak to these; the API checks its own scopes.
TOKEN_PREFIXES = ("/api/", "/eventListener/")
# The Dash app whose inline scripts (renderer start-up, clientside callbacks) pages may run.
CSP_APP_KEY = "beacon.csp_dash_app"
# Pages: scripts only from this origin plus Dash's inline scripts by hash (no 'unsafe-inline',
# no 'unsafe-eval': Dash, AG Grid formatters and plotly run without them in Chromium).
# Inline styles stay allowed: React style props, plotly and AG Grid set them everywhere.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'{hashes}; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# JSON, scripts, images: nothing may run or load if one is opened as a document.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def install(server: Flask) -> None:
    """Register the guard and the response headers on the Flask server."""
    server.before_request(refuse_unsized_overflow)
    server.before_request(guard_request)
    server.after_request(add_security_headers)


def refuse_unsized_overflow() -> None:
    """413 for a body without Content-Length (chunked) that runs past the server's limit.

    The server stops reading such a body at the limit without an error, so a view (an API
    upload, the login form, a callback) would see a silently truncated body. Reading one
    byte more makes werkzeug raise RequestEntityTooLarge.
    """
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is not None or not limit or request.method not in BODY_METHODS:
        return
    if len(request.get_data(cache=True)) >= limit:
        request.stream.read(1)


def guard_request() -> BaseResponse | None:
    """Refuse the request unless the route is public or the principal may use it."""
    path = request.path
    if request.method in UNSAFE_METHODS and not _same_origin():
        return json_error(403, "cross_origin", "cross-site requests are refused")
    if _is_public(path):
        return None
    principal = current_principal()
    if path.startswith(TOKEN_PREFIXES):
        if principal is None:
            return _unauthorized_token_client(path)
        return None
    if principal is None:
        if path.startswith("/_"):
            return json_error(401, "unauthorized", "sign in first")
        target = request.full_path if request.query_string else path
        return redirect(f"/login?next={target}", code=303)
    if principal.kind == "api":
        # API tokens are for the REST API, not for the browser application.
        return json_error(403, "forbidden", "API tokens cannot open the web console")
    if path == CALLBACK_PATH:
        return _guard_callback(principal)
    if path.startswith("/_"):
        return None  # layout, dependencies, reload hash: structure only, no data
    return _guard_page(principal, path)


def _unauthorized_token_client(path: str) -> BaseResponse:
    """401 for API clients; VES senders get the collector's body and a Basic challenge."""
    if path.startswith("/eventListener/"):
        # Some VES senders only send Basic credentials after a challenge.
        response = jsonify(
            {
                "requestError": {
                    "policyException": {"messageId": "POL2000", "text": "Unauthorized user"}
                }
            }
        )
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="Beacon VES"'
        return response
    response = json_error(401, "unauthorized", "send an API token: Authorization: Bearer …")
    response.headers["WWW-Authenticate"] = 'Bearer realm="Beacon API"'
    return response


def add_security_headers(response: Response) -> Response:
    """Headers every response carries; dynamic data is never cached."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", _csp(response))
    if request.path == CALLBACK_PATH or request.path.startswith(TOKEN_PREFIXES):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _csp(response: Response) -> str:
    if response.mimetype != "text/html":
        return OTHER_CSP
    hashes = "".join(f" {h}" for h in _inline_script_hashes())
    return PAGE_CSP.format(hashes=hashes)


def _inline_script_hashes() -> list[str]:
    """Hashes of the inline scripts the Dash app declares (its renderer and clientside callbacks).

    Hashing what the app declares, not whatever a response body holds, keeps an injected
    inline script blocked. Recomputed per page: Dash may add scripts when a page first
    renders, and hashing a dozen short strings costs microseconds.
    """
    found = current_app.extensions
    if CSP_APP_KEY not in found:
        found[CSP_APP_KEY] = _dash_app(current_app)
    dash_app = found[CSP_APP_KEY]
    return list(dict.fromkeys(dash_app.csp_hashes())) if dash_app is not None else []


def _dash_app(server: Flask) -> Dash | None:
    # Dash registers bound methods (e.g. serve_layout) as views: their owner is the app.
    for view in server.view_functions.values():
        owner = getattr(view, "__self__", None)
        if isinstance(owner, Dash):
            return owner
    return None


def _guard_callback(principal: Principal) -> BaseResponse | None:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # deeply nested arrays exhaust the decoder: hostile, not a crash
        return json_error(400, "bad_callback", "callback body is nested too deeply")
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, str):
        return json_error(400, "bad_callback", "callback request without an output")
    policy = beacon().callback_policy(output)
    if policy is None:
        return json_error(404, "unknown_callback", "no such callback")
    if _callback_allowed(policy, principal):
        return _check_shape(body, policy)
    if policy.mutates:
        # A refused state change is worth knowing about: it is a crafted request or a bug.
        with beacon().db.session(write=True) as session:
            audit.record(
                session,
                actor=principal.actor(),
                action="access.denied",
                object_type="callback",
                object_id=policy.name or output[:100],
                after={"output": output[:300]},
            )
    return json_error(403, "forbidden", f"role {principal.role} may not do this")


def _check_shape(body: dict, policy: CallbackPolicy) -> BaseResponse | None:
    """Refuse callback bodies that do not match the callback's declared outputs and inputs."""
    output = body["output"]
    outputs = body.get("outputs")
    if output.startswith(".."):
        wanted = len(output.strip(".").split("..."))
        if not isinstance(outputs, list) or len(outputs) != wanted:
            return json_error(400, "bad_callback", f"callback expects {wanted} outputs")
    elif not isinstance(outputs, dict):
        return json_error(400, "bad_callback", "callback expects one output")
    for key, expected in (("inputs", policy.inputs), ("state", policy.states)):
        given = body.get(key, [])
        if not isinstance(given, list) or (expected is not None and len(given) != expected):
            return json_error(
                400, "bad_callback", f"callback expects {expected} {key}, got a different shape"
            )
    if output.startswith(f"..{ROUTER_OUTPUT}...") and not _router_inputs_ok(body["inputs"]):
        # Dash's page router assumes a browser's location: a text path, text or no query.
        return json_error(400, "bad_callback", "the page router needs a text pathname")
    return None


def _router_inputs_ok(inputs: list) -> bool:
    for item in inputs:
        if not isinstance(item, dict):
            return False
        value = item.get("value")
        if item.get("property") == "pathname" and not isinstance(value, str):
            return False
        if item.get("property") == "search" and not isinstance(value, str | None):
            return False
    return True


def _callback_allowed(policy: CallbackPolicy, principal: Principal) -> bool:
    if principal.is_kiosk:
        return policy.kiosk and not policy.mutates
    return principal.role in policy.roles


def _guard_page(principal: Principal, path: str) -> BaseResponse | None:
    for page in beacon().pages:
        if page.matches(path):
            if page_allows(page, role=principal.role, kiosk=principal.is_kiosk):
                return None
            return html_error(
                403,
                "Not available to your role",
                f"{page.name} is not open to the {principal.role} role.",
            )
    return None  # unknown paths get the app shell, whose router shows "not found"


def _is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def _same_origin() -> bool:
    """False when a browser says the request came from another site.

    Origin first; browsers that omit it still send Sec-Fetch-Site or a Referer. Clients
    sending none of the three are not browsers riding a cookie (API tokens, VES senders).
    """
    origin = request.headers.get("Origin")
    if origin:
        if origin == "null":
            return False
        return urlsplit(origin).netloc == request.host
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    referer = request.headers.get("Referer")
    if referer:
        return urlsplit(referer).netloc == request.host
    return True


def parse_callback_body(raw: bytes) -> dict[str, object]:
    """Decode a callback request body (used by tests that craft requests)."""
    return json.loads(raw or b"{}")
