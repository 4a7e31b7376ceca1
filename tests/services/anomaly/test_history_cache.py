"""The in-memory lag window gives exactly the verdicts a cold load gives, after any change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update
from testkit import seeded_database

from services import kv
from services.anomaly import detect, history, scoring, service
from services.anomaly.thresholds import SETTING_KEY, effective_thresholds
from services.db import Database, connect, upgrade_to_head
from services.db.models import Anomaly, ReevaluationMark
from services.ingest import pipeline
from services.seed import ensure_kpis

STEP = timedelta(minutes=15)
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SITE = "SubNetwork=North,ManagedElement=SITE-0001"
CELLS = [f"{SITE},EUtranCellFDD=C{i}" for i in (1, 2, 3)]
PERIODS = 144
LAGS = detect.required_lags(detect.DetectorConfig(), pd.Timedelta(STEP))
KEYS = ["kpi_id", "element_id", "period_end"]
NEW_CELL = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C9"


def series(*, periods: int = PERIODS, spikes: dict | None = None, hold: set | None = None):  # type: ignore[no-untyped-def]
    """Noisy telemetry of three cells, two KPIs; spikes maps (cell, kpi, period) -> added value."""
    rng = np.random.default_rng(3)
    rows = []
    for p in range(periods):
        period = END - STEP * (periods - 1 - p)
        for c, dn in enumerate(CELLS):
            for kpi, level in (("prb_util_dl", 40.0), ("active_users", 120.0)):
                value = level + rng.normal(0, 1.0) + (spikes or {}).get((c, kpi, period), 0.0)
                if not (hold and (c, kpi, period) in hold):
                    rows.append((dn, kpi, period, round(value, 3)))
    return pd.DataFrame(rows, columns=["dn", "kpi", "period_end", "value"])


def fixed_threshold(database: Database) -> None:
    with database.session(write=True) as session:
        kv.set_value(session, SETTING_KEY, {"default": 0.5})


def episodes(database: Database) -> list[Anomaly]:
    with database.session() as session:
        return list(session.scalars(select(Anomaly).order_by(Anomaly.element_id, Anomaly.kpi_id)))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with seeded_database(database_url) as database:
        fixed_threshold(database)
        yield database


def ingest(db: Database, frame: pd.DataFrame, at: datetime) -> None:
    pipeline.ingest_records(db, source="test-feed", records=frame, received_at=at)


def verdicts(db: Database, cache: history.LagCache | None, targets: list[datetime]):  # type: ignore[no-untyped-def]
    now = targets[-1] + timedelta(minutes=16)
    with db.session() as session:
        if cache is not None:
            cache.sync(session, step=STEP, lags=LAGS, since=targets[0] - STEP * max(LAGS))
        scored = scoring.score_periods(
            session,
            targets=targets,
            step=STEP,
            kpis=scoring.kpi_infos(session),
            elements=scoring.element_frame(session),
            thresholds=effective_thresholds(session),
            now=now,
            cache=cache,
        )
    assert not scored.failures
    return scored.verdicts.sort_values(KEYS).reset_index(drop=True), scored.rows_read


def processed(db: Database, *, at: datetime) -> None:
    """What the service's re-evaluation does once it has judged the marked periods again."""
    with db.session(write=True) as session:
        session.execute(
            update(ReevaluationMark)
            .where(ReevaluationMark.processed_at.is_(None))
            .values(processed_at=at)
        )


def assert_same(db: Database, cache: history.LagCache, targets: list[datetime]) -> int:
    cached, cached_rows = verdicts(db, cache, targets)
    cold, _ = verdicts(db, None, targets)
    assert len(cold) > 0
    pd.testing.assert_frame_equal(cached, cold)
    return cached_rows


def test_cached_runs_match_cold_loads_after_late_data_corrections_and_new_elements(
    db: Database,
) -> None:
    start = END - STEP * 20
    held = {(2, "prb_util_dl", start - STEP * 3), (1, "active_users", start - STEP * 7)}
    everything = series(periods=PERIODS)
    now_data = everything[everything["period_end"] <= start]
    ingest(db, series(periods=PERIODS, hold=held).pipe(lambda f: f[f["period_end"] <= start]),
           at=start + timedelta(minutes=10))  # fmt: skip
    cache = history.LagCache()
    first = assert_same(db, cache, [start])
    kpis = cache.cold_loads  # one cold load per KPI
    period = start
    for step in range(1, 8):
        period = period + STEP
        arriving = everything[everything["period_end"] == period]
        ingest(db, arriving, at=period + timedelta(minutes=10))
        if step == 2:  # late data for a period already in the cache
            late = series(periods=PERIODS)
            late = late[
                (late["dn"] == CELLS[2])
                & (late["kpi"] == "prb_util_dl")
                & (late["period_end"] == start - STEP * 3)
            ]
            ingest(db, late.assign(value=95.0), at=period + timedelta(minutes=12))
        if step == 3:  # a correction of a cached value (and of the latest period)
            fixed = now_data[now_data["period_end"].isin([start - STEP, start])].copy()
            fixed["value"] = fixed["value"] + 30.0
            ingest(db, fixed, at=period + timedelta(minutes=12))
        if step == 4:  # a new element appears, with some history of its own
            rng = np.random.default_rng(5)
            stamps = [period - STEP * k for k in range(0, 30)]
            new = pd.DataFrame(
                [(NEW_CELL, "prb_util_dl", s, 40.0 + rng.normal()) for s in stamps],
                columns=["dn", "kpi", "period_end", "value"],
            )
            ingest(db, new, at=period + timedelta(minutes=11))
        rows = assert_same(db, cache, [period])
        processed(db, at=period)
        if step in (1, 5, 6, 7):
            assert rows < first / 5  # only the new columns were read
        if step == 4:
            assert cache.cold_loads == 2 * kpis  # a new element: everything loaded again
    # Bounded: only the columns the next period needs are kept.
    assert all(len(w.loaded) <= len(LAGS) + 1 for w in cache.kpis.values())
    # A chunk of several periods, and going back (cursor reset), match too.
    assert_same(db, cache, [period - STEP * 2, period - STEP, period])
    assert_same(db, cache, [start - STEP * 4])


def test_service_cached_and_cold_give_the_same_episodes(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from test_service import fake_calibrated, fake_detect

    monkeypatch.setattr(scoring.calibration, "calibrated", fake_calibrated)
    monkeypatch.setattr(detect, "detect_series_matrix", fake_detect)
    results = []
    for use_cache in (True, False):
        database = connect(f"sqlite:///{tmp_path / f'cache_{use_cache}.db'}")
        upgrade_to_head(database)
        with database.session(write=True) as session:
            ensure_kpis(session)
        fixed_threshold(database)
        spikes = {(0, "prb_util_dl", END - STEP * k): 45.0 for k in (10, 9, 8)}
        frame = series(spikes=spikes)
        first = END - STEP * 12
        ingest(database, frame[frame["period_end"] <= first], at=first + timedelta(minutes=10))
        for k in range(11, -1, -1):
            period = END - STEP * k
            at = period + timedelta(minutes=10)
            ingest(database, frame[frame["period_end"] == period], at=at)
            if k == 6:  # a correction of a period already judged (and cached)
                fixed = frame[frame["period_end"] == END - STEP * 9].copy()
                fixed["value"] = fixed["value"] - 45.0
                ingest(database, fixed, at=period + timedelta(minutes=11))
            service.run_detection(
                database, now=period + STEP + timedelta(minutes=1), use_cache=use_cache
            )
        results.append(
            [
                (a.element_id, a.kpi_id, a.started_at, a.ended_at, a.peak_at, a.revised)
                for a in episodes(database)
            ]
        )
        database.dispose()
    assert results[0] == results[1]
    assert results[0]


def test_the_cache_lock_is_released_whatever_ends_the_claim() -> None:
    cache = history.LagCache()

    def failing_run() -> None:
        with cache.claimed() as held:
            assert held
            assert cache.lock.locked()
            raise RuntimeError("a run failed")

    with pytest.raises(RuntimeError, match="a run failed"):
        failing_run()
    assert not cache.lock.locked()
    with cache.claimed() as first:
        with cache.claimed() as second:  # a concurrent run in the same process
            assert first
            assert not second
        assert cache.lock.locked()  # the second claim released nothing it did not hold
    assert not cache.lock.locked()


def test_a_failing_run_never_leaves_the_cache_locked(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errors while syncing, evaluating or closing the session release the lock."""
    frame = series(periods=8)
    ingest(db, frame, at=END + timedelta(minutes=10))
    now = END + timedelta(minutes=31)
    cache = service.lag_cache(db)

    def boom(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:  # sync fails: a cold load, lock free afterwards
        patch.setattr(history.LagCache, "sync", boom)
        run = service.run_detection(db, now=now, max_periods=1)
        assert run.periods == 1
    assert not cache.lock.locked()
    with monkeypatch.context() as patch:  # evaluation fails after the cache was synced
        patch.setattr(service, "_evaluate", boom)
        with pytest.raises(RuntimeError):
            service.run_detection(db, now=now)
    assert not cache.lock.locked()
    with monkeypatch.context() as patch:  # the first session fails after the claim
        patch.setattr(service, "complete_until", boom)
        patch.setattr(service, "_cursor", lambda _s: END - STEP * 3)
        with pytest.raises(RuntimeError):
            service.run_detection(db, now=now)
    assert not cache.lock.locked()
    run = service.run_detection(db, now=now)  # and the cache serves the next run
    assert cache.lock.acquire(blocking=False)
    cache.lock.release()
    assert run.failures == []


def test_the_window_is_one_block_allocated_at_full_width_and_reused(db: Database) -> None:
    """Memory: the first load allocates the whole lag window; later runs write into it."""
    start = END - STEP * 10
    everything = series(periods=PERIODS)
    ingest(db, everything[everything["period_end"] <= start], at=start + timedelta(minutes=10))
    cache = history.LagCache()
    assert_same(db, cache, [start])
    assert all(w.values.shape[1] == len(LAGS) + 1 for w in cache.kpis.values())
    # The two KPIs with telemetry: a row per cell, every slot allocated from the start.
    blocks = {k: w.values for k, w in cache.kpis.items() if len(w.elements)}
    assert [b.shape for b in blocks.values()] == [(len(CELLS), len(LAGS) + 1)] * 2
    period = start
    for _ in range(5):
        period += STEP
        ingest(
            db, everything[everything["period_end"] == period], at=period + timedelta(minutes=10)
        )
        assert_same(db, cache, [period])
        assert all(cache.kpis[k].values is block for k, block in blocks.items())
    # The matrices themselves, not only the verdicts, are the cold load's.
    with db.session() as session:
        cache.sync(session, step=STEP, lags=LAGS, since=period - STEP * max(LAGS))
        for kpi_id in blocks:
            cached = cache.load(session, kpi_id=kpi_id, targets=[period], lags=LAGS, step=STEP)
            cold = history.load_lags(session, kpi_id=kpi_id, targets=[period], lags=LAGS, step=STEP)
            pd.testing.assert_frame_equal(cached.matrix, cold.matrix)
            pd.testing.assert_frame_equal(cached.meta, cold.meta)
