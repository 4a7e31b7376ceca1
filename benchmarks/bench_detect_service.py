"""End-to-end time of the anomaly service for one period: DB reads, detection, DB writes.

For each network size and database (SQLite file; PostgreSQL when it answers), the script
stores `--days` of the simulated network's true values (bulk insert, not through ingest:
this measures detection, not ingest), then times `service.run_detection` evaluating one
new period at a time, for `--periods` consecutive periods (median and max reported). That
is the scheduler job's whole work per period: load the lag columns of every KPI, score
every element, apply data quality, form and write episodes with explanations.

Baselines in the same run: the same service with a loader that reads each KPI's full
stored history up to the target (what a naive implementation does) instead of only the
lag columns the detector asks for; and the lag-column loader cold (every run reads all
~136 lag columns, `use_cache=False`) against the in-memory lag window the scheduler keeps
between runs (`history.LagCache`: after one warm-up run, each run reads only the new
columns). The cached and cold runs must store the same episodes (checked).

    python benchmarks/bench_detect_service.py [--sizes 6,60] [--days 8] [--periods 5]
        [--databases sqlite,postgres] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services import kv
from services.anomaly import history, service
from services.db import Database, connect, upgrade_to_head
from services.db.bulk import insert_frame
from services.db.models import Anomaly, Element, Kpi, Measurement, PeriodCount, Source
from services.ingest.simulator import NetworkSimulator, SimConfig
from services.seed import ensure_kpis, register_topology

STEP = timedelta(minutes=15)
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fill(db: Database, *, sites: int, days: int) -> tuple[int, int]:
    """Store `days` of true values of a network with `sites` sites per region."""
    start = pd.Timestamp(END - timedelta(days=days + 1)).floor("D")
    sim = NetworkSimulator(SimConfig(start=start, sites_per_region=sites))
    with db.session(write=True) as session:
        ensure_kpis(session)
        register_topology(session, sim.topology)
        source = Source(name="bench", kind="bench", watermark=END, status="ok")
        session.add(source)
        session.flush()
        source_id = source.id
        # What ingest records per delivered period; the service reads completeness from it.
        session.add(PeriodCount(source_id=source_id, period_end=END, accepted=1))
        ids = dict(session.execute(select(Element.dn, Element.id)).all())
        kpis = dict(session.execute(select(Kpi.name, Kpi.id)).all())
    periods = pd.date_range(END - timedelta(days=days), END, freq=STEP)
    rows = 0
    for chunk in range(0, len(periods), 96):
        truth = sim.truth(periods[chunk : chunk + 96])
        frame = pd.DataFrame(
            {
                "element_id": truth["dn"].map(ids).astype("int64"),
                "kpi_id": truth["kpi"].map(kpis).astype("int64"),
                "period_end": truth["period_end"],
                "revision": 0,
                "value": truth["value"].astype(float),
                "superseded": False,
                "late": False,
                "suspect": False,
                "received_at": pd.Timestamp(END),
                "source_id": source_id,
            }
        )
        with db.session(write=True) as session:
            insert_frame(session, Measurement.__table__, frame)
        rows += len(frame)
    return len(sim.topology.series), rows


def reset(db: Database, cursor: datetime) -> None:
    """Forget episodes and put the cursor just before the periods to time."""
    with db.session(write=True) as session:
        session.execute(delete(Anomaly))
        kv.set_value(session, service.CURSOR_KEY, cursor.isoformat())


@contextmanager
def full_history_loader(days: int) -> Iterator[None]:
    """Swap the lag-column loader for one that reads the full stored history."""
    real = history.load_lags

    def naive(session, *, kpi_id, targets, lags, step, element_ids=None):  # type: ignore[no-untyped-def]
        return history.load_range(
            session,
            kpi_id=kpi_id,
            start=min(targets) - timedelta(days=days + 1),
            end=max(targets),
            targets=targets,
        )

    history.load_lags = naive
    try:
        yield
    finally:
        history.load_lags = real


def time_periods(db: Database, *, periods: int, use_cache: bool = False) -> dict[str, object]:
    """Seconds per period for `periods` consecutive periods, one run each.

    One untimed warm-up run first (with the cache: it fills it, as the scheduler's first run
    after a start does), so every variant evaluates the same periods.
    """
    warmup = 1
    service._CACHES.clear()  # start cold, as after a restart
    first = END - STEP * (periods + warmup)
    reset(db, first)
    seconds = []
    read = 0
    for i in range(1, periods + warmup + 1):
        now = first + STEP * i + STEP + timedelta(minutes=1)
        started = time.perf_counter()
        run = service.run_detection(db, now=now, max_periods=1, use_cache=use_cache)
        elapsed = time.perf_counter() - started
        assert run.periods == 1, run
        if i > warmup:
            seconds.append(elapsed)
            read += run.rows_read
    with db.session() as session:
        stored = sorted(
            (a.element_id, a.kpi_id, a.started_at.isoformat(), a.peak_at.isoformat())
            for a in session.scalars(select(Anomaly))
        )
    return {
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "rows_read_per_period": read // periods,
        "episodes": stored,
    }


def database(kind: str, tmp: Path, pg_url: str, label: str) -> Database:
    if kind == "sqlite":
        return connect(f"sqlite:///{tmp / f'{label}.db'}")
    import psycopg

    admin = make_url(pg_url)
    name = f"beacon_bench_detect_{label}"
    with psycopg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return connect(admin.set(database=name).render_as_string(hide_password=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="6,60", help="sites per region (4 regions)")
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--periods", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="beacon-bench-detect-") as tmp:
        for kind in args.databases.split(","):
            for sites in (int(s) for s in args.sizes.split(",")):
                db = database(kind, Path(tmp), args.postgres_url, f"{kind}_{sites}")
                upgrade_to_head(db)
                started = time.perf_counter()
                series, rows = fill(db, sites=sites, days=args.days)
                fill_s = time.perf_counter() - started
                lagged = time_periods(db, periods=args.periods)
                cached = time_periods(db, periods=args.periods, use_cache=True)
                same = cached.pop("episodes") == lagged.pop("episodes")
                with full_history_loader(args.days):
                    naive = time_periods(db, periods=args.periods)
                naive.pop("episodes")
                results.append(
                    {
                        "database": kind,
                        "sites_per_region": sites,
                        "series": series,
                        "stored_rows": rows,
                        "fill_s": round(fill_s, 1),
                        "lag_columns": lagged,
                        "cached_lag_window": cached,
                        "full_history_baseline": naive,
                        "speedup": round(naive["median_s"] / lagged["median_s"], 2),
                        "cache_speedup": round(lagged["median_s"] / cached["median_s"], 2),
                        "cached_episodes_same": same,
                    }
                )
                print(json.dumps(results[-1]), flush=True)
                db.dispose()


if __name__ == "__main__":
    main()
