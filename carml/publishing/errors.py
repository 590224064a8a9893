"""The error every refused publication or removal raises."""

from __future__ import annotations

from carml.errors import CarmlError


class PublishError(CarmlError):
    """A model manifest that cannot be published or removed; `field` names the manifest field (or request field)
    at fault, `status` the HTTP-like code."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status
