"""Helpers for page tests: run callbacks like Dash does, read text out of components."""

from __future__ import annotations

from typing import Any

from conftest import run_callback

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
