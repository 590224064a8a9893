"""Models published through the service, failed web logins for throttling; spans lose a redundant index.

The unique (trace_id, span_id) index already serves lookups by trace id; the separate trace_id index only
cost every span written (about a tenth of the database's work per span).

Revision ID: e3a9c4b15f60
Revises: d2f8a61b7c03
Create Date: 2026-11-27 23:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3a9c4b15f60"
down_revision: str | Sequence[str] | None = "d2f8a61b7c03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "published_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("framework", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("manifest_yaml", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_models")),
        sa.UniqueConstraint("name", "framework", name=op.f("uq_published_models_name_framework")),
    )
    op.create_index(op.f("ix_published_models_name"), "published_models", ["name"], unique=False)
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("failed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_user_name_failed_at", "login_failures", ["user_name", "failed_at"])
    op.create_index("ix_login_failures_remote_addr_failed_at", "login_failures", ["remote_addr", "failed_at"])
    op.drop_index(op.f("ix_spans_trace_id"), table_name="spans")


def downgrade() -> None:
    op.create_index(op.f("ix_spans_trace_id"), "spans", ["trace_id"], unique=False)
    op.drop_index("ix_login_failures_remote_addr_failed_at", table_name="login_failures")
    op.drop_index("ix_login_failures_user_name_failed_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index(op.f("ix_published_models_name"), table_name="published_models")
    op.drop_table("published_models")
