"""Ingest throughput: 1M KPI rows parsed, validated and stored, against a raw bulk insert.

For each database (SQLite file; PostgreSQL when it answers) and each input format (CSV;
3GPP PM XML), the script writes 1,000,000 measurements as 10 period files of 100k rows
(20k cells x 5 KPIs), ingests them through Beacon's full path (raw copy kept, parse,
counter mapping, validation, element lookup, duplicate/correction check, late flag, bulk
store, per-period counters) and reports rows/s. In the same run it inserts the very same
rows into an identical, freshly migrated measurements table with the plain driver —
sqlite3 `executemany` or PostgreSQL `COPY` — and reports our rate as a share of that.
The raw insert takes the rows in file order (which is also primary-key order within a file).

On a shared machine one pair of runs can land on a busy moment: `--repeat N` runs the
Beacon/raw pair N times, each on fresh databases, and reports medians (rates, and the
share computed per pair). CPU seconds of this process are reported next to wall time,
as they are far less disturbed by other work on the machine; the targets are wall time.

    python benchmarks/bench_ingest.py [--rows 1000000] [--formats csv,pm-xml]
        [--databases sqlite,postgres] [--postgres-url URL] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.db import Database, connect, upgrade_to_head
from services.db.models import Element, Kpi, Source
from services.ingest.pipeline import ingest_records
from services.ingest.sources.telemetry import parse_csv
from services.seed import ensure_kpis

KPIS = ("prb_util_dl", "prb_util_ul", "active_users", "dl_throughput_mbps", "rrc_setup_sr")
PERIODS = 10
START = datetime(2026, 11, 1, tzinfo=UTC)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def cells_for(rows: int) -> list[str]:
    count = rows // (len(KPIS) * PERIODS)
    return [
        f"SubNetwork=R{i % 8},ManagedElement=SITE-{i // 3:06d},EUtranCellFDD=C{i % 3}"
        for i in range(count)
    ]


def period_frame(cells: list[str], period: int, rng: np.random.Generator) -> pd.DataFrame:
    n = len(cells)
    return pd.DataFrame(
        {
            "dn": np.repeat(cells, len(KPIS)),
            "kpi": np.tile(KPIS, n),
            "period_end": START + timedelta(minutes=15 * (period + 1)),
            "value": np.round(rng.uniform(1, 95, n * len(KPIS)), 3),
        }
    )


def as_csv(frame: pd.DataFrame) -> bytes:
    out = frame.assign(period_end=frame["period_end"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out.to_csv(index=False).encode()


def as_pm_xml(frame: pd.DataFrame) -> bytes:
    """A TS 32.435 measCollecFile: one measValue per cell, one <r> per KPI."""
    end = frame["period_end"].iloc[0]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<measCollecFile xmlns="http://www.3gpp.org/ftp/specs/archive/32_series/32.435#measCollec">',
        '<fileHeader fileFormatVersion="32.435 V10.0" vendorName="Bench"><fileSender/>'
        f'<measCollec beginTime="{(end - timedelta(minutes=15)).isoformat()}"/></fileHeader>',
        '<measData><managedElement swVersion="1.0"/><measInfo measInfoId="bench">',
        f'<granPeriod duration="PT900S" endTime="{end.isoformat()}"/>',
    ]
    lines += [f'<measType p="{i + 1}">{k}</measType>' for i, k in enumerate(KPIS)]
    values = frame["value"].to_numpy().reshape(-1, len(KPIS))
    for dn, row in zip(frame["dn"].to_numpy()[:: len(KPIS)], values, strict=True):
        rs = "".join(f'<r p="{i + 1}">{v}</r>' for i, v in enumerate(row))
        lines.append(f'<measValue measObjLdn="{dn}">{rs}</measValue>')
    lines.append("</measInfo></measData></measCollecFile>")
    return "\n".join(lines).encode()


def fresh_database(kind: str, pg_url: str, tmp: Path, name: str) -> Database:
    if kind == "sqlite":
        path = tmp / f"{name}.db"
        path.unlink(missing_ok=True)
        db = connect(f"sqlite:///{path}")
    else:
        admin = make_url(pg_url)
        libpq = admin.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        db = connect(admin.set(database=name).render_as_string(hide_password=False))
    upgrade_to_head(db)
    with db.session(write=True) as session:
        ensure_kpis(session)
    return db


def register_inventory(db: Database, cells: list[str]) -> None:
    """The cells are known inventory, as in steady operation."""
    with db.session(write=True) as session:
        for start in range(0, len(cells), 5000):
            session.execute(
                insert(Element),
                [
                    {
                        "dn": dn,
                        "name": dn.rsplit("=", 1)[-1],
                        "element_type": "cell",
                        "domain": "RAN",
                        "region": dn.split(",")[0][11:],
                        "is_new": False,
                        "attributes": {},
                    }
                    for dn in cells[start : start + 5000]
                ],
            )


def run_beacon(db: Database, payloads: list[bytes], fmt: str) -> tuple[float, float, int]:
    parse = parse_csv if fmt == "csv" else _pm_parser()
    total, started, cpu = 0, time.perf_counter(), time.process_time()
    for i, payload in enumerate(payloads):
        parsed = parse(payload, name=f"period-{i}")
        summary = ingest_records(
            db,
            source=f"bench-{fmt}",
            records=parsed.records,
            raw=payload,
            raw_format=fmt,
            rejected=parsed.rejected,
            received_at=START + timedelta(minutes=15 * (i + 1), seconds=90),
        )
        assert summary.quarantined == 0, summary.reasons
        total += summary.accepted
    return time.perf_counter() - started, time.process_time() - cpu, total


def run_raw(db: Database, frames: list[pd.DataFrame]) -> tuple[float, float, int]:
    """The same rows, already typed, straight into the same table with the plain driver."""
    with db.session() as session:
        ids = dict(session.execute(select(Element.dn, Element.id)).all())
        kpi_ids = dict(session.execute(select(Kpi.name, Kpi.id)).all())
        source_id = session.scalar(select(Source.id).limit(1))
    if db.dialect == "sqlite":
        return _raw_sqlite(db, frames, ids, kpi_ids, source_id)
    return _raw_postgres(db, frames, ids, kpi_ids, source_id)


def _raw_sqlite(db, frames, ids, kpi_ids, source_id):  # type: ignore[no-untyped-def]
    """sqlite3 executemany, one transaction per period, in file order; WAL and synchronous
    like Beacon's engine (sqlite3 leaves foreign keys unenforced; Beacon enforces them)."""
    path = make_url(db.url).database
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    total, started, cpu = 0, time.perf_counter(), time.process_time()
    for frame in frames:
        stamp = frame["period_end"].iloc[0].strftime("%Y-%m-%d %H:%M:%S.%f")
        rows = [
            (e, k, stamp, v, stamp, source_id)
            for e, k, v in zip(
                frame["dn"].map(ids).tolist(),
                frame["kpi"].map(kpi_ids).tolist(),
                frame["value"].tolist(),
                strict=True,
            )
        ]
        with conn:
            conn.executemany(
                "INSERT INTO measurements (element_id, kpi_id, period_end, value, revision, "
                "superseded, late, suspect, received_at, source_id) "
                "VALUES (?, ?, ?, ?, 0, 0, 0, 0, ?, ?)",
                rows,
            )
        total += len(rows)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return elapsed, cpu, total


def _raw_postgres(db, frames, ids, kpi_ids, source_id):  # type: ignore[no-untyped-def]
    """psycopg COPY, one transaction per period."""
    libpq = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    total, started, cpu = 0, time.perf_counter(), time.process_time()
    with psycopg.connect(libpq) as conn:
        for frame in frames:
            period = frame["period_end"].iloc[0].to_pydatetime()
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    "COPY measurements (element_id, kpi_id, period_end, value, revision, "
                    "superseded, late, suspect, received_at, source_id) FROM STDIN"
                ) as copy,
            ):
                for e, k, v in zip(
                    frame["dn"].map(ids).tolist(),
                    frame["kpi"].map(kpi_ids).tolist(),
                    frame["value"].tolist(),
                    strict=True,
                ):
                    copy.write_row((e, k, period, v, 0, False, False, False, period, source_id))
            conn.commit()
            total += len(frame)
    return time.perf_counter() - started, time.process_time() - cpu, total


def _pm_parser():  # type: ignore[no-untyped-def]
    from services.ingest.sources.pm_xml import parse_pm_xml

    return parse_pm_xml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,pm-xml")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("BEACON_BENCH_POSTGRES", DEFAULT_PG)
    )
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs; medians reported")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    cells = cells_for(args.rows)
    frames = [period_frame(cells, p, rng) for p in range(PERIODS)]
    rows = sum(len(f) for f in frames)
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in args.databases.split(","):
            for fmt in args.formats.split(","):
                payloads = [as_csv(f) if fmt == "csv" else as_pm_xml(f) for f in frames]
                pairs = [
                    _pair(kind, fmt, args.postgres_url, tmp, cells, frames, payloads)
                    for _ in range(args.repeat)
                ]
                results.append(_summary(kind, fmt, pairs, payloads))
                print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"rows": rows, "results": results}, indent=2))


def _pair(  # type: ignore[no-untyped-def]
    kind, fmt, pg_url, tmp, cells, frames, payloads
) -> dict[str, float]:
    """One Beacon run and one raw-driver run of the same rows, each on a fresh database."""
    db = fresh_database(kind, pg_url, tmp, f"bench_{fmt.replace('-', '_')}")
    register_inventory(db, cells)
    seconds, cpu, stored = run_beacon(db, payloads, fmt)
    db.dispose()
    baseline_db = fresh_database(kind, pg_url, tmp, "bench_raw")
    register_inventory(baseline_db, cells)
    with baseline_db.session(write=True) as session:
        session.add(Source(name="raw", kind="bench"))
    raw_seconds, raw_cpu, raw_rows = run_raw(baseline_db, frames)
    baseline_db.dispose()
    assert stored == raw_rows
    return {
        "rows": stored,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "raw_seconds": raw_seconds,
        "raw_cpu_seconds": raw_cpu,
    }


def _summary(kind: str, fmt: str, pairs: list[dict[str, float]], payloads: list[bytes]) -> dict:
    rows = pairs[0]["rows"]

    def median(values: list[float], digits: int = 2) -> float:
        return round(statistics.median(values), digits)

    return {
        "database": kind,
        "format": fmt,
        "rows": rows,
        "runs": len(pairs),
        "seconds": median([p["seconds"] for p in pairs]),
        "rows_per_s": round(statistics.median(rows / p["seconds"] for p in pairs)),
        "raw_insert_seconds": median([p["raw_seconds"] for p in pairs]),
        "raw_insert_rows_per_s": round(statistics.median(rows / p["raw_seconds"] for p in pairs)),
        "share_of_raw_insert": median([p["raw_seconds"] / p["seconds"] for p in pairs]),
        "shares": [round(p["raw_seconds"] / p["seconds"], 2) for p in pairs],
        "cpu_seconds": median([p["cpu_seconds"] for p in pairs]),
        "raw_insert_cpu_seconds": median([p["raw_cpu_seconds"] for p in pairs]),
        "share_of_raw_insert_cpu": median([p["raw_cpu_seconds"] / p["cpu_seconds"] for p in pairs]),
        "payload_mb": round(sum(len(p) for p in payloads) / 1e6, 1),
    }


if __name__ == "__main__":
    main()
