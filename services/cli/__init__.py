"""The `beacon` command: set up, administer and serve Beacon from a shell."""

from __future__ import annotations

from pathlib import Path

import click

from services import auth
from services.cli._base import BeaconGroup, CliState, describe_database, pass_state
from services.cli.anomalies import anomalies_group
from services.cli.audit_trail import audit_group
from services.cli.detect import detect
from services.cli.forecast import forecast
from services.cli.forecasts import forecasts_group
from services.cli.ingest import ingest, quarantine_group, scheduler
from services.cli.serve import serve
from services.cli.simulate import simulate
from services.cli.tokens import token_group
from services.cli.users import user_group
from services.db.migrate import current_revision, head_revision

__all__ = ["cli", "main"]


@click.group(cls=BeaconGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (overrides BEACON_DATA_DIR).",
)
@click.option("--database-url", metavar="URL", help="Database (overrides BEACON_DATABASE_URL).")
@click.version_option(package_name="beacon", prog_name="beacon")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, database_url: str | None) -> None:
    """Beacon: the console for running network AI in production.

    Configuration comes from BEACON_* environment variables, as for the web app. Every
    command that uses the database first brings its schema up to date.
    """
    state = CliState(data_dir=data_dir, database_url=database_url)
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command("init", short_help="Set up data dir, secret key, schema and first admin.")
@pass_state
def init(state: CliState) -> None:
    """Create the data directory, secret key, schema and first admin; safe to repeat."""
    settings = state.settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = state.database()
    revision, head = current_revision(db), head_revision(db)
    with db.session() as session:
        users, admins = len(auth.list_users(session)), auth.count_admins(session)
    key = "from BEACON_SECRET_KEY" if state.key_from_env else str(settings.data_dir / "secret_key")
    click.echo("Beacon is initialised.")
    click.echo(f"  data dir:    {settings.data_dir}")
    click.echo(f"  database:    {describe_database(settings.database_url)}")
    schema = "current" if revision == head else f"code expects {head}"
    click.echo(f"  schema:      {revision} ({schema})")
    click.echo(f"  secret key:  {key}")
    click.echo(f"  users:       {users} ({admins} active admin{'s' if admins != 1 else ''})")
    click.echo("Next: `beacon serve` for the console, `beacon simulate` for demo telemetry.")


cli.add_command(user_group)
cli.add_command(token_group)
cli.add_command(audit_group)
cli.add_command(simulate)
cli.add_command(serve)
cli.add_command(ingest)
cli.add_command(quarantine_group)
cli.add_command(scheduler)
cli.add_command(anomalies_group)
cli.add_command(detect)
cli.add_command(forecast)
cli.add_command(forecasts_group)


def main() -> None:
    """Entry point of the `beacon` console script."""
    cli(prog_name="beacon")
