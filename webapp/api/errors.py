"""One JSON error shape for every failure: `{"error": {"message", "field", "status"}}`."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from carml.errors import CarmlError
from webapp.status import status_for


class ApiError(Exception):
    """A request the API refuses; `field` names the request field at fault, when one is."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


def error_response(message: str, status: int, field: str | None = None) -> tuple[Response, int]:
    return jsonify({"error": {"message": message, "field": field, "status": status}}), status


def _api_error(exc: ApiError) -> tuple[Response, int]:
    return error_response(exc.message, exc.status, exc.field)


def _carml_error(exc: CarmlError) -> tuple[Response, int]:
    status = status_for(exc)
    return error_response(str(exc), status, getattr(exc, "field", None))


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        message = f"the request is larger than the {limit / 2**20:g} MiB limit"
    elif status == 404:
        message = f"no such endpoint: {request.path} (the API is described at /api/openapi.json)"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.path}"
    else:
        message = exc.description or exc.name
    response, status = error_response(message, status)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response, status


def _unexpected(exc: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(f"internal error ({type(exc).__name__}); the server log has the details", 500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(CarmlError, _carml_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
