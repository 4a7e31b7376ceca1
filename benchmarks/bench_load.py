"""Load test on loopback: wall screens, engineers and telemetry ingest against a real deployment.

PostgreSQL (`--db postgres`): a fresh database on the local server, `beacon serve` with
`--workers` gunicorn workers and one `beacon scheduler`. SQLite (`--db sqlite`): the
embedded mode, `python app.py` (one process: web server, scheduler, SQLite file). Either
way the database is seeded as the simulator seeds it (network of `--cells` cells, sources,
on-call, trust history) plus `--open-episodes` open episodes for the wall, and then for
`--duration-s` seconds:

- `--screens` wall screens open their kiosk link and refresh every `--refresh-s` seconds,
  sending the callbacks the overview's intervals trigger (built from /_dash-dependencies);
- `--engineers` engineers sign in and browse anomalies, forecasts and incidents (page
  load, the page's initial callbacks, its intervals while they read) and read the REST API;
- one simulated 15-minute period of the whole network is dropped into the scheduler's drop
  folder every `--ingest-every-s` seconds (time compressed 15:1 by default) and ingested.

It reports p50/p95/p99 per endpoint, callback (named by its first output id) and refresh,
errors, CPU and RSS per process sampled every `--sample-s` seconds, the RSS slope after
the warm-up, the load average, what the scheduler ingested, and every traceback the
servers logged. Everything it started is stopped and its database dropped at the end.

    python benchmarks/bench_load.py --db postgres --duration-s 600 --out load.json
    python benchmarks/bench_load.py --db sqlite --screens 20 --engineers 5 --cells 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import load_procs, load_seed, load_users  # noqa: E402
from services.db import connect  # noqa: E402
from services.db.models import IngestBatch, JobRun  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WALL_GROUP = "wall refresh (every callback of one tick)"
TARGET_WALL_P95_MS = 300.0
# "Stable" memory: no process grows faster than this after the warm-up (60 MB an hour).
TARGET_RSS_SLOPE_MB_PER_MIN = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--screens", type=int, default=100)
    parser.add_argument("--engineers", type=int, default=20)
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (postgres)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--open-episodes", type=int, default=2_000)
    parser.add_argument("--refresh-s", type=int, default=10, help="wall refresh (?refresh=N)")
    parser.add_argument("--ingest-every-s", type=float, default=60.0)
    parser.add_argument("--drop-poll-s", type=int, default=10, help="BEACON_DROP_POLL_S (>= 5)")
    parser.add_argument("--think-s", default="15,45", help="engineer time on a page, min,max")
    parser.add_argument(
        "--ramp-s", type=float, default=None, help="people arrive over this time (default: "
        "a quarter of the run, at most 60 s)"
    )  # fmt: skip
    parser.add_argument(
        "--warmup-s", type=float, default=None,
        help="left out of percentiles and memory slopes (default: ramp + one refresh)",
    )  # fmt: skip
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument(
        "--postgres-url", default=os.environ.get("BEACON_BENCH_POSTGRES", DEFAULT_PG)
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy server logs here")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="beacon-load-"))
    data_dir, drop, logs = tmp / "data", tmp / "drop", tmp / "logs"
    for folder in (data_dir, drop, logs):
        folder.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    pg_url = load_seed.create_postgres(args.postgres_url) if args.db == "postgres" else ""
    env = load_seed.base_env(data_dir, pg_url, args.cells)
    if not pg_url:
        env.pop("BEACON_DATABASE_URL")  # the embedded mode's own SQLite file in the data dir
    env.update(
        {
            "BEACON_HOST": "127.0.0.1",
            "BEACON_PORT": str(port),
            # The feed below replaces the simulator's live deliveries (time compressed).
            "BEACON_SIMULATOR": "0",
            "BEACON_DROP_DIR": str(drop),
            "BEACON_DROP_POLL_S": str(args.drop_poll_s),
            "BEACON_LOGIN_RATE_LIMIT": "10000 per minute",
        }
    )
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()},
    }
    processes: list[load_procs.Started] = []
    try:
        t0 = time.monotonic()
        seeded = load_seed.seed(
            load_seed.settings_from(env, embedded=args.db == "sqlite"),
            screens=args.screens,
            engineers=args.engineers,
            open_episodes=args.open_episodes,
            seed_value=args.seed,
        )
        report["seed"] = {
            "seconds": round(time.monotonic() - t0, 1),
            "elements": seeded.elements,
            "sites_per_region": seeded.sites_per_region,
            "open_episodes": seeded.open_episodes,
        }
        processes = start_servers(args, env, logs)
        report["ready_s"] = round(load_procs.wait_ready(base, processes), 1)
        # The last period is dropped at least one interval before the end, so it is ingested.
        periods = max(1, int(args.duration_s // args.ingest_every_s))
        feeder = load_procs.launch(
            "feeder",
            [
                sys.executable,
                str(ROOT / "benchmarks" / "load_feed.py"),
                "--drop",
                str(drop),
                "--anchor",
                seeded.anchor,
                "--sites",
                str(seeded.sites_per_region),
                "--seed",
                str(args.seed),
                "--periods",
                str(periods),
                "--every-s",
                str(args.ingest_every_s),
            ],
            {**os.environ, **env},
            logs,
            ROOT,
        )
        processes.append(feeder)
        roles = {p.role: p.popen.pid for p in processes}
        roles["load client"] = os.getpid()
        sampler = load_procs.Sampler(
            roles=roles,
            workers_of="gunicorn master" if args.db == "postgres" else None,
            pg_database=seeded.database_url.rsplit("/", 1)[-1] if pg_url else None,
            every_s=args.sample_s,
        )
        warmup = args.warmup_s if args.warmup_s is not None else ramp_s(args) + args.refresh_s
        report["warmup_s"] = warmup
        sampler.start()
        stats = asyncio.run(simulate_people(args, base, seeded))
        sampler.close()
        report["results"] = stats.summary(skip_s=warmup)
        report["errors"] = {
            "requests": sum(r["count"] for n, r in report["results"].items() if _is_request(n)),
            "failed": sum(r["errors"] for n, r in report["results"].items() if _is_request(n)),
            "samples": stats.error_samples[:10],
        }
        report["processes"] = sampler.summary(skip_s=warmup)
        report["web_cpu"] = web_cpu(report["processes"], stats, warmup)
        report["timeline"] = sampler.timeline()
        report["loadavg_timeline"] = sampler.loadavg[:: max(1, len(sampler.loadavg) // 60)]
        report["loadavg"] = {
            **sampler.load_summary(),
            "before": report["machine"]["loadavg_before"][0],
        }
        # The last period may still be settling in the drop folder: let the scheduler take it.
        report["drain_s"] = wait_drained(drop, timeout_s=2 * args.drop_poll_s + 15)
        report["ingest"] = ingest_summary(seeded.database_url, feeder.log)
    finally:
        report["exit_codes"] = load_procs.stop(processes)
        report["server_tracebacks"] = tracebacks(logs)
        if args.keep_logs:
            shutil.copytree(logs, args.keep_logs, dirs_exist_ok=True)
        if pg_url:
            load_seed.drop_postgres(pg_url)
        shutil.rmtree(tmp, ignore_errors=True)
    report["targets"] = targets(report)
    return report


def start_servers(
    args: argparse.Namespace, env: dict[str, str], logs: Path
) -> list[load_procs.Started]:
    full_env = {**os.environ, **env}
    beacon = str(Path(sys.executable).with_name("beacon"))
    if args.db == "sqlite":
        return [
            load_procs.launch("embedded app.py", [sys.executable, "app.py"], full_env, logs, ROOT)
        ]
    serve = [beacon, "serve", "--workers", str(args.workers), "--threads", str(args.threads)]
    return [
        load_procs.launch("gunicorn master", serve, full_env, logs, ROOT),
        load_procs.launch("scheduler", [beacon, "scheduler"], full_env, logs, ROOT),
    ]


async def simulate_people(
    args: argparse.Namespace, base: str, seeded: load_seed.Seeded
) -> load_users.Stats:
    stats = load_users.Stats()
    rng = random.Random(args.seed)
    think = tuple(float(x) for x in args.think_s.split(","))
    now = time.monotonic()
    until = now + args.duration_s
    # One connection per request: gunicorn closes idle keep-alive connections after 2 s,
    # shorter than a wall's refresh, so a browser reconnects for each refresh anyway.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    ramp = ramp_s(args)
    tasks = [
        load_users.wall_screen(
            base,
            token,
            stats,
            connector,
            refresh_s=args.refresh_s,
            start_at=now + rng.uniform(0, ramp),
            until=until,
        )
        for token in seeded.kiosk_tokens
    ]
    tasks += [
        load_users.engineer(
            base,
            name,
            load_seed.ENGINEER_PASSWORD,
            api,
            stats,
            connector,
            think_s=(think[0], think[1]),
            start_at=now + rng.uniform(0, 2 * ramp),
            until=until,
            rng=random.Random(rng.random()),
        )
        for name, api in zip(seeded.engineers, seeded.api_tokens, strict=True)
    ]
    try:
        await asyncio.gather(*tasks)
        # The run lasts its duration even with nobody on it (scheduler and ingest alone).
        await asyncio.sleep(max(0.0, until - time.monotonic()))
    finally:
        await connector.close()
    return stats


def ramp_s(args: argparse.Namespace) -> float:
    return args.ramp_s if args.ramp_s is not None else min(60.0, args.duration_s / 4)


def web_cpu(processes: dict[str, Any], stats: load_users.Stats, warmup: float) -> dict[str, Any]:
    """CPU the web processes spent per request after the warm-up (the sizing figure)."""
    web = [
        p for name, p in processes.items()
        if name.startswith(("web worker", "embedded")) and p.get("cpu_s_steady") is not None
    ]  # fmt: skip
    if not web:
        return {}
    seconds = max(p["steady_s"] for p in web)
    cpu_s = sum(p["cpu_s_steady"] for p in web)
    requests = sum(
        1 for name, rows in stats.samples.items() if _is_request(name) for t, _ in rows
        if warmup <= t <= warmup + seconds
    )  # fmt: skip
    return {
        "window_s": seconds,
        "cpu_s": round(cpu_s, 1),
        "cores_busy": round(cpu_s / seconds, 2) if seconds else None,
        "requests": requests,
        "requests_per_s": round(requests / seconds, 1) if seconds else None,
        "cpu_ms_per_request": round(cpu_s * 1000 / requests, 1) if requests else None,
        "note": "the embedded process's CPU includes its scheduler (ingest, detection)"
        if any("embedded" in n for n in processes)
        else "",
    }


def _is_request(name: str) -> bool:
    """Single HTTP requests (not the page and refresh groups built from them)."""
    return name.startswith(("GET ", "POST ", "cb "))


def wait_drained(drop: Path, *, timeout_s: float) -> float:
    """Seconds until no dropped file waits to be ingested (gives up after `timeout_s`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        waiting = [
            p for p in drop.rglob("*.csv")
            if not any(part.startswith(".") for part in p.relative_to(drop).parts)
        ]  # fmt: skip
        if not waiting:
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def ingest_summary(database_url: str, feeder_log: Path) -> dict[str, Any]:
    """What the feeder dropped and what the scheduler stored and ran meanwhile."""
    dropped = [
        json.loads(line) for line in feeder_log.read_text().splitlines() if line.startswith("{")
    ]
    db = connect(database_url)
    try:
        with db.session() as session:
            batches = session.execute(
                select(
                    func.count(),
                    func.sum(IngestBatch.received),
                    func.sum(IngestBatch.accepted),
                    func.sum(IngestBatch.quarantined),
                    func.sum(IngestBatch.duplicates),
                    func.sum(IngestBatch.corrections),
                ).where(IngestBatch.raw_format == "csv")
            ).one()
            runs = session.execute(
                select(JobRun.job_id, JobRun.status, JobRun.started_at, JobRun.finished_at)
            ).all()
    finally:
        db.dispose()
    jobs: dict[str, dict[str, Any]] = {}
    for job_id, status, began, ended in runs:
        entry = jobs.setdefault(job_id, {"runs": 0, "failed": 0, "max_s": 0.0})
        entry["runs"] += 1
        entry["failed"] += status == "failed"
        if ended is not None:
            entry["max_s"] = max(entry["max_s"], round((ended - began).total_seconds(), 1))
    return {
        "periods_dropped": len(dropped),
        "rows_dropped": sum(int(d["rows"]) for d in dropped),
        "files_ingested": int(batches[0] or 0),
        "received": int(batches[1] or 0),
        "accepted": int(batches[2] or 0),
        "quarantined": int(batches[3] or 0),
        # A record delivered twice (the simulator's duplicate deliveries) is counted once.
        "duplicates": int(batches[4] or 0),
        "corrections": int(batches[5] or 0),
        "jobs": jobs,
    }


TRACEBACK = "Traceback (most recent call last)"


def tracebacks(logs: Path) -> dict[str, Any]:
    """Tracebacks and HTTP 5xx lines the servers logged, by exception; the first kept whole."""
    found: dict[str, Any] = {"count": 0, "http_5xx_lines": 0, "by_exception": {}, "first": None}
    for log in sorted(logs.glob("*.log")):
        text = log.read_text(errors="replace")
        found["count"] += text.count(TRACEBACK)
        found["http_5xx_lines"] += len(re.findall(r'" 5\d\d ', text))
        for block in text.split(TRACEBACK)[1:]:
            # The exception line is the first unindented line after the frames.
            lines = block.splitlines()[1:]
            last = next((ln for ln in lines if ln and not ln.startswith(" ")), "?")
            key = f"{log.name}: {last[:200]}"
            found["by_exception"][key] = found["by_exception"].get(key, 0) + 1
        at = text.find(TRACEBACK)
        if at >= 0 and found["first"] is None:
            found["first"] = {"log": log.name, "text": text[max(0, at - 300) : at + 4000]}
    return found


def targets(report: dict[str, Any]) -> dict[str, Any]:
    results = report.get("results", {})
    wall = results.get(WALL_GROUP, {})
    slopes = {
        name: p["rss_slope_mb_per_min"]
        for name, p in report.get("processes", {}).items()
        if p.get("rss_slope_mb_per_min") is not None
        and not name.startswith(("load client", "feeder", "postgres"))
    }
    worst = max(slopes.values(), default=None)
    errors = report.get("errors", {}).get("failed")
    logged = report.get("server_tracebacks", {})
    return {
        "wall_refresh_p95_ms": wall.get("p95_ms"),
        "wall_refresh_p95_met": wall.get("p95_ms") is not None
        and wall["p95_ms"] < TARGET_WALL_P95_MS,
        "errors": errors,
        # Zero errors: no failed request and nothing the servers logged as a traceback or 5xx.
        "zero_errors_met": errors == 0
        and logged.get("count") == 0
        and logged.get("http_5xx_lines") == 0,
        "worst_rss_slope_mb_per_min": worst,
        "worst_rss_floor_slope_mb_per_min": max(
            (
                p["rss_floor_slope_mb_per_min"]
                for name, p in report.get("processes", {}).items()
                if name in slopes and p.get("rss_floor_slope_mb_per_min") is not None
            ),
            default=None,
        ),
        "memory_stable_met": worst is not None and worst < TARGET_RSS_SLOPE_MB_PER_MIN,
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{'name':64} {'count':>7} {'err':>4} {'p50':>8} {'p95':>8} {'p99':>8}")
    for name, r in report.get("results", {}).items():
        figures = " ".join(f"{r[k]:8.1f}" for k in ("p50_ms", "p95_ms", "p99_ms"))
        print(f"{name[:64]:64} {r['count']:7d} {r['errors']:4d} {figures}")
    print(f"\n{'process':40} {'cpu mean%':>9} {'cpu max%':>9} {'rss MB':>8} {'slope MB/min':>12}")
    for name, p in report.get("processes", {}).items():
        cpu = f"{p['cpu_mean_pct']:9.1f} {p['cpu_max_pct']:9.1f}"
        print(f"{name[:40]:40} {cpu} {p['rss_last_mb']:8.1f} {p['rss_slope_mb_per_min']!s:>12}")
    print("\nweb CPU:", json.dumps(report.get("web_cpu")))
    print("load average:", report.get("loadavg"))
    print("ingest:", json.dumps(report.get("ingest")))
    print("tracebacks:", json.dumps(report["server_tracebacks"]["by_exception"]))
    print(
        "tracebacks:",
        report["server_tracebacks"]["count"],
        "5xx lines:",
        report["server_tracebacks"]["http_5xx_lines"],
    )
    print("targets:", json.dumps(report["targets"]))


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # `kill` stops the run like Ctrl-C: servers, feeder and the run's database are cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    report = run(args)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))
    print_report(report)


if __name__ == "__main__":
    main()
