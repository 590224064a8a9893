"""Start a worker: register its hardware, heartbeat while it runs, consume its hardware tag's queue."""

from __future__ import annotations

import socket
import threading
import uuid

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from carml import hardware
from carml.db.migrate import require_current
from carml.db.session import dispose_engines
from carml.jobs.recovery import requeue_lost_shards
from carml.jobs.service import Enqueue
from carml.jobs.workers import heartbeat, mark_offline, register_worker
from carml.settings import Settings
from worker.celery_app import celery_enqueuer, create_celery_app, queue_for


def limit_compute_threads(threads: int) -> None:
    """Size every framework's thread pool for this process and its children, before any framework is imported.

    The predictors size the pools they control from CARML_THREADS; the variables below cover the BLAS/OpenMP
    runtimes underneath and TensorFlow's, which read them once, at start-up.
    """
    import os

    for variable in ("CARML_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"


def resolve_hardware_tag(requested: str) -> str:
    """`auto` asks NVML for the GPU model (`cpu` when there is no NVIDIA library or GPU, which is normal)."""
    return hardware.detect_hardware_tag() if requested == "auto" else requested


class _Heartbeat:
    """A daemon thread in the worker's main process that keeps its row alive until shutdown."""

    def __init__(self, settings: Settings, worker_id: str, enqueue: Enqueue):
        self.settings, self.worker_id, self.enqueue = settings, worker_id, enqueue
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="carml-heartbeat", daemon=True)

    def _beat(self) -> None:
        while True:
            try:
                heartbeat(self.settings, self.worker_id)
                # Every live worker also looks out for shards stranded by a dead one.
                requeue_lost_shards(self.settings, self.enqueue)
            except Exception:  # a database or broker hiccup must not kill the heartbeat; the next beat retries
                pass
            if self.stop.wait(self.settings.worker_heartbeat_s):
                return


def run_worker(settings: Settings, hardware_tag: str, concurrency: int = 1, loglevel: str = "INFO") -> None:
    """Run a Celery worker for one hardware tag until it is stopped (blocks)."""
    require_current(settings.database)
    app = create_celery_app(settings)
    node = f"{hardware_tag}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    beats: list[_Heartbeat] = []

    @worker_ready.connect(weak=False)
    def _registered(sender=None, **_):  # type: ignore[no-untyped-def]
        register_worker(settings, sender.hostname, hardware_tag)
        beat = _Heartbeat(settings, sender.hostname, celery_enqueuer(app))
        beat.thread.start()
        beats.append(beat)

    @worker_shutdown.connect(weak=False)
    def _gone(sender=None, **_):  # type: ignore[no-untyped-def]
        for beat in beats:
            beat.stop.set()
            mark_offline(settings, beat.worker_id)

    @worker_process_init.connect(weak=False)
    def _forked(**_):  # type: ignore[no-untyped-def]
        dispose_engines()  # a forked child must open its own database connections

    app.worker_main(
        [
            "worker",
            "-Q",
            queue_for(hardware_tag),
            "-c",
            str(concurrency),
            "-n",
            node,
            "--loglevel",
            loglevel,
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def per_gpu_environments(gpu_count: int, base: dict[str, str]) -> list[dict[str, str]]:
    """One environment per GPU, each child seeing only its own device (one worker process per GPU)."""
    return [{**base, "CUDA_VISIBLE_DEVICES": str(index)} for index in range(gpu_count)]


def run_worker_per_gpu(hardware_tag: str, gpu_count: int, concurrency: int, loglevel: str) -> int:
    """Start one `carml worker` child per GPU and wait for them; a stop signal is passed on to all."""
    import os
    import signal
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "carml",
        "worker",
        "--hardware",
        hardware_tag,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
    ]
    children = [subprocess.Popen(command, env=env) for env in per_gpu_environments(gpu_count, dict(os.environ))]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)
