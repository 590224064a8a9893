"""A reader that hashes what passes through it, so uploads compute their SHA-256 in the same pass."""

from __future__ import annotations

import hashlib
from typing import BinaryIO


class HashingReader:
    """Wraps a binary file; `read` returns its bytes and feeds them to a running SHA-256."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self._digest = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._digest.update(data)
        self.bytes_read += len(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()
