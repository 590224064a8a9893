"""Add reporting views: evaluation_summary, hardware_comparison, stage_breakdown, model_leaderboard.

Revision ID: b7c41e09d2a3
Revises: 4f2522c901c5
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "b7c41e09d2a3"
down_revision: str | Sequence[str] | None = "4f2522c901c5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# NB: plain SQL that PostgreSQL and SQLite both accept: no EXTRACT/julianday (so no duration), no FILTER, no
# IS NOT DISTINCT FROM, booleans tested as `NOT warmup` (SQLite stores them as 0/1).
# NB: SQLite checks views when a table is renamed, so a later batch migration of jobs, results, models or
# stage_timings must drop these views first and create them again after.
VIEWS: tuple[tuple[str, str], ...] = (
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


def upgrade() -> None:
    for name, query in VIEWS:
        op.execute(f"CREATE VIEW {name} AS {query.strip()}")


def downgrade() -> None:
    # Dependents first: the last two views read evaluation_summary.
    for name, _ in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
