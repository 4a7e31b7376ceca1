"""One logging set-up for every Beacon process, with secrets masked on the way out."""

from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"
# Loggers that write request lines themselves: gunicorn's access log holds the kiosk link
# (/kiosk/<token>) of every wall screen that opens, and does not propagate to the root.
REQUEST_LOGGERS = ("gunicorn.access", "gunicorn.error", "werkzeug")
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Beacon's kiosk and API tokens (services.auth.TOKEN_PREFIXES) keep their prefix only.
    (re.compile(r"\b(bkn_[ak]_)[A-Za-z0-9_\-]{4,}"), rf"\g<1>{REDACTED}"),
    # Credentials inside URLs: scheme://user:password@host
    (re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\g<1>{REDACTED}@"),
    # Authorization header values.
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE), rf"\1 {REDACTED}"),
    # password=…, secret=…, token=… in query strings, forms and key=value messages.
    (
        re.compile(r"\b([A-Za-z_]*(?:password|secret|token)[A-Za-z_]*=)[^&\s,;\"']+", re.I),
        rf"\g<1>{REDACTED}",
    ),
)


def redact(text: str) -> str:
    """`text` with tokens, URL passwords and credential values masked."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's final message (a safety net; code must not log them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr; quiet the libraries that log per request or per fit; mask secrets."""
    logging.basicConfig(level=level, format=FORMAT)
    for noisy in ("waitress.queue", "cmdstanpy", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        _add_once(handler)
    for name in REQUEST_LOGGERS:
        _add_once(logging.getLogger(name))


def _add_once(target: logging.Handler | logging.Logger) -> None:
    if not any(isinstance(f, RedactSecrets) for f in target.filters):
        target.addFilter(RedactSecrets())
