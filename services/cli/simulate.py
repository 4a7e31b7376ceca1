"""`beacon simulate`: feed the simulated demo network into the ingest pipeline."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from services import kv
from services.cli._base import CliState, pass_state
from services.db import Database
from services.ingest.simfeed import ANCHOR_KEY, FeedResult, SimulatorFeed
from services.logs import configure_logging
from services.runtime import SIMULATOR_EVERY_S, SIMULATOR_JOB
from services.scheduler import JobResult, run_recorded

BACKFILL_HELP = (
    "Days of history to generate (default: BEACON_SIM_BACKFILL_DAYS). Only the first run "
    "uses it: that run fixes where the simulated history starts, and later runs continue "
    "from where the previous one stopped."
)


@click.command("simulate", short_help="Feed the simulated demo network: backfill, then live.")
@click.option("--backfill-days", type=click.IntRange(0, 400), default=None, help=BACKFILL_HELP)
@click.option(
    "--live/--no-live",
    default=False,
    show_default=True,
    help="After catching up, keep delivering every minute until Ctrl-C or SIGTERM.",
)
@pass_state
def simulate(state: CliState, backfill_days: int | None, live: bool) -> None:
    """Register the simulated network and catch its telemetry up to now; --live keeps going.

    Prints one JSON summary line per delivery run on stdout; progress goes to stderr.
    """
    settings = state.settings()
    if backfill_days is not None:
        settings = settings.with_overrides(sim_backfill_days=backfill_days)
    db = state.database()
    # After migrating: a long-running feed logs its failures, set-up chatter is not needed.
    configure_logging(settings.log_level)
    _note_when_anchored(db, backfill_days)
    feed = SimulatorFeed(db, settings)
    added = feed.prepare()
    started = time.monotonic()
    result = _catch_up_with_progress(feed)
    summary = _summary(result, seconds=time.monotonic() - started)
    click.echo(json.dumps({"elements_added": added, "anchor": feed.anchor.isoformat(), **summary}))
    if live:
        _deliver_live(db, feed)


def _note_when_anchored(db: Database, backfill_days: int | None) -> None:
    """Say so when --backfill-days cannot apply any more."""
    if backfill_days is None:
        return
    with db.session() as session:
        anchor = kv.get_value(session, ANCHOR_KEY)
    if anchor is not None:
        click.echo(
            f"note: simulated history already starts at {anchor}; --backfill-days is ignored",
            err=True,
        )


def _catch_up_with_progress(feed: SimulatorFeed) -> FeedResult:
    """Catch up with a progress bar on stderr (just a label when it is not a terminal)."""
    with click.progressbar(
        length=1, label="simulated periods", file=sys.stderr, show_pos=True
    ) as bar:

        def progress(done: int, total: int) -> None:
            # catch_up knows the number of periods only once it starts.
            bar.length = total
            bar.update(done - bar.pos)

        return feed.catch_up(progress=progress)


def _deliver_live(db: Database, feed: SimulatorFeed) -> None:
    """Deliver every minute, each run recorded in the job history, until Ctrl-C or SIGTERM."""
    click.echo(f"live: delivering every {SIMULATOR_EVERY_S} s; Ctrl-C stops", err=True)

    def job() -> JobResult:
        result = feed.catch_up()
        click.echo(json.dumps(_summary(result)))
        return JobResult(rows=result.accepted, detail=_summary(result))

    with _stop_signals() as stop:
        while _sleep_until_next_minute(stop):
            run_recorded(db, SIMULATOR_JOB, job)
    click.echo("simulator stopped", err=True)


class _StopFlag:
    """Set by SIGINT or SIGTERM; a run in progress finishes before the loop ends."""

    requested = False


@contextmanager
def _stop_signals() -> Iterator[_StopFlag]:
    """Ctrl-C and SIGTERM (systemd, docker stop) both ask for a clean stop."""
    flag = _StopFlag()

    def request_stop(_signum: int, _frame: object) -> None:
        flag.requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sleep_until_next_minute(stop: _StopFlag) -> bool:
    """Sleep to the next delivery time in short steps; False once a stop was asked for."""
    deadline = time.time() + SIMULATOR_EVERY_S - time.time() % SIMULATOR_EVERY_S
    while not stop.requested and time.time() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.time())))
    return not stop.requested


def _summary(result: FeedResult, *, seconds: float | None = None) -> dict[str, object]:
    doc: dict[str, object] = {
        "batches": result.batches,
        "received": result.received,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "delivered_until": result.delivered_until.isoformat() if result.delivered_until else None,
    }
    if seconds is not None:
        doc["seconds"] = round(seconds, 2)
    return doc
