"""Where notifications go: webhook endpoints, an SMTP relay, and the log (for the demo)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.config import Settings

# Webhook and e-mail deliveries back off 30 s, 1 min, 2 min … up to an hour between attempts;
# twelve attempts span about five hours before a message is marked failed (and kept).
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 3600.0
MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class WebhookEndpoint:
    """One receiver of signed incident events; the secret never leaves the process config."""

    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class SmtpConfig:
    """An SMTP relay for e-mail pages."""

    host: str
    port: int = 25
    sender: str = "beacon@localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout_s: float = 10.0


@dataclass(frozen=True)
class NotifyConfig:
    """Every channel this deployment notifies through, and how hard delivery tries."""

    webhooks: tuple[WebhookEndpoint, ...] = ()
    smtp: SmtpConfig | None = None
    log: bool = True
    max_attempts: int = MAX_ATTEMPTS
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_max_s: float = BACKOFF_MAX_S
    # Quick retries inside one attempt (connection resets, 502/503/504), before the outbox
    # schedules the next attempt; small, so one bad receiver never holds the job long.
    http_retries: int = 2
    http_backoff_s: float = 0.5
    http_timeout_s: float = 10.0

    def endpoint(self, url: str) -> WebhookEndpoint | None:
        """The configured endpoint for `url`, if it is still configured."""
        return next((e for e in self.webhooks if e.url == url), None)


def notify_config(settings: Settings) -> NotifyConfig:
    """The channels configured by BEACON_WEBHOOK_* / BEACON_SMTP_* / BEACON_NOTIFY_LOG."""
    smtp = None
    if settings.smtp_host:
        smtp = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return NotifyConfig(
        webhooks=tuple(WebhookEndpoint(u, settings.webhook_secret) for u in settings.webhook_urls),
        smtp=smtp,
        log=settings.notify_log,
    )
