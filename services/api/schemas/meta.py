"""Models of the caller and of the API document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel

from services.auth import Role, Scope


class Me(BaseModel):
    """The principal making the request."""

    name: str = Field(description="User name, kiosk token name or API token name")
    display_name: str
    kind: Literal["user", "kiosk", "api"] = Field(
        description="Signed-in user, wall screen or API token"
    )
    role: Role
    scopes: list[Scope] = Field(description="What this principal may do, within its role")


class OpenApiDocument(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""
