"""Daily busy-hour rollup from stored measurements, and the simulator archive, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, select, update
from testkit import (
    drop_postgres_database,
    fresh_postgres_database,
    seeded_database,
    skip_or_fail_without_postgres,
)

from services.db import Database
from services.db.models import DailyAggregate, Element, Kpi, Measurement
from services.forecast import rollup
from services.forecast.aggregate import busy_hour_daily
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.seed import ensure_simulator_sources, register_topology

BERLIN = ZoneInfo("Europe/Berlin")
STEP = timedelta(minutes=15)
FIRST_DAY = date(2026, 11, 2)  # a Monday; Berlin is UTC+1 in November
DAYS = 3
# 10:00 local on the fourth day: three complete days, the fourth still running.
NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per backend for the module (creating one per test costs seconds)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('rollup') / 'beacon.db'}"
    else:
        skip_or_fail_without_postgres()
        url = fresh_postgres_database("beacon_rollup")
    with seeded_database(url) as database:
        yield database
    if request.param == "postgres":
        drop_postgres_database(url)


@pytest.fixture
def db(shared_db: Database) -> Iterator[Database]:
    """The module's database, emptied of what a test adds."""
    yield shared_db
    with shared_db.session(write=True) as session:
        for model in (DailyAggregate, Measurement, Element):
            session.execute(delete(model))


def _kpi_id(db: Database, name: str) -> int:
    with db.session() as session:
        return session.scalar(select(Kpi.id).where(Kpi.name == name))  # type: ignore[return-value]


def _add_elements(db: Database, names: list[str]) -> list[int]:
    with db.session(write=True) as session:
        rows = [
            Element(
                dn=f"SubNetwork=T,ManagedElement={n}", name=n, element_type="cell", domain="RAN"
            )
            for n in names
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def _local_day_ends(first: date, days: int) -> pd.DatetimeIndex:
    start = pd.Timestamp(first).tz_localize(BERLIN).tz_convert("UTC")
    return pd.date_range(start + STEP, start + pd.Timedelta(days=days), freq=STEP)


def _profile(ends: pd.DatetimeIndex, scale: float) -> np.ndarray:
    """A daily shape peaking at 20:00 local, different per day so days are told apart."""
    local = ends.tz_convert(BERLIN) - STEP
    hour = local.hour + local.minute / 60
    return scale * (1 + np.exp(-((hour - 20.0) ** 2) / 4)) * (1 + 0.1 * local.day_of_week)


def _store(db: Database, element_id: int, kpi_id: int, ends, values, **extra) -> None:  # type: ignore[no-untyped-def]
    with db.session(write=True) as session:
        session.add_all(
            Measurement(
                element_id=element_id,
                kpi_id=kpi_id,
                period_end=moment.to_pydatetime(),
                value=float(value),
                **extra,
            )
            for moment, value in zip(ends, values, strict=True)
        )


def _daily(db: Database) -> pd.DataFrame:
    with db.session() as session:
        rows = session.execute(
            select(
                DailyAggregate.element_id,
                DailyAggregate.kpi_id,
                DailyAggregate.day,
                DailyAggregate.busy_hour_value,
                DailyAggregate.busy_hour,
                DailyAggregate.samples,
                DailyAggregate.source,
            ).order_by(DailyAggregate.element_id, DailyAggregate.kpi_id, DailyAggregate.day)
        ).all()
    return pd.DataFrame(
        rows,
        columns=[
            "element_id",
            "kpi_id",
            "day",
            "busy_hour_value",
            "busy_hour",
            "samples",
            "source",
        ],
    )


def test_rollup_stores_complete_local_days_as_aggregated(db: Database) -> None:
    cells = _add_elements(db, ["A", "B"])
    prb, users = _kpi_id(db, "prb_util_dl"), _kpi_id(db, "active_users")
    ends = _local_day_ends(FIRST_DAY, DAYS + 1)
    ends = ends[ends <= pd.Timestamp(NOW)]  # the running day is only partly there
    frames = []
    for element, kpi, scale in [(cells[0], prb, 30.0), (cells[1], prb, 20.0), (cells[0], users, 5)]:
        values = _profile(ends, scale)
        _store(db, element, kpi, ends, values)
        frames.append(
            pd.DataFrame(
                {"element_id": element, "kpi_id": kpi, "period_end": ends, "value": values}
            )
        )
    result = rollup.rollup_days(db, zone=BERLIN, now=NOW)
    assert (result.first_day, result.last_day) == (FIRST_DAY, FIRST_DAY + timedelta(days=2))
    assert result.rows_written == 9
    stored = _daily(db)
    expected = busy_hour_daily(pd.concat(frames), zone=BERLIN)
    expected = expected[expected["day"] <= FIRST_DAY + timedelta(days=2)].reset_index(drop=True)
    assert list(stored["day"]) == list(expected["day"])
    np.testing.assert_allclose(stored["busy_hour_value"], expected["busy_hour_value"])
    assert set(stored["busy_hour"]) == {20}
    assert set(stored["samples"]) == {96}
    assert set(stored["source"]) == {"measurements"}
    # Only forecast KPIs are rolled up; a KPI without capacity relevance stays out.
    drop = _kpi_id(db, "erab_drop_rate")
    _store(db, cells[0], drop, ends, np.ones(len(ends)))
    rollup.rollup_days(db, zone=BERLIN, now=NOW, first_day=FIRST_DAY)
    assert drop not in set(_daily(db)["kpi_id"])


def test_latest_revision_wins(db: Database) -> None:
    (cell,) = _add_elements(db, ["A"])
    prb = _kpi_id(db, "prb_util_dl")
    ends = _local_day_ends(FIRST_DAY, 1)
    values = np.full(len(ends), 10.0)
    _store(db, cell, prb, ends, values)
    spike = ends[40].to_pydatetime()
    with db.session(write=True) as session:
        # A wrong 99 was corrected to 12: the old revision is kept, marked superseded.
        session.execute(
            update(Measurement)
            .where(Measurement.period_end == spike)
            .values(value=99.0, superseded=True)
        )
        session.add(
            Measurement(element_id=cell, kpi_id=prb, period_end=spike, revision=1, value=12.0)
        )
    rollup.rollup_days(db, zone=BERLIN, now=NOW)
    row = _daily(db).iloc[0]
    assert row["busy_hour_value"] == pytest.approx((10 * 3 + 12) / 4)
    assert row["samples"] == 96


def test_late_data_lands_when_the_last_days_are_redone(db: Database) -> None:
    (cell,) = _add_elements(db, ["A"])
    prb = _kpi_id(db, "prb_util_dl")
    ends = _local_day_ends(FIRST_DAY, DAYS)
    late = ends[-10]  # an evening period of the last complete day, delivered late
    on_time = ends[ends != late]
    _store(db, cell, prb, on_time, np.full(len(on_time), 10.0))
    first = rollup.rollup_days(db, zone=BERLIN, now=NOW, days_back=2)
    assert first.days == DAYS
    assert _daily(db)["samples"].tolist() == [96, 96, 95]
    _store(db, cell, prb, [late], [50.0], late=True)
    again = rollup.rollup_days(db, zone=BERLIN, now=NOW, days_back=2)
    assert (again.first_day, again.days) == (FIRST_DAY + timedelta(days=1), 2)
    last = _daily(db).iloc[-1]
    assert last["samples"] == 96
    assert last["busy_hour_value"] == pytest.approx((10 * 3 + 50) / 4)


def test_nothing_to_do_without_measurements(db: Database) -> None:
    result = rollup.rollup_days(db, zone=BERLIN, now=NOW)
    assert (result.days, result.rows_written) == (0, 0)
    assert result.as_dict()["first_day"] is None


def test_a_whole_archive_day_is_kept_over_a_partial_measured_one(db: Database) -> None:
    (cell,) = _add_elements(db, ["A"])
    prb = _kpi_id(db, "prb_util_dl")
    archive = pd.DataFrame(
        {
            "element_id": [cell],
            "kpi_id": [prb],
            "day": [FIRST_DAY],
            "busy_hour_value": [40.0],
            "busy_hour": [20],
            "daily_mean": [20.0],
            "daily_max": [45.0],
            "samples": [96],
        }
    )
    with db.session(write=True) as session:
        rollup.upsert_daily(session, archive, source=rollup.ARCHIVE)
    ends = _local_day_ends(FIRST_DAY, DAYS)
    partial = ends[80:]  # live data began in the evening of the first day
    _store(db, cell, prb, partial, np.full(len(partial), 10.0))
    rollup.rollup_days(db, zone=BERLIN, now=NOW)
    first = _daily(db).iloc[0]
    assert (first["source"], first["busy_hour_value"]) == ("simulator_archive", 40.0)
    _store(db, cell, prb, ends[:80], np.full(80, 11.0))
    rollup.rollup_days(db, zone=BERLIN, now=NOW, first_day=FIRST_DAY)
    first = _daily(db).iloc[0]
    assert (first["source"], first["samples"]) == ("measurements", 96)


def test_load_daily_filters_by_series_and_kpi(db: Database) -> None:
    cells = _add_elements(db, ["A", "B"])
    prb, users = _kpi_id(db, "prb_util_dl"), _kpi_id(db, "active_users")
    ends = _local_day_ends(FIRST_DAY, DAYS)
    for element in cells:
        for kpi in (prb, users):
            _store(db, element, kpi, ends, _profile(ends, 10.0 + element))
    rollup.rollup_days(db, zone=BERLIN, now=NOW)
    with db.session() as session:
        everything = rollup.load_daily(session)
        one = rollup.load_daily(session, pairs=[(cells[1], users)])
        by_kpi = rollup.load_daily(session, kpi_ids=[prb])
        none = rollup.load_daily(session, pairs=[])
    assert len(everything) == 12
    assert list(everything.columns) == ["element_id", "kpi_id", "ds", "y"]
    assert one["ds"].tolist() == [pd.Timestamp(FIRST_DAY) + pd.Timedelta(days=i) for i in range(3)]
    assert set(one["element_id"]) == {cells[1]}
    assert set(by_kpi["kpi_id"]) == {prb}
    assert len(by_kpi) == 6
    assert none.empty


def test_load_hourly_gives_local_hour_means_of_the_newest_days(db: Database) -> None:
    (cell,) = _add_elements(db, ["A"])
    prb = _kpi_id(db, "prb_util_dl")
    ends = _local_day_ends(FIRST_DAY, DAYS)
    _store(db, cell, prb, ends, np.arange(len(ends), dtype=float))
    with db.session() as session:
        hourly = rollup.load_hourly(session, element_id=cell, kpi_id=prb, days=1, zone=BERLIN)
        empty = rollup.load_hourly(session, element_id=cell + 99, kpi_id=prb, zone=BERLIN)
    assert len(hourly) == 24
    assert hourly["ds"].iloc[0] == pd.Timestamp(FIRST_DAY + timedelta(days=2))
    assert hourly["y"].iloc[0] == pytest.approx(np.mean([192, 193, 194, 195]))
    assert empty.empty


def _small_simulator() -> NetworkSimulator:
    return NetworkSimulator(
        SimConfig(
            start=pd.Timestamp("2026-11-12", tz="UTC"), regions=("North",), sites_per_region=2
        )
    )


def test_simulator_archive_is_the_models_busy_hour_and_idempotent(db: Database) -> None:
    sim = _small_simulator()
    with db.session(write=True) as session:
        ensure_simulator_sources(session)
        register_topology(session, sim.topology)
    added = rollup.seed_simulator_archive(db, sim, days=10, zone=BERLIN)
    forecast_series = sim.topology.series["kpi"].isin(
        ["prb_util_dl", "prb_util_ul", "active_users", "link_util", "cpu_util"]
    )
    assert added == int(forecast_series.sum()) * 10
    stored = _daily(db)
    # The anchor is 01:00 in Berlin: its local day is the archive's last, kept whole.
    assert stored["day"].max() == date(2026, 11, 12)
    assert stored["day"].min() == date(2026, 11, 3)
    assert set(stored["source"]) == {"simulator_archive"}
    assert set(stored["samples"]) == {96}
    # Cross-check one series against the simulator's truth aggregated the plain way.
    with db.session() as session:
        element_id, dn = session.execute(
            select(Element.id, Element.dn).where(Element.dn.like("%EUtranCellFDD=C1"))
        ).first()  # type: ignore[misc]
    prb = _kpi_id(db, "prb_util_dl")
    day = date(2026, 11, 7)
    ends = _local_day_ends(day, 1)
    truth = sim.truth(ends)
    truth = truth[(truth["dn"] == dn) & (truth["kpi"] == "prb_util_dl")]
    frame = truth.assign(element_id=element_id, kpi_id=prb)[
        ["element_id", "kpi_id", "period_end", "value"]
    ]
    expected = busy_hour_daily(frame, zone=BERLIN).iloc[0]
    row = stored[(stored["element_id"] == element_id) & (stored["kpi_id"] == prb)]
    row = row[row["day"] == day].iloc[0]
    assert row["busy_hour_value"] == pytest.approx(expected["busy_hour_value"])
    assert row["busy_hour"] == expected["busy_hour"]
    # A second call adds nothing; a longer archive adds only the missing days.
    assert rollup.seed_simulator_archive(db, sim, days=10, zone=BERLIN) == 0
    assert rollup.seed_simulator_archive(db, sim, days=12, zone=BERLIN) == added // 10 * 2
    assert rollup.seed_simulator_archive(db, sim, days=0, zone=BERLIN) == 0


def test_archive_skips_elements_not_registered(db: Database) -> None:
    sim = _small_simulator()
    assert rollup.seed_simulator_archive(db, sim, days=3, zone=BERLIN) == 0
    assert _daily(db).empty


def test_archive_replaces_the_partial_measured_day_live_data_began_in(db: Database) -> None:
    sim = _small_simulator()
    with db.session(write=True) as session:
        ensure_simulator_sources(session)
        register_topology(session, sim.topology)
    prb = _kpi_id(db, "prb_util_dl")
    with db.session() as session:
        cell = session.scalar(select(Element.id).where(Element.dn.like("%EUtranCellFDD=C1")))
    anchor_day = date(2026, 11, 12)  # live data from 00:00 UTC = 01:00 in Berlin
    ends = _local_day_ends(anchor_day, 1)
    ends = ends[ends > pd.Timestamp(sim.config.start)]
    _store(db, cell, prb, ends, np.full(len(ends), 30.0))
    rollup.rollup_days(db, zone=BERLIN, now=datetime(2026, 11, 13, 12, tzinfo=UTC))
    assert _daily(db)[["samples", "source"]].values.tolist() == [[92, "measurements"]]
    n_series = int(
        sim.topology.series["kpi"]
        .isin(["prb_util_dl", "prb_util_ul", "active_users", "link_util", "cpu_util"])
        .sum()
    )
    assert rollup.seed_simulator_archive(db, sim, days=2, zone=BERLIN) == 2 * n_series
    row = _daily(db).set_index(["element_id", "kpi_id", "day"]).loc[(cell, prb, anchor_day)]
    assert (row["samples"], row["source"]) == (96, "simulator_archive")
    assert rollup.seed_simulator_archive(db, sim, days=2, zone=BERLIN) == 0
