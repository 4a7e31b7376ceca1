"""Portable "insert or add to" for counter tables (SQLite and PostgreSQL both speak ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def add_counts(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    counters: Sequence[str],
    touch: dict[str, Any] | None = None,
) -> None:
    """Insert rows; where the key exists, add the counters to the stored ones."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(list(rows))
    updates = {name: table.c[name] + statement.excluded[name] for name in counters}
    updates.update(touch or {})
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates))
