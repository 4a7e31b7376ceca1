"""`beacon token …`: wall-screen kiosk tokens and scoped API tokens."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from services import auth
from services.auth import IssuedToken, Scope
from services.cli._base import ROLE_CHOICE, CliState, cli_actor, echo_table, pass_state, when
from services.db.models import ApiToken, KioskToken, utcnow

SCOPE_CHOICE = click.Choice([scope.value for scope in Scope], case_sensitive=False)
SHOWN_ONCE = "Shown once, on the last line below: Beacon stores only a hash of it."


@click.group("token")
def token_group() -> None:
    """Issue, list and revoke kiosk (wall screen) and API tokens."""


@token_group.command("create")
@click.option("--kiosk", "kiosk_name", metavar="NAME", help="A read-only wall-screen token.")
@click.option("--api", "api_name", metavar="NAME", help="A scoped bearer token for API clients.")
@click.option("--role", type=ROLE_CHOICE, help="Role of an API token (required with --api).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=SCOPE_CHOICE,
    help="Limit an API token to this scope; repeat for several (default: all its role allows).",
)
@click.option(
    "--expires-days",
    type=click.IntRange(min=1, max=3650),
    help="An API token stops working after N days (default: never).",
)
@pass_state
def create_token(
    state: CliState,
    kiosk_name: str | None,
    api_name: str | None,
    role: str | None,
    scopes: tuple[str, ...],
    expires_days: int | None,
) -> None:
    """Create a token; the token itself is printed alone on the last line."""
    _check_create_options(kiosk_name, api_name, role, scopes, expires_days)
    zone = state.settings().zone
    with state.database().session(write=True) as session:
        if kiosk_name is not None:
            issued = auth.create_kiosk_token(session, name=kiosk_name, actor=cli_actor())
            lines = _kiosk_lines(issued)
        else:
            # Both are present: _check_create_options refused anything else.
            assert api_name is not None
            assert role is not None
            expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
            issued = auth.create_api_token(
                session,
                name=api_name,
                role=role,
                scopes=scopes or None,
                expires_at=expires_at,
                actor=cli_actor(),
            )
            lines = _api_lines(issued, session.get_one(ApiToken, issued.id), zone)
    # Printed only once committed; the token alone on the last line so scripts can `tail -1`.
    for line in lines:
        click.echo(line)
    click.echo(issued.plaintext)


@token_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per token instead.")
@pass_state
def list_tokens(state: CliState, as_json: bool) -> None:
    """Show kiosk and API tokens (never their secrets or hashes)."""
    zone = state.settings().zone
    with state.database().session() as session:
        docs = [_token_doc("kiosk", t) for t in auth.list_kiosk_tokens(session)]
        docs += [_token_doc("api", t) for t in auth.list_api_tokens(session)]
    if as_json:
        for doc in docs:
            click.echo(json.dumps(doc, default=_iso))
        return
    headers = ("KIND", "ID", "NAME", "PREFIX", "ROLE", "SCOPES", "STATUS", "CREATED", "LAST USED")
    rows = [
        (
            d["kind"],
            d["id"],
            d["name"],
            f"{d['prefix']}…",
            d["role"] or "-",
            ",".join(d["scopes"]) or "-",
            d["status"],
            when(d["created_at"], zone),
            when(d["last_used_at"], zone),
        )
        for d in docs
    ]
    echo_table(headers, rows)


@token_group.command("revoke")
@click.option("--kiosk", "kind", flag_value="kiosk", help="Revoke a kiosk token.")
@click.option("--api", "kind", flag_value="api", help="Revoke an API token.")
@click.argument("id_or_name", metavar="ID_OR_NAME")
@pass_state
def revoke_token(state: CliState, kind: str | None, id_or_name: str) -> None:
    """Revoke a token by id, or by name (the newest active one with that name).

    A number is taken as an id. Wall screens using a revoked kiosk token drop to the
    sign-in page on their next refresh.
    """
    if kind is None:
        raise click.UsageError("say which kind of token: --kiosk or --api")
    by_name = not id_or_name.isdigit()
    with state.database().session(write=True) as session:
        if by_name:
            token_id = auth.find_token_by_name(session, kind=kind, name=id_or_name).id
        else:
            token_id = int(id_or_name)
        auth.revoke_token(session, kind=kind, token_id=token_id, actor=cli_actor())
    click.echo(f"revoked {kind} token {token_id}" + (f" ({id_or_name})" if by_name else ""))


def _check_create_options(
    kiosk_name: str | None,
    api_name: str | None,
    role: str | None,
    scopes: tuple[str, ...],
    expires_days: int | None,
) -> None:
    """Usage errors (exit 2) for option combinations that make no sense."""
    if (kiosk_name is None) == (api_name is None):
        raise click.UsageError("give exactly one of --kiosk NAME or --api NAME")
    if kiosk_name is not None and (role or scopes or expires_days):
        raise click.UsageError("--role, --scope and --expires-days apply only to --api tokens")
    if api_name is not None and role is None:
        raise click.UsageError("--api needs --role (what the token may do)")


def _kiosk_lines(issued: IssuedToken) -> list[str]:
    return [
        f"Kiosk token {issued.name!r} created (id {issued.id}): a read-only wall screen.",
        f"Open this path under Beacon's address on the screen: /kiosk/{issued.plaintext}",
        SHOWN_ONCE,
    ]


def _api_lines(issued: IssuedToken, token: ApiToken, zone: ZoneInfo) -> list[str]:
    return [
        f"API token {issued.name!r} created (id {issued.id}): role {token.role}, "
        f"scopes {', '.join(token.scopes)}, expires {when(token.expires_at, zone)}.",
        "Clients send it as the header 'Authorization: Bearer <token>'.",
        SHOWN_ONCE,
    ]


def _token_doc(kind: str, token: KioskToken | ApiToken) -> dict[str, Any]:
    """What may be shown about a token: everything but its hash."""
    api = token if isinstance(token, ApiToken) else None
    expires_at = api.expires_at if api else None
    return {
        "kind": kind,
        "id": token.id,
        "name": token.name,
        "prefix": token.token_prefix,
        "role": api.role if api else None,
        "scopes": list(api.scopes) if api else [],
        "status": _token_status(token.revoked_at, expires_at),
        "created_by": token.created_by,
        "created_at": token.created_at,
        "expires_at": expires_at,
        "last_used_at": token.last_used_at,
    }


def _token_status(revoked_at: datetime | None, expires_at: datetime | None) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= utcnow():
        return "expired"
    return "active"


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
