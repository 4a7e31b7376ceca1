"""Wall-screen refresh latency with a 20k-cell network and a month of anomaly episodes stored.

For each database (SQLite file; PostgreSQL when it answers) the script builds a network of
20k cells (plus sites, links and routers) in 8 regions, four sources with a day of batches,
and a month of episodes: by default 50,000 resolved, 2,000 open or acknowledged (100 of
them suppressed by change windows). It then times, in the same run:

- the overview wall callback as the browser calls it: POST /_dash-update-component by a
  signed-in viewer, first with no previous data (every panel drawn) and then with the
  previous view (nothing changed: the answer is no_update);
- the same callback body called directly, and the same with the wall queries replaced by a
  naive ORM version that loads every open episode and every element (the baseline).

    python benchmarks/bench_wall.py [--cells 20000] [--open 2000] [--history 50000]
        [--runs 200] [--databases sqlite,postgres] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app
from services import auth
from services.anomaly import wall
from services.anomaly.severity import SEVERITIES
from services.audit import SYSTEM
from services.config import load_settings
from services.db.models import Anomaly, Element, IngestBatch, Kpi, Source

REGIONS = ("North", "South", "East", "West", "Central", "Coast", "Metro", "Rural")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-pass-12345"  # noqa: S105 - a throwaway user in a temporary database


def database_url(kind: str, pg_url: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'wall.db'}"
    admin = make_url(pg_url)
    libpq = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "bench_wall" WITH (FORCE)')
        conn.execute('CREATE DATABASE "bench_wall"')
    return admin.set(database="bench_wall").render_as_string(hide_password=False)


def drop_database(pg_url: str) -> None:
    """Leave the server as found: the benchmark's database goes when the run ends."""
    admin = make_url(pg_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "bench_wall" WITH (FORCE)')


def build_network(db: Any, *, cells: int, open_: int, history: int, seed: int = 7) -> None:
    """Inventory, sources with a day of batches, and a month of episodes, bulk inserted."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    rows = []
    for i in range(cells // 3):
        region = REGIONS[i % len(REGIONS)]
        site = f"SubNetwork={region},ManagedElement=SITE-{i:06d}"
        rows.append({"dn": site, "name": f"SITE-{i:06d}", "element_type": "site", "region": region})
        rows += [
            {
                "dn": f"{site},EUtranCellFDD=C{c}",
                "name": f"SITE-{i:06d}-C{c}",
                "element_type": "cell",
                "region": region,
            }
            for c in range(3)
        ]
    for row in rows:
        row.update(domain="RAN", vendor="Ericsson", is_new=False, attributes={})
    transport = [
        {
            "dn": f"SubNetwork={REGIONS[i % 8]},Link=L{i:05d}",
            "name": f"L{i:05d}",
            "element_type": "link" if i % 5 else "router",
            "region": REGIONS[i % 8],
            "domain": "Transport",
            "is_new": False,
            "attributes": {},
        }
        for i in range(1000)
    ]
    with db.session(write=True) as session:
        session.execute(insert(Element), rows + transport)
        element_ids = list(session.scalars(select(Element.id)))
        kpi_ids = list(session.scalars(select(Kpi.id)))
        for s in range(4):
            source = Source(name=f"pm-{s}", kind="pm_xml", last_received_at=now, watermark=now)
            session.add(source)
            session.flush()
            session.execute(
                insert(IngestBatch),
                [
                    {
                        "source_id": source.id,
                        "received_at": now - timedelta(minutes=15 * p),
                        "raw_format": "pm_xml",
                        "checksum": f"{s}-{p}",
                        "received": 100_000,
                        "accepted": 100_000,
                        "reasons": {},
                    }
                    for p in range(96)
                ],
            )
        episodes = []
        for n in range(open_ + history):
            started = now - timedelta(minutes=int(rng.integers(5, 30 * 24 * 60)))
            is_open = n < open_
            episodes.append(
                episode_row(
                    rng,
                    element_ids=element_ids,
                    kpi_ids=kpi_ids,
                    started=started,
                    now=now,
                    ended_at=None if is_open and n % 3 else started + timedelta(hours=1),
                    status=("acknowledged" if n % 4 == 0 else "open") if is_open else "resolved",
                    suppressed=is_open and n % 20 == 0,
                    label="bench",
                )
            )
        for start in range(0, len(episodes), 5000):
            session.execute(insert(Anomaly), episodes[start : start + 5000])


def episode_row(
    rng: np.random.Generator,
    *,
    element_ids: list[int],
    kpi_ids: list[int],
    started: datetime,
    now: datetime,
    ended_at: datetime | None,
    status: str,
    suppressed: bool,
    label: str,
) -> dict[str, Any]:
    """One stored episode on a random element and KPI, with plausible figures (also used by
    the load test's seed). Draws element, KPI, confidence and severity from `rng`, in order."""
    return {
        "element_id": int(rng.choice(element_ids)),
        "kpi_id": int(rng.choice(kpi_ids)),
        "related_kpis": [],
        "started_at": started,
        "peak_at": started,
        "ended_at": ended_at,
        "last_evaluated_at": now,
        "observed": 90.0,
        "expected": 50.0,
        "band_low": 40.0,
        "band_high": 60.0,
        "score": 5.0,
        "confidence": float(rng.uniform(0.5, 0.99)),
        "severity": SEVERITIES[int(rng.integers(0, len(SEVERITIES)))],
        "severity_score": 1.0,
        "data_quality": {},
        "explanation": {"summary": f"{label} episode"},
        "detector": "seasonal_robust",
        "model_version": label,
        "status": status,
        "suppressed": suppressed,
        "revised": False,
        "created_at": started,
    }


def naive_snapshot(session: Any, *, limit: int = wall.FEED_LIMIT, now: datetime) -> Any:
    """The baseline: load every open episode and every element as ORM objects, count in Python."""
    candidates = session.scalars(select(Anomaly).where(Anomaly.status.in_(wall.OPEN_STATUSES)))
    recent = now - wall.RECENTLY_ENDED
    episodes = [a for a in candidates if a.ended_at is None or a.ended_at >= recent]
    elements = {e.id: e for e in session.scalars(select(Element)).all()}
    kpis = {k.id: k.name for k in session.scalars(select(Kpi)).all()}
    shown = [a for a in episodes if not a.suppressed]
    counts = dict.fromkeys(SEVERITIES, 0)
    for a in shown:
        counts[a.severity] += 1
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    shown.sort(key=lambda a: (a.ended_at is None, a.confidence, a.started_at, a.id), reverse=True)
    shown.sort(key=lambda a: rank[a.severity])
    feed = []
    for a in shown[:limit]:
        e = elements[a.element_id]
        area = e.region or e.domain
        feed.append(
            wall.EpisodeRow(
                id=a.id,
                element=e.name,
                area=area if area == e.domain else f"{area} · {e.domain}",
                kpi=kpis[a.kpi_id],
                severity=a.severity,
                confidence=a.confidence,
                started_at=a.started_at,
                ended_at=a.ended_at,
                status=a.status,
                revised=a.revised,
            )
        )

    def areas(key: Callable[[Element], str]) -> list[wall.AreaHealth]:
        totals: dict[str, int] = {}
        for e in elements.values():
            totals[key(e)] = totals.get(key(e), 0) + 1
        hit: dict[str, set[int]] = {}
        worst: dict[str, int] = {}
        for a in shown:
            name = key(elements[a.element_id])
            hit.setdefault(name, set()).add(a.element_id)
            worst[name] = min(worst.get(name, 9), rank[a.severity])
        return [
            wall.AreaHealth(
                name=n,
                affected=len(hit.get(n, ())),
                total=t,
                worst=SEVERITIES[worst[n]] if n in worst else None,
            )
            for n, t in sorted(totals.items())
        ]

    return wall.WallSnapshot(
        counts=counts,
        suppressed=len(episodes) - len(shown),
        episodes=feed,
        regions=areas(lambda e: e.region or e.domain),
        domains=areas(lambda e: e.domain),
        detector=wall.last_detector_run(session),
        as_of=now,
    )


def http_refresh(app: Any, client: Any, view: Any, status: Any, config: Any) -> dict[str, Any]:
    """POST the wall refresh exactly as the browser does; returns the stored view and status."""
    output = next(o for o in app.callback_map if "overview-wall-feed.children" in o)
    spec = app.callback_map[output]
    outputs = []
    for part in output.strip(".").split("..."):
        component, _, prop = part.rpartition(".")
        outputs.append({"id": component, "property": prop})
    states = [view, status, config]
    body = {
        "output": output,
        "outputs": outputs,
        "inputs": [{**spec["inputs"][0], "value": 1}],
        "changedPropIds": ["overview-wall-refresh.n_intervals"],
        "state": [{**s, "value": v} for s, v in zip(spec["state"], states, strict=True)],
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code in (200, 204), response.data[:300]
    if response.status_code == 204:
        return {}
    answer = response.get_json()["response"]
    return {
        "view": answer.get("overview-wall-view", {}).get("data"),
        "status": answer["overview-wall-status"]["data"],
    }


def call_as_viewer(app: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """Call the callback function itself inside a request signed in as a wall screen."""
    from flask_login import login_user

    from services.web.principal import kiosk_principal

    with app.server.test_request_context("/_dash-update-component", method="POST"):
        login_user(kiosk_principal(token_id=0, name="bench"))
        return fn(*args)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm caches and connections once, as a running server would have
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def bench(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    url = database_url(kind, args.postgres_url, tmp)
    env = {
        "BEACON_DATA_DIR": str(tmp),
        "BEACON_DATABASE_URL": url,
        "BEACON_ADMIN_PASSWORD": "bench-admin-123",
        "BEACON_SIMULATOR": "0",
        "BEACON_LOGIN_RATE_LIMIT": "1000 per minute",
    }
    app = create_app(load_settings(env))
    db = app.server.extensions["beacon"].db
    started = time.perf_counter()
    build_network(db, cells=args.cells, open_=args.open, history=args.history)
    build_s = time.perf_counter() - started
    with db.session(write=True) as session:
        auth.create_user(session, username="wall", role="viewer", password=PASSWORD, actor=SYSTEM)
    if kind == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()

    from pages import overview  # pages exist only once the Dash app does

    config = {"limit": wall.FEED_LIMIT}
    client = app.server.test_client()
    client.post("/login", data={"username": "wall", "password": PASSWORD})
    first = http_refresh(app, client, None, None, config)
    results: dict[str, Any] = {"database": kind, "build_s": round(build_s, 1)}
    results["http_all_panels"] = timed(
        lambda: http_refresh(app, client, None, None, config), args.runs
    )
    results["http_unchanged"] = timed(
        lambda: http_refresh(app, client, first["view"], first["status"], config), args.runs
    )
    results["callback"] = timed(
        lambda: call_as_viewer(app, overview.refresh_wall, 1, None, None, config), args.runs
    )
    real = overview.wall_snapshot
    overview.wall_snapshot = naive_snapshot  # type: ignore[assignment]
    try:
        results["callback_naive_orm"] = timed(
            lambda: call_as_viewer(app, overview.refresh_wall, 1, None, None, config),
            max(10, args.runs // 10),
        )
    finally:
        overview.wall_snapshot = real
    with db.session() as session:
        fast = wall.wall_snapshot(session, now=datetime.now(UTC))
        slow = naive_snapshot(session, now=fast.as_of)
    assert (fast.counts, fast.suppressed, fast.regions, fast.domains) == (
        slow.counts,
        slow.suppressed,
        slow.regions,
        slow.domains,
    ), "the naive baseline and the wall queries disagree"
    assert [e.id for e in fast.episodes] == [e.id for e in slow.episodes]
    results["speedup_vs_naive_p95"] = round(
        results["callback_naive_orm"]["p95_ms"] / results["callback"]["p95_ms"], 1
    )
    db.dispose()
    if kind == "postgres":
        drop_database(args.postgres_url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--open", type=int, default=2_000)
    parser.add_argument("--history", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()
    for kind in args.databases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(bench(kind, args, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
