"""Atomic file writes: a temp file in the target's folder, then `os.replace`, so readers never see a partial file."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from carml.storage.keys import TEMP_PREFIX

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create_temp(folder: Path) -> tuple[int, Path]:
    for attempt in range(3):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            # 0o666 less the umask, like any new file (mkstemp's 0600 would hide objects from other services).
            return os.open(tmp, _OPEN_FLAGS, 0o666), tmp
        except FileNotFoundError:
            # A concurrent delete_prefix pruned the empty folder between mkdir and open: make it again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def atomic_file(dest: Path) -> Iterator[BinaryIO]:
    """Yield a file to write; on a clean exit it is synced and renamed over `dest`, otherwise removed."""
    fd, tmp = _create_temp(dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            # Synced before the rename, so a crash cannot publish a name whose data never reached the disk.
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
