"""What a dataset reader produces: labelled items whose data is read lazily, one at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DatasetItem:
    """One labelled item. `read()` returns encoded file bytes or an array; it may raise on a bad item."""

    item_id: str
    label: int | None
    read: Callable[[], bytes | np.ndarray]


@dataclass
class OpenedDataset:
    """A dataset ready to iterate: class names, items, a digest for the reproducibility record."""

    name: str
    labels: list[str]
    items: Sequence[DatasetItem]
    digest: str
    # Items refused while listing (e.g. a label outside the declared classes): (item id, reason).
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # How the dataset was declared (set by `open_dataset`), for the registry of datasets used.
    format: str = ""
    modality: str = ""


def file_reader(path: Path) -> Callable[[], bytes]:
    """A lazy `read` for an item stored as a file: its bytes, read only when the item is used."""
    return lambda: path.read_bytes()


def array_reader(values: np.ndarray) -> Callable[[], np.ndarray]:
    """A `read` for an item already in memory (a CSV row, an NPZ slice)."""
    return lambda: values


def natural_key(name: str) -> tuple[bool, int, str]:
    """Sort key putting whole numbers first, by value ('2' before '10'), then other names alphabetically.

    Every reader orders class names with it, so class folders 0..10 and CSV labels 0..10 get the same indices.
    """
    # isdigit() alone accepts characters such as '²' that int() refuses.
    if name.isascii() and name.isdigit():
        return (False, int(name), name)
    return (True, 0, name)


def label_index(labels: list[str], value: object) -> int:
    """Map a label as written in the data (name or index) to its class index; ValueError if unknown."""
    text = str(value).strip()
    if text in labels:
        return labels.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(labels):
        return int(text)
    raise ValueError(f"label {text!r} is not one of the dataset's {len(labels)} classes")


def arrays_digest(*arrays: np.ndarray) -> str:
    """SHA-256 over arrays' dtype, shape and bytes, for datasets that are not files."""
    digest = hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype}{contiguous.shape}".encode())
        digest.update(contiguous.reshape(-1).view(np.uint8))  # the bytes tobytes() gives, without a copy
    return digest.hexdigest()
