"""Offset pagination over a select statement: one page of rows and the total count."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from services.api.schemas.common import PageQuery


def paginate(session: Session, statement: Select[Any], *, page: PageQuery) -> tuple[list[Any], int]:
    """The rows of the requested page and how many rows match in all."""
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    total = session.scalar(counted) or 0
    rows = list(session.scalars(statement.limit(page.limit).offset(page.offset)))
    return rows, int(total)
