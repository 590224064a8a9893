"""Workers (`/workers`): live workers and their hardware, and the work waiting on each hardware tag."""

from __future__ import annotations

from flask import render_template, request

from carml.jobs.workers import live_workers
from webapp.api.params import HARDWARE_TAG
from webapp.context import settings
from webapp.ui import queries
from webapp.ui.pages import ui_blueprint

blueprint = ui_blueprint("ui_workers", __name__)


@blueprint.get("/workers")
def workers_page() -> str:
    """Live workers by tag, queued and running shards per tag; ?tag=TAG asks about one tag."""
    wanted = request.args.get("tag", "").strip()
    tag = wanted if HARDWARE_TAG.fullmatch(wanted) else None
    live = live_workers(settings())
    counts = queries.shard_counts(settings())
    served = {w.hardware_tag for w in live}
    queues = [
        {"tag": t, **counts.get(t, {"queued": 0, "running": 0}), "workers": sum(w.hardware_tag == t for w in live)}
        for t in sorted(served | set(counts) | ({tag} if tag else set()))
    ]
    return render_template(
        "workers.html",
        workers=[w for w in live if tag is None or w.hardware_tag == tag],
        all_live=len(live),
        queues=[q for q in queues if tag is None or q["tag"] == tag],
        tag=tag,
        offline=queries.offline_workers(settings(), limit=20),
        alive_s=settings().worker_alive_s,
    )
