"""CarML's tables: the catalog as registered, workers and their hardware, jobs, shards and results.

Everything a job produced is a row here (or an object in the store whose key is a row here), so a
user can answer any question about past runs in SQL.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from carml.db.base import Base, ViewBase, utcnow


class JobKind(StrEnum):
    PREDICT = "predict"
    EVALUATE = "evaluate"


class Scenario(StrEnum):
    """How a job measures: an accuracy pass over the dataset, or a LoadGen-style performance scenario."""

    ACCURACY = "accuracy"
    SINGLE_STREAM = "single-stream"
    OFFLINE = "offline"
    SERVER = "server"


class Role(StrEnum):
    """What a user may do: run jobs on their own data (user), also publish models and shared datasets
    (publisher), or see and manage everything (admin)."""

    USER = "user"
    PUBLISHER = "publisher"
    ADMIN = "admin"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def final(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class RegisteredModel(Base):
    """A model manifest as it was when a job used it (one row per distinct manifest content)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "framework", "manifest_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(64))
    framework: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(32))
    manifest_path: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    claimed_top1: Mapped[float | None] = mapped_column(Float)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegisteredDataset(Base):
    """A dataset: from the catalog, or uploaded by a user (then its files live in the object store)."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    format: Mapped[str] = mapped_column(String(32))
    modality: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str | None] = mapped_column(String(100))
    manifest_path: Mapped[str | None] = mapped_column(Text)
    object_key: Mapped[str | None] = mapped_column(Text)
    items: Mapped[int | None] = mapped_column(Integer)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    shared: Mapped[bool] = mapped_column(default=False, server_default=false())  # visible to every user


class User(Base):
    """A person or program that uses CarML; owns jobs, uploads and comparisons (by `name`)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.USER)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # web login; None: tokens only
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", order_by="ApiToken.id")


class ApiToken(Base):
    """An API token: shown once when created, stored only as its SHA-256, revocable."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))  # what the user calls it, e.g. "laptop"
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, to tell tokens apart
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship(back_populates="tokens")


class PublishedModel(Base):
    """A model manifest published through the service by a publisher; the catalog reads these beside the
    manifest folders, so every web process and worker sees a published model without a shared disk."""

    __tablename__ = "published_models"
    __table_args__ = (UniqueConstraint("name", "framework"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    framework: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(100))
    manifest_yaml: Mapped[str] = mapped_column(Text)  # exactly as published: its digest is what jobs record
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """A failed web login, kept for the throttling window: too many for one name or from one address are refused."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_user_name_failed_at", "user_name", "failed_at"),
        Index("ix_login_failures_remote_addr_failed_at", "remote_addr", "failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100))
    remote_addr: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A worker process and the hardware it advertises; `last_heartbeat` says whether it is alive."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the Celery node name
    hardware_tag: Mapped[str] = mapped_column(String(64), index=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    cpu_model: Mapped[str] = mapped_column(String(255))
    cpu_cores: Mapped[int] = mapped_column(Integer)
    gpu_name: Mapped[str | None] = mapped_column(String(255))
    gpu_memory_mib: Mapped[int | None] = mapped_column(Integer)
    gpu_driver: Mapped[str | None] = mapped_column(String(64))
    cuda_version: Mapped[str | None] = mapped_column(String(32))
    frameworks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    threads: Mapped[int | None] = mapped_column(Integer)  # compute threads per model, when limited (--threads)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(default=utcnow)


class Comparison(Base):
    """One request fanned out over hardware tags, batch sizes, frameworks and models: each leg is a job."""

    __tablename__ = "comparisons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(String(200))
    dataset_name: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the request as submitted, for the record
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    legs: Mapped[list[Job]] = relationship(back_populates="comparison", order_by="Job.comparison_leg")


class Job(Base):
    """A prediction or evaluation request, its routing, progress and outcome."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    framework: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"))
    dataset_name: Mapped[str | None] = mapped_column(String(255))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    hardware_tag: Mapped[str] = mapped_column(String(64), index=True)
    batch_size: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    shard_count: Mapped[int] = mapped_column(Integer, default=1)
    shards_finished: Mapped[int] = mapped_column(Integer, default=0)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    scenario: Mapped[str] = mapped_column(String(32), default=Scenario.ACCURACY, server_default=Scenario.ACCURACY)
    comparison_id: Mapped[str | None] = mapped_column(ForeignKey("comparisons.id", ondelete="SET NULL"), index=True)
    comparison_leg: Mapped[int | None] = mapped_column(Integer)  # the leg's position in its comparison
    trace_id: Mapped[str | None] = mapped_column(String(32), index=True)  # W3C trace id, 32 hex digits
    price_per_hour: Mapped[float | None] = mapped_column(Float)  # the tag's configured price when submitted

    shards: Mapped[list[JobShard]] = relationship(back_populates="job", order_by="JobShard.index")
    result: Mapped[Result | None] = relationship(back_populates="job")
    comparison: Mapped[Comparison | None] = relationship(back_populates="legs")


class JobShard(Base):
    """A slice of a job's items run as one task; its partial result is merged once all shards finish."""

    __tablename__ = "job_shards"
    __table_args__ = (UniqueConstraint("job_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    item_start: Mapped[int] = mapped_column(Integer)
    item_stop: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    worker_id: Mapped[str | None] = mapped_column(ForeignKey("workers.id"))
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    model_cache_hit: Mapped[bool | None] = mapped_column()
    model_load_ms: Mapped[float | None] = mapped_column(Float)
    partial: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    job: Mapped[Job] = relationship(back_populates="shards")


class Result(Base):
    """The merged outcome of a finished job: accuracy, latency, throughput, the reproducibility record."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    items: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    top1: Mapped[float | None] = mapped_column(Float)
    top5: Mapped[float | None] = mapped_column(Float)
    latency_p50_ms: Mapped[float | None] = mapped_column(Float)
    latency_p90_ms: Mapped[float | None] = mapped_column(Float)
    latency_p99_ms: Mapped[float | None] = mapped_column(Float)
    latency_trimmed_mean_ms: Mapped[float | None] = mapped_column(Float)
    throughput_items_per_s: Mapped[float | None] = mapped_column(Float)
    model_load_ms: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per-class, confusion matrix, labels
    latency: Mapped[dict[str, Any]] = mapped_column(default=dict)  # full summaries per stage
    reproducibility: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error_items: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Performance scenarios: VALID/INVALID with reasons, and whether the measurement windows agreed.
    scenario_outcome: Mapped[dict[str, Any] | None] = mapped_column()
    valid: Mapped[bool | None] = mapped_column()
    stable: Mapped[bool | None] = mapped_column()
    # Sampled during the run (NVML on GPUs, the process on every worker); energy only where a counter exists.
    hardware_metrics: Mapped[dict[str, Any] | None] = mapped_column()
    energy_joules: Mapped[float | None] = mapped_column(Float)
    joules_per_item: Mapped[float | None] = mapped_column(Float)
    cost_per_1000_items: Mapped[float | None] = mapped_column(Float)

    job: Mapped[Job] = relationship(back_populates="result")


class StageTiming(Base):
    """One stage of one batch: the raw material of latency and stage-breakdown reports."""

    __tablename__ = "stage_timings"
    __table_args__ = (UniqueConstraint("job_id", "shard_index", "batch_index", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    shard_index: Mapped[int] = mapped_column(Integer)
    batch_index: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(32))
    items: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    warmup: Mapped[bool] = mapped_column(default=False)


class OutputObject(Base):
    """Where a shard's per-item predictions are in the object store (one JSON Lines object per shard)."""

    __tablename__ = "output_objects"
    __table_args__ = (UniqueConstraint("job_id", "shard_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    shard_index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(Text)
    items: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpanSet(Base):
    """The finished spans one process recorded for a job at once: a shard's (queue, shard, batch, stage, operator)
    or the submitter's `submit` span, as one JSON array. SQL reads them a span per row through the `spans` view.

    NB: one row per shard instead of a row per span: a span row cost the worker 24–55 µs (its COPY line, indexes and
    foreign key check), while an element of one array costs 7–13 µs, most of it building the span.

    Each element is an array (`carml.tracing.records.STORED_FIELDS`): the span's id, its parent's id (or null), name,
    batch index (or null), start in microseconds since the epoch, duration in milliseconds, and its own attributes
    (an object; those all the set's spans share are in `attributes`, once).
    """

    __tablename__ = "span_sets"
    __table_args__ = (Index("ix_span_sets_job_id_shard_index", "job_id", "shard_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    trace_id: Mapped[str] = mapped_column(String(32))
    shard_index: Mapped[int | None] = mapped_column(Integer)  # None: the submitter's spans
    # NB: JSON text, not JSONB, on PostgreSQL: written once per shard, on the worker's path, and read back rarely; JSONB
    # would parse every span there (~0.2 ms a shard of 75 spans).
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)  # flat, no nulls: over each span's own in the view
    spans: Mapped[list[Any]] = mapped_column(JSON)


class TraceSpan(ViewBase):
    """One finished OpenTelemetry span of a job's trace, as the `spans` view shows it: a row per element of a
    `SpanSet`, with the set's shared attributes merged over the span's own. Read-only."""

    __tablename__ = "spans"

    set_id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)  # in its set, from 0
    job_id: Mapped[str] = mapped_column(String(36))
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    shard_index: Mapped[int | None] = mapped_column(Integer)
    batch_index: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    duration_ms: Mapped[float] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column()


class HardwareSample(Base):
    """One reading of a worker's hardware while a shard ran: process CPU and memory, and each GPU's NVML state."""

    __tablename__ = "hardware_samples"
    __table_args__ = (Index("ix_hardware_samples_job_shard", "job_id", "shard_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    shard_index: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(255))
    taken_at: Mapped[datetime] = mapped_column()
    elapsed_s: Mapped[float] = mapped_column(Float)  # since the shard started
    cpu_percent: Mapped[float | None] = mapped_column(Float)  # of one core, as psutil counts: 200 = two cores busy
    rss_mib: Mapped[float | None] = mapped_column(Float)
    gpu_index: Mapped[int | None] = mapped_column(Integer)
    gpu_utilization_percent: Mapped[float | None] = mapped_column(Float)
    gpu_memory_used_mib: Mapped[float | None] = mapped_column(Float)
    gpu_power_w: Mapped[float | None] = mapped_column(Float)
    gpu_energy_j: Mapped[float | None] = mapped_column(Float)  # since the shard started, from NVML's counter
