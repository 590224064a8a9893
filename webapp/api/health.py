"""GET /api/v1/health: is the database reachable, and at the schema this CarML needs."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint
from sqlalchemy import make_url

from carml.db.migrate import MIGRATIONS_DIR, current, head
from webapp.context import settings

blueprint = Blueprint("health", __name__)


@cache
def _head(versions_changed_ns: int) -> str:
    # Reading every migration script costs ~10 ms, and load balancers ask often; the scripts change only with
    # a new release (the folder's modification time, the key, says when they did).
    return head()


@blueprint.get("/health")
def health() -> tuple[dict[str, Any], int]:
    """200 when the database is at the schema head; 503 when it is behind (or ahead)."""
    url = settings().database
    found, needed = current(url, pooled=True), _head((MIGRATIONS_DIR / "versions").stat().st_mtime_ns)
    body = {
        "status": "ok" if found == needed else "schema_out_of_date",
        "database": make_url(url).get_backend_name(),
        "schema": {"current": found, "head": needed},
    }
    return body, 200 if found == needed else 503
