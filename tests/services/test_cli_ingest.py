"""`beacon ingest`, `beacon quarantine` and `beacon scheduler` from a shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from testkit import ADMIN_PASSWORD, REPO_ROOT

from services.cli import cli

DN = "SubNetwork=North,ManagedElement=SITE-0001,EUtranCellFDD=C1"


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "BEACON_DATA_DIR": str(tmp_path),
        "BEACON_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BEACON_SIMULATOR": "0",
    }


def _run(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), env=_env(tmp_path), catch_exceptions=False)


def test_ingest_prints_one_json_summary(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text(
        "dn,kpi,period_end,value\n"
        f'"{DN}",prb_util_dl,2026-11-20T10:00:00Z,40\n'
        f'"{DN}",prb_util_dl,2026-11-20T10:00:00Z,40\n'
        f'"{DN}",vendorCounterZ,2026-11-20T10:00:00Z,7\n'
        f'"{DN}",prb_util_ul,2026-11-20T10:00:00Z,-3\n'
    )
    result = _run(tmp_path, "ingest", str(data), "--format", "csv", "--source", "oss")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("received", "accepted", "duplicates", "quarantined")} == {
        "received": 4,
        "accepted": 1,
        "duplicates": 1,
        "quarantined": 2,
    }
    assert summary["reasons"] == {"unknown_counter": 1, "out_of_range": 1}
    assert isinstance(summary["batch_id"], int)

    listing = _run(tmp_path, "quarantine", "list")
    assert "unknown_counter" in listing.output
    assert "oss" in listing.output
    refused = CliRunner().invoke(cli, ["quarantine", "replay"], env=_env(tmp_path))
    assert refused.exit_code == 1
    assert "choose what to replay" in refused.output
    replayed = _run(tmp_path, "quarantine", "replay", "--reason", "out_of_range")
    outcome = json.loads(replayed.output.strip().splitlines()[-1])
    # Still out of range: replayed, and quarantined again with its reason in a new batch.
    assert (outcome["replayed"], outcome["accepted"], outcome["quarantined_again"]) == (1, 0, 1)


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    data = tmp_path / "x.txt"
    data.write_text("hello")
    result = CliRunner().invoke(cli, ["ingest", str(data), "--format", "exe"], env=_env(tmp_path))
    assert result.exit_code == 2


def test_scheduler_runs_jobs_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, **_env(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 40
        import sqlite3

        runs = 0
        while time.time() < deadline and runs == 0:
            time.sleep(0.5)
            try:
                with sqlite3.connect(tmp_path / "beacon.db") as conn:
                    runs = conn.execute(
                        "SELECT count(*) FROM job_runs WHERE status = 'ok'"
                    ).fetchone()[0]
            except sqlite3.Error:
                continue
        assert runs >= 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "lease released" in err


def test_ingest_ves_and_alarm_files(tmp_path: Path) -> None:
    from testkit import SHARED_DATA

    sample = (
        SHARED_DATA / "ves/dcaegen2-collectors-ves/src/test/resources/ves7_valid_30_1_1_event.json"
    )
    result = _run(tmp_path, "ingest", str(sample), "--format", "ves")
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["received"], summary["accepted"], summary["quarantined"]) == (1, 1, 0)

    webhook = tmp_path / "am.json"
    webhook.write_text(
        json.dumps(
            {
                "version": "4",
                "groupKey": "g",
                "status": "firing",
                "receiver": "noc",
                "groupLabels": {},
                "commonLabels": {},
                "commonAnnotations": {},
                "externalURL": "http://am",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "LinkDown", "instance": "AGG-1"},
                        "annotations": {"summary": "link down"},
                        "startsAt": "2026-11-25T20:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://x",
                    }
                ],
            }
        )
    )
    first = json.loads(
        _run(tmp_path, "ingest", str(webhook), "--format", "alertmanager")
        .output.strip()
        .splitlines()[-1]
    )
    again = json.loads(
        _run(tmp_path, "ingest", str(webhook), "--format", "alertmanager")
        .output.strip()
        .splitlines()[-1]
    )
    assert (first["accepted"], again["duplicates"]) == (1, 1)
