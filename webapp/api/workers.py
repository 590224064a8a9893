"""GET /api/v1/workers: every worker the database knows, its hardware, and whether it is alive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, request
from sqlalchemy import select

from carml.db.base import utcnow
from carml.db.models import Worker
from carml.db.session import session_scope
from webapp.api.params import boolean_text, single_values
from webapp.context import settings

blueprint = Blueprint("workers", __name__)


def _entry(worker: Worker, alive: bool) -> dict[str, Any]:
    return {
        "id": worker.id,
        "hardware_tag": worker.hardware_tag,
        "alive": alive,
        "host": worker.host,
        "pid": worker.pid,
        "cpu_model": worker.cpu_model,
        "cpu_cores": worker.cpu_cores,
        "gpu_name": worker.gpu_name,
        "gpu_memory_mib": worker.gpu_memory_mib,
        "gpu_driver": worker.gpu_driver,
        "cuda_version": worker.cuda_version,
        "frameworks": worker.frameworks,
        "threads": worker.threads,
        "started_at": worker.started_at.isoformat(),
        "last_heartbeat": worker.last_heartbeat.isoformat(),
    }


@blueprint.get("/workers")
def list_workers() -> dict[str, Any]:
    """Workers by hardware tag; `alive` means a heartbeat within the last `worker_alive_s` seconds."""
    wanted = boolean_text(single_values(request.args, ("alive",)), "alive")
    since = utcnow() - timedelta(seconds=settings().worker_alive_s)
    with session_scope(settings().database) as session:
        workers = list(session.scalars(select(Worker).order_by(Worker.hardware_tag, Worker.id)))
    entries = [_entry(w, w.last_heartbeat >= since) for w in workers]
    return {"workers": [e for e in entries if wanted is None or e["alive"] == wanted]}
