"""CarML's Flask web application: the web pages, the REST API under /api/v1 and its OpenAPI document.

`create_app` builds the app without connecting to anything: the database, the object store and the
broker are reached on the first request that needs them.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from carml.jobs.service import Enqueue
from carml.settings import Settings, load_settings
from webapp.context import ENQUEUE_KEY, SETTINGS_KEY, LazyEnqueue

# Dataset uploads are the largest requests; anything bigger is refused with a 413 before it is read.
MAX_UPLOAD_BYTES = 512 * 1024**2


def create_app(settings: Settings | None = None, enqueue: Enqueue | None = None) -> Flask:
    """The web app for `settings` (default: the environment); `enqueue` defaults to the Celery broker's."""
    from webapp.api import register_api
    from webapp.ui import register_ui

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep fields in the order the code builds them
    settings = settings or load_settings()
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[ENQUEUE_KEY] = enqueue or LazyEnqueue(settings)
    register_api(app)
    register_ui(app)  # the web pages; their sessions are signed with CARML_SECRET_KEY (random if unset)
    if settings.trusted_proxy_hops:
        # Login throttling counts failures per client address: behind a proxy, the connection's is the proxy's.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app
