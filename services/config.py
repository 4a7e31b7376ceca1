"""Settings read once from BEACON_* environment variables, with safe defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


class ConfigError(ValueError):
    """A BEACON_* variable holds a value Beacon cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one Beacon process."""

    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8050
    secret_key: str = field(default="", repr=False)
    admin_password: str | None = field(default=None, repr=False)
    simulator: bool = True
    tz: str = "UTC"
    secure_cookies: bool = False
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-* are believed
    wall_cache_s: float = 5.0  # wall answers shared by every screen for this long
    ratelimit_storage: str = "memory://"
    login_rate_limit: str = "5 per minute;20 per hour"
    sim_sites_per_region: int = 6
    sim_backfill_days: int = 14
    sim_speed: float = 1.0
    stale_after_minutes: int = 45
    workers: int = 4
    log_level: str = "INFO"
    drop_dir: Path | None = None
    drop_poll_s: int = 60
    ves_schema_dir: Path | None = None
    max_upload_mb: int = 32
    sim_archive_days: int = 180
    forecast_executor: str = "local"
    forecast_workers: int = 2
    forecast_timeout_s: float = 60.0
    forecast_horizon_days: int = 90
    forecast_every_s: int = 900
    holidays_country: str = ""
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = field(default="", repr=False)
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "beacon@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    notify_log: bool = True
    automation_webhook_url: str = ""
    automation_webhook_secret: str = field(default="", repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields replaced; tests and the CLI use this."""
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(environ: Mapping[str, str] | None = None, *, embedded: bool = False) -> Settings:
    """Build Settings from the environment; `embedded` turns the simulator on by default."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("BEACON_DATA_DIR", "./instance")).expanduser().resolve()
    database_url = env.get("BEACON_DATABASE_URL") or f"sqlite:///{data_dir / 'beacon.db'}"
    tz = env.get("BEACON_TZ", "UTC")
    _check_zone(tz)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        host=env.get("BEACON_HOST", "127.0.0.1"),
        port=_int(env, "BEACON_PORT", 8050, minimum=1, maximum=65535),
        secret_key=env.get("BEACON_SECRET_KEY", ""),
        admin_password=env.get("BEACON_ADMIN_PASSWORD") or None,
        simulator=_bool(env, "BEACON_SIMULATOR", default=embedded),
        tz=tz,
        secure_cookies=_bool(env, "BEACON_SECURE_COOKIES", default=False),
        trusted_proxies=_int(env, "BEACON_TRUSTED_PROXIES", 0, minimum=0, maximum=5),
        wall_cache_s=_float(env, "BEACON_WALL_CACHE_S", 5.0, minimum=0.0),
        ratelimit_storage=env.get("BEACON_RATELIMIT_STORAGE", "memory://"),
        login_rate_limit=env.get("BEACON_LOGIN_RATE_LIMIT", "5 per minute;20 per hour"),
        sim_sites_per_region=_int(env, "BEACON_SIM_SITES_PER_REGION", 6, minimum=1),
        sim_backfill_days=_int(env, "BEACON_SIM_BACKFILL_DAYS", 14, minimum=0, maximum=400),
        sim_speed=_float(env, "BEACON_SIM_SPEED", 1.0, minimum=0.01),
        stale_after_minutes=_int(env, "BEACON_STALE_AFTER_MINUTES", 45, minimum=1),
        workers=_int(env, "BEACON_WORKERS", 4, minimum=1, maximum=64),
        log_level=env.get("BEACON_LOG_LEVEL", "INFO").upper(),
        # Embedded mode watches a drop folder in the data dir so file feeds work out of the box.
        drop_dir=_path(env, "BEACON_DROP_DIR") or (data_dir / "drop" if embedded else None),
        drop_poll_s=_int(env, "BEACON_DROP_POLL_S", 60, minimum=5, maximum=86400),
        ves_schema_dir=_path(env, "BEACON_VES_SCHEMA_DIR"),
        max_upload_mb=_int(env, "BEACON_MAX_UPLOAD_MB", 32, minimum=1, maximum=1024),
        # Daily busy-hour history the simulated network has before its 15-minute backfill,
        # so capacity forecasts have months to learn from on first start.
        sim_archive_days=_int(env, "BEACON_SIM_ARCHIVE_DAYS", 180, minimum=0, maximum=1100),
        forecast_executor=_executor(env.get("BEACON_FORECAST_EXECUTOR", "local")),
        forecast_workers=_int(
            env, "BEACON_FORECAST_WORKERS", min(os.cpu_count() or 1, 8), minimum=1, maximum=256
        ),
        forecast_timeout_s=_float(env, "BEACON_FORECAST_TIMEOUT_S", 60.0, minimum=1.0),
        # Breach risk is reported at 30, 60 and 90 days; a shorter horizon leaves the longer
        # ones unknown.
        forecast_horizon_days=_int(
            env, "BEACON_FORECAST_HORIZON_DAYS", 90, minimum=30, maximum=730
        ),
        forecast_every_s=_int(env, "BEACON_FORECAST_EVERY_S", 900, minimum=60, maximum=86400),
        # Public holidays are a forecast regressor; the simulated network lives in Germany.
        holidays_country=env.get(
            "BEACON_HOLIDAYS_COUNTRY",
            "DE" if _bool(env, "BEACON_SIMULATOR", default=embedded) else "",
        )
        .strip()
        .upper(),
        **_notify(env),
    )


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key: the configured one, or one kept in the data dir."""
    if settings.secret_key:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = settings.data_dir / SECRET_KEY_FILE
    if not key_file.exists():
        # Created with 0600 before the key is written so it is never world-readable.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return settings.with_overrides(secret_key=key_file.read_text().strip())


def _notify(env: Mapping[str, str]) -> dict[str, object]:
    """Notification channels: signed webhooks, an SMTP relay, and the log (on by default)."""
    urls = tuple(u.strip() for u in env.get("BEACON_WEBHOOK_URLS", "").split(",") if u.strip())
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"BEACON_WEBHOOK_URLS: {url!r} is not an http(s) URL")
        if urlsplit(url).username or urlsplit(url).password:
            # The URL is stored with every queued notification and shown in delivery logs.
            raise ConfigError(
                "BEACON_WEBHOOK_URLS: put no credentials in the URL; receivers verify the "
                "signature made with BEACON_WEBHOOK_SECRET"
            )
    secret = env.get("BEACON_WEBHOOK_SECRET", "")
    if urls and len(secret) < 16:
        # Receivers verify the HMAC signature; an empty or short secret makes it worthless.
        raise ConfigError("BEACON_WEBHOOK_SECRET must be at least 16 characters with webhooks")
    return {
        "webhook_urls": urls,
        "webhook_secret": secret,
        "smtp_host": env.get("BEACON_SMTP_HOST", "").strip(),
        "smtp_port": _int(env, "BEACON_SMTP_PORT", 25, minimum=1, maximum=65535),
        "smtp_from": env.get("BEACON_SMTP_FROM", "beacon@localhost"),
        "smtp_user": env.get("BEACON_SMTP_USER") or None,
        "smtp_password": env.get("BEACON_SMTP_PASSWORD") or None,
        "smtp_starttls": _bool(env, "BEACON_SMTP_STARTTLS", default=False),
        "notify_log": _bool(env, "BEACON_NOTIFY_LOG", default=True),
        # The orchestrator that carries out approved actions for use cases set to "webhook".
        "automation_webhook_url": env.get("BEACON_AUTOMATION_WEBHOOK_URL", "").strip(),
        "automation_webhook_secret": env.get("BEACON_AUTOMATION_WEBHOOK_SECRET", ""),
    }


def _executor(raw: str) -> str:
    """`local` (a process pool on this machine) or `dask://host:port` (a Dask cluster)."""
    value = raw.strip()
    if value == "local" or (value.startswith("dask://") and len(value) > len("dask://")):
        return value
    raise ConfigError(f"BEACON_FORECAST_EXECUTOR must be local or dask://host:port, not {raw!r}")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser().resolve() if raw else None


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(
    env: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from exc
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name}={value} is outside {minimum}..{maximum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name}={value} is below {minimum}")
    return value


def _check_zone(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"BEACON_TZ={tz!r} is not an IANA time zone") from exc
