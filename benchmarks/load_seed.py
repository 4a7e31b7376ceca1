"""Database set-up for the load test: a fresh database seeded as Beacon's simulator seeds it.

The simulated network (sized to the requested number of cells), its sources, the demo
on-call teams and trust history are registered by the simulator feed's own `prepare()`;
the history is then *not* caught up, because the load test delivers the periods itself,
one per minute. Wall screens, engineers and their tokens are created through the auth
service. Open anomaly episodes are inserted directly (as bench_wall.py does), so the wall
has something to count from the first refresh instead of waiting days for detection.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from benchmarks.bench_wall import episode_row
from services import auth
from services.audit import SYSTEM
from services.config import Settings, ensure_secret_key, load_settings
from services.db import Database, connect, upgrade_to_head
from services.db.models import Anomaly, Element, Kpi
from services.ingest.simfeed import SimulatorFeed
from services.startup import bootstrap

ENGINEER_PASSWORD = "load-engineer-pass-1"  # noqa: S105 - throwaway users in a throwaway database
ADMIN_PASSWORD = "load-admin-pass-123"  # noqa: S105
# Cells per simulated site times regions (see services/ingest/simulator/topology.py).
CELLS_PER_SITE_AND_REGION = 12


@dataclass
class Seeded:
    """What the simulated users need: the database, tokens, names and the simulator anchor."""

    database_url: str
    anchor: str
    sites_per_region: int
    kiosk_tokens: list[str] = field(default_factory=list)
    engineers: list[str] = field(default_factory=list)
    api_tokens: list[str] = field(default_factory=list)
    elements: int = 0
    open_episodes: int = 0


def create_postgres(admin_url: str) -> str:
    """A new, uniquely named database on the server; returns its SQLAlchemy URL."""
    name = f"bench_load_{uuid.uuid4().hex[:8]}"
    admin = make_url(admin_url)
    with psycopg.connect(_libpq(admin.set(database="postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.set(database=name).render_as_string(hide_password=False)


def drop_postgres(url: str) -> None:
    """Remove the load test's database (connections still open are ended)."""
    parsed = make_url(url)
    with psycopg.connect(_libpq(parsed.set(database="postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


def sites_for(cells: int) -> int:
    """Sites per region for at least `cells` cells (4 regions, 3 cells per site)."""
    return max(1, math.ceil(cells / CELLS_PER_SITE_AND_REGION))


def base_env(data_dir: Path, database_url: str, cells: int) -> dict[str, str]:
    """Environment shared by every Beacon process of the run (and the seeding here)."""
    return {
        "BEACON_DATA_DIR": str(data_dir),
        "BEACON_DATABASE_URL": database_url,
        "BEACON_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BEACON_SIM_SITES_PER_REGION": str(sites_for(cells)),
        # The anchor a day back: the delivered periods are all in the past, none "future".
        "BEACON_SIM_BACKFILL_DAYS": "1",
        "BEACON_LOG_LEVEL": "WARNING",
    }


def seed(
    settings: Settings, *, screens: int, engineers: int, open_episodes: int, seed_value: int = 7
) -> Seeded:
    """Migrate, bootstrap, register the simulated network, create users, tokens and episodes."""
    settings = ensure_secret_key(settings)
    db = connect(settings.database_url)
    try:
        upgrade_to_head(db)
        bootstrap(db, settings)
        feed = SimulatorFeed(db, settings)
        elements = feed.prepare()
        result = Seeded(
            database_url=settings.database_url,
            anchor=feed.anchor.isoformat(),
            sites_per_region=settings.sim_sites_per_region,
            elements=elements,
        )
        _people(db, result, screens=screens, engineers=engineers)
        result.open_episodes = _episodes(db, open_episodes, seed_value)
        with db.engine.connect() as conn:
            # Fresh statistics, as autovacuum would have them on a running system.
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        return result
    finally:
        db.dispose()


def settings_from(env: dict[str, str], *, embedded: bool = False) -> Settings:
    return load_settings(env, embedded=embedded)


def _people(db: Database, result: Seeded, *, screens: int, engineers: int) -> None:
    with db.session(write=True) as session:
        for i in range(screens):
            issued = auth.create_kiosk_token(session, name=f"load wall {i:03d}", actor=SYSTEM)
            result.kiosk_tokens.append(issued.plaintext)
        for i in range(engineers):
            name = f"load-eng-{i:03d}"
            auth.create_user(
                session, username=name, role="engineer", password=ENGINEER_PASSWORD, actor=SYSTEM
            )
            issued = auth.create_api_token(
                session, name=f"load api {i:03d}", role="engineer", scopes=["read"], actor=SYSTEM
            )
            result.engineers.append(name)
            result.api_tokens.append(issued.plaintext)


def _episodes(db: Database, count: int, seed_value: int) -> int:
    """Open and acknowledged episodes on random cells, a twentieth suppressed (as bench_wall)."""
    if count <= 0:
        return 0
    rng = np.random.default_rng(seed_value)
    now = datetime.now(UTC)
    with db.session(write=True) as session:
        element_ids = list(session.scalars(select(Element.id)))
        kpi_ids = list(session.scalars(select(Kpi.id)))
        rows = []
        for n in range(count):
            started = now - timedelta(minutes=int(rng.integers(5, 24 * 60)))
            rows.append(
                episode_row(
                    rng,
                    element_ids=element_ids,
                    kpi_ids=kpi_ids,
                    started=started,
                    now=now,
                    ended_at=None,
                    status="acknowledged" if n % 4 == 0 else "open",
                    suppressed=n % 20 == 0,
                    label="load-test",
                )
            )
        for start in range(0, len(rows), 5000):
            session.execute(insert(Anomaly), rows[start : start + 5000])
    return count


def _libpq(url: object) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)  # type: ignore[arg-type]
