"""Dataset readers keyed by manifest `format`, plus user datasets given as a bare path."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from pydantic import ValidationError

from carml.datasets.base import DatasetItem, OpenedDataset
from carml.errors import CarmlError, DatasetError
from carml.labels import read_labels
from carml.manifest import DatasetManifest, LoadedManifest
from carml.manifest.common import Labels

Reader = Callable[[DatasetManifest, Path | None], OpenedDataset]
ENTRY_POINT_GROUP = "carml.dataset_readers"

__all__ = [
    "DatasetItem",
    "OpenedDataset",
    "dataset_readers",
    "looks_like_dataset_path",
    "manifest_for_path",
    "open_dataset",
]


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
    for name, reader in _plugin_readers().items():
        readers.setdefault(name, reader)
    return readers


@cache
def _plugin_readers() -> dict[str, Reader]:
    # Once per process, like the predictor plugins: scanning the installed packages' entry points costs ~20 ms,
    # and every job submission and every shard opens a dataset.
    plugins: dict[str, Reader] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugins.setdefault(ep.name, ep.load())
        except Exception as exc:  # a broken plugin must not break the built-in formats
            warnings.warn(f"dataset reader plugin {ep.name!r} failed to load: {exc}", stacklevel=2)
    return plugins


def open_dataset(loaded: LoadedManifest[DatasetManifest], resolve: Callable[..., Path]) -> OpenedDataset:
    """Fetch (through `resolve`, the artifact cache) and list a dataset's items.

    A labels file is read here, so readers only ever see inline label names.
    """
    manifest = loaded.manifest
    reader = dataset_readers().get(manifest.format)
    if reader is None:
        raise DatasetError(f"dataset {manifest.name}: no reader for format {manifest.format!r}")
    if manifest.labels is not None and manifest.labels.file is not None:
        try:
            names = read_labels(manifest.labels, loaded.folder, resolve)
        except CarmlError as exc:
            raise DatasetError(f"dataset {manifest.name}: {exc}") from None
        manifest = manifest.model_copy(update={"labels": Labels(names=names)})
    root = resolve(manifest.location, loaded.folder) if manifest.location is not None else None
    opened = reader(manifest, root)
    opened.format, opened.modality = manifest.format, str(manifest.modality)
    return opened


LABEL_COLUMNS = ("label", "class", "target", "y")
PATH_COLUMNS = ("path", "file", "filename", "image")

# The one table of file endings a user's dataset may have: ending -> (format, archive type to unpack).
DATA_SUFFIXES: dict[str, tuple[str, str | None]] = {
    ".zip": ("image-folder", "zip"),
    ".tar": ("image-folder", "tar"),
    ".tar.gz": ("image-folder", "tar.gz"),
    ".tgz": ("image-folder", "tar.gz"),
    ".tar.bz2": ("image-folder", "tar.bz2"),
    ".tar.xz": ("image-folder", "tar.xz"),
    ".csv": ("csv", None),
    ".npz": ("npz", None),
}


def _data_suffix(name: str) -> str | None:
    """The entry of `DATA_SUFFIXES` that `name` ends with (longest first, so .tar.gz wins over .gz)."""
    lowered = name.lower()
    return next((s for s in sorted(DATA_SUFFIXES, key=len, reverse=True) if lowered.endswith(s)), None)


def looks_like_dataset_path(name: str) -> bool:
    """Whether a dataset argument is meant as a path (has a folder separator or a data file ending).

    A bare word is taken as a catalog name first, even if a folder of that name happens to exist here.
    """
    return "/" in name or os.sep in name or _data_suffix(name) is not None


def _sniff_csv(path: Path) -> dict[str, str]:
    """CSV options for a user's file from its header: the label column, and a file path column if any."""
    from carml.datasets.tabular import csv_header

    header = csv_header(path)
    lowered = {column.lower(): column for column in header}
    label = next((lowered[c] for c in LABEL_COLUMNS if c in lowered), None)
    if label is None:
        raise DatasetError(f"{path}: no label column; name one of the columns {', '.join(LABEL_COLUMNS)}")
    options = {"label_column": label}
    path_column = next((lowered[c] for c in PATH_COLUMNS if c in lowered), None)
    if path_column is not None:
        options["path_column"] = path_column
    return options


def _format_of(path: Path) -> tuple[str, str | None]:
    """(reader format, archive type) of a user's dataset path."""
    if path.is_dir():
        return "image-folder", None
    suffix = _data_suffix(path.name)
    if suffix is None or not path.is_file():
        raise DatasetError(
            f"{path}: expected a folder of class subfolders, an archive of one "
            f"({', '.join(s for s, (f, _) in DATA_SUFFIXES.items() if f == 'image-folder')}), a .csv or an .npz"
        )
    return DATA_SUFFIXES[suffix]


def manifest_for_path(path: Path) -> LoadedManifest[DatasetManifest]:
    """A user's own dataset given as a path: a class-folder tree, a zip/tar of one, a CSV or an NPZ."""
    path = Path(path)
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise DatasetError(f"{path}: not a usable path: {exc}") from None
    if not exists:
        raise DatasetError(f"{path} does not exist")
    fmt, archive = _format_of(path)
    # A file: URL of the absolute path: a bare name such as `run:3.csv` would be read as a URL scheme.
    location: dict[str, object] = {"url": path.resolve().as_uri()}
    if archive is not None:
        location["archive"] = archive
    options: dict[str, object] = {"csv": _sniff_csv(path)} if fmt == "csv" else {}
    try:
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
    except ValidationError as exc:  # should not happen for a path that exists; still no traceback for users
        first = exc.errors()[0]
        raise DatasetError(f"{path}: cannot be opened as a dataset: {first['msg']}") from None
    return LoadedManifest(manifest=manifest, source=path.resolve().parent / f"{path.name}.dataset", digest="")
