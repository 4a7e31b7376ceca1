"""Properties of the rotation maths over random rotations, zones, layers and overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.oncall.rotations import (
    Override,
    Restriction,
    RotationSpec,
    Schedule,
    Shift,
    handoffs,
    oncall_at,
    restriction_windows,
    rotation_shifts,
    shifts,
)

# Zones with DST in either hemisphere, half-hour offsets and a half-hour DST change.
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

instants = st.integers(min_value=0, max_value=3 * 365 * 24 * 4).map(
    lambda q: EPOCH + timedelta(minutes=15 * q)
)
spans = st.integers(min_value=1, max_value=21 * 24).map(lambda h: timedelta(hours=h))


@st.composite
def rotations(draw: st.DrawFn, *, layer: int = 1, restricted: bool | None = None) -> RotationSpec:
    kind = draw(st.sampled_from(["daily", "weekly", "custom"]))
    restriction = None
    if restricted or (restricted is None and draw(st.booleans())):
        restriction = Restriction(
            time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))),
            time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))),
            frozenset(draw(st.sets(st.integers(0, 6), min_size=1))),
        )
    return RotationSpec(
        key=f"r{layer}",
        kind=kind,
        members=tuple(draw(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=5))),
        starts_at=draw(instants),
        tz=draw(st.sampled_from(ZONES)),
        handoff=time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45]))),
        handoff_weekday=draw(st.integers(0, 6)),
        shift_hours=draw(st.sampled_from([1, 4, 8, 12, 36, 72])) if kind == "custom" else None,
        layer=layer,
        restriction=restriction,
    )


def assert_tiles(found: list[Shift], start: datetime, end: datetime) -> None:
    assert found, "expected someone on call"
    assert found[0].start == start
    assert found[-1].end == end
    for shift, following in itertools.pairwise(found):
        assert shift.start < shift.end
        assert shift.end == following.start  # no gap, no overlap


def assert_disjoint_sorted(found: list[Shift], start: datetime, end: datetime) -> None:
    for shift in found:
        assert start <= shift.start < shift.end <= end
    for shift, following in itertools.pairwise(found):
        assert shift.end <= following.start


@FAST
@given(rotation=rotations(restricted=False), start=instants, span=spans)
def test_unrestricted_shifts_tile_the_interval(
    rotation: RotationSpec, start: datetime, span: timedelta
) -> None:
    start = max(start, rotation.starts_at)
    found = rotation_shifts(rotation, start=start, end=start + span)
    assert_tiles(found, start, start + span)
    zone = ZoneInfo(rotation.tz)
    if rotation.kind != "custom":
        # Every hand-off happens at the local hand-off time (or the hour a DST gap moved it to).
        for shift in found[1:]:
            local = shift.start.astimezone(zone)
            assert local.minute == rotation.handoff.minute or rotation.tz == "Australia/Lord_Howe"
            if rotation.kind == "weekly":
                assert local.weekday() == rotation.handoff_weekday


@FAST
@given(rotation=rotations(restricted=True), start=instants, span=spans)
def test_restricted_shifts_stay_inside_their_windows(
    rotation: RotationSpec, start: datetime, span: timedelta
) -> None:
    found = rotation_shifts(rotation, start=start, end=start + span)
    assert_disjoint_sorted(found, start, start + span)
    unrestricted = RotationSpec(**{**rotation.__dict__, "restriction": None})
    base = rotation_shifts(unrestricted, start=start, end=start + span)
    windows = restriction_windows(
        rotation.restriction, tz=rotation.tz, start=start, end=start + span
    )
    for shift in found:  # inside one active window...
        assert any(s <= shift.start and shift.end <= e for s, e in windows)
    for shift in found:  # ...and part of the same person's unrestricted shift
        assert any(
            b.person == shift.person and b.start <= shift.start and shift.end <= b.end for b in base
        )


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    n = draw(st.integers(1, 3))
    layers = [draw(rotations(layer=layer)) for layer in range(1, n + 1)]
    overrides = tuple(
        Override(draw(st.sampled_from("xyz")), at, at + draw(spans), key=i)
        for i, at in enumerate(draw(st.lists(instants, max_size=3)))
    )
    return Schedule(tuple(draw(st.permutations(layers))), overrides)


def brute_force(schedule: Schedule, at: datetime) -> str | int | None:
    for override in reversed(schedule.overrides):
        if override.start <= at < override.end:
            return override.person
    for rotation in sorted(schedule.rotations, key=lambda r: -r.layer):
        for shift in rotation_shifts(rotation, start=at, end=at + timedelta(seconds=1)):
            return shift.person
    return None


@FAST
@given(
    schedule=schedules(), start=instants, span=spans, probes=st.lists(st.floats(0, 1), max_size=6)
)
def test_final_schedule_matches_layer_rules_pointwise(
    schedule: Schedule, start: datetime, span: timedelta, probes: list[float]
) -> None:
    end = start + span
    found = shifts(schedule, start=start, end=end)
    assert_disjoint_sorted(found, start, end)
    if any(r.restriction is None and r.starts_at <= start for r in schedule.rotations):
        assert_tiles(found, start, end)
    for fraction in probes:
        at = start + timedelta(seconds=int(span.total_seconds() * fraction))
        if at >= end:
            continue
        expected = brute_force(schedule, at)
        in_found = next((s.person for s in found if s.start <= at < s.end), None)
        assert in_found == expected
        current = oncall_at(schedule, at=at)
        assert (current.person if current else None) == expected
    changes = handoffs(schedule, start=start, end=end)
    for change in changes:
        assert start < change.at < end
        assert change.previous != change.next
    assert [c.at for c in changes] == sorted({c.at for c in changes})
