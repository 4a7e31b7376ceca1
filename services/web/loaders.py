"""flask-login loaders: re-validate the session or bearer token on every request."""

from __future__ import annotations

from datetime import timedelta

from flask import request
from sqlalchemy import update

from services import auth
from services.db.models import ApiToken, KioskToken, User, utcnow
from services.web.context import beacon
from services.web.principal import Principal, api_principal, kiosk_principal, user_principal

# Avoid a write on every request: last-used stamps are refreshed at most this often.
_TOUCH_EVERY = timedelta(minutes=5)


def load_principal_from_session(key: str) -> Principal | None:
    """Rebuild the principal from the session id; revoked or changed accounts are refused."""
    kind, _, rest = key.partition(":")
    db = beacon().db
    if kind == "u":
        user_id, _, epoch = rest.partition(":")
        if not (user_id.isdigit() and epoch.isdigit()):
            return None
        with db.session() as session:
            user = session.get(User, int(user_id))
            if user is None or not user.active or user.session_epoch != int(epoch):
                return None
            return user_principal(
                user_id=user.id,
                epoch=user.session_epoch,
                username=user.username,
                role=user.role,
                display=user.display_name,
            )
    if kind == "k" and rest.isdigit():
        with db.session() as session:
            token = session.get(KioskToken, int(rest))
            if token is None or token.revoked_at is not None:
                return None
            return kiosk_principal(token_id=token.id, name=token.name)
    return None


def load_principal_from_request(_request: object) -> Principal | None:
    """Bearer API tokens (or HTTP Basic with the token as password, as VES senders use)."""
    if not request.path.startswith(("/api/", "/eventListener/")):
        return None
    secret = _presented_token()
    if not secret:
        return None
    db = beacon().db
    with db.session() as session:
        token = auth.resolve_api_token(session, plaintext=secret)
        if token is None:
            return None
        principal = api_principal(
            token_id=token.id, name=token.name, role=token.role, scopes=list(token.scopes)
        )
        stale = token.last_used_at is None or utcnow() - token.last_used_at > _TOUCH_EVERY
    if stale:
        # Writes only every few minutes per token: a read path must not queue behind writers.
        with db.session(write=True) as session:
            session.execute(
                update(ApiToken)
                .where(ApiToken.id == principal.token_id)
                .values(last_used_at=utcnow())
            )
    return principal


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic" and request.authorization is not None:
        return request.authorization.password or None
    return None
