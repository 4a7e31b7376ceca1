"""What every `beacon` command shares: settings, the database, the actor, errors, output."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from services.audit import Actor
from services.auth import Role
from services.config import ConfigError, Settings, ensure_secret_key, load_settings
from services.db import Database, connect, upgrade_to_head
from services.errors import BeaconError
from services.startup import bootstrap

ROLE_CHOICE = click.Choice([role.value for role in Role], case_sensitive=False)


class CliError(click.ClickException):
    """An expected failure: one `error: …` line on stderr and exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class BeaconGroup(click.Group):
    """The root group: turns domain and configuration errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BeaconError as exc:
            raise CliError(exc.message) from exc
        except ConfigError as exc:
            raise CliError(str(exc)) from exc
        except OperationalError as exc:
            # An unreachable or locked database is an operating condition, not a bug.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "no answer"
            raise CliError(f"database unavailable: {reason}") from exc
        except OSError as exc:
            # Typically the data directory: missing permissions, a full or read-only disk.
            raise CliError(str(exc)) from exc


@dataclass
class CliState:
    """Per-invocation settings and database, built on first use and closed at exit."""

    data_dir: Path | None = None
    database_url: str | None = None
    key_from_env: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Settings from BEACON_* variables, with the global options taking precedence."""
        if self._settings is None:
            env = dict(os.environ)
            if self.data_dir is not None:
                env["BEACON_DATA_DIR"] = str(self.data_dir)
            if self.database_url:
                env["BEACON_DATABASE_URL"] = self.database_url
            loaded = load_settings(env)
            self.key_from_env = bool(loaded.secret_key)
            self._settings = ensure_secret_key(loaded)
        return self._settings

    def database(self) -> Database:
        """The database, migrated to head and bootstrapped (KPIs, first admin)."""
        if self._db is None:
            settings = self.settings()
            db = connect(settings.database_url)
            try:
                upgrade_to_head(db)
                bootstrap(db, settings)
            except BaseException:
                db.dispose()
                raise
            self._db = db
        return self._db

    def close(self) -> None:
        """Release database connections (SQLite files stay unlocked for the next process)."""
        if self._db is not None:
            self._db.dispose()
            self._db = None


pass_state = click.make_pass_decorator(CliState)


def cli_actor() -> Actor:
    """The audit actor for changes made here: shell access to the host means admin."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        # Containers often run under a uid with no passwd entry.
        login = f"uid{os.getuid()}"
    return Actor(name=f"cli:{login}", role="admin", kind="system")


def read_password(*, from_stdin: bool, prompt: str = "Password") -> str:
    """One line of stdin, or a hidden prompt asked twice."""
    if not from_stdin:
        return click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise CliError("no password on standard input")
    return password


def describe_database(url: str) -> str:
    """Where the data lives: the file for SQLite, the URL without password otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    """A timestamp in the NOC's time zone, or 'never'."""
    if moment is None:
        return "never"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain, column-aligned table that reads well in a terminal and in `grep`."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(value)) for w, value in zip(widths, row, strict=True)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(value.ljust(w) for value, w in zip(row, widths, strict=True)).rstrip())
