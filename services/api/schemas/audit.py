"""Models of the audit trail and of its verification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from services.api.schemas.common import PageInfo, PageQuery, UtcDateTime


class AuditQuery(PageQuery):
    """Filters of the audit trail; all given filters must match."""

    actor: str | None = Field(default=None, max_length=100, description="Exact actor name")
    action: str | None = Field(
        default=None, max_length=64, description="Action prefix, e.g. `token.` or `user.role`"
    )
    object_type: str | None = Field(default=None, max_length=48)
    since: UtcDateTime | None = Field(default=None, description="Events at or after (UTC)")
    until: UtcDateTime | None = Field(default=None, description="Events before (UTC)")

    @model_validator(mode="after")
    def _ordered(self) -> AuditQuery:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be earlier than until")
        return self


class AuditEventOut(BaseModel):
    """One recorded state change and its link in the hash chain."""

    seq: int = Field(description="Dense sequence number; a gap means a removed event")
    at: UtcDateTime
    actor: str
    actor_role: str | None
    action: str
    object_type: str | None
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
    prev_hash: str
    hash: str


class AuditPage(PageInfo):
    """One page of the audit trail, newest first."""

    items: list[AuditEventOut]


class AuditVerification(BaseModel):
    """Outcome of walking the hash chain from the first event."""

    ok: bool
    checked: int = Field(description="Events whose content and link matched")
    head_seq: int = Field(description="Sequence number of the last good event")
    head_hash: str
    broken_seq: int | None = Field(description="First event that does not match, if any")
    problem: str | None = Field(description="What is wrong with it")
