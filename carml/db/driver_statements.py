"""Statements on every prediction's path, compiled once and run on the driver's cursor.

SQLAlchemy's execution of even a cached statement costs several times the statement's round trip: its cache key is
computed from the whole statement each time, an execution context and result metadata are built, and an ORM
statement then loads its entities. Measured on a 2-core machine, one `UPDATE … RETURNING` of a job and its shard:
3.9–4.3 ms through the ORM, 2.2–3.0 ms as a Core statement, 1.2 ms as text through `exec_driver_sql`, 0.6–0.9 ms
on psycopg alone.

A `DriverStatement` is compiled once per dialect. Each run converts its parameters with the columns' own bind
processors and executes on the driver's cursor of the session's connection, in its transaction; errors come out as
SQLAlchemy's own (`driver_cursor`: a lost connection is invalidated). Returned rows go through the columns' result
processors, so values are what an ORM read gives (aware UTC datetimes on SQLite, JSON decoded). SQLAlchemy's engine
events and echo do not see these statements.

For statements whose parameters are all named `bindparam`s or fixed values: an expanding `IN` is refused when
compiled (write it as `or_` of comparisons).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnDefault, ColumnElement, Connection, Dialect, Executable, Table, bindparam, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, class_mapper
from sqlalchemy.orm.attributes import instance_state

T = TypeVar("T")
Row = dict[str, Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    required: tuple[str, ...]  # the parameters each run must give (or a column default supplies)
    accepted: frozenset[str]  # every parameter it takes
    only_its_own: bool  # whether a run giving another is refused (an INSERT's), or it is ignored (shared values)
    positions: tuple[str, ...] | None  # the parameters' order for a positional paramstyle (SQLite's qmark)
    fixed: dict[str, Any]  # values written into the statement (`.values(status=...)`, literal comparisons)
    bind_processors: dict[str, Callable[[Any], Any]]
    returned: tuple[ColumnElement[Any], ...]  # the columns it returns (RETURNING, or a SELECT's), in order

    def parameters(self, given: Mapping[str, Any]) -> Mapping[str, Any] | tuple[Any, ...]:
        missing = [name for name in self.required if name not in given]
        if missing:
            raise ValueError(f"no value for {', '.join(missing)} in {self.sql[:60]!r}")
        unknown = given.keys() - self.accepted if self.only_its_own else ()
        if unknown:  # a column value the INSERT has no place for would be dropped without a word
            raise ValueError(f"{', '.join(sorted(unknown))} not in {self.sql[:60]!r}")
        values = {**self.fixed, **given}
        for name, process in self.bind_processors.items():
            values[name] = process(values[name])
        if self.positions is not None:
            return tuple(values[name] for name in self.positions)
        return values

    def row_reader(self, dialect: Dialect, description: Sequence[Any]) -> Callable[[Sequence[Any]], Row]:
        """What makes a returned row {column key: value as the ORM would read it}; `description`: the cursor's, whose
        type codes some result processors need (PostgreSQL's numeric types)."""
        keys = [str(column.key) for column in self.returned]
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, described[1])
            for column, described in zip(self.returned, description, strict=True)
        ]

        def row(raw: Sequence[Any]) -> Row:
            return {
                key: process(value) if process is not None else value
                for key, process, value in zip(keys, processors, raw, strict=True)
            }

        return row


class DriverStatement:
    """A Core statement compiled once per dialect and run on the driver's cursor (see the module's note).

    `defaults`: values made for parameters a run leaves out (`driver_insert`'s column defaults). A run may give
    parameters the statement does not take (several statements can share one set of values), unless `only_its_own`
    (`driver_insert`'s: a column value it has no place for would be lost)."""

    def __init__(
        self,
        statement: Executable,
        defaults: Mapping[str, Callable[[], Any]] | None = None,
        only_its_own: bool = False,
    ):
        self.statement = statement
        self.defaults = dict(defaults or {})
        self.only_its_own = only_its_own
        self._compiled: dict[str, _Compiled] = {}
        self._row_readers: dict[str, Callable[[Sequence[Any]], Row]] = {}
        self._lock = threading.Lock()

    def execute(self, session: Session, parameters: Mapping[str, Any]) -> tuple[list[Row], int]:
        """Run in the session's transaction: (the returned rows as {column key: value}, how many rows it matched, or
        returned when it returns rows)."""
        connection = session.connection()
        compiled = self._for(connection.dialect)
        given = {**{name: make() for name, make in self.defaults.items() if name not in parameters}, **parameters}
        with driver_cursor(connection, compiled.sql) as cursor:
            cursor.execute(compiled.sql, compiled.parameters(given))
            if not compiled.returned:
                return [], cursor.rowcount
            reader = self._row_readers.get(connection.dialect.name)
            if reader is None:
                reader = compiled.row_reader(connection.dialect, cursor.description)
                self._row_readers[connection.dialect.name] = reader
            rows = [reader(raw) for raw in cursor.fetchall()]
        return rows, len(rows)  # NB: a driver may count rows returned only once they are all read (SQLite)

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.setdefault(dialect.name, _compile(self.statement, dialect, self.only_its_own))
        return compiled


@contextmanager
def driver_cursor(connection: Connection, statement: str) -> Iterator[Any]:
    """A cursor of the connection's driver connection (in its transaction) whose errors come out as SQLAlchemy's own
    execution raises them: a lost connection is invalidated (the pool then replaces it) and raised as an
    OperationalError, which is what the retries of a shard's writes wait on."""
    dialect = connection.dialect
    raw = connection.connection.driver_connection
    cursor = raw.cursor()
    try:
        yield cursor
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, raw, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from exc
    finally:
        cursor.close()


def _compile(statement: Executable, dialect: Dialect, only_its_own: bool) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("a DriverStatement cannot take an expanding IN: write it as or_() of comparisons")
    processors = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    return _Compiled(
        sql=compiled.string,
        required=tuple(name for name, bind in compiled.binds.items() if bind.required),
        accepted=frozenset(compiled.binds),
        only_its_own=only_its_own,
        positions=tuple(compiled.positiontup) if dialect.positional and compiled.positiontup else None,
        fixed={name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required},
        bind_processors=processors,
        returned=tuple(statement.exported_columns),  # type: ignore[attr-defined]
    )


def driver_insert(table: Table, names: Sequence[str], returning: bool = False) -> DriverStatement:
    """An INSERT into `table` of the columns `names` (parameters of the same names) and of every column with a
    Python-side default, made when a run leaves it out, as SQLAlchemy's own INSERT would; a run giving a value for
    any other column is refused. `returning`: the row as stored."""
    defaults = {
        column.key: _default_maker(column.default, column.key)
        for column in table.columns
        if column.key not in names and column.default is not None
    }
    values = {name: bindparam(name, type_=table.c[name].type) for name in (*names, *defaults)}
    statement = insert(table).values(values)
    return DriverStatement(statement.returning(*table.c) if returning else statement, defaults, only_its_own=True)


def _default_maker(default: Any, name: str) -> Callable[[], Any]:
    if isinstance(default, ColumnDefault) and default.is_scalar:
        value = default.arg
        return lambda: value
    if isinstance(default, ColumnDefault) and default.is_callable:
        make = default.arg  # NB: SQLAlchemy wraps a callable that takes no argument into one that takes its context
        return lambda: make(None)  # type: ignore[operator]
    raise ValueError(f"column {name}: a DriverStatement makes only scalar and callable defaults")


def loaded(cls: type[T], values: Mapping[str, Any]) -> T:
    """An ORM object holding a returned row's values as a read leaves them: committed, with nothing to flush (made
    the way the ORM's loading makes one: no `__init__`, values straight into its state)."""
    instance = class_mapper(cls).class_manager.new_instance()
    instance_state(instance).dict.update(values)
    return instance  # type: ignore[no-any-return]
