"""The `beacon` command's set-up and admin commands: init, user, token, audit."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from security.audit_chain_plugin import mark_tampered
from sqlalchemy.engine import make_url
from testkit import ADMIN_PASSWORD, fresh_postgres_database, skip_or_fail_without_postgres

from services import auth
from services.cli import cli
from services.db import Database, connect
from services.db.migrate import MIGRATIONS_DIR
from services.db.models import AuditEvent

PASSWORD = "a-long-password-1"


def cli_env(data_dir: Path, **extra: str | None) -> dict[str, str | None]:
    """Environment of one test: its own data dir and admin password, nothing inherited."""
    return {
        "BEACON_DATA_DIR": str(data_dir),
        "BEACON_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BEACON_SIMULATOR": "0",
        "BEACON_DATABASE_URL": None,
        "BEACON_SECRET_KEY": None,
        **extra,
    }


def run(env: dict[str, str | None], *args: str, input: str | None = None) -> Result:
    """Invoke `beacon ARGS`; expected failures never show a traceback."""
    result = CliRunner().invoke(cli, list(args), env=env, input=input)
    assert "Traceback" not in result.output
    if result.exit_code not in (0, 1, 2):
        raise AssertionError(result.output) from result.exception
    return result


@pytest.fixture
def env(tmp_path: Path, template_db: Path) -> dict[str, str | None]:
    """A data dir holding a copy of the migrated, seeded template database."""
    for name in ("beacon.db", "secret_key"):
        shutil.copy(template_db / name, tmp_path / name)
    return cli_env(tmp_path)


@pytest.fixture
def db(tmp_path: Path, env: dict[str, str | None]) -> Iterator[Database]:
    """The same database, opened by the test to check what the commands did."""
    database = connect(f"sqlite:///{tmp_path / 'beacon.db'}")
    yield database
    database.dispose()


def last_line(result: Result) -> str:
    return result.stdout.rstrip("\n").splitlines()[-1]


def sign_in_works(db: Database, username: str, password: str) -> bool:
    with db.session(write=True) as session:
        user = auth.authenticate(session, username=username, password=password, ip=None)
    return user is not None


# --- init and global behaviour ---------------------------------------------------------


def test_init_creates_data_dir_key_schema_and_admin_and_is_idempotent(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "instance"
    env = cli_env(data_dir, BEACON_ADMIN_PASSWORD=None)

    first = run(env, "init")
    second = run(env, "init")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert (data_dir / "beacon.db").is_file()
    assert (data_dir / "secret_key").stat().st_mode & 0o077 == 0
    assert str(data_dir / "beacon.db") in first.stdout
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert f"schema:      {head} (current)" in first.stdout
    assert "users:       1 (1 active admin)" in second.stdout
    # The generated admin password is printed on first start only.
    assert "with password:" in first.stdout
    assert "with password:" not in second.stdout


def test_data_dir_option_overrides_the_environment(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "from-env")
    result = run(env, "--data-dir", str(tmp_path / "from-option"), "init")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-option" / "beacon.db").is_file()
    assert not (tmp_path / "from-env").exists()


def test_database_url_option_overrides_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = run(cli_env(tmp_path), "--database-url", url, "init")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "beacon.db").exists()


def test_configuration_error_is_one_line_on_stderr(tmp_path: Path) -> None:
    result = run(cli_env(tmp_path, BEACON_PORT="eighty"), "user", "list")

    assert result.exit_code == 1
    assert result.stderr == "error: BEACON_PORT must be a whole number, not 'eighty'\n"


def test_an_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    url = "postgresql+psycopg://beacon@127.0.0.1:1/beacon"
    result = run(cli_env(tmp_path), "--database-url", url, "user", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: database unavailable: ")
    assert len(result.stderr.splitlines()) == 1


def test_an_unusable_data_dir_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    result = run(cli_env(tmp_path / "a-file" / "instance"), "init")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: [Errno 20] Not a directory: ")


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    for command in ("init", "user", "token", "audit", "simulate", "serve"):
        assert f"  {command} " in result.output


# --- users -------------------------------------------------------------------------------


def test_user_add_reads_the_password_from_stdin(env: dict, db: Database) -> None:
    result = run(
        env, "user", "add", "Alice", "--role", "engineer", "--password-stdin", input=PASSWORD
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == "created user alice (engineer)\n"
    assert sign_in_works(db, "alice", PASSWORD)


def test_user_add_prompts_twice_without_echo(env: dict, db: Database) -> None:
    result = run(
        env,
        "user",
        "add",
        "bob",
        "--role",
        "viewer",
        "--display-name",
        "Bob B.",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "Password: \nRepeat for confirmation: \n" in result.output
    assert sign_in_works(db, "bob", PASSWORD)
    with db.session() as session:
        assert auth.get_user(session, username="bob").display_name == "Bob B."


def test_user_add_refuses_a_taken_name_before_asking(env: dict) -> None:
    result = run(env, "user", "add", "admin", "--role", "viewer")

    assert result.exit_code == 1
    assert result.stderr == "error: user 'admin' already exists\n"
    assert "assword" not in result.output


def test_user_add_names_the_valid_roles(env: dict) -> None:
    result = run(env, "user", "add", "carol", "--role", "boss", "--password-stdin", input=PASSWORD)

    assert result.exit_code == 2
    for role in auth.Role:
        assert role.value in result.stderr


def test_user_add_refuses_a_weak_password(env: dict) -> None:
    result = run(env, "user", "add", "dave", "--role", "viewer", "--password-stdin", input="short")

    assert result.exit_code == 1
    assert "at least 10 characters" in result.stderr


def test_user_add_refuses_an_empty_stdin(env: dict) -> None:
    result = run(env, "user", "add", "erin", "--role", "viewer", "--password-stdin", input="")

    assert result.exit_code == 1
    assert result.stderr == "error: no password on standard input\n"


def test_user_list_shows_a_table_and_json(env: dict) -> None:
    run(env, "user", "add", "frank", "--role", "operator", "--password-stdin", input=PASSWORD)
    run(env, "user", "disable", "frank")

    table = run(env, "user", "list").stdout.splitlines()
    as_json = run(env, "user", "list", "--json").stdout

    assert table[0].split() == ["USERNAME", "ROLE", "STATUS", "LAST", "LOGIN", "DISPLAY", "NAME"]
    assert table[1].split()[:4] == ["admin", "admin", "active", "never"]
    assert table[2].split()[:4] == ["frank", "operator", "disabled", "never"]
    assert '"username": "frank"' in as_json
    assert "password" not in as_json


def test_disable_enable_and_set_role_are_audited_as_the_cli(env: dict, db: Database) -> None:
    run(env, "user", "add", "gina", "--role", "viewer", "--password-stdin", input=PASSWORD)

    disabled = run(env, "user", "disable", "gina")
    assert disabled.exit_code == 0
    assert not sign_in_works(db, "gina", PASSWORD)

    enabled = run(env, "user", "enable", "gina")
    assert enabled.exit_code == 0
    assert sign_in_works(db, "gina", PASSWORD)

    changed = run(env, "user", "set-role", "gina", "engineer")
    assert changed.stdout == "gina: role viewer -> engineer\n"
    with db.session() as session:
        assert auth.get_user(session, username="gina").role == "engineer"
        events = session.query(AuditEvent).filter(AuditEvent.actor.like("cli:%")).all()
    assert [e.action for e in events] == [
        "user.create",
        "user.disable",
        "user.enable",
        "user.role",
    ]
    assert {e.actor_role for e in events} == {"admin"}


def test_set_password_replaces_it(env: dict, db: Database) -> None:
    new = "another-password-2"
    result = run(env, "user", "set-password", "admin", "--password-stdin", input=f"{new}\n")

    assert result.exit_code == 0, result.output
    assert sign_in_works(db, "admin", new)
    assert not sign_in_works(db, "admin", ADMIN_PASSWORD)


def test_the_last_admin_cannot_be_disabled_or_demoted(env: dict) -> None:
    disabled = run(env, "user", "disable", "admin")
    demoted = run(env, "user", "set-role", "admin", "viewer")

    assert disabled.exit_code == demoted.exit_code == 1
    assert "last active admin" in disabled.stderr
    assert "last active admin" in demoted.stderr


def test_a_second_admin_lifts_the_last_admin_protection(env: dict) -> None:
    run(env, "user", "add", "hank", "--role", "admin", "--password-stdin", input=PASSWORD)

    assert run(env, "user", "disable", "admin").exit_code == 0


def test_unknown_user_is_a_one_line_error(env: dict) -> None:
    result = run(env, "user", "disable", "nobody")

    assert result.exit_code == 1
    assert result.stderr == "error: no user named 'nobody'\n"


# --- tokens ------------------------------------------------------------------------------


def test_kiosk_token_is_printed_alone_on_the_last_line_and_works(env: dict, db: Database) -> None:
    result = run(env, "token", "create", "--kiosk", "wall-north")

    assert result.exit_code == 0, result.output
    token = last_line(result)
    assert token.startswith("bkn_k_")
    assert f"/kiosk/{token}" in result.stdout
    assert "shown once" in result.stdout.lower()
    with db.session() as session:
        kiosk = auth.resolve_kiosk_token(session, plaintext=token)
    assert kiosk is not None
    assert kiosk.name == "wall-north"


def test_api_token_honours_role_scopes_and_expiry(env: dict, db: Database) -> None:
    result = run(
        env,
        "token",
        "create",
        "--api",
        "ci",
        "--role",
        "operator",
        "--scope",
        "read",
        "--scope",
        "ingest",
        "--expires-days",
        "30",
    )

    assert result.exit_code == 0, result.output
    with db.session() as session:
        api = auth.resolve_api_token(session, plaintext=last_line(result))
    assert api is not None
    assert (api.name, api.role, api.scopes) == ("ci", "operator", ["ingest", "read"])
    assert api.expires_at is not None


def test_api_token_without_scopes_gets_its_roles_scopes(env: dict, db: Database) -> None:
    result = run(env, "token", "create", "--api", "grafana", "--role", "viewer")

    with db.session() as session:
        api = auth.resolve_api_token(session, plaintext=last_line(result))
    assert api is not None
    assert api.scopes == ["read"]


@pytest.mark.parametrize(
    "args",
    [
        ["token", "create"],
        ["token", "create", "--kiosk", "a", "--api", "b", "--role", "viewer"],
        ["token", "create", "--api", "b"],
        ["token", "create", "--kiosk", "a", "--role", "viewer"],
        ["token", "create", "--api", "b", "--role", "viewer", "--scope", "everything"],
        ["token", "revoke", "1"],
    ],
)
def test_token_usage_errors_exit_2(env: dict, args: list[str]) -> None:
    assert run(env, *args).exit_code == 2


def test_a_scope_beyond_the_role_is_refused(env: dict) -> None:
    result = run(env, "token", "create", "--api", "x", "--role", "viewer", "--scope", "admin")

    assert result.exit_code == 1
    assert result.stderr == "error: role viewer cannot hold scope(s): admin\n"


def test_token_list_shows_both_kinds_but_never_secrets(env: dict) -> None:
    kiosk = last_line(run(env, "token", "create", "--kiosk", "wall-1"))
    api = last_line(run(env, "token", "create", "--api", "etl", "--role", "engineer"))

    table = run(env, "token", "list")
    as_json = run(env, "token", "list", "--json")

    for output in (table.stdout, as_json.stdout):
        assert "wall-1" in output
        assert "etl" in output
        assert kiosk not in output
        assert api not in output
        assert auth.token_digest(api) not in output
        assert "hash" not in output
    assert kiosk[:12] in table.stdout


def test_revoke_by_id_and_by_name(env: dict, db: Database) -> None:
    kiosk = last_line(run(env, "token", "create", "--kiosk", "wall-2"))
    api = last_line(run(env, "token", "create", "--api", "etl", "--role", "engineer"))
    with db.session() as session:
        kiosk_id = auth.resolve_kiosk_token(session, plaintext=kiosk).id  # type: ignore[union-attr]

    by_id = run(env, "token", "revoke", "--kiosk", str(kiosk_id))
    by_name = run(env, "token", "revoke", "--api", "etl")

    assert by_id.exit_code == 0, by_id.output
    assert by_name.exit_code == 0, by_name.output
    with db.session() as session:
        assert auth.resolve_kiosk_token(session, plaintext=kiosk) is None
        assert auth.resolve_api_token(session, plaintext=api) is None
    listed = run(env, "token", "list").stdout
    assert listed.count("revoked") == 2


def test_revoking_unknown_or_revoked_tokens_fails_cleanly(env: dict) -> None:
    run(env, "token", "create", "--kiosk", "wall-3")
    run(env, "token", "revoke", "--kiosk", "wall-3")

    again = run(env, "token", "revoke", "--kiosk", "wall-3")
    unknown = run(env, "token", "revoke", "--api", "999")

    assert again.exit_code == unknown.exit_code == 1
    assert again.stderr == "error: no active kiosk token named 'wall-3'\n"
    assert unknown.stderr == "error: no api token with id 999\n"


# --- audit -------------------------------------------------------------------------------


def audit_events(env: dict) -> int:
    """Add a few audited changes so there is a middle to tamper with."""
    for name in ("ivan", "judy", "kate"):
        run(env, "user", "add", name, "--role", "viewer", "--password-stdin", input=PASSWORD)
    result = run(env, "audit", "verify")
    assert result.exit_code == 0, result.output
    return int(result.stdout.split(" events")[0].rsplit(" ", 1)[1])


def tamper(data_dir: Path, sql: str, *params: object) -> None:
    mark_tampered(data_dir)  # on purpose: the whole-run chain check leaves this one out
    with sqlite3.connect(data_dir / "beacon.db") as conn:
        conn.execute(sql, params)


def test_audit_verify_passes_on_a_fresh_install(tmp_path: Path) -> None:
    result = run(cli_env(tmp_path), "audit", "verify")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("audit chain intact: ")
    head = run(cli_env(tmp_path), "audit", "head").stdout.strip()
    seq, digest = head.split(":")
    assert f"head #{seq} {digest}" in result.stdout


def test_audit_verify_names_an_altered_event(env: dict, tmp_path: Path) -> None:
    count = audit_events(env)
    target = count - 1
    tamper(tmp_path, "UPDATE audit_events SET after = ? WHERE seq = ?", '{"role":"admin"}', target)

    result = run(env, "audit", "verify")

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: audit chain broken at event #{target}: content")


def test_audit_verify_names_a_removed_event(env: dict, tmp_path: Path) -> None:
    count = audit_events(env)
    target = count // 2
    tamper(tmp_path, "DELETE FROM audit_events WHERE seq = ?", target)

    result = run(env, "audit", "verify")

    assert result.exit_code == 1
    assert f"event #{target}: missing event" in result.stderr


def test_an_anchor_detects_removal_of_the_newest_events(env: dict, tmp_path: Path) -> None:
    anchor = run(env, "audit", "head").stdout.strip()
    count = audit_events(env)
    assert run(env, "audit", "verify", "--anchor", anchor).exit_code == 0
    later_anchor = run(env, "audit", "head").stdout.strip()
    tamper(tmp_path, "DELETE FROM audit_events WHERE seq >= ?", count - 1)

    plain = run(env, "audit", "verify")
    anchored = run(env, "audit", "verify", "--anchor", later_anchor)

    # Cutting the tail leaves a valid chain; only the anchor recorded elsewhere notices.
    assert plain.exit_code == 0
    assert anchored.exit_code == 1
    assert f"event #{count - 1}: events after head removed" in anchored.stderr


@pytest.mark.parametrize("anchor", ["12", "x:" + "0" * 64, "3:abc", "3:" + "g" * 64])
def test_a_malformed_anchor_is_a_usage_error(env: dict, anchor: str) -> None:
    result = run(env, "audit", "verify", "--anchor", anchor)

    assert result.exit_code == 2
    assert "SEQ:HASH" in result.stderr


# --- PostgreSQL --------------------------------------------------------------------------


@pytest.mark.postgres
def test_admin_commands_on_postgresql(tmp_path: Path, worker_id: str) -> None:
    skip_or_fail_without_postgres()
    url = fresh_postgres_database(f"beacon_cli_{worker_id}")
    env = cli_env(tmp_path, BEACON_DATABASE_URL=url)

    init = run(env, "init")
    added = run(env, "user", "add", "lena", "--role", "admin", "--password-stdin", input=PASSWORD)
    token = run(env, "token", "create", "--api", "etl", "--role", "engineer")
    intact = run(env, "audit", "verify")

    assert init.exit_code == added.exit_code == token.exit_code == intact.exit_code == 0
    assert make_url(url).host in init.stdout
    assert "audit chain intact" in intact.stdout
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
    broken = run(env, "audit", "verify")
    assert broken.exit_code == 1
    assert "event #2: content altered" in broken.stderr
