"""Models every endpoint shares: the error body, UTC timestamps and pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _as_utc(moment: datetime) -> datetime:
    # A timestamp without a zone is taken as UTC, the zone Beacon stores and answers in.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


UtcDateTime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    Field(description="ISO-8601 timestamp in UTC (input without a zone is taken as UTC)"),
]


class ErrorInfo(BaseModel):
    """What went wrong: a stable code, a message for people and optional details."""

    code: str = Field(description="Stable machine-readable code, e.g. invalid_input, forbidden")
    message: str = Field(description="Explanation for people")
    details: Any = Field(
        default=None, description="Structured context; for invalid_input, the list of problems"
    )


class ErrorBody(BaseModel):
    """Every error the API answers has this shape."""

    error: ErrorInfo


# Ids and offsets are bounded by PostgreSQL's integer column: a larger number can name no
# row, and the database driver would fail on it instead of answering "not found".
MAX_ID = 2**31 - 1


class ApiQuery(BaseModel):
    """Base of query-string models: unknown parameters are refused, not ignored."""

    # A mistyped filter silently ignored would return everything: refuse it instead.
    model_config = ConfigDict(extra="forbid")


class PageQuery(ApiQuery):
    """Offset pagination parameters."""

    limit: int = Field(default=100, ge=1, le=1000, description="Items per page (1-1000)")
    offset: int = Field(default=0, ge=0, le=MAX_ID, description="Items to skip")


class PageInfo(BaseModel):
    """How a page sits in the whole result."""

    total: int = Field(description="Items matching the filters, on all pages")
    limit: int
    offset: int
