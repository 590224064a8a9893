"""Arrays of an NPZ file without reading them whole: mapped members and a per-process digest memo.

`np.savez` stores each array uncompressed, so its bytes lie in the file as they are in memory. Mapping them
lets a job read only the items it runs on (a shard, a `limit`), and lets the server count a large dataset's
items when a job is submitted without reading gigabytes first. Compressed members (`np.savez_compressed`)
cannot be mapped and are read as before.
"""

from __future__ import annotations

import os
import struct
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

# The fixed part of a zip local file header; the name and extra-field lengths are its last two 2-byte fields.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_MAX_DIGESTS = 256


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    names = set(archive.namelist())
    for candidate in (f"{name}.npy", name):
        if candidate in names:
            return archive.getinfo(candidate)
    return None


def mapped_member(path: Path, name: str) -> np.ndarray | None:
    """Array `name` of the NPZ at `path` as a read-only memory map, or None when it cannot be mapped.

    None for a compressed member, an unknown .npy header version, object arrays, an empty array or anything
    inconsistent (a truncated file): the caller then reads the member with `np.load`, which reports the problem.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            info = _member(archive, name)
            if info is None or info.compress_type != zipfile.ZIP_STORED:
                return None
            with archive.open(info) as stream:
                reader = _NPY_HEADER_READERS.get(np.lib.format.read_magic(stream))
                if reader is None:
                    return None
                shape, fortran_order, dtype = reader(stream)
                npy_header = stream.tell()
        with path.open("rb") as raw:
            raw.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
        if fields[0] != _LOCAL_SIGNATURE:
            return None
        data_start = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1] + npy_header
        count = int(np.prod(shape, dtype=np.int64))
        if dtype.hasobject or count == 0 or info.file_size != npy_header + count * dtype.itemsize:
            return None
        return np.memmap(
            path, dtype=dtype, mode="r", offset=data_start, shape=shape, order="F" if fortran_order else "C"
        )
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, struct.error):
        return None


class DigestMemo:
    """Digests of files, remembered per process while the file's size, modification time and inode stay the same.

    Hashing a multi-gigabyte NPZ costs seconds; the server hashes a dataset when a job is submitted and the
    worker again when it runs it, for every job. The key is what `make` and `rsync` trust to tell a changed file.
    """

    def __init__(self, capacity: int = _MAX_DIGESTS):
        self.capacity = capacity
        self._digests: dict[tuple[object, ...], str] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, variant: str, compute: Callable[[], str]) -> str:
        """The digest of `path` (`variant` tells apart digests of different parts), computed once per version."""
        status = os.stat(path)
        key = (str(path.resolve()), variant, status.st_size, status.st_mtime_ns, status.st_ino, status.st_dev)
        with self._lock:
            known = self._digests.get(key)
        if known is not None:
            return known
        digest = compute()
        with self._lock:
            if len(self._digests) >= self.capacity:
                self._digests.clear()
            self._digests[key] = digest
        return digest
