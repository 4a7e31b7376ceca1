"""Helpers of the fault tests: real `beacon` processes and a private PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from testkit import REPO_ROOT

BEACON = str(Path(sys.executable).with_name("beacon"))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], *, timeout: float, every: float = 0.2) -> Any:
    """Poll `condition` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - e.g. the server is still starting
            last_error = exc
        else:
            if value:
                return value
        time.sleep(every)
    pytest.fail(f"condition not met within {timeout} s (last error: {last_error!r})")


def beacon_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `beacon` subprocess: its own data dir and database, no simulator."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "BEACON_DATA_DIR": str(data_dir),
        "BEACON_DATABASE_URL": database_url,
        "BEACON_SIMULATOR": "0",
        "BEACON_ADMIN_PASSWORD": "admin-pass-123",
        "BEACON_LOGIN_RATE_LIMIT": "1000 per minute",
        "BEACON_NOTIFY_LOG": "0",
        "BEACON_FORECAST_WORKERS": "1",
        "BEACON_LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def start_beacon(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`beacon ARGS` in its own process group, output to `log` (read it when a test fails)."""
    handle = log.open("ab")
    return subprocess.Popen(
        [BEACON, *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(
    process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 30
) -> int:
    """Signal the process group and wait; SIGKILL if it does not end in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return int(process.returncode)


def tail(log: Path, lines: int = 40) -> str:
    """The end of a process log, for assertion messages."""
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# ---- a private PostgreSQL cluster ----------------------------------------------------------


def postgres_binaries() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian layout), if any."""
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def skip_or_fail_without_binaries() -> Path:
    """The binaries, or skip (fail in CI, BEACON_REQUIRE_POSTGRES=1) naming what is missing."""
    binaries = postgres_binaries()
    if binaries is not None:
        return binaries
    message = "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql"
    if os.environ.get("BEACON_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


class PrivatePostgres:
    """A throwaway cluster (trust auth, loopback, a free port) a test may stop and restart.

    The shared test server is never touched: restarting it would break every other test.
    As root the server runs as the `postgres` OS user (PostgreSQL refuses to run as root).
    """

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="beacon-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")
            self.root.chmod(0o700)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        command = [str(self.binaries / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}\n{result.stderr}\n{self.tail()}")

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self) -> None:
        # fsync off: a test cluster, thrown away at the end; the socket only in its own dir.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c unix_socket_directories={self.root} -c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop now: `fast` ends every session, like an operator's restart or a failover."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def tail(self) -> str:
        return tail(self.log) if self.log.exists() else ""

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private cluster, always stopped and removed afterwards."""
    cluster = PrivatePostgres(skip_or_fail_without_binaries())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


# ---- drop-folder deliveries ----------------------------------------------------------------

# Not a capacity KPI: the forecast jobs leave these records alone, so a test's scheduler
# spends its time ingesting.
DROP_KPI = "rrc_setup_sr"


def write_drop_files(
    folder: Path, *, files: int, cells: int, periods: int, bad_every: int
) -> tuple[int, int]:
    """`files` settled CSV files of distinct records, every `bad_every`-th value not a number.

    Returns (valid, invalid) records delivered.
    """
    folder.mkdir(parents=True)
    newest = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    valid = invalid = n = 0
    for index in range(files):
        lines = ["dn,kpi,period_end,value"]
        for p in range(periods):
            period = newest - timedelta(minutes=15 * (index * periods + p))
            stamp = period.strftime("%Y-%m-%dT%H:%M:%SZ")
            for cell in range(cells):
                n += 1
                dn = f'"SubNetwork=F,ManagedElement=S{cell // 3},EUtranCellFDD=C{cell}"'
                if n % bad_every == 0:
                    lines.append(f"{dn},{DROP_KPI},{stamp},n/a")
                    invalid += 1
                else:
                    lines.append(f"{dn},{DROP_KPI},{stamp},{90 + (cell * 7 + p) % 10}")
                    valid += 1
        path = folder / f"pm-{index:02d}.csv"
        path.write_text("\n".join(lines) + "\n")
        # Settled: the folder takes files unchanged for a few seconds.
        old = time.time() - 60
        os.utime(path, (old, old))
    return valid, invalid
