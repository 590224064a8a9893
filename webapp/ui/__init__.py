"""The web UI: server-rendered pages, one blueprint per area, with CSRF tokens on every form.

Pages use the same service functions as the REST API; their small scripts poll the API for progress.
"""

from __future__ import annotations

import secrets

from flask import Flask

from webapp.context import SETTINGS_KEY


def register_ui(app: Flask) -> None:
    """Attach the UI blueprints (each CSRF-protected, see `pages.ui_blueprint`) and their template helpers."""
    from webapp.ui import (
        account,
        catalog,
        comparisons,
        formatting,
        job_data,
        job_trace,
        jobs,
        login,
        publishing,
        recommend,
        reports,
        try_it,
        validate,
        workers,
    )

    if not app.config.get("SECRET_KEY"):
        # The session holds the logged-in user's id, the CSRF token and flash messages. NB: a random key differs
        # per process, so several processes behind one address (gunicorn -w N) must share CARML_SECRET_KEY.
        app.config["SECRET_KEY"] = app.extensions[SETTINGS_KEY].secret_key or secrets.token_urlsafe(32)
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"  # no session cookie on cross-site POSTs: defence in depth
    # The session names the logged-in user: no script may read it (Flask's default, stated so it stays).
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    pages = (catalog, publishing, try_it, validate, comparisons, recommend, reports, jobs, job_data, job_trace, workers)
    for area in (login, account, *pages):
        app.register_blueprint(area.blueprint)
    formatting.register(app)
