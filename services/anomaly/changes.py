"""Change and maintenance windows around an episode: which apply, and the suppression policy.

Policy: an episode overlapping a change or maintenance window whose scope covers its
element is annotated and suppressed from the wall screen (it is still listed on
/anomalies). A freeze window is annotated only: nothing should be changing then, so an
anomaly during a freeze is all the more worth seeing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SUPPRESSING_KINDS = frozenset({"change", "maintenance"})
# Effects of work often show in the period right after the window closes.
AFTER_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class Window:
    """A change-calendar entry as the policy sees it."""

    id: int
    title: str
    kind: str
    scope: Mapping[str, Any]
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Place:
    """Where an element sits: its own dn, its ancestors' dns, domain and region."""

    dn: str
    ancestors: tuple[str, ...]
    domain: str | None
    region: str | None


def _lower(values: Iterable[Any] | None) -> set[str]:
    return {str(v).strip().lower() for v in (values or []) if str(v).strip()}


def in_scope(scope: Mapping[str, Any], place: Place) -> bool:
    """True when the window's scope covers the element.

    Listed elements cover themselves and everything under them (a site covers its cells);
    domains and regions, when given, must all match; an empty scope is network-wide.
    """
    elements = _lower(scope.get("elements"))
    domains = _lower(scope.get("domains"))
    regions = _lower(scope.get("regions"))
    if elements and _lower([place.dn, *place.ancestors]) & elements:
        return True
    if not domains and not regions:
        return not elements
    if domains and (place.domain or "").lower() not in domains:
        return False
    return not (regions and (place.region or "").lower() not in regions)


def overlapping(
    windows: Sequence[Window], place: Place, *, start: datetime, end: datetime
) -> list[Window]:
    """Windows covering the element whose time overlaps [start, end]."""
    return [
        w
        for w in windows
        if w.starts_at <= end and w.ends_at + AFTER_WINDOW >= start and in_scope(w.scope, place)
    ]


def suppression(windows: Sequence[Window], *, tz_label: str) -> tuple[int | None, str | None]:
    """(change_window_id, reason) when policy suppresses the episode, else (None, None)."""
    for window in sorted(windows, key=lambda w: w.starts_at):
        if window.kind in SUPPRESSING_KINDS:
            span = f"{window.starts_at:%Y-%m-%d %H:%M}–{window.ends_at:%H:%M} {tz_label}"
            reason = f"Inside {window.kind} window “{window.title}” ({span})"
            return window.id, reason
    return None, None
