"""Error responses in the shape every Beacon client expects."""

from __future__ import annotations

from flask import Response, jsonify, render_template_string

from services.errors import BeaconError


def json_error(status: int, code: str, message: str, details: object | None = None) -> Response:
    """`{"error": {"code", "message", "details"}}` with the given status."""
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response


def from_domain_error(error: BeaconError) -> Response:
    return json_error(error.status, error.code, error.message, error.details)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} · Beacon</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/beacon.css"></head>
<body class="plain-page"><main class="plain-card">
<div class="brand-mark">◉ Beacon</div>
<h1>{{ title }}</h1><p>{{ message }}</p>
<p><a href="{{ link }}">{{ link_text }}</a></p>
</main></body></html>"""


def html_error(
    status: int, title: str, message: str, *, link: str = "/", link_text: str = "Back"
) -> Response:
    """A small standalone HTML page for errors outside the Dash app."""
    body = render_template_string(
        _PAGE, title=title, message=message, link=link, link_text=link_text
    )
    return Response(body, status=status, mimetype="text/html")
