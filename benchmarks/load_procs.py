"""Processes of a load run: start them, wait until they answer, sample CPU and memory, stop.

Sampling uses psutil every few seconds: each gunicorn worker (found as children of the
master, so a worker that dies and is replaced shows up as a new pid), the master, the
scheduler (or the single embedded process), the feeder, this client, and the sum of the
PostgreSQL backends serving the run's database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil


@dataclass
class Started:
    """A process we launched, with the log file its output goes to."""

    role: str
    popen: subprocess.Popen[bytes]
    log: Path


def launch(role: str, argv: list[str], env: dict[str, str], logs: Path, cwd: Path) -> Started:
    log = logs / f"{role}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Started(role=role, popen=popen, log=log)


def wait_ready(base: str, processes: list[Started], timeout_s: float = 180.0) -> float:
    """Seconds until /readyz answers 200; raises if a process dies or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        for proc in processes:
            if proc.popen.poll() is not None:
                tail = proc.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{proc.role} exited with {proc.popen.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as resp:  # noqa: S310
                if resp.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{base}/readyz did not answer within {timeout_s:.0f} s")


def stop(processes: list[Started], grace_s: float = 30.0) -> dict[str, int | None]:
    """SIGTERM every process (gunicorn stops its workers gracefully), SIGKILL stragglers."""
    for proc in processes:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    codes: dict[str, int | None] = {}
    for proc in processes:
        try:
            codes[proc.role] = proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.popen.pid, signal.SIGKILL)
            codes[proc.role] = proc.popen.wait()
    return codes


@dataclass
class Sampler:
    """Samples CPU % and RSS of the run's processes on a background thread."""

    roles: dict[str, int]  # role -> pid of a top-level process
    workers_of: str | None  # role whose children are the web workers
    pg_database: str | None
    every_s: float = 5.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    loadavg: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _procs: dict[int, psutil.Process] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        self._tracked()  # primes cpu_percent, which measures from the previous call
        while not self._stop.wait(self.every_s):
            t = round(time.monotonic() - self._started, 1)
            self.loadavg.append((t, os.getloadavg()[0]))
            pg = {"cpu": 0.0, "cpu_s": 0.0, "rss": 0, "n": 0}
            for label, proc in self._tracked():
                try:
                    cpu = proc.cpu_percent(None)
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                if rss == 0:  # exited, not yet reaped
                    continue
                cpu_s = times.user + times.system
                if label == "postgres":
                    pg["cpu"] += cpu
                    pg["cpu_s"] += cpu_s
                    pg["rss"] += rss
                    pg["n"] += 1
                    continue
                self.samples.append(
                    {"t": t, "process": label, "pid": proc.pid, "cpu": cpu, "cpu_s": cpu_s,
                     "rss": rss}
                )  # fmt: skip
            if self.pg_database:
                # Backends come and go with the pools: their CPU time is not a running total.
                self.samples.append(
                    {"t": t, "process": "postgres backends (sum)", "pid": 0, "cpu": pg["cpu"],
                     "cpu_s": None, "rss": pg["rss"], "backends": pg["n"]}
                )  # fmt: skip

    def _tracked(self) -> list[tuple[str, psutil.Process]]:
        found: list[tuple[str, psutil.Process]] = []
        for role, pid in self.roles.items():
            proc = self._proc(pid)
            if proc is None:
                continue
            found.append((role, proc))
            if role == self.workers_of:
                try:
                    children = proc.children()
                except psutil.Error:
                    children = []
                found += [(f"web worker pid {c.pid}", self._proc(c.pid) or c) for c in children]
        if self.pg_database:
            for proc in psutil.process_iter(["name", "cmdline"]):
                cmd = " ".join(proc.info.get("cmdline") or [])
                if cmd.startswith("postgres:") and f" {self.pg_database} " in cmd:
                    found.append(("postgres", self._proc(proc.pid) or proc))
        return found

    def _proc(self, pid: int) -> psutil.Process | None:
        if pid not in self._procs:
            try:
                self._procs[pid] = psutil.Process(pid)
            except psutil.Error:
                return None
        return self._procs[pid]

    def summary(self, *, skip_s: float) -> dict[str, dict[str, Any]]:
        """Per process: mean and max CPU %, RSS (start, end, max) and its slope after warm-up."""
        by_process: dict[str, list[dict[str, Any]]] = {}
        for s in self.samples:
            by_process.setdefault(s["process"], []).append(s)
        out = {}
        for name, rows in by_process.items():
            steady = [r for r in rows if r["t"] >= skip_s] or rows
            rss = [r["rss"] / 2**20 for r in steady]
            minutes = [r["t"] / 60 for r in steady]
            slope = float(np.polyfit(minutes, rss, 1)[0]) if len(steady) >= 3 else None
            floor_slope = _floor_slope(minutes, rss)
            cpu_s = [r["cpu_s"] for r in steady if r.get("cpu_s") is not None]
            out[name] = {
                "samples": len(rows),
                "cpu_mean_pct": round(float(np.mean([r["cpu"] for r in steady])), 1),
                "cpu_max_pct": round(max(r["cpu"] for r in steady), 1),
                # CPU seconds used between the first and last sample after the warm-up.
                "cpu_s_steady": round(cpu_s[-1] - cpu_s[0], 1) if len(cpu_s) >= 2 else None,
                "steady_s": round(steady[-1]["t"] - steady[0]["t"], 1),
                "rss_first_mb": round(rows[0]["rss"] / 2**20, 1),
                "rss_steady_start_mb": round(rss[0], 1),
                "rss_last_mb": round(rows[-1]["rss"] / 2**20, 1),
                "rss_max_mb": round(max(r["rss"] for r in rows) / 2**20, 1),
                "rss_slope_mb_per_min": None if slope is None else round(slope, 3),
                # A process that works in bursts (the scheduler: one period a minute) has a
                # saw-tooth RSS; its lowest point per minute is what it keeps between jobs.
                "rss_floor_slope_mb_per_min": (
                    None if floor_slope is None else round(floor_slope, 3)
                ),
            }
        return out

    def timeline(self, *, points: int = 60) -> dict[str, list[list[float]]]:
        """Per process, at most `points` samples of [t s, RSS MB, CPU %] (for memory plots)."""
        by_process: dict[str, list[list[float]]] = {}
        for s in self.samples:
            by_process.setdefault(s["process"], []).append(
                [s["t"], round(s["rss"] / 2**20, 1), round(s["cpu"], 1)]
            )
        return {
            name: rows[:: max(1, len(rows) // points)] + ([rows[-1]] if len(rows) > points else [])
            for name, rows in by_process.items()
        }

    def load_summary(self) -> dict[str, float | None]:
        values = [v for _, v in self.loadavg]
        if not values:
            return {"mean": None, "max": None}
        return {"mean": round(float(np.mean(values)), 2), "max": round(max(values), 2)}


def _floor_slope(minutes: list[float], rss: list[float]) -> float | None:
    """Least-squares slope (MB/min) of the lowest RSS in each whole minute."""
    floors: dict[int, float] = {}
    for minute, value in zip(minutes, rss, strict=True):
        key = int(minute)
        floors[key] = min(value, floors.get(key, value))
    if len(floors) < 3:
        return None
    keys = sorted(floors)
    return float(np.polyfit(keys, [floors[k] for k in keys], 1)[0])
