"""Formatting of times, ages and numbers the same way on every page."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def local_time(moment: datetime | None, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """`2026-11-25 14:05` in the NOC's zone; an em dash when unknown."""
    if moment is None:
        return "—"
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return moment.astimezone(zone).strftime(pattern)


def short_time(moment: datetime | None, zone: ZoneInfo, *, now: datetime | None = None) -> str:
    """`14:05` for today (in the NOC's zone), `Nov 24 14:05` otherwise."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    return local.strftime("%H:%M" if local.date() == today else "%b %d %H:%M")


def age(moment: datetime | None, *, now: datetime | None = None) -> str:
    """How long ago, in the largest sensible unit: `just now`, `7 min`, `3 h 10 min`, `2 d`."""
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d"


def ago(moment: datetime | None, *, now: datetime | None = None) -> str:
    """`just now`, `7 min ago`, `3 h ago`; `never` when unknown."""
    text = age(moment, now=now)
    return text if text in ("never", "just now", "in the future") else f"{text} ago"


def count(value: int | float | None) -> str:
    """Thousands separated with thin spaces, readable at a distance."""
    if value is None:
        return "—"
    return f"{value:,.0f}".replace(",", "\u202f")
