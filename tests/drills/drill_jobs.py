"""What every fault drill does around its fault: worker processes it can kill, jobs it submits and waits
for, and the check that a disturbed job left exactly what an undisturbed one leaves."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select
from support import PROJECT_ROOT

from carml.db.models import HardwareSample, Job, JobStatus, OutputObject, Result, StageTiming, TraceSpan, Worker
from carml.db.session import DatabaseError, session_scope
from carml.jobs.service import EvaluationRequest, get_job, submit_evaluation
from carml.jobs.summary import job_summary
from carml.jobs.workers import live_workers
from carml.settings import load_settings
from carml.storage import open_object_store
from worker.celery_app import celery_enqueuer, create_celery_app

#: The measured numbers of each drill, printed at its end (`pytest -s`) for the record.
MEASURED = "drill measured:"


@dataclass
class WorkerProcess:
    """A `carml worker` started in a process group of its own, so that a drill can kill all of it at once."""

    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def pool_children(self) -> list[int]:
        """The prefork pool's processes: the ones that run the tasks."""
        children = psutil.Process(self.pid).children()
        return [child.pid for child in children if child.status() != psutil.STATUS_ZOMBIE]

    def kill_group(self) -> None:
        """SIGKILL to the main process and its pool at once: the machine or container is gone."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_pool_child(self) -> int:
        """SIGKILL to the process running the task only, as the kernel's OOM killer does; returns its pid."""
        (child,) = self.pool_children()
        os.kill(child, signal.SIGKILL)
        return child

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class DrillWorkers:
    """Starts workers for a drill and makes sure none outlives it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.started: list[WorkerProcess] = []

    def start(self, env: dict[str, str], tag: str, count: int = 1, timeout: float = 60) -> list[WorkerProcess]:
        """`count` workers for `tag`, started side by side, returned once each has registered (heartbeating,
        its queue consumed)."""
        started = []
        for _ in range(count):
            log = self.folder / f"worker-{len(self.started)}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", "carml", "worker", "--hardware", tag, "--concurrency", "1"],
                cwd=PROJECT_ROOT,
                env={**os.environ, **env},
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            started.append(WorkerProcess(process, log))
            self.started.append(started[-1])
        settings = load_settings(env)
        deadline = time.monotonic() + timeout
        while not {w.pid for w in started} <= {w.pid for w in live_workers(settings, tag)}:
            for worker in started:
                if not worker.alive() or time.monotonic() > deadline:
                    raise AssertionError(f"a worker for {tag} did not start:\n{worker.output()}")
            time.sleep(0.1)
        return started

    def running(self, env: dict[str, str], node: str) -> WorkerProcess:
        """The worker process behind a Celery node name (`job_shards.worker_id`)."""
        with session_scope(load_settings(env).database) as session:
            pid = session.get(Worker, node).pid
        return next(w for w in self.started if w.pid == pid)

    def stop_all(self) -> None:
        """SIGKILL to every worker's process group: a drill's workers have nothing to finish or hand back."""
        for worker in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.process.wait()


def submit(env: dict[str, str], **request: Any) -> str:
    settings = load_settings(env)
    return submit_evaluation(settings, EvaluationRequest(**request), celery_enqueuer(create_celery_app(settings)))


def poll(env: dict[str, str], job_id: str, done: Callable[[Job], bool], timeout: float, what: str) -> Job:
    """The job, read every 50 ms until `done(job)`. A database that is down for a while is waited out."""
    settings = load_settings(env)
    deadline = time.monotonic() + timeout
    last: Job | None = None
    while time.monotonic() < deadline:
        try:
            last = get_job(settings, job_id)
        except DatabaseError:
            last = None  # the drill's own PostgreSQL restart: ask again
        if last is not None and done(last):
            return last
        time.sleep(0.05)
    state = job_summary(last) if last is not None else "unreadable"
    raise AssertionError(f"job {job_id}: {what} did not happen within {timeout} s; last seen: {state}")


def wait_running(env: dict[str, str], job_id: str, fraction: float = 0.0, timeout: float = 60) -> Job:
    """The job once its shards have done more than `fraction` of its items: a fault now hits it mid-evaluation."""

    def started(job: Job) -> bool:
        return job.status == JobStatus.RUNNING and job.progress_done > fraction * job.progress_total

    return poll(env, job_id, started, timeout, "progress")


def wait_reclaimed(env: dict[str, str], job_id: str, dead_worker: str, timeout: float = 60) -> str:
    """The worker that claimed the (single) shard again after `dead_worker` died."""

    def reclaimed(job: Job) -> bool:
        shard = job.shards[0]
        return shard.status == JobStatus.RUNNING and shard.worker_id not in (None, dead_worker)

    return poll(env, job_id, reclaimed, timeout, "a new claim of the shard").shards[0].worker_id


def wait_final(env: dict[str, str], job_id: str, timeout: float = 120) -> dict[str, Any]:
    return job_summary(poll(env, job_id, lambda job: JobStatus(job.status).final, timeout, "the end"))


def assert_same_accuracy(result: dict[str, Any], undisturbed: dict[str, Any]) -> None:
    for key in ("items", "errors", "top1", "top5", "confusion_matrix"):
        assert result[key] == undisturbed[key], (key, result[key], undisturbed[key])


def assert_one_copy_of_everything(env: dict[str, str], job_id: str, *, items: int, batch_size: int) -> None:
    """Whatever ran twice, the job has one result, one output object per shard (and nothing else in the store),
    one timing row per batch and stage, one set of spans and the samples of one delivery only."""
    settings = load_settings(env)
    with session_scope(settings.database) as session:
        job = session.get(Job, job_id)
        shards = {s.index: s for s in job.shards}

        def count(model: Any, *where: Any) -> int:
            return session.scalar(select(func.count()).select_from(model).where(model.job_id == job_id, *where))

        assert count(Result) == 1
        outputs = session.scalars(select(OutputObject).where(OutputObject.job_id == job_id)).all()
        assert sorted(o.shard_index for o in outputs) == sorted(shards)
        batches = sum(-(-(s.item_stop - s.item_start) // batch_size) for s in shards.values())
        assert count(StageTiming) == batches * 4  # load, preprocess, predict, postprocess
        assert job.progress_done == items
        for index, shard in shards.items():
            spans = session.execute(
                select(TraceSpan.name, TraceSpan.batch_index).where(
                    TraceSpan.job_id == job_id, TraceSpan.shard_index == index
                )
            ).all()
            assert len(spans) == len(set(spans)), f"shard {index} has spans twice"
            assert [name for name, _ in spans].count("shard") == 1
            samplers = session.scalars(
                select(HardwareSample.worker_id)
                .where(HardwareSample.job_id == job_id, HardwareSample.shard_index == index)
                .distinct()
            ).all()
            assert samplers == [shard.worker_id], f"shard {index}: samples of {samplers}, ran on {shard.worker_id}"
    stored = open_object_store(settings).list(f"jobs/{job_id}/")
    assert sorted(o.key for o in stored) == sorted(o.key for o in outputs)
    lines = sum(len(open_object_store(settings).get_bytes(o.key).splitlines()) for o in outputs)
    assert lines == items == sum(o.items for o in outputs)


def report(drill: str, **numbers: Any) -> None:
    print(f"\n{MEASURED} {drill}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
