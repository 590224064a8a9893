"""Real finished evaluations for the recommend and report-export tests: digits-cnn on two hardware tags.

Every run is submitted through `submit_evaluation` and run in this process by `run_shard`, as a worker would.
The tag `cpu` has a price (CARML_HARDWARE_PRICES), so its results carry a cost per 1,000 items; `cpu-spare`
has none. Two results are then changed by hand, each for a value no code path on this machine can produce
(see `_as_other_hardware_would`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import update

from carml.db.migrate import upgrade
from carml.db.models import Result
from carml.db.session import session_scope
from carml.jobs.execution import run_shard
from carml.jobs.model_cache import ModelCache
from carml.jobs.service import EvaluationRequest, submit_evaluation
from carml.jobs.workers import register_worker
from carml.settings import Settings, load_settings

PRICED_TAG, UNPRICED_TAG = "cpu", "cpu-spare"
PRICE_PER_HOUR = 0.10
WORKERS = {PRICED_TAG: "cpu-test@host", UNPRICED_TAG: "spare-test@host"}
ITEMS = 60
# (hardware tag, batch size) of each run; the first pair runs twice, so its numbers are medians of two.
RUNS = ((PRICED_TAG, 10), (PRICED_TAG, 10), (PRICED_TAG, 30), (UNPRICED_TAG, 10))
# What the hand-changed results say.
GPU_JOULES_PER_ITEM = 0.002


@dataclass(frozen=True)
class MeasuredRuns:
    settings: Settings
    jobs: dict[tuple[str, int], list[str]]  # (tag, batch size) -> job ids, oldest first
    invalid_job: str  # a run of (UNPRICED_TAG, 10) whose result is marked INVALID: never a candidate's


def measured_settings(home: Path, database_url: str = "") -> Settings:
    env = {
        "CARML_HOME": str(home / "home"),
        "CARML_CACHE_DIR": str(home / "cache"),
        "CARML_OBJECT_STORE": str(home / "objects"),
        "CARML_HARDWARE_PRICES": f"{PRICED_TAG}={PRICE_PER_HOUR}",
    }
    if database_url:
        env["CARML_DATABASE_URL"] = database_url
    return load_settings(env)


def _evaluate(settings: Settings, models: ModelCache, tag: str, batch_size: int) -> str:
    request = EvaluationRequest(
        model="digits-cnn",
        framework="onnxruntime",
        dataset="digits",
        limit=ITEMS,
        batch_size=batch_size,
        hardware_tag=tag,
    )
    job_id = submit_evaluation(settings, request, lambda *_: None)
    assert run_shard(settings, job_id, 0, WORKERS[tag], models) == "succeeded"
    return job_id


def _as_other_hardware_would(settings: Settings, joules_job: str, invalid_job: str) -> None:
    # NB: workers here have no GPU, so no energy counter: one result gets the joules per item that a GPU
    # worker's NVML counter would have given. And only performance scenarios judge a run VALID or INVALID:
    # one result gets the INVALID verdict such a run can carry, to show that it is never counted.
    with session_scope(settings.database) as session:
        session.execute(update(Result).where(Result.job_id == joules_job).values(joules_per_item=GPU_JOULES_PER_ITEM))
        session.execute(update(Result).where(Result.job_id == invalid_job).values(valid=False))


def run_evaluations(settings: Settings, runs: tuple[tuple[str, int], ...] = RUNS) -> MeasuredRuns:
    """Migrate the database, register a live worker per tag, run `runs` and one INVALID run; see the module."""
    upgrade(settings.database)
    for tag, worker_id in WORKERS.items():
        register_worker(settings, worker_id, tag)
    models = ModelCache()
    jobs: dict[tuple[str, int], list[str]] = {}
    for tag, batch_size in runs:
        jobs.setdefault((tag, batch_size), []).append(_evaluate(settings, models, tag, batch_size))
    invalid_job = _evaluate(settings, models, UNPRICED_TAG, 10)
    _as_other_hardware_would(settings, jobs[(PRICED_TAG, 30)][0], invalid_job)
    return MeasuredRuns(settings, jobs, invalid_job)
