"""Helpers for the hostile-input tests: act as a user, run callbacks, walk component trees."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import copy_context
from typing import Any

from dash import Dash
from dash._callback_context import context_value
from dash._utils import AttributeDict
from flask_login import login_user

from services import audit, auth
from services.db import Database
from services.web.principal import user_principal

HOSTILE_HTML = "<img src=x onerror=alert(1)>"
HOSTILE_SCRIPT = "<script>alert('beacon')</script>"


@contextmanager
def acting_as(
    app: Dash, db: Database, role: str, *, username: str | None = None, display_name: str = ""
) -> Iterator[Any]:
    """A request context with a freshly created user of `role` signed in."""
    name = username or f"hostile-{role}"
    with db.session(write=True) as session:
        user = auth.create_user(
            session,
            username=name,
            role=role,
            password="hostile-pass-12345",
            actor=audit.SYSTEM,
            display_name=display_name,
        )
        principal = user_principal(
            user_id=user.id,
            epoch=user.session_epoch,
            username=user.username,
            role=user.role,
            display=user.display_name,
        )
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        login_user(principal)
        yield principal


def run_callback(callback: Callable[..., Any], *args: Any, triggered: str | None = None) -> Any:
    """Call a callback's function with Dash's context set as for a real click."""
    triggered_inputs = [{"prop_id": triggered, "value": 1}] if triggered else []

    def call() -> Any:
        context_value.set(AttributeDict(triggered_inputs=triggered_inputs))
        return callback(*args)

    return copy_context().run(call)


def components(node: Any) -> Iterator[Any]:
    """Every Dash component in a tree (children and component-valued props), depth first."""
    if isinstance(node, list | tuple):
        for item in node:
            yield from components(item)
        return
    if not hasattr(node, "_prop_names"):
        return
    yield node
    for prop in node._prop_names:
        value = getattr(node, prop, None)
        if isinstance(value, list | tuple) or hasattr(value, "_prop_names"):
            yield from components(value)


def strings(node: Any) -> Iterator[str]:
    """Every plain string a tree renders as text (children that are str)."""
    if isinstance(node, str):
        yield node
        return
    if isinstance(node, list | tuple):
        for item in node:
            yield from strings(item)
        return
    if hasattr(node, "_prop_names"):
        for prop in node._prop_names:
            value = getattr(node, prop, None)
            if prop == "children" or hasattr(value, "_prop_names"):
                yield from strings(value)
            elif isinstance(value, list | tuple):
                yield from strings([v for v in value if hasattr(v, "_prop_names")])
