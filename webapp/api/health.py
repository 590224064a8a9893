"""GET /api/v1/health: is the database reachable, and at the schema this CarML needs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import make_url

from carml.db.migrate import current, head
from webapp.context import settings

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health() -> tuple[dict[str, Any], int]:
    """200 when the database is at the schema head; 503 when it is behind (or ahead)."""
    url = settings().database
    found, needed = current(url), head()
    body = {
        "status": "ok" if found == needed else "schema_out_of_date",
        "database": make_url(url).get_backend_name(),
        "schema": {"current": found, "head": needed},
    }
    return body, 200 if found == needed else 503
