"""What every UI blueprint shares: CSRF checks, HTML error pages and security headers."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from carml.errors import CarmlError
from webapp.status import status_for
from webapp.ui.csrf import check_csrf
from webapp.ui.login_required import require_login

# Scripts and styles come only from this server (the vendored Chart.js included); inline styles are allowed
# because Chart.js sizes its canvases with them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def ui_blueprint(name: str, import_name: str, public: bool = False) -> Blueprint:
    """A blueprint whose pages need a logged-in user (unless `public`: the login page), whose POSTs need the CSRF
    token and whose errors are HTML pages (the API's stay JSON)."""
    blueprint = Blueprint(name, import_name)
    if not public:
        blueprint.before_request(require_login)  # first: a logged-out POST goes to /login, not to a CSRF error
    blueprint.before_request(check_csrf)
    blueprint.after_request(_security_headers)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(CarmlError, _carml_error)
    blueprint.register_error_handler(Exception, _unexpected)
    return blueprint


def error_page(message: str, status: int, title: str | None = None) -> tuple[str, int]:
    return render_template("error.html", message=message, status=status, title=title or "Error"), status


def upload_limit_message() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return f"the upload is larger than the {limit / 2**20:g} MiB limit"


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        return error_page(upload_limit_message(), status, "Upload too large")
    return error_page(exc.description or exc.name, status, exc.name)


def _carml_error(exc: CarmlError) -> tuple[str, int]:
    status = status_for(exc)
    return error_page(str(exc), status)


def _unexpected(exc: Exception) -> tuple[str, int]:
    current_app.logger.exception("unhandled error in %s %s", request.method, request.path)
    return error_page(f"Internal error ({type(exc).__name__}); the server log has the details.", 500)
