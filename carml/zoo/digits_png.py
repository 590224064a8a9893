"""The digits test split as an image-folder dataset: 32x32 grayscale PNGs in class folders, zipped.

Each 8x8 image is enlarged 4x by repeating pixels, so a model's `resize` step (method area) has real work
to do and still gives back exactly the original pixels: CarML's file pipeline and the builtin tensor
dataset then feed a model the same numbers.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from carml.errors import CarmlError
from carml.zoo.zipfiles import write_atomic, zip_bytes

ROOT = "digits-png"
SCALE = 4
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png_gray(pixels: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a uint8 [H, W] array, with no metadata chunks.

    Written here rather than by Pillow so the bytes do not change with Pillow's version or its choice of
    row filters: every row uses filter 0 and the pixel data is deflated by the standard library at level 9.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise ValueError(f"expected a uint8 [H, W] array, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8 bit, grayscale, deflate, no interlace
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def member_name(label: int, index: int) -> str:
    """Where test image `index` (its position in the split) lives in the archive."""
    return f"{ROOT}/{label}/{index:04d}.png"


def digits_png_zip(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The archive's bytes: folders and PNGs in sorted order, so the same split gives the same bytes."""
    members: dict[str, bytes] = {f"{ROOT}/": b""}
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        members[f"{ROOT}/{int(label)}/"] = b""
        enlarged = np.repeat(np.repeat(image, SCALE, axis=0), SCALE, axis=1)
        members[member_name(int(label), index)] = encode_png_gray(enlarged)
    return zip_bytes(sorted(members.items()))


def write_digits_png_zip(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the archive, then read it back as a model would and check every image survives exactly."""
    write_atomic(path, digits_png_zip(images, labels))
    check_digits_png_zip(path, images, labels)


def check_digits_png_zip(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Raise `CarmlError` unless each PNG decodes to its image enlarged 4x and area-resizes back to it."""
    from PIL import Image

    with zipfile.ZipFile(path) as archive:
        files = [n for n in archive.namelist() if not n.endswith("/")]
        if len(files) != len(images):
            raise CarmlError(f"{path}: {len(files)} images in the archive, the split has {len(images)}")
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            with Image.open(io.BytesIO(archive.read(member_name(int(label), index)))) as png:
                decoded = np.asarray(png)
                # BOX is what the preprocessing `resize` step runs for method area.
                shrunk = np.asarray(png.resize(image.shape[::-1], Image.Resampling.BOX))
            if png.mode != "L" or decoded.shape != (image.shape[0] * SCALE, image.shape[1] * SCALE):
                raise CarmlError(f"{path}: image {index} decoded as {png.mode} {decoded.shape}")
            if not np.array_equal(shrunk, image):
                raise CarmlError(f"{path}: image {index} does not resize back to the original pixels")
