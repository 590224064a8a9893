"""Datasets that ship with CarML's dependencies, so they need no download."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from carml.datasets.base import DatasetItem, OpenedDataset, array_reader, arrays_digest
from carml.datasets.digits import LABELS, load_digits_split
from carml.errors import DatasetError
from carml.manifest import DatasetManifest


def _sklearn_digits(manifest: DatasetManifest) -> OpenedDataset:
    images, labels = load_digits_split(manifest.split)
    items = [DatasetItem(f"{i}", int(labels[i]), array_reader(images[i])) for i in range(len(images))]
    return OpenedDataset(manifest.name, list(LABELS), items, arrays_digest(images, labels))


BUILTIN_LOADERS: dict[str, Callable[[DatasetManifest], OpenedDataset]] = {
    "sklearn-digits": _sklearn_digits,
}


def read_builtin(manifest: DatasetManifest, root: Path | None) -> OpenedDataset:
    """A dataset produced by a named loader in `BUILTIN_LOADERS`; `root` is unused."""
    loader = BUILTIN_LOADERS.get(manifest.loader or "")
    if loader is None:
        raise DatasetError(
            f"dataset {manifest.name}: unknown builtin loader {manifest.loader!r}; "
            f"known: {', '.join(sorted(BUILTIN_LOADERS))}"
        )
    try:
        return loader(manifest)
    except ValueError as exc:
        raise DatasetError(f"dataset {manifest.name}: {exc}") from None
