"""Errors of the object store: every failure is a `StorageError` with a one-line message for people."""

from __future__ import annotations

from carml.errors import CarmlError


class StorageError(CarmlError):
    """An object could not be written, read, listed or deleted, or a key or store URL is invalid."""


class ObjectNotFound(StorageError):
    """The store has no object under the key asked for."""
