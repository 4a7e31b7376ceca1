"""Models of users and of kiosk and API tokens (no password hashes, no token hashes)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from services.api.schemas.common import MAX_ID, UtcDateTime
from services.auth import Role, Scope
from services.db.models import utcnow

TokenName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(description="What the token is for, e.g. the screen or the client system"),
]
TokenKind = Literal["kiosk", "api"]


def _in_future(moment: UtcDateTime | None) -> UtcDateTime | None:
    if moment is not None and moment <= utcnow():
        raise ValueError("expires_at must be in the future")
    return moment


class UserOut(BaseModel):
    """A console user."""

    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    active: bool
    created_at: UtcDateTime
    last_login_at: UtcDateTime | None


class UserList(BaseModel):
    """All users, by name."""

    items: list[UserOut]


class KioskTokenCreate(BaseModel):
    """A new wall-screen token."""

    model_config = ConfigDict(extra="forbid")

    name: TokenName


class ApiTokenCreate(BaseModel):
    """A new API token: its role, and optionally fewer scopes than the role allows."""

    model_config = ConfigDict(extra="forbid")

    name: TokenName
    role: Role
    scopes: list[Scope] | None = Field(
        default=None, description="Defaults to every scope the role allows"
    )
    expires_at: Annotated[UtcDateTime | None, AfterValidator(_in_future)] = Field(
        default=None, description="When the token stops working (UTC); never when omitted"
    )


class KioskTokenOut(BaseModel):
    """A wall-screen token as listed (the secret is never shown again)."""

    id: int
    name: str
    prefix: str = Field(description="First characters of the token, to recognise it")
    created_by: str | None
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None
    revoked_at: UtcDateTime | None


class ApiTokenOut(KioskTokenOut):
    """An API token as listed (the secret is never shown again)."""

    role: Role
    scopes: list[Scope]
    expires_at: UtcDateTime | None


class TokenList(BaseModel):
    """Kiosk and API tokens, newest first."""

    kiosk: list[KioskTokenOut]
    api: list[ApiTokenOut]


class KioskTokenIssued(BaseModel):
    """A created wall-screen token; `token` is shown only in this response."""

    id: int
    name: str
    prefix: str
    token: str = Field(description="The secret; store it now, it cannot be shown again")
    kiosk_path: str = Field(description="Open this path on the wall screen")


class ApiTokenIssued(BaseModel):
    """A created API token; `token` is shown only in this response."""

    id: int
    name: str
    prefix: str
    role: Role
    scopes: list[Scope]
    expires_at: UtcDateTime | None
    token: str = Field(description="The secret; store it now, it cannot be shown again")


class TokenPath(BaseModel):
    """A token in the URL."""

    kind: TokenKind = Field(description="kiosk or api")
    token_id: int = Field(ge=1, le=MAX_ID, description="The token's id")


class TokenRevoked(BaseModel):
    """A token that no longer works."""

    kind: TokenKind
    id: int
    name: str
    revoked_at: UtcDateTime
