"""NPZ datasets read lazily: an uncompressed x is mapped from the file, and a file is hashed once per version."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from carml.datasets.base import arrays_digest
from carml.datasets.npz_mapping import DigestMemo, mapped_member
from carml.datasets.tabular import read_npz
from carml.errors import DatasetError
from carml.manifest import DatasetManifest

MANIFEST = DatasetManifest.model_validate(
    {"name": "test-data", "modality": "tensor", "format": "npz", "location": {"url": "unused"}}
)


@pytest.fixture()
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(30, 6, 5, 3), dtype=np.uint8), np.arange(30) % 4


@pytest.mark.parametrize("layout", ["C", "F"])
def test_a_stored_x_is_mapped_and_reads_the_same_items(tmp_path: Path, arrays, layout: str) -> None:
    x, y = arrays
    path = tmp_path / "stored.npz"
    np.savez(path, x=np.asarray(x, order=layout), y=y)
    opened = read_npz(MANIFEST, path)
    first = opened.items[0].read()
    assert isinstance(first, np.memmap)  # read from the file when used, not loaded whole
    assert all(np.array_equal(item.read(), x[i]) for i, item in enumerate(opened.items))
    assert [item.label for item in opened.items] == y.tolist()
    assert opened.digest == arrays_digest(x, y)  # the same digest as when x was read whole


def test_a_compressed_x_is_read_whole_as_before(tmp_path: Path, arrays) -> None:
    x, y = arrays
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, x=x, y=y)
    assert mapped_member(path, "x") is None
    opened = read_npz(MANIFEST, path)
    assert not isinstance(opened.items[3].read(), np.memmap)
    assert np.array_equal(opened.items[3].read(), x[3]) and opened.digest == arrays_digest(x, y)


def test_a_truncated_member_is_not_mapped_and_is_a_dataset_error(tmp_path: Path, arrays) -> None:
    x, y = arrays
    whole = tmp_path / "whole.npz"
    np.savez(whole, y=y, x=x)  # x last, so cutting the file cuts into x's bytes
    cut = tmp_path / "cut.npz"
    data = whole.read_bytes()
    info = zipfile.ZipFile(whole).getinfo("x.npy")
    cut.write_bytes(data[: info.header_offset + 200])
    assert mapped_member(cut, "x") is None
    with pytest.raises(DatasetError, match="cut.npz"):
        read_npz(MANIFEST, cut)


def test_object_arrays_are_never_mapped(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    assert mapped_member(path, "x") is None
    with pytest.raises(DatasetError, match="objects.npz"):
        read_npz(MANIFEST, path)


def test_a_digest_is_computed_once_per_version_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"one")
    memo, computed = DigestMemo(), []

    def digest() -> str:
        computed.append(path.read_bytes())
        return f"digest of {path.read_bytes()!r}"

    assert memo.get(path, "x", digest) == "digest of b'one'"
    assert memo.get(path, "x", digest) == "digest of b'one'" and len(computed) == 1
    assert memo.get(path, "other arrays", digest) and len(computed) == 2  # another part of the same file
    path.write_bytes(b"two!")
    assert memo.get(path, "x", digest) == "digest of b'two!'"
    stat = path.stat()
    path.write_bytes(b"six!")  # the same size: the modification time tells the versions apart
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert memo.get(path, "x", digest) == "digest of b'six!'" and len(computed) == 4


def test_a_changed_npz_gets_its_new_digest(tmp_path: Path, arrays) -> None:
    x, y = arrays
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    before = read_npz(MANIFEST, path).digest
    stat = path.stat()
    np.savez(path, x=x[::-1].copy(), y=y)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = read_npz(MANIFEST, path)
    assert after.digest != before and after.digest == arrays_digest(x[::-1], y)
    assert np.array_equal(after.items[0].read(), x[-1])
