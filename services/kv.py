"""Small named values kept in the database (bookkeeping such as the simulator's cursor)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.db.models import Setting, utcnow


def get_value(session: Session, key: str, default: Any = None) -> Any:
    """The stored value for `key`, or `default`."""
    row = session.get(Setting, key)
    return default if row is None else row.value.get("value", default)


def set_value(
    session: Session, key: str, value: Any, *, by: str = "system", description: str = ""
) -> None:
    """Store `value` under `key` (JSON-serialisable)."""
    row = session.get(Setting, key)
    if row is None:
        session.add(
            Setting(key=key, value={"value": value}, updated_by=by, description=description)
        )
    else:
        row.value = {"value": value}
        row.updated_at = utcnow()
        row.updated_by = by
