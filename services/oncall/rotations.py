"""Pure on-call schedule maths: rotations, layers, restrictions and overrides to UTC shifts.

Hand-offs are stepped in the rotation's local wall-clock time, so a 09:00 Europe/Berlin
hand-off stays at 09:00 on both sides of a daylight-saving change (that day's shift is
23 h or 25 h long). Higher layers win where they have someone; overrides win over layers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.errors import InvalidInput

PersonKey = int | str
KINDS = ("daily", "weekly", "custom")
_STEP_HOURS = {"daily": 24, "weekly": 168}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_ALL_WEEKDAYS = frozenset(range(7))


@dataclass(frozen=True)
class Restriction:
    """Local hours and weekdays when a layer is active; outside them the layer is empty.

    `start == end` means the whole day; `end < start` runs past midnight into the next day.
    `weekdays` (0 = Monday) name the local day on which a window starts.
    """

    start: time = time(0)
    end: time = time(0)
    weekdays: frozenset[int] = _ALL_WEEKDAYS

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= _ALL_WEEKDAYS:
            raise InvalidInput("restriction weekdays must be a non-empty subset of 0..6")


@dataclass(frozen=True)
class RotationSpec:
    """One layer: members take turns, handing off at a local time in the rotation's zone.

    members[0] is on call from starts_at to the first hand-off, then each in turn; the
    layer is empty before starts_at. Daily and weekly shifts last 24 h / 168 h of local
    wall-clock time, custom ones `shift_hours` of it.
    """

    key: int | str
    kind: str
    members: tuple[PersonKey, ...]
    starts_at: datetime
    tz: str = "UTC"
    handoff: time = time(9)
    handoff_weekday: int = 0
    shift_hours: int | None = None
    layer: int = 1
    restriction: Restriction | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"rotation kind must be one of {', '.join(KINDS)}")
        if self.kind == "custom" and (self.shift_hours is None or self.shift_hours < 1):
            raise InvalidInput("a custom rotation needs shift_hours of at least 1")
        if not 0 <= self.handoff_weekday <= 6:
            raise InvalidInput("handoff_weekday must be 0 (Monday) .. 6 (Sunday)")
        _require_aware(self.starts_at, "starts_at")
        zone(self.tz)

    @property
    def step(self) -> timedelta:
        """Wall-clock length of one shift."""
        return timedelta(hours=_STEP_HOURS.get(self.kind) or self.shift_hours or 24)


@dataclass(frozen=True)
class Override:
    """Someone on call instead of the layers from start to end (later overrides win)."""

    person: PersonKey
    start: datetime
    end: datetime
    key: int | str | None = None
    rotation: int | str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        if self.end <= self.start:
            raise InvalidInput("an override must end after it starts")


@dataclass(frozen=True)
class Schedule:
    """A team's (or one rotation's) layers and the overrides on them."""

    rotations: tuple[RotationSpec, ...] = ()
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Shift:
    """A person on call from start to end (UTC); `override` is set when an override did it."""

    person: PersonKey
    start: datetime
    end: datetime
    rotation: int | str | None = None
    layer: int | None = None
    override: int | str | None = None

    @property
    def duration(self) -> timedelta:
        """Elapsed time on call (23 h or 25 h for a daily shift across a DST change)."""
        return self.end - self.start


@dataclass(frozen=True)
class Handoff:
    """The on-call person changes at `at` (None: nobody on call)."""

    at: datetime
    previous: PersonKey | None
    next: PersonKey | None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or InvalidInput."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}") from exc


def parse_hhmm(text: str) -> time:
    """A local time of day from "HH:MM" (24-hour clock)."""
    match = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"expected a time as HH:MM, got {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_restriction(doc: Mapping[str, Any] | None) -> Restriction | None:
    """A Restriction from the stored form {"from": "08:00", "to": "18:00", "weekdays": [0..4]}."""
    if not doc:
        return None
    weekdays = doc.get("weekdays")
    try:
        days = _ALL_WEEKDAYS if weekdays is None else frozenset(int(d) for d in weekdays)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"restriction weekdays must be numbers 0..6, got {weekdays!r}") from exc
    return Restriction(
        start=parse_hhmm(doc.get("from") or "00:00"),
        end=parse_hhmm(doc.get("to") or "00:00"),
        weekdays=days,
    )


def handoff_instants(rotation: RotationSpec, *, start: datetime, end: datetime) -> list[datetime]:
    """The rotation's hand-off instants (UTC) in [start, end), ignoring restrictions."""
    lo = max(start, rotation.starts_at)
    if lo >= end:
        return []
    anchor = _anchor(rotation)
    k = _index_at(rotation, anchor, lo)
    result = []
    while (at := _boundary(rotation, anchor, k)) < end:
        if at >= lo and (not result or at > result[-1]):
            result.append(at)
        k += 1
    return result


def rotation_shifts(rotation: RotationSpec, *, start: datetime, end: datetime) -> list[Shift]:
    """One layer's shifts clipped to [start, end): restricted hours cut them, overrides do not."""
    _require_interval(start, end)
    lo = max(start, rotation.starts_at)
    if not rotation.members or lo >= end:
        return []
    anchor = _anchor(rotation)
    k = _index_at(rotation, anchor, lo)
    found = []
    while (begin := _boundary(rotation, anchor, k)) < end:
        finish = _boundary(rotation, anchor, k + 1)
        s, e = max(begin, lo), min(finish, end)
        if s < e:  # a hand-off inside a skipped DST hour can make an empty shift
            person = rotation.members[k % len(rotation.members)]
            found.append(Shift(person, s, e, rotation=rotation.key, layer=rotation.layer))
        k += 1
    if rotation.restriction is None:
        return found
    windows = restriction_windows(rotation.restriction, tz=rotation.tz, start=lo, end=end)
    return _intersect(found, windows)


def restriction_windows(
    restriction: Restriction, *, tz: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The UTC intervals inside [start, end) when a layer with this restriction is active."""
    _require_interval(start, end)
    local_zone = zone(tz)
    first = start.astimezone(local_zone).date() - timedelta(days=1)
    last = end.astimezone(local_zone).date()
    windows: list[tuple[datetime, datetime]] = []
    for day in _days(first, last):
        if day.weekday() not in restriction.weekdays:
            continue
        close_day = day if restriction.end > restriction.start else day + timedelta(days=1)
        s = max(_to_utc(datetime.combine(day, restriction.start), local_zone), start)
        e = min(_to_utc(datetime.combine(close_day, restriction.end), local_zone), end)
        if s >= e:
            continue
        if windows and s <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], e))
        else:
            windows.append((s, e))
    return windows


def shifts(schedule: Schedule, *, start: datetime, end: datetime) -> list[Shift]:
    """The final schedule over [start, end): higher layers over lower, overrides over all."""
    _require_interval(start, end)
    result: list[Shift] = []
    for rotation in sorted(schedule.rotations, key=lambda r: r.layer):
        result = _overlay(result, rotation_shifts(rotation, start=start, end=end))
    for override in schedule.overrides:
        s, e = max(override.start, start), min(override.end, end)
        if s < e:
            piece = Shift(override.person, s, e, rotation=override.rotation, override=override.key)
            result = _overlay(result, [piece])
    return _merge(result)


def oncall_at(schedule: Schedule, *, at: datetime) -> Shift | None:
    """The shift (unclipped) of whoever is on call at instant `at`, or None."""
    _require_aware(at, "at")
    horizon = _horizon(schedule)
    for shift in shifts(schedule, start=at - horizon, end=at + horizon):
        if shift.start <= at < shift.end:
            return shift
    return None


def handoffs(schedule: Schedule, *, start: datetime, end: datetime) -> list[Handoff]:
    """Every change of on-call person inside (start, end), including to and from nobody."""
    return handoffs_of(shifts(schedule, start=start, end=end), start=start, end=end)


def handoffs_of(final: Sequence[Shift], *, start: datetime, end: datetime) -> list[Handoff]:
    """Changes of person in an already computed, sorted, disjoint list of shifts."""
    result: list[Handoff] = []
    current: PersonKey | None = None
    cursor = start
    for shift in final:
        if shift.start > cursor and current is not None:
            result.append(Handoff(cursor, current, None))
            current = None
        if shift.person != current:
            if shift.start > start:
                result.append(Handoff(shift.start, current, shift.person))
            current = shift.person
        cursor = shift.end
    if current is not None and cursor < end:
        result.append(Handoff(cursor, current, None))
    return result


def person_runs(final: Sequence[Shift]) -> list[Shift]:
    """Adjacent shifts of the same person joined into one (layer and source dropped)."""
    runs: list[Shift] = []
    for shift in final:
        if runs and runs[-1].person == shift.person and runs[-1].end == shift.start:
            runs[-1] = Shift(shift.person, runs[-1].start, shift.end)
        else:
            runs.append(Shift(shift.person, shift.start, shift.end))
    return runs


def _anchor(rotation: RotationSpec) -> datetime:
    # The naive local hand-off instant at or before starts_at from which shifts count.
    local_zone = zone(rotation.tz)
    local_start = rotation.starts_at.astimezone(local_zone)
    anchor = datetime.combine(local_start.date(), rotation.handoff)
    if rotation.kind == "weekly":
        anchor -= timedelta(days=(anchor.weekday() - rotation.handoff_weekday) % 7)
    step = rotation.step
    while _to_utc(anchor, local_zone) > rotation.starts_at:
        anchor -= step
    while _to_utc(anchor + step, local_zone) <= rotation.starts_at:
        anchor += step
    return anchor


def _boundary(rotation: RotationSpec, anchor: datetime, k: int) -> datetime:
    return _to_utc(anchor + k * rotation.step, zone(rotation.tz))


def _index_at(rotation: RotationSpec, anchor: datetime, at: datetime) -> int:
    # Estimate the shift number from wall-clock time, then correct around DST jumps.
    local_naive = at.astimezone(zone(rotation.tz)).replace(tzinfo=None)
    k = max((local_naive - anchor) // rotation.step, 0)
    while k > 0 and _boundary(rotation, anchor, k) > at:
        k -= 1
    while _boundary(rotation, anchor, k + 1) <= at:
        k += 1
    return k


def _to_utc(local_naive: datetime, local_zone: ZoneInfo) -> datetime:
    # fold=0: an ambiguous time means its first occurrence, a skipped one its pre-jump offset.
    return local_naive.replace(tzinfo=local_zone).astimezone(UTC)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _intersect(pieces: list[Shift], windows: list[tuple[datetime, datetime]]) -> list[Shift]:
    result = []
    i = 0
    for piece in pieces:
        while i < len(windows) and windows[i][1] <= piece.start:
            i += 1
        j = i
        while j < len(windows) and windows[j][0] < piece.end:
            s, e = max(piece.start, windows[j][0]), min(piece.end, windows[j][1])
            if s < e:
                result.append(_cut(piece, s, e))
            j += 1
    return result


def _overlay(base: list[Shift], top: list[Shift]) -> list[Shift]:
    # Both inputs are sorted and disjoint; top pieces replace whatever base has under them.
    if not top:
        return base
    result = list(top)
    j = 0
    for piece in base:
        while j < len(top) and top[j].end <= piece.start:
            j += 1
        cursor, k = piece.start, j
        while k < len(top) and top[k].start < piece.end:
            if top[k].start > cursor:
                result.append(_cut(piece, cursor, top[k].start))
            cursor = max(cursor, top[k].end)
            k += 1
        if cursor < piece.end:
            result.append(_cut(piece, cursor, piece.end))
    return sorted(result, key=lambda s: s.start)


def _merge(pieces: Iterable[Shift]) -> list[Shift]:
    merged: list[Shift] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last is not None and last.end == piece.start and _same_source(last, piece):
            merged[-1] = _cut(last, last.start, piece.end)
        else:
            merged.append(piece)
    return merged


def _same_source(a: Shift, b: Shift) -> bool:
    return (a.person, a.rotation, a.layer, a.override) == (
        b.person,
        b.rotation,
        b.layer,
        b.override,
    )


def _cut(shift: Shift, start: datetime, end: datetime) -> Shift:
    return Shift(shift.person, start, end, shift.rotation, shift.layer, shift.override)


def _horizon(schedule: Schedule) -> timedelta:
    longest = max((r.step for r in schedule.rotations), default=timedelta(days=1))
    for override in schedule.overrides:
        longest = max(longest, override.end - override.start)
    return longest + timedelta(days=1)


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime")


def _require_interval(start: datetime, end: datetime) -> None:
    _require_aware(start, "start")
    _require_aware(end, "end")
