"""The REST API: one blueprint per area under /api/v1, the error handlers and the OpenAPI document."""

from __future__ import annotations

from flask import Flask

API_PREFIX = "/api/v1"


def register_api(app: Flask) -> None:
    """Attach every API blueprint, the JSON error handlers and /api/openapi.json to `app`."""
    from webapp.api import (
        comparisons,
        datasets,
        health,
        jobs,
        models,
        openapi,
        recommendations,
        reports,
        results,
        traces,
        workers,
    )
    from webapp.api.auth import authenticate_api_request
    from webapp.api.errors import register_error_handlers

    # Before any route of /api/v1 (and before a 404 for an unknown one): who is calling, or 401.
    app.before_request(lambda: authenticate_api_request(API_PREFIX))
    for area in (health, models, datasets, jobs, traces, comparisons, workers, results, recommendations, reports):
        app.register_blueprint(area.blueprint, url_prefix=API_PREFIX)
    app.register_blueprint(openapi.blueprint, url_prefix="/api")
    register_error_handlers(app)
