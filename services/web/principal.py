"""Who is making a request: a user, a kiosk screen or an API token, loaded per request."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request
from flask_login import AnonymousUserMixin, current_user

from services.audit import Actor
from services.auth import ROLE_SCOPES


@dataclass(frozen=True)
class Principal:
    """The authenticated party behind the current request (flask-login's user object)."""

    key: str
    name: str
    role: str
    kind: str  # user, kiosk, api
    display_name: str
    scopes: frozenset[str]
    user_id: int | None = None
    token_id: int | None = None

    # flask-login reads these attributes.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.key

    @property
    def is_kiosk(self) -> bool:
        return self.kind == "kiosk"

    def actor(self) -> Actor:
        """This principal as recorded in the audit trail."""
        name = self.name if self.kind == "user" else f"{self.kind}:{self.name}"
        return Actor(name=name, role=self.role, kind=self.kind, ip=client_ip())


def user_principal(
    *, user_id: int, epoch: int, username: str, role: str, display: str
) -> Principal:
    return Principal(
        key=f"u:{user_id}:{epoch}",
        name=username,
        role=role,
        kind="user",
        display_name=display or username,
        scopes=ROLE_SCOPES[role],
        user_id=user_id,
    )


def kiosk_principal(*, token_id: int, name: str) -> Principal:
    # Kiosk screens are read-only viewers whatever else happens.
    return Principal(
        key=f"k:{token_id}",
        name=name,
        role="viewer",
        kind="kiosk",
        display_name=f"Wall screen · {name}",
        scopes=frozenset({"read"}),
        token_id=token_id,
    )


def api_principal(*, token_id: int, name: str, role: str, scopes: list[str]) -> Principal:
    return Principal(
        key=f"a:{token_id}",
        name=name,
        role=role,
        kind="api",
        display_name=name,
        scopes=frozenset(scopes),
        token_id=token_id,
    )


def current_principal() -> Principal | None:
    """The principal of this request, or None when anonymous."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if isinstance(user, AnonymousUserMixin) or not getattr(user, "is_authenticated", False):
        return None
    return user


def client_ip() -> str | None:
    """The caller's address (the proxy is trusted only when configured with ProxyFix)."""
    try:
        return request.remote_addr
    except RuntimeError:
        return None
