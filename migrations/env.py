"""Alembic's entry point: runs the migrations against the URL that `carml.db.migrate` put in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.types import TypeDecorator

import carml.db.models  # noqa: F401  (registers every table on Base.metadata)
from carml.db.base import Base

config = context.config
target_metadata = Base.metadata


def _configure(**options: object) -> None:
    # compare_type: a changed column type must show up in autogenerate, not be silently kept.
    context.configure(target_metadata=target_metadata, compare_type=True, render_item=_render_item, **options)


def _render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    """Write our TypeDecorators (UTCDateTime) as the SQL type they store, so revisions never import carml."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False  # alembic's default rendering


def run_migrations_offline() -> None:
    """Emit the SQL as text (`--sql`) instead of running it."""
    url = config.get_main_option("sqlalchemy.url")
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, render_as_batch=_is_sqlite(url))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a fresh connection to the URL."""
    # NullPool: a migration is a one-off; pooled connections would outlive it for nothing.
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def _run_on(connection: Connection) -> None:
    # Batch mode: SQLite alters most things only by copying the table, which batch operations do.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _is_sqlite(url: str | None) -> bool:
    return bool(url) and url.startswith("sqlite")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
