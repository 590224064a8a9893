"""`carml users` and `carml tokens`: accounts and API tokens, managed by whoever holds the database URL."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from carml.accounts import create_token, create_user, disable_user, list_tokens, list_users, revoke_token
from carml.cli.output import print_json, print_table
from carml.db.migrate import require_current
from carml.db.models import Role
from carml.settings import Settings, load_settings

MAX_EXPIRY_DAYS = 3650
TOKEN_COLUMNS = ("id", "user", "prefix", "name", "created", "last_used", "expires", "revoked", "state")


def _settings() -> Settings:
    settings = load_settings()
    require_current(settings.database)
    return settings


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


@click.group("users")
def users_group() -> None:
    """Create, list and disable users (roles: user, publisher, admin)."""


@users_group.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default=Role.USER.value, show_default=True, help="Role."
)
@click.option("--password", "ask_password", is_flag=True, help="Ask for a password for web login (hidden, twice).")
def users_create(name: str, role: str, ask_password: bool) -> None:
    """Create the user NAME; without --password it can only use API tokens (`carml tokens create`)."""
    settings = _settings()
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True) if ask_password else None
    user = create_user(settings, name, role, password)
    login = "web login and API tokens" if user.has_password else "API tokens only"
    click.echo(f"user {user.name} created (role {user.role}; {login})")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def users_list(as_json: bool) -> None:
    """Every user, by name."""
    users = list_users(_settings())
    rows = [
        {
            "name": u.name,
            "role": u.role.value,
            "password": u.has_password,
            "disabled": u.disabled,
            "created": _when(u.created_at),
        }
        for u in users
    ]
    if as_json:
        print_json(rows)
        return
    print_table(["name", "role", "password", "disabled", "created"], [list(r.values()) for r in rows])


@users_group.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable NAME: their password and tokens stop working at once; their jobs and data stay."""
    user = disable_user(_settings(), name)
    click.echo(f"user {user.name} disabled")


@click.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke API tokens (`Authorization: Bearer TOKEN` on /api/v1)."""


@tokens_group.command("create")
@click.option("--user", "user_name", required=True, help="The user the token acts as.")
@click.option("--name", "token_name", default="cli", show_default=True, help="A label to tell tokens apart.")
@click.option(
    "--expires-days", type=click.IntRange(1, MAX_EXPIRY_DAYS), help="Stop working after N days (default: never)."
)
def tokens_create(user_name: str, token_name: str, expires_days: int | None) -> None:
    """Create a token and print it: the only time it is shown."""
    expires_at = datetime.now().astimezone() + timedelta(days=expires_days) if expires_days else None
    token = create_token(_settings(), user_name, token_name, expires_at)
    click.echo(token)
    click.echo(
        f"token {token_name!r} for {user_name}: copy it now, it is not shown again (only its SHA-256 is stored)",
        err=True,
    )


@tokens_group.command("list")
@click.option("--user", "user_name", help="Only this user's tokens.")
@click.option("--json", "as_json", is_flag=True)
def tokens_list(user_name: str | None, as_json: bool) -> None:
    """Tokens, oldest first: prefix, name, created, last used, expiry and whether revoked (never the secret)."""
    tokens = list_tokens(_settings(), user_name)
    rows = [
        {
            "id": t.id,
            "user": t.user,
            "prefix": t.prefix,
            "name": t.name,
            "created": _when(t.created_at),
            "last_used": _when(t.last_used_at),
            "expires": _when(t.expires_at),
            "revoked": _when(t.revoked_at),
            "state": t.state(),
        }
        for t in tokens
    ]
    if as_json:
        print_json(rows)
        return
    print_table(TOKEN_COLUMNS, [list(r.values()) for r in rows])


@tokens_group.command("revoke")
@click.argument("token_id", type=click.IntRange(min=1), metavar="ID")
def tokens_revoke(token_id: int) -> None:
    """Revoke token ID (see `carml tokens list`): it is refused from the next request on."""
    token = revoke_token(_settings(), token_id)
    click.echo(f"token {token.id} ({token.prefix}…, {token.name!r} of {token.user}) revoked")


COMMANDS = [users_group, tokens_group]
