"""Spans are stored a set per shard (`span_sets`, a JSON array each) and read a row per span through the `spans` view.

Revision ID: a8d4f1c2e9b7
Revises: e3a9c4b15f60
Create Date: 2026-11-28 11:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a8d4f1c2e9b7"
down_revision: str | Sequence[str] | None = "e3a9c4b15f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The view shows the columns the `spans` table had (its `id` becomes `set_id` and `position`), so SQL written for
# the table still reads the same rows. Each span's attributes: its own with the set's over them.
# NB: in that order for SQLite's json_patch, which drops the nulls of what it patches with, nested ones too: the
# set's attributes hold none (`save_spans`), a span's own may.
# NB: SQLite checks views when a table is renamed, so a later batch migration of span_sets must drop this view first
# and create it again after.
SPANS_VIEW = {
    "postgresql": """
        CREATE VIEW spans AS
        SELECT s.id AS set_id, (e.position - 1)::int AS position, s.job_id, s.trace_id,
               e.span->>0 AS span_id, e.span->>1 AS parent_span_id, e.span->>2 AS name,
               s.shard_index, (e.span->>3)::int AS batch_index,
               TIMESTAMPTZ 'epoch' + (e.span->>4)::bigint * INTERVAL '1 microsecond' AS started_at,
               (e.span->>5)::float8 AS duration_ms,
               (e.span->6)::jsonb || s.attributes::jsonb AS attributes
        FROM span_sets s CROSS JOIN LATERAL json_array_elements(s.spans) WITH ORDINALITY AS e(span, position)
    """,
    # NB: started_at as the text SQLAlchemy stores a SQLite DATETIME as ('YYYY-MM-DD HH:MM:SS.ffffff', UTC).
    "sqlite": """
        CREATE VIEW spans AS
        SELECT s.id AS set_id, CAST(e.key AS INTEGER) AS position, s.job_id, s.trace_id,
               json_extract(e.value, '$[0]') AS span_id, json_extract(e.value, '$[1]') AS parent_span_id,
               json_extract(e.value, '$[2]') AS name, s.shard_index, json_extract(e.value, '$[3]') AS batch_index,
               strftime('%Y-%m-%d %H:%M:%S', json_extract(e.value, '$[4]') / 1000000, 'unixepoch')
                   || printf('.%06d', json_extract(e.value, '$[4]') % 1000000) AS started_at,
               CAST(json_extract(e.value, '$[5]') AS REAL) AS duration_ms,
               json_patch(json_extract(e.value, '$[6]'), s.attributes) AS attributes
        FROM span_sets s, json_each(s.spans) AS e
    """,
}

# The `spans` rows as set elements: one set per job, trace and shard; every attribute stays the span's own.
SETS_FROM_SPAN_ROWS = {
    "postgresql": """
        INSERT INTO span_sets (job_id, trace_id, shard_index, attributes, spans)
        SELECT job_id, trace_id, shard_index, '{}'::json, json_agg(
                   json_build_array(
                       span_id, parent_span_id, name, batch_index,
                       (EXTRACT(EPOCH FROM started_at) * 1000000)::bigint, duration_ms, attributes
                   )
                   ORDER BY started_at, id
               )
        FROM spans_rows GROUP BY job_id, trace_id, shard_index
    """,
    "sqlite": """
        INSERT INTO span_sets (job_id, trace_id, shard_index, attributes, spans)
        SELECT job_id, trace_id, shard_index, '{}', json_group_array(json(span))
        FROM (
            SELECT job_id, trace_id, shard_index, json_array(
                       span_id, parent_span_id, name, batch_index,
                       CAST(strftime('%s', substr(started_at, 1, 19)) AS INTEGER) * 1000000
                           + CAST(substr(substr(started_at, 21) || '000000', 1, 6) AS INTEGER),
                       duration_ms, json(attributes)
                   ) AS span
            FROM spans_rows ORDER BY started_at, id
        )
        GROUP BY job_id, trace_id, shard_index
    """,
}

SPAN_COLUMNS = "job_id, trace_id, span_id, parent_span_id, name, shard_index, batch_index, started_at, duration_ms"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "span_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("spans", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_span_sets_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_span_sets")),
    )
    op.create_index("ix_span_sets_job_id_shard_index", "span_sets", ["job_id", "shard_index"], unique=False)
    op.rename_table("spans", "spans_rows")
    op.execute(SETS_FROM_SPAN_ROWS[dialect])
    op.drop_table("spans_rows")
    op.execute(SPANS_VIEW[dialect])


def downgrade() -> None:
    op.execute(f"CREATE TABLE spans_restored AS SELECT {SPAN_COLUMNS}, attributes, set_id, position FROM spans")
    op.execute("DROP VIEW spans")
    op.create_table(
        "spans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=True),
        sa.Column("batch_index", sa.Integer(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("attributes", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_spans_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spans")),
        sa.UniqueConstraint("trace_id", "span_id", name=op.f("uq_spans_trace_id_span_id")),
    )
    op.create_index(op.f("ix_spans_job_id"), "spans", ["job_id"], unique=False)
    op.execute(
        f"INSERT INTO spans ({SPAN_COLUMNS}, attributes) SELECT {SPAN_COLUMNS}, attributes FROM spans_restored "
        "ORDER BY set_id, position"
    )
    op.drop_table("spans_restored")
    op.drop_index("ix_span_sets_job_id_shard_index", table_name="span_sets")
    op.drop_table("span_sets")
