"""Helpers shared by the API tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.config import Settings, load_settings

ADMIN_PASSWORD = "admin-pass-123"


def bearer(token: str) -> dict[str, str]:
    """Authorization headers for an API token."""
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Check the status and the Beacon error shape; return the `error` object."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


def beacon_settings(data_dir: Path, **extra: str) -> Settings:
    """Settings for a test app: its own data dir, a known admin password, no simulator."""
    env = {
        "BEACON_DATA_DIR": str(data_dir),
        "BEACON_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BEACON_SIMULATOR": "0",
        **extra,
    }
    return load_settings(env)
