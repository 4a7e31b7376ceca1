"""Settings from BEACON_* variables: defaults, validation, and the kept secret key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.config import ConfigError, ensure_secret_key, load_settings
from services.notify.config import notify_config


def test_defaults_are_safe(tmp_path: Path) -> None:
    settings = load_settings({"BEACON_DATA_DIR": str(tmp_path)})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8050
    assert settings.database_url == f"sqlite:///{tmp_path / 'beacon.db'}"
    assert settings.simulator is False  # only embedded mode turns it on by default
    assert load_settings({"BEACON_DATA_DIR": str(tmp_path)}, embedded=True).simulator is True
    assert settings.tz == "UTC"
    assert settings.secure_cookies is False


def test_explicit_values_win(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "BEACON_DATA_DIR": str(tmp_path),
            "BEACON_DATABASE_URL": "postgresql+psycopg://u@db/beacon",
            "BEACON_PORT": "9000",
            "BEACON_SIMULATOR": "off",
            "BEACON_TZ": "Europe/Berlin",
        },
        embedded=True,
    )
    assert settings.database_url.startswith("postgresql")
    assert not settings.is_sqlite
    assert settings.port == 9000
    assert settings.simulator is False
    assert settings.zone.key == "Europe/Berlin"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BEACON_PORT", "http"),
        ("BEACON_PORT", "70000"),
        ("BEACON_SIMULATOR", "maybe"),
        ("BEACON_TZ", "Mars/Olympus"),
        ("BEACON_SIM_SPEED", "-1"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({"BEACON_DATA_DIR": str(tmp_path), name: value})


def test_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = load_settings({"BEACON_DATA_DIR": str(tmp_path)})
    first = ensure_secret_key(settings).secret_key
    second = ensure_secret_key(settings).secret_key
    assert first == second
    assert len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_configured_secret_key_is_used(tmp_path: Path) -> None:
    settings = load_settings({"BEACON_DATA_DIR": str(tmp_path), "BEACON_SECRET_KEY": "k" * 40})
    assert ensure_secret_key(settings).secret_key == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_forecast_settings_default_to_a_local_pool(tmp_path: Path) -> None:
    settings = load_settings({"BEACON_DATA_DIR": str(tmp_path)})
    assert settings.forecast_executor == "local"
    assert settings.forecast_timeout_s == 60.0
    assert settings.forecast_horizon_days == 90
    assert settings.holidays_country == ""
    # The simulated network's traffic follows German public holidays.
    assert load_settings({"BEACON_DATA_DIR": str(tmp_path)}, embedded=True).holidays_country == "DE"


def test_forecast_executor_accepts_a_dask_address(tmp_path: Path) -> None:
    env = {"BEACON_DATA_DIR": str(tmp_path), "BEACON_FORECAST_EXECUTOR": "dask://10.0.0.5:8786"}
    assert load_settings(env).forecast_executor == "dask://10.0.0.5:8786"


@pytest.mark.parametrize("value", ["dask://", "ray://x:1", "threads"])
def test_forecast_executor_refuses_unknown_schemes(tmp_path: Path, value: str) -> None:
    env = {"BEACON_DATA_DIR": str(tmp_path), "BEACON_FORECAST_EXECUTOR": value}
    with pytest.raises(ConfigError, match="BEACON_FORECAST_EXECUTOR"):
        load_settings(env)


def test_notification_channels_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "BEACON_DATA_DIR": str(tmp_path),
        "BEACON_WEBHOOK_URLS": "https://hooks.example.net/a, http://10.0.0.9:8080/b",
        "BEACON_WEBHOOK_SECRET": "s" * 32,
        "BEACON_SMTP_HOST": "smtp.example.net",
        "BEACON_SMTP_PORT": "587",
        "BEACON_SMTP_STARTTLS": "yes",
    }
    config = notify_config(load_settings(env))
    assert [w.url for w in config.webhooks] == [
        "https://hooks.example.net/a",
        "http://10.0.0.9:8080/b",
    ]
    assert config.smtp is not None
    assert config.smtp.port == 587
    assert config.smtp.starttls
    assert config.log
    assert "s" * 32 not in repr(config)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BEACON_WEBHOOK_URLS": "ftp://x"}, "not an http"),
        ({"BEACON_WEBHOOK_URLS": "https://x", "BEACON_WEBHOOK_SECRET": "short"}, "16 characters"),
        # Credentials in the URL would be stored with every queued notification.
        (
            {"BEACON_WEBHOOK_URLS": "https://u:pw@x", "BEACON_WEBHOOK_SECRET": "s" * 16},
            "no credentials",
        ),
    ],
)
def test_webhooks_need_http_urls_and_a_real_secret(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"BEACON_DATA_DIR": str(tmp_path), **env})
