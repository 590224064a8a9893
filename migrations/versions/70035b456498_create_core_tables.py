"""Create the core tables: catalog (models, datasets), workers, jobs and their shards, results, timings, outputs.

Revision ID: 70035b456498
Revises: none (first revision)
Create Date: 2026-11-27 18:30:14.620261
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "70035b456498"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# NB: revisions are frozen history, so they spell types out instead of importing carml.db.base (which may change):
# JSON documents are JSONB on PostgreSQL, and timestamps keep their zone (carml's UTCDateTime stores this type).
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Parents first: jobs refer to models and datasets; shards, results, timings and outputs to jobs.
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("modality", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("manifest_path", sa.Text(), nullable=True),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column("items", sa.Integer(), nullable=True),
        sa.Column("registered_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", "digest", name=op.f("uq_datasets_name_digest")),
    )
    op.create_index(op.f("ix_datasets_name"), "datasets", ["name"], unique=False)
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("framework", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=32), nullable=False),
        sa.Column("manifest_path", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("claimed_top1", sa.Float(), nullable=True),
        sa.Column("registered_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint(
            "name", "framework", "manifest_sha256", name=op.f("uq_models_name_framework_manifest_sha256")
        ),
    )
    op.create_index(op.f("ix_models_name"), "models", ["name"], unique=False)
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("hardware_tag", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("cpu_model", sa.String(length=255), nullable=False),
        sa.Column("cpu_cores", sa.Integer(), nullable=False),
        sa.Column("gpu_name", sa.String(length=255), nullable=True),
        sa.Column("gpu_memory_mib", sa.Integer(), nullable=True),
        sa.Column("gpu_driver", sa.String(length=64), nullable=True),
        sa.Column("cuda_version", sa.String(length=32), nullable=True),
        sa.Column("frameworks", JSON_DOCUMENT, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("last_heartbeat", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_hardware_tag"), "workers", ["hardware_tag"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("framework", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("dataset_name", sa.String(length=255), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("hardware_tag", sa.String(length=64), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("parameters", JSON_DOCUMENT, nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=False),
        sa.Column("shards_finished", sa.Integer(), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_jobs_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_jobs_model_id_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_hardware_tag"), "jobs", ["hardware_tag"], unique=False)
    op.create_index(op.f("ix_jobs_model_name"), "jobs", ["model_name"], unique=False)
    op.create_index(op.f("ix_jobs_owner"), "jobs", ["owner"], unique=False)
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"], unique=False)
    op.create_table(
        "job_shards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("item_start", sa.Integer(), nullable=False),
        sa.Column("item_stop", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("items_done", sa.Integer(), nullable=False),
        sa.Column("model_cache_hit", sa.Boolean(), nullable=True),
        sa.Column("model_load_ms", sa.Float(), nullable=True),
        sa.Column("partial", JSON_DOCUMENT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_shards_job_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.id"], name=op.f("fk_job_shards_worker_id_workers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_shards")),
        sa.UniqueConstraint("job_id", "index", name=op.f("uq_job_shards_job_id_index")),
    )
    op.create_index(op.f("ix_job_shards_job_id"), "job_shards", ["job_id"], unique=False)
    op.create_table(
        "output_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_output_objects_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_output_objects")),
        sa.UniqueConstraint("job_id", "shard_index", name=op.f("uq_output_objects_job_id_shard_index")),
    )
    op.create_index(op.f("ix_output_objects_job_id"), "output_objects", ["job_id"], unique=False)
    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("top1", sa.Float(), nullable=True),
        sa.Column("top5", sa.Float(), nullable=True),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p90_ms", sa.Float(), nullable=True),
        sa.Column("latency_p99_ms", sa.Float(), nullable=True),
        sa.Column("latency_trimmed_mean_ms", sa.Float(), nullable=True),
        sa.Column("throughput_items_per_s", sa.Float(), nullable=True),
        sa.Column("model_load_ms", sa.Float(), nullable=True),
        sa.Column("metrics", JSON_DOCUMENT, nullable=False),
        sa.Column("latency", JSON_DOCUMENT, nullable=False),
        sa.Column(
            "reproducibility",
            JSON_DOCUMENT,
            nullable=False,
        ),
        sa.Column("error_items", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_results_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
        sa.UniqueConstraint("job_id", name=op.f("uq_results_job_id")),
    )
    op.create_table(
        "stage_timings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("warmup", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_stage_timings_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_timings")),
        sa.UniqueConstraint(
            "job_id",
            "shard_index",
            "batch_index",
            "stage",
            name=op.f("uq_stage_timings_job_id_shard_index_batch_index_stage"),
        ),
    )
    op.create_index(op.f("ix_stage_timings_job_id"), "stage_timings", ["job_id"], unique=False)


def downgrade() -> None:
    # Children before parents (foreign keys); dropping a table drops its indexes too.
    op.drop_table("stage_timings")
    op.drop_table("results")
    op.drop_table("output_objects")
    op.drop_table("job_shards")
    op.drop_table("jobs")
    op.drop_table("workers")
    op.drop_table("models")
    op.drop_table("datasets")
