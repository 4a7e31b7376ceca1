"""The `beacon` commands that run for a while: simulate and serve, as real processes too."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from testkit import ADMIN_PASSWORD

from services.cli import cli
from services.db import Database, connect
from services.db.models import IngestBatch, Measurement

ROOT = Path(__file__).resolve().parents[2]
BEACON_SCRIPT = Path(sys.executable).parent / "beacon"
SMALL_NETWORK = {"BEACON_SIM_SITES_PER_REGION": "1"}


def beacon_command() -> list[str]:
    """The installed console script, or the module when the project is not installed."""
    if BEACON_SCRIPT.exists():
        return [str(BEACON_SCRIPT)]
    return [sys.executable, "-m", "services.cli"]


def process_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: ours, minus any Beacon settings, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_")}
    env.update(
        BEACON_DATA_DIR=str(data_dir),
        BEACON_ADMIN_PASSWORD=ADMIN_PASSWORD,
        BEACON_LOG_LEVEL="INFO",
        **extra,
    )
    return env


@pytest.fixture
def data_dir(tmp_path: Path, template_db: Path) -> Path:
    """A data dir holding a copy of the migrated, seeded template database."""
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def db(data_dir: Path) -> Iterator[Database]:
    database = connect(f"sqlite:///{data_dir / 'beacon.db'}")
    yield database
    database.dispose()


def wait_for_line(path: Path, pattern: str, timeout: float) -> re.Match[str]:
    """Poll a growing output file until a line matches."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, path.read_text())
        if match:
            return match
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} within {timeout} s in:\n{path.read_text()}")


# --- simulate ----------------------------------------------------------------------------


def test_simulate_backfills_and_conserves_every_record(data_dir: Path, db: Database) -> None:
    env = process_env(data_dir, BEACON_SIM_BACKFILL_DAYS="1", **SMALL_NETWORK)

    result = CliRunner().invoke(cli, ["simulate", "--no-live"], env=env)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["elements_added"] > 0
    assert summary["accepted"] > 0
    with db.session() as session:
        measurements = session.scalar(select(func.count()).select_from(Measurement))
        received, accepted, duplicates, quarantined = session.execute(
            select(
                func.sum(IngestBatch.received),
                func.sum(IngestBatch.accepted),
                func.sum(IngestBatch.duplicates),
                func.sum(IngestBatch.quarantined),
            )
        ).one()
    assert measurements
    assert measurements > 0
    assert received == summary["received"]
    assert received == accepted + duplicates + quarantined


def test_backfill_days_only_applies_to_the_first_run(data_dir: Path) -> None:
    env = process_env(data_dir, **SMALL_NETWORK)
    # Without --live the command returns once history is in.
    first = CliRunner().invoke(cli, ["simulate", "--backfill-days", "0"], env=env)
    second = CliRunner().invoke(cli, ["simulate", "--backfill-days", "5"], env=env)

    assert first.exit_code == second.exit_code == 0, second.output
    anchor = json.loads(first.stdout.splitlines()[-1])["anchor"]
    assert json.loads(second.stdout.splitlines()[-1])["anchor"] == anchor
    assert "--backfill-days is ignored" in second.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_live_simulation_stops_cleanly(data_dir: Path, stop_signal: signal.Signals) -> None:
    out, err = data_dir / "sim.out", data_dir / "sim.err"
    env = process_env(data_dir, **SMALL_NETWORK)
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [*beacon_command(), "simulate", "--live", "--backfill-days", "0"],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            wait_for_line(err, r"live: delivering", timeout=60)
            proc.send_signal(stop_signal)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "simulator stopped" in err.read_text()
    assert "Traceback" not in err.read_text()
    assert json.loads(out.read_text().splitlines()[0])["delivered_until"]


# --- serve -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int | None:
    """The status code, without following redirects; None while nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local test URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_for_ok(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until `url` answers 200; fails early if the server exits."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert proc.poll() is None, "beacon serve exited"
        if http_status(url) == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


def worker_pids(log: Path, *, count: int, timeout: float) -> set[int]:
    """The pids gunicorn reports booting, once `count` of them have."""
    deadline = time.monotonic() + timeout
    while True:
        pids = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", log.read_text())}
        if len(pids) >= count or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and parentheses; fields after the last ')' are fixed.
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_serve_runs_several_workers_and_stops_on_sigterm(data_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out, err = data_dir / "serve.out", data_dir / "serve.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [*beacon_command(), "serve", "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            env=process_env(data_dir),
            stdout=stdout,
            stderr=stderr,
        )
        try:
            seconds = wait_for_ok(f"{base}/healthz", proc, timeout=90)
            print(f"beacon serve: first 200 after {seconds:.2f} s")
            assert http_status(f"{base}/login") == 200
            workers = worker_pids(err, count=2, timeout=30)
            assert {parent_pid(pid) for pid in workers} == {proc.pid}
            # A worker swallows a SIGTERM that lands before it installs its own handlers
            # (milliseconds after fork); the master then waits out the graceful timeout.
            time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert '"GET /healthz HTTP/1.1" 200' in out.read_text()
    assert "Traceback" not in err.read_text()
    # Migrations ran once, in the master, before the workers were forked.
    assert err.read_text().count("Context impl SQLiteImpl") == 1
