"""Form building blocks."""

from __future__ import annotations

from typing import Any

from dash import html


def field(label: str, control: Any) -> html.Div:
    """A control with its label above it, for use inside a `form-grid`."""
    return html.Div([html.Span(label, className="field-label"), control], className="field")
