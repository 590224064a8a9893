"""What a dataset reader produces: labelled items whose data is read lazily, one at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
        digest.update(contiguous.tobytes())
    return digest.hexdigest()
