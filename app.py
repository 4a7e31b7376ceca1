"""Beacon: create_app(settings) -> Dash. `python app.py` runs the embedded mode."""

from __future__ import annotations

import logging
from pathlib import Path

import plotly.io as pio
from dash import Dash
from flask import Flask

from services.config import Settings, ensure_secret_key, load_settings
from services.db import connect, upgrade_to_head
from services.logs import configure_logging
from services.startup import bootstrap
from services.web import init_web
from services.web.context import BeaconContext

ROOT = Path(__file__).parent
log = logging.getLogger("beacon")


def create_app(settings: Settings | None = None) -> Dash:
    """Build the Flask server and the Dash app on it; migrations run first."""
    settings = ensure_secret_key(settings or load_settings())
    db = connect(settings.database_url)
    upgrade_to_head(db)
    bootstrap(db, settings)
    pio.json.config.default_engine = "orjson"

    server = Flask(__name__)
    context = BeaconContext(settings=settings, db=db)
    init_web(server, context)
    from services.api import init_api

    init_api(server)
    app = Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder=str(ROOT / "pages"),
        assets_folder=str(ROOT / "assets"),
        title="Beacon",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    # Pages exist only once the Dash app does; the shell and access rules bind to them.
    from pages import _access, _shell

    app.layout = _shell.serve_layout
    _shell.register_callbacks(app)
    with server.test_request_context():
        app._setup_server()  # binds this app's callbacks now, not on the first request
    _access.secure(app, context)
    return app


def main() -> None:
    """Embedded mode: SQLite file, simulator and scheduler in this one process."""
    settings = ensure_secret_key(load_settings(embedded=True))
    configure_logging(settings.log_level)
    app = create_app(settings)
    from services.runtime import start_embedded

    start_embedded(app.server.extensions["beacon"])
    from waitress import serve

    log.info("Beacon is serving on http://%s:%s", settings.host, settings.port)
    serve(app.server, host=settings.host, port=settings.port, threads=8, ident="Beacon")


if __name__ == "__main__":
    main()
