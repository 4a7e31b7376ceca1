"""Users, roles, password hashing, kiosk tokens and scoped API tokens; every change audited."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import audit
from services.audit import Actor
from services.db.models import ApiToken, KioskToken, User, utcnow
from services.errors import Conflict, Forbidden, InvalidInput, NotFound


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ENGINEER = "engineer"
    EXECUTIVE = "executive"
    ADMIN = "admin"


class Scope(StrEnum):
    """What an API token may do, within what its role allows."""

    READ = "read"
    INGEST = "ingest"
    ACT = "act"
    ADMIN = "admin"


ALL_ROLES: frozenset[str] = frozenset(Role)
# Who may act on live state: acknowledge, label, add notes, open incidents.
OPERATE_ROLES: frozenset[str] = frozenset({Role.OPERATOR, Role.ENGINEER, Role.ADMIN})
# Who may change how the AI behaves: thresholds, decisions, rollbacks, data fixes.
ENGINEER_ROLES: frozenset[str] = frozenset({Role.ENGINEER, Role.ADMIN})
# The audit trail is for engineers and admins; executives see adoption, not raw events.
AUDIT_ROLES: frozenset[str] = ENGINEER_ROLES
ADMIN_ROLES: frozenset[str] = frozenset({Role.ADMIN})

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.EXECUTIVE: frozenset({Scope.READ}),
    Role.OPERATOR: frozenset({Scope.READ, Scope.INGEST, Scope.ACT}),
    Role.ENGINEER: frozenset({Scope.READ, Scope.INGEST, Scope.ACT}),
    Role.ADMIN: frozenset(Scope),
}

ROLE_DESCRIPTIONS: dict[str, str] = {
    Role.VIEWER: "Sees network state, anomalies, forecasts and on-call; changes nothing.",
    Role.OPERATOR: "NOC operator: acknowledges, labels, opens and works incidents.",
    Role.ENGINEER: "Decides on recommendations, tunes thresholds, rolls back, reads audit.",
    Role.EXECUTIVE: "Reads adoption and trust metrics.",
    Role.ADMIN: "Manages users, tokens, automation levels and settings.",
}

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIXES = {"kiosk": "bkn_k_", "api": "bkn_a_"}

_hasher = PasswordHasher()
# Verified against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class IssuedToken:
    """A newly created token: the plaintext is shown once and never stored."""

    id: int
    name: str
    plaintext: str
    prefix: str


def hash_password(password: str) -> str:
    """Argon2id hash (slow on purpose)."""
    return _hasher.hash(password)


def check_password_policy(password: str) -> None:
    """Raise InvalidInput when a password is too weak to set."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password:
        raise InvalidInput("password must not start or end with spaces")


def parse_role(role: str) -> Role:
    """The Role for a name, or InvalidInput naming the valid ones."""
    try:
        return Role(role)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {role!r}; choose one of {valid}") from None


def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    password: str,
    actor: Actor,
    display_name: str = "",
    email: str | None = None,
) -> User:
    """Add a user with a checked name, role and password."""
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        raise InvalidInput(
            "username must be 2-64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    parsed_role = parse_role(role)
    check_password_policy(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        role=parsed_role.value,
        password_hash=hash_password(password),
        display_name=display_name.strip() or username,
        email=email,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after=_user_view(user),
    )
    return user


def authenticate(session: Session, *, username: str, password: str, ip: str | None) -> User | None:
    """The active user whose password matches, or None; both outcomes are audited."""
    name = username.strip().lower()[:64]
    user = session.scalar(select(User).where(User.username == name))
    ok = _verify(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not ok or not user.active:
        reason = "unknown user" if user is None else ("disabled" if ok else "bad password")
        audit.record(
            session,
            actor=Actor(name=name or "-", role=None, kind="user", ip=ip),
            action="auth.login_failed",
            object_type="user",
            object_id=user.id if user else None,
            after={"reason": reason},
        )
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    audit.record(
        session,
        actor=Actor(name=user.username, role=user.role, ip=ip),
        action="auth.login",
        object_type="user",
        object_id=user.id,
    )
    return user


def get_user(session: Session, *, username: str) -> User:
    """The user with this name, or NotFound."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    """All users, by name."""
    return list(session.scalars(select(User).order_by(User.username)))


def set_role(session: Session, *, username: str, role: str, actor: Actor) -> User:
    """Change a user's role; the last active admin cannot be demoted."""
    user = get_user(session, username=username)
    new_role = parse_role(role)
    if user.role == Role.ADMIN and new_role != Role.ADMIN:
        _refuse_last_admin(session, user)
    before = _user_view(user)
    user.role = new_role.value
    # A role change takes effect at once: sessions carrying the old role are ended.
    user.session_epoch += 1
    audit.record(
        session,
        actor=actor,
        action="user.role",
        object_type="user",
        object_id=user.id,
        before=before,
        after=_user_view(user),
    )
    return user


def set_password(session: Session, *, username: str, password: str, actor: Actor) -> User:
    """Replace a password and end the user's existing sessions."""
    user = get_user(session, username=username)
    check_password_policy(password)
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    audit.record(
        session, actor=actor, action="user.password", object_type="user", object_id=user.id
    )
    return user


def end_sessions(session: Session, *, user_id: int) -> None:
    """Sign the user out everywhere: every session cookie issued so far stops working.

    Sessions live in signed cookies with no server-side copy, so ending only the cookie of
    the browser that signed out would leave a copied cookie valid until it expires.
    """
    user = session.get(User, user_id)
    if user is not None:
        user.session_epoch += 1


def set_active(session: Session, *, username: str, active: bool, actor: Actor) -> User:
    """Disable or re-enable a user; disabling ends their sessions at once."""
    user = get_user(session, username=username)
    if not active and user.role == Role.ADMIN:
        _refuse_last_admin(session, user)
    if actor.name == user.username and not active:
        raise Forbidden("you cannot disable your own account")
    before = _user_view(user)
    user.active = active
    user.session_epoch += 1
    audit.record(
        session,
        actor=actor,
        action="user.enable" if active else "user.disable",
        object_type="user",
        object_id=user.id,
        before=before,
        after=_user_view(user),
    )
    return user


def create_kiosk_token(session: Session, *, name: str, actor: Actor) -> IssuedToken:
    """A new wall-screen token; its plaintext is returned once."""
    name = _token_name(name)
    plaintext = TOKEN_PREFIXES["kiosk"] + secrets.token_urlsafe(32)
    token = KioskToken(
        name=name,
        token_hash=token_digest(plaintext),
        token_prefix=plaintext[:12],
        created_by=actor.name,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.kiosk.create",
        object_type="kiosk_token",
        object_id=token.id,
        after={"name": name, "prefix": token.token_prefix},
    )
    return IssuedToken(id=token.id, name=name, plaintext=plaintext, prefix=token.token_prefix)


def create_api_token(
    session: Session,
    *,
    name: str,
    role: str,
    actor: Actor,
    scopes: Iterable[str] | None = None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """A new API token limited to its role's scopes (or fewer); plaintext returned once."""
    name = _token_name(name)
    parsed_role = parse_role(role)
    allowed = ROLE_SCOPES[parsed_role]
    wanted = set(allowed if scopes is None else scopes)
    unknown = wanted - {s.value for s in Scope}
    if unknown:
        raise InvalidInput(f"unknown scope(s): {', '.join(sorted(unknown))}")
    if not wanted <= allowed:
        extra = ", ".join(sorted(wanted - allowed))
        raise InvalidInput(f"role {parsed_role.value} cannot hold scope(s): {extra}")
    plaintext = TOKEN_PREFIXES["api"] + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        token_hash=token_digest(plaintext),
        token_prefix=plaintext[:12],
        role=parsed_role.value,
        scopes=sorted(wanted),
        created_by=actor.name,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.api.create",
        object_type="api_token",
        object_id=token.id,
        after={"name": name, "role": token.role, "scopes": token.scopes},
    )
    return IssuedToken(id=token.id, name=name, plaintext=plaintext, prefix=token.token_prefix)


def revoke_token(session: Session, *, kind: str, token_id: int, actor: Actor) -> None:
    """Revoke a kiosk or API token; sessions opened with a kiosk token end at once."""
    model = {"kiosk": KioskToken, "api": ApiToken}.get(kind)
    if model is None:
        raise InvalidInput("token kind must be 'kiosk' or 'api'")
    token = session.get(model, token_id)
    if token is None:
        raise NotFound(f"no {kind} token with id {token_id}")
    if token.revoked_at is not None:
        raise Conflict(f"{kind} token {token_id} is already revoked")
    token.revoked_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action=f"token.{kind}.revoke",
        object_type=f"{kind}_token",
        object_id=token.id,
        after={"name": token.name},
    )


def find_token_by_name(session: Session, *, kind: str, name: str) -> KioskToken | ApiToken:
    """The newest active token of this kind and name, for the CLI's `token revoke NAME`."""
    model = KioskToken if kind == "kiosk" else ApiToken
    token = session.scalar(
        select(model)
        .where(model.name == name, model.revoked_at.is_(None))
        .order_by(model.id.desc())
        .limit(1)
    )
    if token is None:
        raise NotFound(f"no active {kind} token named {name!r}")
    return token


def resolve_kiosk_token(session: Session, *, plaintext: str) -> KioskToken | None:
    """The active kiosk token for a presented secret, or None."""
    if not plaintext.startswith(TOKEN_PREFIXES["kiosk"]):
        return None
    token = session.scalar(
        select(KioskToken).where(KioskToken.token_hash == token_digest(plaintext))
    )
    if token is None or token.revoked_at is not None:
        return None
    return token


def resolve_api_token(session: Session, *, plaintext: str) -> ApiToken | None:
    """The active, unexpired API token for a presented secret, or None."""
    if not plaintext.startswith(TOKEN_PREFIXES["api"]):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(plaintext)))
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= utcnow():
        return None
    return token


def list_kiosk_tokens(session: Session) -> list[KioskToken]:
    return list(session.scalars(select(KioskToken).order_by(KioskToken.id.desc())))


def list_api_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))


def token_digest(plaintext: str) -> str:
    """SHA-256 of a token: tokens carry 256 random bits, so a fast hash is enough at rest."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def count_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active)
        )
        or 0
    )


def _refuse_last_admin(session: Session, user: User) -> None:
    if user.active and count_admins(session) <= 1:
        raise Conflict("this is the last active admin; make another admin first")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("token name must be 1-100 characters")
    return name


def _user_view(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "role": user.role,
        "active": user.active,
        "display_name": user.display_name,
    }
