"""Cold start of embedded Beacon (`python app.py`) to a served login page.

Each run starts from an empty data directory (so migrations, seeding and the simulator's
inventory are included), measures the time until `GET /login` answers 200, then keeps
timing until the background simulator has stored its history. For a ratio that does not
depend on how busy this shared machine is, the same run also times a minimal Dash app
served by the same server (waitress) to its first 200.

    python benchmarks/bench_cold_start.py [--runs 3] [--backfill-days 14]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = """
from dash import Dash, html
from waitress import serve
app = Dash(__name__)
app.layout = html.Div("hello")
serve(app.server, host="127.0.0.1", port={port})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_200(url: str, started: float, timeout: float = 120.0) -> float:
    """Seconds from `started` until `url` answers 200."""
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


def history_loaded(db_path: Path) -> bool:
    """True once the simulator's first catch-up run has finished."""
    if not db_path.exists():
        return False
    try:
        with sqlite3.connect(db_path, timeout=1) as conn:
            row = conn.execute(
                "SELECT count(*) FROM job_runs WHERE job_id = 'simulator.feed' AND status = 'ok'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0])


def run_beacon(backfill_days: int) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "BEACON_DATA_DIR": data_dir,
            "BEACON_PORT": str(port),
            "BEACON_ADMIN_PASSWORD": "bench-admin-pass",
            "BEACON_SIM_BACKFILL_DAYS": str(backfill_days),
        }
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            login = wait_for_200(f"http://127.0.0.1:{port}/login", started)
            while not history_loaded(Path(data_dir) / "beacon.db"):
                if time.perf_counter() - started > 900:
                    raise TimeoutError("simulator history")
                time.sleep(0.25)
            history = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {"login_page_s": login, "history_loaded_s": history}


def run_baseline() -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", BASELINE.format(port=port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return wait_for_200(f"http://127.0.0.1:{port}/", started)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backfill-days", type=int, default=14)
    args = parser.parse_args()
    beacon, baseline = [], []
    for _ in range(args.runs):
        baseline.append(run_baseline())
        beacon.append(run_beacon(args.backfill_days))
    login = [r["login_page_s"] for r in beacon]
    history = [r["history_loaded_s"] for r in beacon]
    result = {
        "runs": args.runs,
        "backfill_days": args.backfill_days,
        "beacon_login_page_s": {"median": statistics.median(login), "max": max(login)},
        "beacon_history_loaded_s": {"median": statistics.median(history), "max": max(history)},
        "baseline_minimal_dash_s": {"median": statistics.median(baseline)},
        "ratio_login_vs_minimal_dash": statistics.median(login) / statistics.median(baseline),
        "target_login_page_s": 10.0,
        "meets_target": max(login) < 10.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
