"""Many rows into one table inside the caller's transaction: COPY on PostgreSQL (psycopg 3; a few rows: one INSERT
with their values), executemany elsewhere.

NB: SQLAlchemy sends an executemany on psycopg 3 as one INSERT per row (pipelined, but not batched by its
insertmanyvalues, which psycopg 3 gets only for INSERT ... RETURNING), so the server parses, plans and runs a
statement per row. COPY takes all the rows in one statement: about half the time for a shard's stage timings.
The rows go through the columns' own bind processors first, so values are checked and converted as an INSERT would
have them (aware datetimes only); JSON columns get the JSON text the server reads as it reads an INSERT's. Failures
come out as the SQLAlchemy errors an execute would raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, and_, delete, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from carml.db.driver_statements import driver_cursor


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert `rows` (one value per name in `columns`, in that order) into `table` in the session's transaction.

    Columns left out take their server defaults only: one with a Python-side default must be given.
    """
    replace_rows(session, table, {}, columns, rows)


def replace_rows(
    session: Session,
    table: Table,
    match: Mapping[str, Any],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Delete the rows of `table` whose columns equal `match` (none when it is empty), then insert `rows` as
    `insert_rows` does: a unit of work that is done again rewrites its rows instead of adding a second copy."""
    lacking = [c.name for c in table.columns if c.name not in columns and c.default is not None]
    if lacking:
        raise ValueError(f"rows for {table.name} need a value for {', '.join(lacking)} (it has a Python default)")
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        # NB: on the driver's connection: SQLAlchemy's execute of even a simple DELETE costs more than its round trip.
        if match:
            _delete(connection, table, match)
        listed = list(rows)
        if len(listed) <= MAX_VALUES_ROWS:
            _insert_values(connection, table, columns, listed)
        else:
            _copy(connection, table, columns, listed)
        return
    if match:
        connection.execute(delete(table).where(and_(*(table.c[name] == value for name, value in match.items()))))
    listed = [dict(zip(columns, row, strict=True)) for row in rows]
    if listed:
        connection.execute(insert(table), listed)


#: Up to this many rows go as one INSERT with their values in it, more with COPY: a COPY takes two round trips (its
#: start is answered before the rows are sent), an INSERT one, but the server parses an INSERT's values one by one.
#: Measured with span rows, in a transaction: 0.70 against 0.91 ms for 1 row, even at 6, COPY ahead from 16.
MAX_VALUES_ROWS = 8


def _json_text(none_as_null: bool) -> Callable[[Any], str | None]:
    """What `json.dumps` gives; None as the JSON type stores it."""
    if not none_as_null:
        return json.dumps
    return lambda value: None if value is None else json.dumps(value)


def _processor(table: Table, name: str, connection: Connection) -> Callable[[Any], Any] | None:
    dialect = connection.dialect
    impl = table.c[name].type.dialect_impl(dialect)
    if isinstance(impl, JSON):
        return _json_text(impl.none_as_null)
    return impl.bind_processor(dialect)


def _converter(
    table: Table, columns: Sequence[str], connection: Connection, statement: str
) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
    """What makes a row's values what the driver is given (None when every value goes as it is)."""
    dialect = connection.dialect
    processors = [(index, _processor(table, name, connection)) for index, name in enumerate(columns)]
    converted = [(index, process) for index, process in processors if process is not None]
    if not converted:
        return None

    def convert(row: Sequence[Any]) -> Sequence[Any]:
        values = list(row)
        try:
            for index, process in converted:
                values[index] = process(values[index])
        except Exception as exc:
            # What SQLAlchemy raises for a value its processors refuse (the session turns it into a DatabaseError).
            raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
        return values

    return convert


def _delete(connection: Connection, table: Table, match: Mapping[str, Any]) -> None:
    quote = connection.dialect.identifier_preparer.quote
    condition = " AND ".join(f"{quote(name)} = %s" for name in match)
    statement = f"DELETE FROM {quote(table.name)} WHERE {condition}"
    convert = _converter(table, list(match), connection, statement)
    values = list(match.values())
    with driver_cursor(connection, statement) as cursor:
        cursor.execute(statement, convert(values) if convert else values)


def _insert_values(connection: Connection, table: Table, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
    if not rows:
        return
    quote = connection.dialect.identifier_preparer.quote
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
        f"VALUES {', '.join([placeholders] * len(rows))}"
    )
    convert = _converter(table, columns, connection, statement)  # JSON as its text: the server reads it as it would
    values = [value for row in rows for value in (convert(row) if convert else row)]
    with driver_cursor(connection, statement) as cursor:
        cursor.execute(statement, values)


def _copy(connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(name) for name in columns)}) FROM STDIN"
    convert = _converter(table, columns, connection, statement)
    with driver_cursor(connection, statement) as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(convert(row) if convert else row)
