"""Dataset readers keyed by manifest `format`, plus user datasets given as a bare path."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from carml.datasets.base import DatasetItem, OpenedDataset
from carml.errors import DatasetError
from carml.manifest import DatasetManifest, LoadedManifest
from carml.manifest.common import Labels

Reader = Callable[[DatasetManifest, Path | None], OpenedDataset]
ENTRY_POINT_GROUP = "carml.dataset_readers"

__all__ = ["DatasetItem", "OpenedDataset", "dataset_readers", "open_dataset", "manifest_for_path"]


def dataset_readers() -> dict[str, Reader]:
    """Built-in readers, then any registered under the `carml.dataset_readers` entry-point group."""
    from carml.datasets.builtin import read_builtin
    from carml.datasets.image_folder import read_image_folder
    from carml.datasets.tabular import read_csv, read_npz

    readers: dict[str, Reader] = {
        "image-folder": read_image_folder,
        "csv": read_csv,
        "npz": read_npz,
        "builtin": read_builtin,
    }
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            readers.setdefault(ep.name, ep.load())
        except Exception as exc:  # a broken plugin must not break the built-in formats
            warnings.warn(f"dataset reader plugin {ep.name!r} failed to load: {exc}", stacklevel=2)
    return readers


def open_dataset(loaded: LoadedManifest[DatasetManifest], resolve: Callable[..., Path]) -> OpenedDataset:
    """Fetch (through `resolve`, the artifact cache) and list a dataset's items.

    A labels file is read here, so readers only ever see inline label names.
    """
    manifest = loaded.manifest
    reader = dataset_readers().get(manifest.format)
    if reader is None:
        raise DatasetError(f"dataset {manifest.name}: no reader for format {manifest.format!r}")
    if manifest.labels is not None and manifest.labels.file is not None:
        path = resolve(manifest.labels.file, loaded.folder)
        try:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"dataset {manifest.name}: cannot read labels file {path}: {exc}") from None
        if not names:
            raise DatasetError(f"dataset {manifest.name}: labels file {path} is empty")
        manifest = manifest.model_copy(update={"labels": Labels(names=names)})
    root = resolve(manifest.location, loaded.folder) if manifest.location is not None else None
    return reader(manifest, root)


LABEL_COLUMNS = ("label", "class", "target", "y")
PATH_COLUMNS = ("path", "file", "filename", "image")


def _sniff_csv(path: Path) -> dict[str, str]:
    """CSV options for a user's file from its header: the label column, and a file path column if any."""
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        header = [column.strip() for column in next(csv.reader(handle), [])]
    lowered = {column.lower(): column for column in header}
    label = next((lowered[c] for c in LABEL_COLUMNS if c in lowered), None)
    if label is None:
        raise DatasetError(f"{path}: no label column; name one of the columns {', '.join(LABEL_COLUMNS)}")
    options = {"label_column": label}
    path_column = next((lowered[c] for c in PATH_COLUMNS if c in lowered), None)
    if path_column is not None:
        options["path_column"] = path_column
    return options


_ARCHIVE_SUFFIXES = {
    ".zip": "zip",
    ".tar": "tar",
    ".tgz": "tar.gz",
    ".gz": "tar.gz",
    ".bz2": "tar.bz2",
    ".xz": "tar.xz",
}


def manifest_for_path(path: Path) -> LoadedManifest[DatasetManifest]:
    """A user's own dataset given as a path: a class-folder tree, a zip/tar of one, a CSV or an NPZ."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    suffix = path.suffix.lower()
    location: dict[str, object] = {"url": path.name}
    if path.is_dir():
        fmt = "image-folder"
    elif suffix in (".csv", ".npz"):
        fmt = suffix[1:]
    elif suffix in _ARCHIVE_SUFFIXES:
        fmt, location["archive"] = "image-folder", _ARCHIVE_SUFFIXES[suffix]
    else:
        raise DatasetError(f"{path}: expected a folder of class subfolders, a .zip/.tar.gz of one, a .csv or an .npz")
    options: dict[str, object] = {}
    if fmt == "csv":
        options["csv"] = _sniff_csv(path)
    manifest = DatasetManifest.model_validate(
        {
            **options,
            "name": "user-dataset",
            "modality": "image" if fmt == "image-folder" else "tensor",
            "format": fmt,
            "location": location,
            "description": f"user dataset at {path}",
        }
    )
    return LoadedManifest(manifest=manifest, source=path.resolve().parent / f"{path.name}.dataset", digest="")
