"""Admin endpoints: users, and kiosk and API tokens (every change audited)."""

from __future__ import annotations

from services import auth
from services.api.blueprint import api, endpoint
from services.api.schemas.admin import (
    ApiTokenCreate,
    ApiTokenIssued,
    ApiTokenOut,
    KioskTokenCreate,
    KioskTokenIssued,
    KioskTokenOut,
    TokenList,
    TokenPath,
    TokenRevoked,
    UserList,
    UserOut,
)
from services.api.security import caller
from services.auth import ADMIN_ROLES, Scope
from services.db.models import ApiToken, KioskToken, User
from services.web.context import beacon


@api.get("/users")
@endpoint(scope=Scope.ADMIN, roles=ADMIN_ROLES, resp=UserList, tags=["admin"])
def list_users() -> UserList:
    """All users with role and state; password hashes are never exposed."""
    with beacon().db.session() as session:
        return UserList(items=[_user(user) for user in auth.list_users(session)])


@api.get("/tokens")
@endpoint(scope=Scope.ADMIN, roles=ADMIN_ROLES, resp=TokenList, tags=["admin"])
def list_tokens() -> TokenList:
    """Kiosk and API tokens, newest first, without their secrets."""
    with beacon().db.session() as session:
        return TokenList(
            kiosk=[_kiosk_token(token) for token in auth.list_kiosk_tokens(session)],
            api=[_api_token(token) for token in auth.list_api_tokens(session)],
        )


@api.post("/tokens/kiosk")
@endpoint(scope=Scope.ADMIN, roles=ADMIN_ROLES, resp=KioskTokenIssued, status=201, tags=["admin"])
def create_kiosk_token(json: KioskTokenCreate) -> tuple[KioskTokenIssued, int]:
    """Create a read-only wall-screen token; its secret is in this response only."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        issued = auth.create_kiosk_token(session, name=json.name, actor=actor)
    body = KioskTokenIssued(
        id=issued.id,
        name=issued.name,
        prefix=issued.prefix,
        token=issued.plaintext,
        kiosk_path=f"/kiosk/{issued.plaintext}",
    )
    return body, 201


@api.post("/tokens/api")
@endpoint(scope=Scope.ADMIN, roles=ADMIN_ROLES, resp=ApiTokenIssued, status=201, tags=["admin"])
def create_api_token(json: ApiTokenCreate) -> tuple[ApiTokenIssued, int]:
    """Create a scoped API token; its secret is in this response only."""
    actor = caller().actor()
    with beacon().db.session(write=True) as session:
        issued = auth.create_api_token(
            session,
            name=json.name,
            role=json.role,
            scopes=json.scopes,
            expires_at=json.expires_at,
            actor=actor,
        )
        token = session.get_one(ApiToken, issued.id)
        body = ApiTokenIssued(
            id=issued.id,
            name=issued.name,
            prefix=issued.prefix,
            role=token.role,
            scopes=token.scopes,
            expires_at=token.expires_at,
            token=issued.plaintext,
        )
    return body, 201


@api.delete("/tokens/<any(kiosk, api):kind>/<int:token_id>")
@endpoint(
    scope=Scope.ADMIN, roles=ADMIN_ROLES, resp=TokenRevoked, errors=(404, 409), tags=["admin"]
)
def revoke_token(path: TokenPath) -> TokenRevoked:
    """Revoke a token at once; wall screens opened with a kiosk token close."""
    actor = caller().actor()
    model = KioskToken if path.kind == "kiosk" else ApiToken
    with beacon().db.session(write=True) as session:
        auth.revoke_token(session, kind=path.kind, token_id=path.token_id, actor=actor)
        token = session.get_one(model, path.token_id)
        return TokenRevoked(
            kind=path.kind, id=token.id, name=token.name, revoked_at=token.revoked_at
        )


def _user(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        role=user.role,
        active=user.active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def _kiosk_token(token: KioskToken) -> KioskTokenOut:
    return KioskTokenOut(
        id=token.id,
        name=token.name,
        prefix=token.token_prefix,
        created_by=token.created_by,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


def _api_token(token: ApiToken) -> ApiTokenOut:
    return ApiTokenOut(
        id=token.id,
        name=token.name,
        prefix=token.token_prefix,
        created_by=token.created_by,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        role=token.role,
        scopes=token.scopes,
        expires_at=token.expires_at,
    )
