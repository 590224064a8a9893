"""Workers as the database knows them: registration, heartbeats, and which hardware tags are served now."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import select

from carml import hardware
from carml.db.base import utcnow
from carml.db.models import Worker
from carml.db.session import read_scope, session_scope
from carml.settings import Settings


def register_worker(settings: Settings, worker_id: str, hardware_tag: str) -> None:
    """Record (or refresh) this worker's row with the hardware it runs on."""
    gpus = hardware.gpus()
    gpu = gpus[0] if gpus else {}
    with session_scope(settings.database) as session:
        worker = session.get(Worker, worker_id) or Worker(id=worker_id)
        worker.hardware_tag = hardware_tag
        worker.host = socket.gethostname()
        worker.pid = os.getpid()
        worker.cpu_model = hardware.cpu_model()
        worker.cpu_cores = hardware.cpu_cores()
        worker.gpu_name = gpu.get("name")
        worker.gpu_memory_mib = gpu.get("memory_mib")
        worker.gpu_driver = gpu.get("driver")
        worker.cuda_version = gpu.get("cuda")
        worker.frameworks = hardware.framework_versions()
        worker.threads = settings.threads or None
        worker.started_at = worker.last_heartbeat = utcnow()
        session.add(worker)


def heartbeat(settings: Settings, worker_id: str) -> None:
    with session_scope(settings.database) as session:
        worker = session.get(Worker, worker_id)
        if worker is not None:
            worker.last_heartbeat = utcnow()


def mark_offline(settings: Settings, worker_id: str) -> None:
    """A worker shutting down cleanly stops counting as live at once, not after the heartbeat timeout."""
    with session_scope(settings.database) as session:
        worker = session.get(Worker, worker_id)
        if worker is not None:
            worker.last_heartbeat = utcnow() - timedelta(seconds=settings.worker_alive_s + 1)


def live_workers(settings: Settings, hardware_tag: str | None = None) -> list[Worker]:
    """Workers whose last heartbeat is recent enough, optionally only those serving a tag."""
    since = utcnow() - timedelta(seconds=settings.worker_alive_s)
    with read_scope(settings.database) as session:
        query = select(Worker).where(Worker.last_heartbeat >= since).order_by(Worker.hardware_tag, Worker.id)
        if hardware_tag is not None:
            query = query.where(Worker.hardware_tag == hardware_tag)
        return list(session.scalars(query))


#: A tag seen served is taken as served for this long without asking again. NB: the check runs on every submission,
#: and a worker's liveness is only known to within its heartbeat anyway (seconds); a tag not served is asked again
#: each time, so a worker that just started is seen at once.
SERVED_MEMO_S = 1.0
_served_at: dict[tuple[str, str], float] = {}  # (database URL, tag) -> when a live worker was last seen serving it
_served_lock = threading.Lock()


def tag_is_served(settings: Settings, hardware_tag: str) -> bool:
    """Whether a live worker serves `hardware_tag` (remembered for SERVED_MEMO_S once true)."""
    key, now = (settings.database, hardware_tag), time.monotonic()
    with _served_lock:
        if now - _served_at.get(key, -SERVED_MEMO_S) < SERVED_MEMO_S:
            return True
    if not live_workers(settings, hardware_tag):
        return False
    with _served_lock:
        _served_at[key] = now
    return True
