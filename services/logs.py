"""One logging set-up for every Beacon process."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr; quiet the libraries that log per request or per fit."""
    logging.basicConfig(level=level, format=FORMAT)
    for noisy in ("waitress.queue", "cmdstanpy", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
