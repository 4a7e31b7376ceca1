"""`beacon forecasts`: refresh stored capacity forecasts and show their state from a shell."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from sqlalchemy import select

from services.cli._base import CliError, CliState, pass_state, when
from services.db import Database
from services.db.models import DailyAggregate, Element, Kpi
from services.forecast import progress, service, store
from services.forecast.executor import make_executor
from services.logs import configure_logging


@click.group("forecasts", short_help="Capacity forecasts over stored telemetry.")
def forecasts_group() -> None:
    """Fit and store capacity forecasts (as the scheduler job does) and report on them."""


@forecasts_group.command("refresh", short_help="Fit stale series now, with a progress bar.")
@click.option("--kpi", "kpi_name", metavar="KPI", help="Only this KPI (e.g. prb_util_dl).")
@click.option("--element", metavar="DN", help="Only this element (DN or numeric id).")
@click.option("--limit", type=click.IntRange(min=1), help="At most N series this run.")
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=256),
    help="Worker processes (default BEACON_FORECAST_WORKERS; ignored for a Dask executor).",
)
@click.option("--force", is_flag=True, help="Refit every series, not only stale ones.")
@pass_state
def refresh(
    state: CliState,
    kpi_name: str | None,
    element: str | None,
    limit: int | None,
    workers: int | None,
    force: bool,
) -> None:
    """Fit every series with newer data than its forecast; print a JSON summary.

    With --kpi or --element, every matching series is refitted, stale or not. Progress
    goes to stderr; the summary (fitted, fallback, failed, insufficient, skipped …) to stdout.
    """
    settings = state.settings()
    db = state.database()
    configure_logging(settings.log_level)
    pairs = _selected_pairs(db, kpi_name, element) if kpi_name or element else None
    if pairs is not None and not pairs:
        raise CliError("no stored daily data matches --kpi/--element; nothing to forecast")
    executor = make_executor(
        settings.forecast_executor, workers=workers or settings.forecast_workers
    )
    try:
        with click.progressbar(length=1, label="forecasts", file=sys.stderr, show_pos=True) as bar:

            def advance(done: int, total: int) -> None:
                # The number of series is known once the run has planned its work.
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

            run = service.run_forecasts(
                db,
                settings,
                pairs=pairs,
                executor=executor,
                progress=advance,
                force=force,
                limit=limit,
            )
    finally:
        executor.close()
    click.echo(json.dumps(run.as_dict()))
    if run.failed:
        click.echo(f"{run.failed} series failed; see the log above", err=True)


@forecasts_group.command("status", short_help="Current forecasts, risk and the last run.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def status(state: CliState, as_json: bool) -> None:
    """How many series have a forecast (by status), how many are at risk, what is stale."""
    settings = state.settings()
    summary = progress.status(state.database())
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    counts = summary["forecasts"]
    click.echo(f"forecasts:   {sum(counts.values())} current daily busy-hour series")
    for name, count in counts.items():
        click.echo(f"  {name + ':':22} {count}")
    click.echo(f"at risk:     {summary['at_risk_30']} within 30 days, "
               f"{summary['at_risk_90']} within 90 days (breach probability >= 50%)")  # fmt: skip
    click.echo(f"stale:       {summary['stale']} series with newer data than their forecast")
    click.echo(f"newest fit:  {when(summary['newest_fit'], settings.zone)}")
    click.echo(f"last run:    {_describe_run(summary['last_run'], settings.zone)}")
    if summary["running"] is not None:
        share = summary["running"]["progress"] or 0.0
        click.echo(f"running:     since {when(summary['running']['started_at'], settings.zone)}, "
                   f"{share:.0%} done")  # fmt: skip


def _describe_run(run: dict[str, Any] | None, zone: Any) -> str:
    if run is None:
        return "never"
    detail = run["detail"]
    text = f"{when(run['finished_at'], zone)} ({run['status']})"
    if run["error"]:
        return f"{text}: {run['error']}"
    counts = ", ".join(
        f"{detail[k]} {k}" for k in ("fitted", "fallback", "failed", "insufficient") if k in detail
    )
    return f"{text}: {counts}" if counts else text


def _selected_pairs(
    db: Database, kpi_name: str | None, element: str | None
) -> list[tuple[int, int]]:
    """Series with stored daily data matching the filters (forecast KPIs only)."""
    with db.session() as session:
        kpis = {k.name: k.id for k in store.forecast_kpis(session)}
        if kpi_name is not None and kpi_name not in kpis:
            known = session.scalar(select(Kpi.id).where(Kpi.name == kpi_name))
            reason = "is not forecast" if known else "is not a KPI"
            raise CliError(f"{kpi_name} {reason}; forecast KPIs: {', '.join(sorted(kpis))}")
        query = select(DailyAggregate.element_id, DailyAggregate.kpi_id).distinct()
        query = query.where(
            DailyAggregate.kpi_id.in_([kpis[kpi_name]] if kpi_name else list(kpis.values()))
        )
        if element is not None:
            found = session.scalar(
                select(Element.id).where(
                    Element.id == int(element) if element.isdigit() else Element.dn == element
                )
            )
            if found is None:
                raise CliError(f"no element {element!r} (give its DN or numeric id)")
            query = query.where(DailyAggregate.element_id == found)
        return sorted((int(e), int(k)) for e, k in session.execute(query))
