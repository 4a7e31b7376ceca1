"""Rotation maths: hand-offs, layers, restrictions, overrides, time zones and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.errors import InvalidInput
from services.oncall.rotations import (
    Handoff,
    Override,
    Restriction,
    RotationSpec,
    Schedule,
    handoff_instants,
    handoffs,
    oncall_at,
    parse_hhmm,
    parse_restriction,
    person_runs,
    restriction_windows,
    rotation_shifts,
    shifts,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(members: tuple[str, ...] = ("a", "b", "c"), **kw: object) -> RotationSpec:
    base: dict[str, object] = {
        "key": "daily",
        "kind": "daily",
        "members": members,
        "starts_at": utc(2026, 1, 1),
        "tz": "Europe/Berlin",
        "handoff": time(9),
    }
    return RotationSpec(**{**base, **kw})  # type: ignore[arg-type]


def local_starts(found: list, zone: ZoneInfo) -> list[str]:  # type: ignore[type-arg]
    return [s.start.astimezone(zone).strftime("%a %H:%M") for s in found]


def test_daily_rotation_hands_off_at_local_time_in_turn() -> None:
    # Members take turns from starts_at (Jan 1, 01:00 local): a until Jan 1 09:00, then b, c, a...
    found = rotation_shifts(daily(), start=utc(2026, 1, 5), end=utc(2026, 1, 9))
    assert [s.person for s in found] == ["b", "c", "a", "b", "c"]
    assert found[0].start == utc(2026, 1, 5)  # clipped to the interval
    assert [s.start for s in found[1:]] == [utc(2026, 1, d, 8) for d in (5, 6, 7, 8)]
    assert all(s.duration == timedelta(days=1) for s in found[1:-1])
    schedule = Schedule((daily(),))
    assert oncall_at(schedule, at=utc(2025, 12, 31, 23, 59)) is None  # before starts_at
    first = oncall_at(schedule, at=utc(2026, 1, 1))
    assert (first.person, first.start, first.end) == ("a", utc(2026, 1, 1), utc(2026, 1, 1, 8))
    assert oncall_at(schedule, at=utc(2026, 1, 1, 8)).person == "b"


def test_weekly_rotation_hands_off_on_its_weekday() -> None:
    weekly = daily(key="w", kind="weekly", handoff_weekday=2, handoff=time(10))
    found = rotation_shifts(weekly, start=utc(2026, 1, 1), end=utc(2026, 1, 29))
    # 2026-01-01 is a Thursday: the hand-off before it was Wednesday 2025-12-31 10:00 CET.
    assert [s.person for s in found] == ["a", "b", "c", "a", "b"]
    assert local_starts(found[1:], BERLIN) == ["Wed 10:00"] * 4
    assert found[1].start == utc(2026, 1, 7, 9)
    assert all(s.duration == timedelta(days=7) for s in found[1:-1])


def test_custom_twelve_hour_shifts_keep_local_hand_off_times() -> None:
    custom = daily(
        kind="custom", shift_hours=12, handoff=time(7), tz="Europe/London", members=("x", "y")
    )
    found = rotation_shifts(custom, start=utc(2026, 3, 28), end=utc(2026, 3, 31))
    london = ZoneInfo("Europe/London")
    assert {s.start.astimezone(london).strftime("%H:%M") for s in found[1:]} == {"07:00", "19:00"}
    # x took the first shift (from Dec 31 19:00), so the 07:00 shifts are y's.
    assert [s.person for s in found[1:]] == ["y", "x"] * 3
    # Europe/London springs forward on 2026-03-29: the night shift across it is 11 hours.
    night = next(s for s in found if s.start == utc(2026, 3, 28, 19))
    assert night.duration == 11 * H


@pytest.mark.parametrize(
    ("tz", "short_day", "long_day"),
    [
        # Europe/Berlin: spring forward 2026-03-29, fall back 2026-10-25.
        ("Europe/Berlin", (2026, 3, 28), (2026, 10, 24)),
        # America/New_York: spring forward 2026-03-08, fall back 2026-11-01.
        ("America/New_York", (2026, 3, 7), (2026, 10, 31)),
    ],
)
def test_daily_hand_off_stays_at_local_nine_across_dst(
    tz: str, short_day: tuple[int, int, int], long_day: tuple[int, int, int]
) -> None:
    zone = ZoneInfo(tz)
    rotation = daily(tz=tz)
    for day, expected in ((short_day, 23 * H), (long_day, 25 * H)):
        nine = datetime(*day, 9, tzinfo=zone)
        start, end = ((nine + timedelta(days=d)).astimezone(UTC) for d in (-2, 3))  # local days
        found = rotation_shifts(rotation, start=start, end=end)
        assert {s.start.astimezone(zone).time() for s in found} == {time(9)}
        assert [s.duration for s in found] == [24 * H, 24 * H, expected, 24 * H, 24 * H]


def test_weekly_shift_across_fall_back_is_one_hour_longer() -> None:
    weekly = daily(kind="weekly", handoff_weekday=0, tz="America/New_York")
    found = rotation_shifts(weekly, start=utc(2026, 10, 20), end=utc(2026, 11, 10))
    across = next(
        s for s in found if s.start.astimezone(NEW_YORK).date().isoformat() == "2026-10-26"
    )
    assert across.duration == 7 * 24 * H + H
    assert across.end.astimezone(NEW_YORK).strftime("%a %H:%M") == "Mon 09:00"


def test_hand_off_in_skipped_and_repeated_hours() -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin and happens twice on 2026-10-25.
    rotation = daily(handoff=time(2, 30))
    spring = handoff_instants(rotation, start=utc(2026, 3, 28), end=utc(2026, 3, 31))
    assert spring == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    autumn = handoff_instants(rotation, start=utc(2026, 10, 24), end=utc(2026, 10, 27))
    # The first 02:30 (still summer time) is the hand-off; nothing happens twice.
    assert autumn == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_time_zones_of_rotations_are_independent() -> None:
    tokyo = daily(key="t", tz="Asia/Tokyo", members=("t1", "t2"))
    ny = daily(key="n", tz="America/New_York", members=("n1", "n2"))
    assert handoff_instants(tokyo, start=utc(2026, 6, 1), end=utc(2026, 6, 2)) == [
        utc(2026, 6, 1, 0)
    ]
    assert handoff_instants(ny, start=utc(2026, 6, 1), end=utc(2026, 6, 2)) == [utc(2026, 6, 1, 13)]


def test_higher_layer_wins_where_it_has_someone() -> None:
    base = daily(key="base", members=("night",))
    desk = daily(
        key="desk",
        members=("day",),
        layer=2,
        restriction=Restriction(time(8), time(18), frozenset(range(5))),
    )
    schedule = Schedule((desk, base))  # order given does not matter, the layer number does
    # Friday 2026-01-09 and the weekend after it.
    found = shifts(schedule, start=utc(2026, 1, 9), end=utc(2026, 1, 12))
    runs = [(s.person, s.start, s.end) for s in person_runs(found)]
    assert runs == [
        ("night", utc(2026, 1, 9), utc(2026, 1, 9, 7)),
        ("day", utc(2026, 1, 9, 7), utc(2026, 1, 9, 17)),
        ("night", utc(2026, 1, 9, 17), utc(2026, 1, 12)),
    ]
    assert oncall_at(schedule, at=utc(2026, 1, 9, 12)).layer == 2
    assert oncall_at(schedule, at=utc(2026, 1, 10, 12)).person == "night"  # Saturday


def test_restricted_layer_alone_leaves_gaps_and_handoffs_to_nobody() -> None:
    desk = daily(members=("day",), restriction=Restriction(time(8), time(18)))
    schedule = Schedule((desk,))
    assert oncall_at(schedule, at=utc(2026, 1, 9, 20)) is None
    changes = handoffs(schedule, start=utc(2026, 1, 9), end=utc(2026, 1, 10))
    assert changes == [
        Handoff(utc(2026, 1, 9, 7), None, "day"),
        Handoff(utc(2026, 1, 9, 17), "day", None),
    ]


def test_overnight_restriction_and_weekday_of_window_start() -> None:
    nights = Restriction(time(18), time(8), frozenset({4}))  # Friday 18:00 to Saturday 08:00
    windows = restriction_windows(
        nights, tz="Europe/Berlin", start=utc(2026, 1, 5), end=utc(2026, 1, 12)
    )
    assert windows == [(utc(2026, 1, 9, 17), utc(2026, 1, 10, 7))]
    whole_days = Restriction(weekdays=frozenset({5, 6}))
    weekend = restriction_windows(
        whole_days, tz="Europe/Berlin", start=utc(2026, 1, 5), end=utc(2026, 1, 12)
    )
    assert weekend == [(utc(2026, 1, 9, 23), utc(2026, 1, 11, 23))]  # merged into one


def test_restriction_follows_local_hours_across_dst() -> None:
    desk = Restriction(time(8), time(18))
    windows = restriction_windows(
        desk, tz="Europe/Berlin", start=utc(2026, 3, 27), end=utc(2026, 3, 31)
    )
    local = [(s.astimezone(BERLIN).hour, e.astimezone(BERLIN).hour) for s, e in windows]
    assert local == [(8, 18)] * 4
    assert windows[0][0] == utc(2026, 3, 27, 7)
    assert windows[-1][0] == utc(2026, 3, 30, 6)


def test_overrides_win_over_layers_and_later_overrides_win() -> None:
    base = daily(members=("a", "b"))
    top = daily(key="top", members=("t",), layer=2)
    overrides = (
        Override("cover", utc(2026, 1, 6, 12), utc(2026, 1, 6, 18), key=1),
        Override("late", utc(2026, 1, 6, 16), utc(2026, 1, 6, 20), key=2),
    )
    schedule = Schedule((base, top), overrides)
    found = shifts(schedule, start=utc(2026, 1, 6), end=utc(2026, 1, 7))
    assert [(s.person, s.start.hour, s.end.hour) for s in found] == [
        ("t", 0, 12),
        ("cover", 12, 16),
        ("late", 16, 20),
        ("t", 20, 0),
    ]
    assert found[1].override == 1
    assert found[2].override == 2
    assert oncall_at(schedule, at=utc(2026, 1, 6, 13)) == found[1]


def test_oncall_at_returns_the_whole_shift() -> None:
    weekly = daily(kind="weekly", handoff_weekday=0)
    shift = oncall_at(Schedule((weekly,)), at=utc(2026, 1, 14, 3))
    assert (shift.start, shift.end) == (utc(2026, 1, 12, 8), utc(2026, 1, 19, 8))
    long_cover = Override("z", utc(2026, 1, 1), utc(2026, 2, 1))
    covered = oncall_at(Schedule((weekly,), (long_cover,)), at=utc(2026, 1, 14))
    assert (covered.person, covered.start, covered.end) == ("z", utc(2026, 1, 1), utc(2026, 2, 1))


def test_empty_rotation_and_interval_edges() -> None:
    assert rotation_shifts(daily(members=()), start=utc(2026, 1, 1), end=utc(2026, 1, 2)) == []
    assert shifts(Schedule(), start=utc(2026, 1, 1), end=utc(2026, 1, 2)) == []
    later = daily(starts_at=utc(2026, 2, 1))
    assert rotation_shifts(later, start=utc(2026, 1, 1), end=utc(2026, 1, 2)) == []


def test_validation_and_parsing() -> None:
    with pytest.raises(InvalidInput):
        daily(kind="hourly")
    with pytest.raises(InvalidInput):
        daily(kind="custom", shift_hours=None)
    with pytest.raises(InvalidInput):
        daily(tz="Mars/Olympus")
    with pytest.raises(InvalidInput):
        daily(starts_at=datetime(2026, 1, 1))  # naive
    with pytest.raises(InvalidInput):
        Override("a", utc(2026, 1, 2), utc(2026, 1, 1))
    with pytest.raises(InvalidInput):
        parse_hhmm("9am")
    assert parse_hhmm("23:59") == time(23, 59)
    assert parse_restriction({}) is None
    assert parse_restriction({"from": "08:00", "to": "18:00", "weekdays": [0, 1]}) == Restriction(
        time(8), time(18), frozenset({0, 1})
    )
    with pytest.raises(InvalidInput):
        parse_restriction({"weekdays": [7]})
