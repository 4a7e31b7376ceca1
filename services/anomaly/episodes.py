"""Episode formation: consecutive anomalous periods of one series become one episode.

Pure functions over plain values. A series is (element_id, kpi_id). An episode starts at
the first anomalous period end, its peak is the period with the largest |score|, and it
ends (ended_at = its last anomalous period end) once `end_after` periods have passed
without the series being anomalous again; until then it is ongoing (ended_at None).
Periods are identified by their end, as measurements are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from services.anomaly.calibration import EpisodeTable, load_episode_table

# Quiet periods after which an episode is over; short dips inside an incident stay one episode.
DEFAULT_END_AFTER = 4

SeriesKey = tuple[int, int]


@dataclass(frozen=True)
class PeriodResult:
    """The detector's verdict on one series for one period, after data-quality factors."""

    period_end: datetime
    observed: float
    expected: float
    band_low: float
    band_high: float
    score: float
    confidence: float
    anomalous: bool


@dataclass
class EpisodeState:
    """An episode as the service tracks it between periods (persisted as an Anomaly row).

    `confidence` is the evidence: the highest period confidence in the episode's own
    direction. What the episode reports is `episode_confidence` of it (calibrated for
    episodes as a whole).
    """

    element_id: int
    kpi_id: int
    started_at: datetime
    last_anomalous_at: datetime
    peak: PeriodResult
    confidence: float
    periods: int = 1
    ended_at: datetime | None = None
    last_evaluated_at: datetime | None = None
    anomaly_id: int | None = None
    related_kpis: set[str] = field(default_factory=set)
    group_key: str | None = None
    flags: set[str] = field(default_factory=set)
    history_points: int = 0
    revisions: list[dict[str, Any]] = field(default_factory=list)
    revised: bool = False
    changed: bool = True
    # Last period deviating in the episode's own direction: where the episode really ends.
    last_deviation_at: datetime | None = None

    @property
    def key(self) -> SeriesKey:
        return (self.element_id, self.kpi_id)

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None

    def covers(self, period: datetime) -> bool:
        """True when `period` lies within the episode's anomalous span."""
        # The last anomalous period is never before the reported end (it may be the swing back).
        end = self.last_anomalous_at
        if self.ended_at is not None:
            end = max(end, self.ended_at)
        return self.started_at <= period <= end


def episode_confidence(
    state: EpisodeState, kpi_name: str, table: EpisodeTable | None = None
) -> float:
    """P(the episode overlaps a real incident): peak period confidence, duration, corroboration.

    Duration counts the episode's anomalous periods so far, so an ongoing episode is judged
    on what has been seen; it rises as the deviation persists or other KPIs join.
    """
    others = len(state.related_kpis - {kpi_name})
    table = table or load_episode_table()
    return float(table.confidence(state.confidence, state.periods, others)[0])


def open_episode(key: SeriesKey, result: PeriodResult) -> EpisodeState:
    """A new episode whose first anomalous period is `result`."""
    return EpisodeState(
        element_id=key[0],
        kpi_id=key[1],
        started_at=result.period_end,
        last_anomalous_at=result.period_end,
        peak=result,
        confidence=result.confidence,
        last_evaluated_at=result.period_end,
        last_deviation_at=result.period_end,
    )


def extend(state: EpisodeState, result: PeriodResult) -> None:
    """Add one more anomalous period; the peak moves when the deviation is larger.

    Only deviations in the episode's own direction (that of its peak) can become the peak
    or raise its confidence: the jump back to normal after a level-adapting baseline
    caught up is part of the episode, not what it is about.
    """
    state.periods += 1
    state.last_anomalous_at = max(state.last_anomalous_at, result.period_end)
    state.started_at = min(state.started_at, result.period_end)
    if _same_direction(result.score, state.peak.score):
        state.last_deviation_at = max(
            state.last_deviation_at or result.period_end, result.period_end
        )
        state.confidence = max(state.confidence, result.confidence)
        if abs(result.score) > abs(state.peak.score):
            state.peak = result
    state.changed = True


def _same_direction(a: float, b: float) -> bool:
    return (a >= 0) == (b >= 0) or a != a or b != b  # NaN never blocks


def end_of(state: EpisodeState) -> datetime:
    """The end an ended episode reports: its last period deviating in its own direction."""
    return state.last_deviation_at or state.last_anomalous_at


def is_over(state: EpisodeState, period: datetime, *, step: timedelta, end_after: int) -> bool:
    """True once `end_after` periods have passed since the last anomalous one."""
    return period - state.last_anomalous_at >= step * end_after


def advance(
    episodes: dict[SeriesKey, EpisodeState],
    results: Mapping[SeriesKey, PeriodResult],
    *,
    period: datetime,
    step: timedelta,
    end_after: int = DEFAULT_END_AFTER,
) -> list[EpisodeState]:
    """Apply one period's results to the ongoing episodes (by series); returns ended ones.

    `episodes` is updated in place: anomalous series extend or open an episode; ongoing
    episodes with `end_after` quiet periods behind them end. Re-applying a period an
    episode already saw changes nothing, so re-running a period is harmless.
    """
    ended: list[EpisodeState] = []
    for key, result in results.items():
        if not result.anomalous:
            continue
        state = episodes.get(key)
        if state is None:
            episodes[key] = open_episode(key, result)
        elif state.last_evaluated_at is None or period > state.last_evaluated_at:
            extend(state, result)
    for key, state in list(episodes.items()):
        if state.last_evaluated_at is None or period > state.last_evaluated_at:
            state.last_evaluated_at = period
        if is_over(state, period, step=step, end_after=end_after):
            state.ended_at = end_of(state)
            state.changed = True
            ended.append(state)
            del episodes[key]
    return ended


def form_episodes(
    frame: pd.DataFrame,
    *,
    step: timedelta,
    end_after: int = DEFAULT_END_AFTER,
    until: datetime | None = None,
) -> list[EpisodeState]:
    """Episodes of a whole verdict table (columns of PeriodResult plus element_id, kpi_id).

    Episodes still within `end_after` periods of `until` (default: the last period in the
    table) stay ongoing.
    """
    ongoing: dict[SeriesKey, EpisodeState] = {}
    finished: list[EpisodeState] = []
    if frame.empty:
        return finished
    for period, part in frame.sort_values("period_end").groupby("period_end", sort=True):
        stamp = pd.Timestamp(period).to_pydatetime()
        finished += advance(ongoing, results_at(part), period=stamp, step=step, end_after=end_after)
    last = until or pd.Timestamp(frame["period_end"].max()).to_pydatetime()
    for key, state in list(ongoing.items()):
        if is_over(state, last, step=step, end_after=end_after):
            state.ended_at = end_of(state)
            finished.append(state)
            del ongoing[key]
    return sorted([*finished, *ongoing.values()], key=lambda s: (s.started_at, s.key))


def results_at(part: pd.DataFrame) -> dict[SeriesKey, PeriodResult]:
    """PeriodResults by series from rows of one period."""
    out: dict[SeriesKey, PeriodResult] = {}
    columns = ["element_id", "kpi_id", *PeriodResult.__dataclass_fields__]
    for row in part[columns].itertuples(index=False, name=None):
        element_id, kpi_id, period_end, *values = row
        stamp = pd.Timestamp(period_end).to_pydatetime()
        out[(int(element_id), int(kpi_id))] = PeriodResult(
            stamp, *(float(v) for v in values[:-1]), bool(values[-1])
        )
    return out


def group_anchor(element: Mapping[str, Any], parent: Mapping[str, Any] | None) -> str:
    """What groups simultaneous episodes: a cell's site, a link's router, else the element."""
    kind = element["element_type"]
    if kind == "cell" and parent is not None:
        return f"site:{parent['dn']}"
    if kind == "site":
        return f"site:{element['dn']}"
    if kind == "link" and parent is not None:
        return f"router:{parent['dn']}"
    if kind == "router":
        return f"router:{element['dn']}"
    return f"{kind}:{element['dn']}"


@dataclass(frozen=True)
class GroupSpan:
    """An existing group on one anchor: its key and the time it spans."""

    group_key: str
    anchor: str
    started_at: datetime
    until: datetime | None  # None while any member is ongoing


def group_key_for(
    anchor: str, started_at: datetime, groups: Iterable[GroupSpan], *, step: timedelta
) -> str:
    """Join a group on the same anchor that is still running (or ended within one period)."""
    for group in sorted(groups, key=lambda g: g.started_at):
        if group.anchor != anchor or group.started_at > started_at:
            continue
        if group.until is None or started_at <= group.until + step:
            return group.group_key
    return f"{anchor}:{started_at.isoformat()}"


def with_revision(state: EpisodeState, result: PeriodResult) -> tuple[EpisodeState, str | None]:
    """Apply a re-evaluated period to an episode covering it; the text says what changed."""
    period = result.period_end
    if result.anomalous:
        if period == state.peak.period_end and _differs(result, state.peak):
            revised = replace(
                state, peak=result, confidence=max(state.confidence, result.confidence)
            )
            return revised, "the peak period was re-evaluated with late or corrected data"
        if abs(result.score) > abs(state.peak.score):
            revised = replace(
                state, peak=result, confidence=max(state.confidence, result.confidence)
            )
            return revised, "late or corrected data made this period the new peak"
        return state, None
    if state.started_at == period == state.last_anomalous_at:
        return (
            replace(state, peak=result),
            "with late or corrected data this period is no longer outside the expected band",
        )
    if period == state.peak.period_end:
        return (
            replace(state, peak=result),
            "the peak period is within the expected band after late or corrected data",
        )
    return state, None


def _differs(a: PeriodResult, b: PeriodResult) -> bool:
    return abs(a.observed - b.observed) > 1e-9 or abs(a.score - b.score) > 1e-6
