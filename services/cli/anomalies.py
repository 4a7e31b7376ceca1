"""`beacon anomalies`: run anomaly detection over stored history from a shell."""

from __future__ import annotations

import json

import click

from services.anomaly import service
from services.cli._base import CliState, pass_state
from services.logs import configure_logging


@click.group("anomalies", short_help="Anomaly detection over stored telemetry.")
def anomalies_group() -> None:
    """Evaluate stored periods and persist anomaly episodes (as the scheduler job does)."""


@anomalies_group.command("backfill", short_help="Evaluate the last N days of history.")
@click.option(
    "--days",
    type=click.FloatRange(min=0.01, max=400),
    default=14,
    show_default=True,
    help="How far back to evaluate; periods already evaluated add no duplicate episodes.",
)
@pass_state
def backfill(state: CliState, days: float) -> None:
    """Evaluate every complete period of the last DAYS days, then print a JSON summary."""
    settings = state.settings()
    db = state.database()
    configure_logging(settings.log_level)
    run = service.backfill(db, days=days, zone=settings.zone)
    click.echo(json.dumps(run.as_dict()))
    if run.failures:
        click.echo(f"{len(run.failures)} failure(s); see the log above", err=True)


@anomalies_group.command("run", short_help="One detection pass, as the scheduler runs it.")
@pass_state
def run_once(state: CliState) -> None:
    """Evaluate new complete periods and pending re-evaluations once; print a JSON summary."""
    settings = state.settings()
    db = state.database()
    configure_logging(settings.log_level)
    run = service.run_detection(db, zone=settings.zone)
    click.echo(json.dumps(run.as_dict()))
