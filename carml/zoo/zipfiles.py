"""Zip archives with reproducible bytes: fixed timestamps and modes, members stored, written atomically.

Archives built from the same members are byte-identical on every run and machine, so their sha256 can be
committed. Members are stored, not deflated: the payloads are already compressed or small, and deflate
output varies between zlib implementations.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

# The earliest date a zip header can hold; any fixed date would do.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_UNIX = 3  # zip "made by" system; fixed so a build on Windows writes the same header bytes
_LOCAL_HEADER_SIZE = 30
_PAD_FIELD_ID = 0x4246  # "FB": the extra field PyTorch pads its own archives with


def _info(name: str, offset: int, align: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.create_system = _UNIX
    info.compress_type = zipfile.ZIP_STORED
    if name.endswith("/"):
        info.external_attr = (stat.S_IFDIR | 0o755) << 16
        return info
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    if align > 1:
        # Pad the local header so the member's bytes start on an `align` boundary (mmap-friendly tensors).
        start = offset + _LOCAL_HEADER_SIZE + len(name.encode()) + 4
        padding = -start % align
        info.extra = struct.pack("<HH", _PAD_FIELD_ID, padding) + b"Z" * padding
    return info


def zip_bytes(members: Iterable[tuple[str, bytes]], align: int = 1) -> bytes:
    """An archive of (name, data) members in the order given; a name ending in '/' is a folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(_info(name, buffer.tell(), align), data)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step, so a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def normalize_zip(
    path: Path,
    keep: Callable[[str], bool] = lambda name: True,
    edit: Callable[[str, bytes], bytes] = lambda name, data: data,
    align: int = 1,
) -> None:
    """Rewrite an archive a library saved: drop members `keep` rejects, pass the rest through `edit`.

    Member order is kept (loaders may rely on it); dates, modes and compression become the fixed ones.
    """
    with zipfile.ZipFile(path) as archive:
        members = [(i.filename, edit(i.filename, archive.read(i))) for i in archive.infolist() if keep(i.filename)]
    write_atomic(path, zip_bytes(members, align))
