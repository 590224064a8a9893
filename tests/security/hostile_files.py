"""Builders of hostile files: archives that escape or explode, images that are decompression bombs, CSVs and NPZs
that attack their readers. Each is small enough to build in milliseconds; sizes are declared, not written."""

from __future__ import annotations

import functools
import io
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png(width: int = 8, height: int = 8) -> bytes:
    """An ordinary grayscale PNG."""
    buffer = io.BytesIO()
    Image.new("L", (width, height), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@functools.cache
def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A 1-bit PNG of a few hundred KB whose pixels fill `width` x `height` (900 Mpx by default) when decoded.

    The image data is real (rows of zeros compressed), so a decoder that trusted it would allocate gigabytes.
    """
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    rows_per_call = 1000
    body = b"".join(compressor.compress(row * min(rows_per_call, height - i)) for i in range(0, height, rows_per_call))
    body += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def png_header_bomb(width: int, height: int) -> bytes:
    """Only a PNG header declaring `width` x `height` (and one empty data chunk): the cheapest bomb to send."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")


def zip_of(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A zip of `members` (name -> content) plus symbolic links (name -> target)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def digits_folder_zip(extra: dict[str, bytes] | None = None, classes: tuple[str, ...] = ("0", "1")) -> bytes:
    """A small, valid zip of class folders of PNGs, with `extra` members added."""
    members = {f"data/{label}/{i}.png": png() for label in classes for i in range(2)}
    return zip_of({**members, **(extra or {})})


def with_declared_size(archive: bytes, member: str, size: int) -> bytes:
    """`archive` (a zip) with `member`'s uncompressed size in the central directory set to `size` (< 4 GiB).

    A zip bomb's sizes are what its directory says; refusing one must not need the gigabytes to be written.
    """
    entry = archive.find(b"PK\x01\x02")  # central directory entries: signature, then fixed fields, then the name
    while entry != -1:
        name_length = struct.unpack_from("<H", archive, entry + 28)[0]
        if archive[entry + 46 : entry + 46 + name_length] == member.encode():
            # Offset 24: the uncompressed size.
            return archive[: entry + 24] + struct.pack("<I", size) + archive[entry + 28 :]
        entry = archive.find(b"PK\x01\x02", entry + 4)
    raise ValueError(f"no member {member} in the archive")


def tar_of(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def csv_text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


class _CreatesFileWhenUnpickled:
    """An object whose unpickling creates a folder: proof that a reader ran code from the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def npz_with_pickle(marker: Path) -> bytes:
    """An NPZ whose `x` is an object array: loading it with pickles allowed would create `marker`."""
    buffer = io.BytesIO()
    x = np.empty(2, dtype=object)
    x[0], x[1] = _CreatesFileWhenUnpickled(marker), 1
    np.savez(buffer, x=x, y=np.array([0, 1]))
    return buffer.getvalue()


def npz_bomb() -> bytes:
    """A compressed NPZ whose `x` declares 3 GiB of zeros (its directory says so; the data is a few bytes)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros((2, 8), np.uint8), y=np.array([0, 1]))
    return with_declared_size(buffer.getvalue(), "x.npy", 3 * 1024**3)
