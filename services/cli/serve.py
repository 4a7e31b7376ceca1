"""`beacon serve`: the web console under gunicorn with several worker processes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from services.cli._base import CliState, pass_state
from services.db import Database
from services.logs import configure_logging

log = logging.getLogger("beacon")
THREADS_PER_WORKER = 4
# Settings that older gunicorn releases lack; applied only where they exist.
OPTIONAL_SETTINGS = frozenset({"control_socket_disable"})


class BeaconServer(BaseApplication):
    """A gunicorn application around an already built (preloaded) Flask server."""

    def __init__(self, server: Flask, options: dict[str, Any]) -> None:
        self.server = server
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply our options; gunicorn's own command line and config files are not read."""
        assert self.cfg is not None
        for key, value in self.options.items():
            if key in OPTIONAL_SETTINGS and key not in self.cfg.settings:
                continue
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.server


@click.command("serve", short_help="Serve the console with several gunicorn workers.")
@click.option("--host", default=None, help="Address to listen on (default: BEACON_HOST).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port to listen on (default: BEACON_PORT).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes (default: BEACON_WORKERS).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=THREADS_PER_WORKER,
    show_default=True,
    help="Threads per worker.",
)
@pass_state
def serve(
    state: CliState, host: str | None, port: int | None, workers: int | None, threads: int
) -> None:
    """Serve the console in production: gunicorn, several workers, access log on stdout.

    Migrations and first-start seeding run once, before the workers start. Web workers
    never run the simulator or scheduled jobs; run `beacon simulate` for demo data.
    """
    settings = state.settings()
    configure_logging(settings.log_level)
    # Imported here: the web application is heavy and only this command needs it.
    from app import create_app

    server = create_app(settings).server
    db: Database = server.extensions["beacon"].db
    # The master never queries again: close its connections so none are inherited.
    db.engine.dispose()
    workers = workers or settings.workers
    if workers > 1 and settings.ratelimit_storage.startswith("memory://"):
        log.warning(
            "sign-in rate limits are counted per worker with BEACON_RATELIMIT_STORAGE=memory://;"
            " use a shared store (redis://…) to enforce them across %d workers",
            workers,
        )
    options = {
        "bind": _bind(host or settings.host, port or settings.port),
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        # Build the app once in this (master) process, so migrations run once.
        "preload_app": True,
        "post_fork": _post_fork(db),
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": "beacon",
        # Unused by Beacon, and its default path in $HOME would be shared by every instance.
        "control_socket_disable": True,
    }
    BeaconServer(server, options).run()


def _post_fork(db: Database) -> Callable[[Any, Any], None]:
    """A post_fork hook that drops any pooled connection inherited from the master."""

    def post_fork(_arbiter: Any, _worker: Any) -> None:
        # close=False: the sockets belong to the master; a worker must only forget them.
        db.engine.dispose(close=False)

    return post_fork


def _bind(host: str, port: int) -> str:
    """gunicorn's bind address; IPv6 literals need brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"
