"""Comparisons, performance scenarios, trace spans, hardware samples, energy and cost; views that show them.

Revision ID: c5d1e7a90f42
Revises: b7c41e09d2a3
Create Date: 2026-11-27 20:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c5d1e7a90f42"
down_revision: str | Sequence[str] | None = "b7c41e09d2a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

# The views of b7c41e09d2a3 as they were, to restore on downgrade.
OLD_VIEWS: tuple[tuple[str, str], ...] = (
    (
        "evaluation_summary",
        """
        SELECT j.id AS job_id, j.model_name AS model, j.framework, j.dataset_name AS dataset, j.hardware_tag,
               j.batch_size, j.shard_count AS shards, j.status, r.items, r.errors, r.top1, r.top5,
               m.claimed_top1, r.latency_p50_ms, r.latency_p90_ms, r.latency_p99_ms, r.latency_trimmed_mean_ms,
               r.throughput_items_per_s, r.model_load_ms, j.created_at, j.finished_at
        FROM jobs j
        LEFT JOIN results r ON r.job_id = j.id
        LEFT JOIN models m ON m.id = j.model_id
        WHERE j.kind = 'evaluate' AND j.status IN ('succeeded', 'failed', 'cancelled', 'timed_out')
        """,
    ),
    (
        "hardware_comparison",
        """
        SELECT s.model, s.framework, s.dataset, s.hardware_tag, s.batch_size, COUNT(*) AS runs,
               MAX(s.top1) AS best_top1, AVG(s.latency_p50_ms) AS avg_p50_ms, MIN(s.latency_p50_ms) AS min_p50_ms,
               AVG(s.latency_p99_ms) AS avg_p99_ms, MAX(s.throughput_items_per_s) AS max_throughput_items_per_s
        FROM evaluation_summary s
        WHERE s.status = 'succeeded'
        GROUP BY s.model, s.framework, s.dataset, s.hardware_tag, s.batch_size
        """,
    ),
    (
        "model_leaderboard",
        # The best run's hardware by a correlated subquery: window functions would do, but this reads plainer.
        """
        SELECT s.model, s.framework, s.dataset, COUNT(*) AS runs, MAX(s.top1) AS best_top1,
               MAX(s.claimed_top1) AS claimed_top1,
               (SELECT b.hardware_tag FROM evaluation_summary b
                WHERE b.status = 'succeeded' AND b.top1 IS NOT NULL AND b.model = s.model
                  AND b.framework = s.framework
                  AND (b.dataset = s.dataset OR (b.dataset IS NULL AND s.dataset IS NULL))
                ORDER BY b.top1 DESC, b.throughput_items_per_s DESC, b.job_id
                LIMIT 1) AS best_hardware_tag
        FROM evaluation_summary s
        WHERE s.status = 'succeeded'
        GROUP BY s.model, s.framework, s.dataset
        """,
    ),
)

# NB: same dialect rules as b7c41e09d2a3 (plain SQL that PostgreSQL and SQLite both run). Scenario runs measure
# other things than accuracy passes, so the comparison groups by scenario, and the leaderboard ranks accuracy passes
# only (a scenario's top-1 covers its sample set, warm-up and repeated samples included).
NEW_VIEWS: tuple[tuple[str, str], ...] = (
    (
        "evaluation_summary",
        """
        SELECT j.id AS job_id, j.model_name AS model, j.framework, j.dataset_name AS dataset, j.hardware_tag,
               j.batch_size, j.scenario, j.shard_count AS shards, j.status, r.items, r.errors, r.top1, r.top5,
               m.claimed_top1, r.latency_p50_ms, r.latency_p90_ms, r.latency_p99_ms, r.latency_trimmed_mean_ms,
               r.throughput_items_per_s, r.model_load_ms, r.valid, r.stable, r.energy_joules, r.joules_per_item,
               j.price_per_hour, r.cost_per_1000_items, j.comparison_id, j.trace_id, j.created_at, j.finished_at
        FROM jobs j
        LEFT JOIN results r ON r.job_id = j.id
        LEFT JOIN models m ON m.id = j.model_id
        WHERE j.kind = 'evaluate' AND j.status IN ('succeeded', 'failed', 'cancelled', 'timed_out')
        """,
    ),
    (
        "hardware_comparison",
        """
        SELECT s.model, s.framework, s.dataset, s.hardware_tag, s.batch_size, s.scenario, COUNT(*) AS runs,
               MAX(s.top1) AS best_top1, AVG(s.latency_p50_ms) AS avg_p50_ms, MIN(s.latency_p50_ms) AS min_p50_ms,
               AVG(s.latency_p99_ms) AS avg_p99_ms, MAX(s.throughput_items_per_s) AS max_throughput_items_per_s,
               AVG(s.joules_per_item) AS avg_joules_per_item, AVG(s.cost_per_1000_items) AS avg_cost_per_1000_items
        FROM evaluation_summary s
        WHERE s.status = 'succeeded'
        GROUP BY s.model, s.framework, s.dataset, s.hardware_tag, s.batch_size, s.scenario
        """,
    ),
    (
        "model_leaderboard",
        # The best run's hardware by a correlated subquery: window functions would do, but this reads plainer.
        """
        SELECT s.model, s.framework, s.dataset, COUNT(*) AS runs, MAX(s.top1) AS best_top1,
               MAX(s.claimed_top1) AS claimed_top1,
               (SELECT b.hardware_tag FROM evaluation_summary b
                WHERE b.status = 'succeeded' AND b.scenario = 'accuracy' AND b.top1 IS NOT NULL AND b.model = s.model
                  AND b.framework = s.framework
                  AND (b.dataset = s.dataset OR (b.dataset IS NULL AND s.dataset IS NULL))
                ORDER BY b.top1 DESC, b.throughput_items_per_s DESC, b.job_id
                LIMIT 1) AS best_hardware_tag
        FROM evaluation_summary s
        WHERE s.status = 'succeeded' AND s.scenario = 'accuracy'
        GROUP BY s.model, s.framework, s.dataset
        """,
    ),
)
# This one does not change; it is dropped and re-created around the table changes (SQLite checks views when batch
# mode renames tables).
UNCHANGED_VIEWS: tuple[tuple[str, str], ...] = (
    (
        "stage_breakdown",
        """
        SELECT t.job_id, j.model_name AS model, j.framework, j.hardware_tag, j.batch_size, j.created_at, t.stage,
               COUNT(*) AS batches, SUM(t.items) AS items, SUM(t.duration_ms) AS total_ms,
               AVG(t.duration_ms) AS mean_ms_per_batch,
               CASE WHEN tot.job_ms > 0 THEN SUM(t.duration_ms) / tot.job_ms END AS share
        FROM stage_timings t
        JOIN jobs j ON j.id = t.job_id
        JOIN (
            SELECT job_id, SUM(duration_ms) AS job_ms FROM stage_timings WHERE NOT warmup GROUP BY job_id
        ) tot ON tot.job_id = t.job_id
        WHERE NOT t.warmup
        GROUP BY t.job_id, j.model_name, j.framework, j.hardware_tag, j.batch_size, j.created_at, t.stage, tot.job_ms
        """,
    ),
)


def _drop_views() -> None:
    for name in ("model_leaderboard", "stage_breakdown", "hardware_comparison", "evaluation_summary"):
        op.execute(f"DROP VIEW IF EXISTS {name}")


def _create_views(views: Sequence[tuple[str, str]]) -> None:
    for name, query in views:
        op.execute(f"CREATE VIEW {name} AS {query.strip()}")


def upgrade() -> None:
    _drop_views()
    op.create_table(
        "comparisons",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("dataset_name", sa.String(length=255), nullable=False),
        sa.Column("spec", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparisons")),
    )
    op.create_index(op.f("ix_comparisons_owner"), "comparisons", ["owner"], unique=False)
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("scenario", sa.String(length=32), server_default="accuracy", nullable=False))
        batch.add_column(sa.Column("comparison_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("comparison_leg", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("trace_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("price_per_hour", sa.Float(), nullable=True))
        batch.create_index(batch.f("ix_jobs_comparison_id"), ["comparison_id"], unique=False)
        batch.create_index(batch.f("ix_jobs_trace_id"), ["trace_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_jobs_comparison_id_comparisons"), "comparisons", ["comparison_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("scenario_outcome", JSON_DOCUMENT, nullable=True))
        batch.add_column(sa.Column("valid", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("stable", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("hardware_metrics", JSON_DOCUMENT, nullable=True))
        batch.add_column(sa.Column("energy_joules", sa.Float(), nullable=True))
        batch.add_column(sa.Column("joules_per_item", sa.Float(), nullable=True))
        batch.add_column(sa.Column("cost_per_1000_items", sa.Float(), nullable=True))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("threads", sa.Integer(), nullable=True))
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
    op.create_index(op.f("ix_spans_trace_id"), "spans", ["trace_id"], unique=False)
    op.create_table(
        "hardware_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("taken_at", TIMESTAMP, nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.Column("rss_mib", sa.Float(), nullable=True),
        sa.Column("gpu_index", sa.Integer(), nullable=True),
        sa.Column("gpu_utilization_percent", sa.Float(), nullable=True),
        sa.Column("gpu_memory_used_mib", sa.Float(), nullable=True),
        sa.Column("gpu_power_w", sa.Float(), nullable=True),
        sa.Column("gpu_energy_j", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_hardware_samples_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hardware_samples")),
    )
    op.create_index("ix_hardware_samples_job_shard", "hardware_samples", ["job_id", "shard_index"], unique=False)
    _create_views([*NEW_VIEWS, *UNCHANGED_VIEWS])


def downgrade() -> None:
    _drop_views()
    op.drop_index("ix_hardware_samples_job_shard", table_name="hardware_samples")
    op.drop_table("hardware_samples")
    op.drop_index(op.f("ix_spans_trace_id"), table_name="spans")
    op.drop_index(op.f("ix_spans_job_id"), table_name="spans")
    op.drop_table("spans")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("threads")
    with op.batch_alter_table("results") as batch:
        for name in ("cost_per_1000_items", "joules_per_item", "energy_joules", "hardware_metrics", "stable", "valid"):
            batch.drop_column(name)
        batch.drop_column("scenario_outcome")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(batch.f("fk_jobs_comparison_id_comparisons"), type_="foreignkey")
        batch.drop_index(batch.f("ix_jobs_trace_id"))
        batch.drop_index(batch.f("ix_jobs_comparison_id"))
        for name in ("price_per_hour", "trace_id", "comparison_leg", "comparison_id", "scenario"):
            batch.drop_column(name)
    op.drop_index(op.f("ix_comparisons_owner"), table_name="comparisons")
    op.drop_table("comparisons")
    _create_views([*OLD_VIEWS, *UNCHANGED_VIEWS])
