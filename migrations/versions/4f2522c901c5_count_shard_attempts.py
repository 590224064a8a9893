"""Count how often each shard was started, so a shard that keeps killing its worker is given up on.

Revision ID: 4f2522c901c5
Revises: 70035b456498
Create Date: 2026-11-27 19:04:54.437538
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4f2522c901c5"
down_revision: str | Sequence[str] | None = "70035b456498"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_shards") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("job_shards") as batch:
        batch.drop_column("attempts")
