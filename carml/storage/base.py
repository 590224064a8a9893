"""The object-store interface shared by the local-folder and S3 backends."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object. `sha256` is known after a write; listings leave it None rather than read every object."""

    key: str
    size: int
    sha256: str | None = None


class ObjectStore(ABC):
    """Objects under '/'-separated keys. Writes are atomic: a reader sees the old or the new object, never a mix."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Store `data` under `key`, replacing any object there."""

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Store the file at `path` under `key`, streaming it and hashing it as it is read."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object; `ObjectNotFound` if there is none."""

    @abstractmethod
    def download(self, key: str, dest_path: Path) -> None:
        """Write the object to `dest_path` atomically (parent folders are created)."""

    @abstractmethod
    def open_stream(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A context manager yielding a binary file-like to read the object in chunks."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if an object is stored under `key`."""

    @abstractmethod
    def list(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """Objects whose key starts with `prefix` (a plain string prefix, as in S3), sorted by key."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; returns how many were deleted."""

    @abstractmethod
    def describe(self) -> str:
        """Where the objects live, for messages and `carml settings`."""
