"""Parsing what arrives from the URL or the browser; every value may be crafted."""

from __future__ import annotations


def positive_id(value: object) -> int | None:
    """A positive integer id from a URL or a callback, or None when it is not one."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
