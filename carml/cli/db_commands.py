"""`carml db`: migrate the database's schema to the revision this CarML needs, or author a new revision."""

from __future__ import annotations

import click

from carml.db import migrate
from carml.settings import load_settings

url_option = click.option(
    "--url", metavar="URL", help="Database URL (default: CARML_DATABASE_URL, or the SQLite file under CARML_HOME)."
)


def _database(url: str | None) -> str:
    return url or load_settings().database


def _describe(revision: str | None) -> str:
    if revision is None:
        return "base (no CarML tables)"
    return f"{revision} (head)" if revision == migrate.head() else revision


@click.group("db")
def db_group() -> None:
    """The database schema: upgrade it, downgrade it, see its revision, add a revision."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@url_option
def upgrade_command(revision: str, url: str | None) -> None:
    """Migrate the database forward to REVISION (default: head, what this CarML needs)."""
    database = _database(url)
    before = migrate.current(database)
    after = migrate.upgrade(database, revision)
    if before == after:
        click.echo(f"database {migrate.masked(database)} already at {_describe(after)}")
    else:
        click.echo(f"database {migrate.masked(database)} upgraded to {_describe(after)}")


# ignore_unknown_options: lets "-1" (one step back) through as the REVISION instead of an unknown option.
@db_group.command("downgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@url_option
def downgrade_command(revision: str, url: str | None) -> None:
    """Migrate the database back to REVISION: a revision id, -1 for one step, or base to drop every table."""
    database = _database(url)
    after = migrate.downgrade(database, revision)
    click.echo(f"database {migrate.masked(database)} downgraded to {_describe(after)}")


@db_group.command("current")
@url_option
def current_command(url: str | None) -> None:
    """Print the database's revision, and whether it is the head this CarML needs."""
    database = _database(url)
    revision, needed = migrate.current(database), migrate.head()
    if revision == needed:
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision or 'none'} (this CarML needs {needed}: run `carml db upgrade`)")


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the revision changes, e.g. 'add jobs.priority'.")
@url_option
def revision_command(message: str, url: str | None) -> None:
    """Autogenerate a revision in migrations/versions from the models' difference to the (upgraded) database."""
    database = _database(url)
    path = migrate.revision(database, message)
    if path is None:
        click.echo(f"no changes: the models match database {migrate.masked(database)}; nothing written")
    else:
        click.echo(f"wrote {path}: review it, then test it with `pytest tests/db`")


COMMANDS = [db_group]
