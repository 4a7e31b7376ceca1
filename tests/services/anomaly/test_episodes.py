"""Episode formation: consecutive anomalous periods become one episode; groups by site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from services.anomaly.episodes import (
    EpisodeState,
    GroupSpan,
    PeriodResult,
    advance,
    form_episodes,
    group_anchor,
    group_key_for,
    open_episode,
    with_revision,
)

STEP = timedelta(minutes=15)
T0 = datetime(2026, 11, 17, 12, 0, tzinfo=UTC)


def verdicts(flags: str, *, element: int = 1, kpi: int = 1, scores: list[float] | None = None):
    """A verdict table from a string: 'x' anomalous, '.' normal, one character per period."""
    rows = []
    for i, flag in enumerate(flags):
        score = (scores[i] if scores else 6.0) if flag == "x" else 0.5
        rows.append(
            {
                "element_id": element,
                "kpi_id": kpi,
                "period_end": T0 + STEP * i,
                "observed": 10.0 + score,
                "expected": 10.0,
                "band_low": 7.0,
                "band_high": 13.0,
                "score": score,
                "confidence": 0.9 if flag == "x" else 0.05,
                "anomalous": flag == "x",
            }
        )
    return pd.DataFrame(rows)


def test_consecutive_anomalous_periods_are_one_episode_with_start_peak_and_end() -> None:
    frame = verdicts("..xxx......", scores=[0, 0, 5.0, 9.0, 6.0, 0, 0, 0, 0, 0, 0])
    [episode] = form_episodes(frame, step=STEP, end_after=4)
    assert episode.started_at == T0 + 2 * STEP
    assert episode.peak.period_end == T0 + 3 * STEP
    assert episode.peak.score == 9.0
    assert episode.ended_at == T0 + 4 * STEP
    assert episode.periods == 3


def test_a_short_dip_inside_an_incident_does_not_split_the_episode() -> None:
    [episode] = form_episodes(verdicts("xx..xx......"), step=STEP, end_after=4)
    assert episode.periods == 4
    assert episode.ended_at == T0 + 5 * STEP


def test_enough_quiet_periods_end_the_episode_and_a_new_one_starts_later() -> None:
    first, second = form_episodes(verdicts("xx....xx"), step=STEP, end_after=4)
    assert first.ended_at == T0 + STEP
    assert second.started_at == T0 + 6 * STEP
    assert second.ongoing  # the table ends before four quiet periods followed


def test_end_after_is_configurable() -> None:
    assert len(form_episodes(verdicts("x..x...."), step=STEP, end_after=2)) == 2
    assert len(form_episodes(verdicts("x..x...."), step=STEP, end_after=3)) == 1


def test_episode_is_ongoing_until_enough_quiet_periods_pass() -> None:
    [episode] = form_episodes(verdicts("..xx.."), step=STEP, end_after=4)
    assert episode.ended_at is None


def test_series_form_episodes_independently() -> None:
    frame = pd.concat([verdicts("xx......"), verdicts("...xx...", element=2)])
    episodes = form_episodes(frame, step=STEP, end_after=4)
    assert [(e.element_id, e.started_at) for e in episodes] == [
        (1, T0),
        (2, T0 + 3 * STEP),
    ]


def test_reapplying_a_period_changes_nothing() -> None:
    frame = verdicts("xxx")
    ongoing: dict = {}
    for period, part in frame.groupby("period_end"):
        results = {
            (1, 1): PeriodResult(
                period.to_pydatetime(), *part.iloc[0][["observed", "expected", "band_low",
                "band_high", "score", "confidence"]].tolist(), True
            )
        }  # fmt: skip
        advance(ongoing, results, period=period.to_pydatetime(), step=STEP)
    state = ongoing[(1, 1)]
    before = (state.periods, state.last_anomalous_at, state.peak)
    replay = PeriodResult(T0 + STEP, 30.0, 10.0, 7.0, 13.0, 20.0, 0.99, True)
    advance(ongoing, {(1, 1): replay}, period=T0 + STEP, step=STEP)
    assert (state.periods, state.last_anomalous_at, state.peak) == before


def test_empty_table_gives_no_episodes() -> None:
    assert form_episodes(verdicts("")[0:0], step=STEP) == []


def test_group_anchor_uses_the_site_for_cells_and_the_router_for_links() -> None:
    site = {"dn": "SubNetwork=N,ManagedElement=SITE-1", "element_type": "site"}
    cell = {"dn": site["dn"] + ",EUtranCellFDD=C1", "element_type": "cell"}
    router = {"dn": "SubNetwork=Transport,ManagedElement=AGG-1", "element_type": "router"}
    link = {"dn": router["dn"] + ",Link=SITE-1", "element_type": "link"}
    core = {"dn": "SubNetwork=Core,ManagedElement=AMF-01", "element_type": "core"}
    assert group_anchor(cell, site) == f"site:{site['dn']}"
    assert group_anchor(site, None) == f"site:{site['dn']}"
    assert group_anchor(link, router) == f"router:{router['dn']}"
    assert group_anchor(router, None) == f"router:{router['dn']}"
    assert group_anchor(core, None) == f"core:{core['dn']}"


def test_simultaneous_episodes_on_one_site_share_a_group_key() -> None:
    anchor = "site:SITE-1"
    first = group_key_for(anchor, T0, [], step=STEP)
    assert first == f"{anchor}:{T0.isoformat()}"
    running = [GroupSpan(first, anchor, T0, None)]
    assert group_key_for(anchor, T0 + STEP, running, step=STEP) == first
    # Another site, or the same site long after the group ended, starts a new group.
    assert group_key_for("site:SITE-2", T0 + STEP, running, step=STEP) != first
    ended = [GroupSpan(first, anchor, T0, T0 + STEP)]
    assert group_key_for(anchor, T0 + 2 * STEP, ended, step=STEP) == first
    assert group_key_for(anchor, T0 + 5 * STEP, ended, step=STEP) != first


def state_with_peak(score: float, at: datetime = T0) -> EpisodeState:
    return open_episode((1, 1), PeriodResult(at, 10 + score, 10, 7, 13, score, 0.9, True))


def test_revision_that_moves_the_peak_says_so() -> None:
    state = state_with_peak(6.0)
    later = PeriodResult(T0, 30.0, 10.0, 7.0, 13.0, 20.0, 0.95, True)
    revised, text = with_revision(state, later)
    assert revised.peak.score == 20.0
    assert text
    assert "peak" in text


def test_revision_that_clears_a_single_period_episode_says_so() -> None:
    state = state_with_peak(6.0)
    normal = PeriodResult(T0, 10.2, 10.0, 7.0, 13.0, 0.2, 0.05, False)
    revised, text = with_revision(state, normal)
    assert text
    assert "no longer" in text
    assert revised.peak.score == 0.2


def test_revision_with_the_same_values_changes_nothing() -> None:
    state = state_with_peak(6.0)
    same, text = with_revision(state, state.peak)
    assert text is None
    assert same is state


def test_the_swing_back_to_normal_never_becomes_the_peak() -> None:
    # A baseline that adopted the raised level scores the return to normal as a big drop.
    frame = verdicts("xxx.....", scores=[6.0, 5.0, -30.0, 0, 0, 0, 0, 0])
    [episode] = form_episodes(frame, step=STEP, end_after=4)
    assert episode.peak.score == 6.0
    assert episode.ended_at == T0 + STEP  # the swing back is not part of the deviation
    assert episode.periods == 3


def test_an_episode_covers_its_anomalous_span_only() -> None:
    state = state_with_peak(6.0)
    assert state.covers(T0)
    assert not state.covers(T0 + STEP)  # ongoing: nothing after its last anomalous period
    assert not state.covers(T0 - STEP)
    state.last_anomalous_at = T0 + 2 * STEP
    state.ended_at = T0 + STEP
    assert state.covers(T0 + 2 * STEP)  # the swing back stays part of the episode
