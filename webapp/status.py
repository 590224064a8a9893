"""The HTTP status of a CarML error, the same for the API and the web pages."""

from __future__ import annotations

from flask import current_app, request

from carml.db.migrate import SchemaOutOfDate
from carml.db.session import DatabaseError
from carml.errors import CarmlError, NotFound
from carml.storage import ObjectNotFound, StorageError


def status_for(exc: CarmlError) -> int:
    """Service errors carry their own status (JobRequestError, UploadError); the rest are mapped by kind: a server
    part that is down or out of date is the service's fault (503, logged), anything else the request's."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        if isinstance(exc, NotFound | ObjectNotFound):
            status = 404
        elif isinstance(exc, DatabaseError | SchemaOutOfDate | StorageError):
            status = 503
        else:
            status = 400
    if status >= 500:
        current_app.logger.error("%s %s: %s", request.method, request.path, exc)
    return status
