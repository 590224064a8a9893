"""The error every account operation raises for a request it refuses."""

from __future__ import annotations

from carml.errors import CarmlError


class AccountError(CarmlError):
    """A refused account operation; `field` names the input at fault, `status` the HTTP-like code."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status
