"""Helpers for page tests: run callbacks like Dash does, read text out of components."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import copy_context
from typing import Any

from dash._callback_context import context_value
from dash._utils import AttributeDict

__all__ = ["run_callback", "text_of"]


def text_of(component: Any) -> str:
    """All text inside a component tree (or a plain string), joined by spaces."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def run_callback(callback: Callable[..., Any], *args: Any, triggered: str | None = None) -> Any:
    """Call a registered callback's own function with Dash's context set like a real click."""
    triggered_inputs = [{"prop_id": triggered, "value": 1}] if triggered else []

    def call() -> Any:
        context_value.set(AttributeDict(triggered_inputs=triggered_inputs))
        return callback(*args)  # dash.callback returns the guarded function itself

    return copy_context().run(call)
