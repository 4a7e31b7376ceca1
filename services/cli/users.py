"""`beacon user …`: accounts that sign in to the console."""

from __future__ import annotations

import json

import click
from sqlalchemy.orm import Session

from services import auth
from services.cli._base import (
    ROLE_CHOICE,
    CliState,
    cli_actor,
    echo_table,
    pass_state,
    read_password,
    when,
)
from services.db.models import User
from services.errors import Conflict, NotFound

STDIN_HELP = "Read the password from one line of standard input instead of prompting."


@click.group("user")
def user_group() -> None:
    """Add, list, disable and re-role users."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=ROLE_CHOICE, help="What the user may do.")
@click.option("--display-name", default="", help="Name shown in the console (default: NAME).")
@click.option("--email", default=None, help="Contact address.")
@click.option("--password-stdin", is_flag=True, help=STDIN_HELP)
@pass_state
def add_user(
    state: CliState,
    name: str,
    role: str,
    display_name: str,
    email: str | None,
    password_stdin: bool,
) -> None:
    """Create user NAME with a role and a password."""
    db = state.database()
    # Refuse a taken name before asking for a password nobody will use.
    with db.session() as session:
        _refuse_existing(session, name)
    password = read_password(from_stdin=password_stdin)
    with db.session(write=True) as session:
        user = auth.create_user(
            session,
            username=name,
            role=role,
            password=password,
            actor=cli_actor(),
            display_name=display_name,
            email=email,
        )
        click.echo(f"created user {user.username} ({user.role})")


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user instead.")
@pass_state
def list_users(state: CliState, as_json: bool) -> None:
    """Show every user with role, status and last sign-in."""
    zone = state.settings().zone
    with state.database().session() as session:
        users = auth.list_users(session)
    if as_json:
        for user in users:
            click.echo(json.dumps(_user_doc(user)))
        return
    rows = [
        (u.username, u.role, _status(u), when(u.last_login_at, zone), u.display_name) for u in users
    ]
    echo_table(("USERNAME", "ROLE", "STATUS", "LAST LOGIN", "DISPLAY NAME"), rows)


@user_group.command("disable")
@click.argument("name")
@pass_state
def disable_user(state: CliState, name: str) -> None:
    """Stop NAME from signing in and end their open sessions."""
    with state.database().session(write=True) as session:
        user = auth.set_active(session, username=name, active=False, actor=cli_actor())
        click.echo(f"disabled {user.username}; their open sessions were ended")


@user_group.command("enable")
@click.argument("name")
@pass_state
def enable_user(state: CliState, name: str) -> None:
    """Let a disabled user sign in again."""
    with state.database().session(write=True) as session:
        user = auth.set_active(session, username=name, active=True, actor=cli_actor())
        click.echo(f"enabled {user.username}")


@user_group.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLE_CHOICE)
@pass_state
def set_role(state: CliState, name: str, role: str) -> None:
    """Give NAME another role; their open sessions end so it applies at once."""
    with state.database().session(write=True) as session:
        before = auth.get_user(session, username=name).role
        user = auth.set_role(session, username=name, role=role, actor=cli_actor())
        click.echo(f"{user.username}: role {before} -> {user.role}")


@user_group.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help=STDIN_HELP)
@pass_state
def set_password(state: CliState, name: str, password_stdin: bool) -> None:
    """Replace NAME's password and end their open sessions."""
    db = state.database()
    with db.session() as session:
        auth.get_user(session, username=name)
    password = read_password(from_stdin=password_stdin, prompt="New password")
    with db.session(write=True) as session:
        user = auth.set_password(session, username=name, password=password, actor=cli_actor())
        click.echo(f"password of {user.username} changed; their open sessions were ended")


def _refuse_existing(session: Session, name: str) -> None:
    try:
        user = auth.get_user(session, username=name)
    except NotFound:
        return
    raise Conflict(f"user {user.username!r} already exists")


def _status(user: User) -> str:
    return "active" if user.active else "disabled"


def _user_doc(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "role": user.role,
        "status": _status(user),
        "display_name": user.display_name,
        "email": user.email,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }
