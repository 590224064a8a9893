"""The declarative base: constraint names alembic can rely on, JSON that is JSONB on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# NB: named constraints make migrations reproducible on every backend (SQLite batch mode needs them).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored with their zone and always read back as aware UTC (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use datetime.now(UTC)")
        # NB: in UTC, as SQLite keeps the wall time only and it is read back as UTC.
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


TYPE_ANNOTATION_MAP = {dict[str, Any]: JSONDocument, list[Any]: JSONDocument, datetime: UTCDateTime}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class ViewBase(DeclarativeBase):
    """Read-only classes over SQL views the migrations create: kept off `Base.metadata`, so nothing creates them as
    tables or compares them with the database's tables."""

    metadata = MetaData()
    type_annotation_map = TYPE_ANNOTATION_MAP


def set_columns(row: Any) -> dict[str, Any]:
    """The column values set on a new ORM object, by attribute name: the parameters of a plain INSERT of it, which
    gives the columns left unset their defaults."""
    state = inspect(row)
    return {column.key: state.dict[column.key] for column in state.mapper.column_attrs if column.key in state.dict}
