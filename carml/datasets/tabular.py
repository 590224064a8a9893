"""CSV and NPZ datasets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from carml.artifacts.hashing import file_sha256
from carml.datasets.base import DatasetItem, OpenedDataset, arrays_digest, label_index
from carml.errors import DatasetError
from carml.manifest import DatasetManifest
from carml.manifest.dataset import CsvOptions, NpzOptions


def _file_reader(path: Path):  # type: ignore[no-untyped-def]
    return lambda: path.read_bytes()


def _row_reader(values: np.ndarray):  # type: ignore[no-untyped-def]
    return lambda: values


def read_csv(manifest: DatasetManifest, path: Path | None) -> OpenedDataset:
    """One row per item: a label column plus a file path column or numeric feature columns."""
    if path is None or not path.is_file():
        raise DatasetError(f"dataset {manifest.name}: {path} is not a CSV file")
    options = manifest.csv or CsvOptions()
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DatasetError(f"dataset {manifest.name}: {path} has no rows")
    columns = list(rows[0])
    if options.label_column not in columns:
        raise DatasetError(f"dataset {manifest.name}: no column {options.label_column!r} in {path} (has {columns})")
    if manifest.labels and manifest.labels.names:
        labels = list(manifest.labels.names)
    else:
        labels = sorted({r[options.label_column] for r in rows}, key=lambda v: (len(v), v))
    features = options.feature_columns or [c for c in columns if c not in (options.label_column, options.path_column)]
    missing = [c for c in ([options.path_column] if options.path_column else features) if c not in columns]
    if missing:
        raise DatasetError(f"dataset {manifest.name}: columns {missing} are not in {path}")
    items, rejected = [], []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        item_id = f"row-{number}"
        try:
            label = label_index(labels, row[options.label_column])
            if options.path_column:
                target = (path.parent / row[options.path_column]).resolve()
                if not target.is_relative_to(path.parent.resolve()):
                    raise ValueError(f"path {row[options.path_column]!r} leaves the dataset folder")
                items.append(DatasetItem(row[options.path_column], label, _file_reader(target)))
            else:
                values = np.asarray([float(row[c]) for c in features], dtype=np.float32)
                items.append(DatasetItem(item_id, label, _row_reader(values)))
        except ValueError as exc:
            rejected.append((item_id, str(exc)))
    return OpenedDataset(manifest.name, labels, items, file_sha256(path), rejected)


def read_npz(manifest: DatasetManifest, path: Path | None) -> OpenedDataset:
    """x holds items along its first axis, y their integer classes."""
    if path is None or not path.is_file():
        raise DatasetError(f"dataset {manifest.name}: {path} is not an NPZ file")
    options = manifest.npz or NpzOptions()
    try:
        # NB: allow_pickle=False: an NPZ with object arrays could run code when unpickled.
        with np.load(path, allow_pickle=False) as archive:
            x, y = archive[options.x], archive[options.y]
    except KeyError as exc:
        raise DatasetError(f"dataset {manifest.name}: {path} has no array {exc}") from None
    except (ValueError, OSError) as exc:
        raise DatasetError(f"dataset {manifest.name}: cannot read {path} as NPZ: {exc}") from None
    if len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(
            f"dataset {manifest.name}: expected y as one integer class per item; x has {len(x)} items, "
            f"y has shape {list(y.shape)} of {y.dtype}"
        )
    count = int(y.max()) + 1 if y.size else 0
    labels = (
        list(manifest.labels.names) if manifest.labels and manifest.labels.names else [str(i) for i in range(count)]
    )
    items = [DatasetItem(f"{i}", int(y[i]), _row_reader(x[i])) for i in range(len(x)) if 0 <= y[i] < len(labels)]
    rejected = [
        (f"{i}", f"class {int(y[i])} is outside 0..{len(labels) - 1}")
        for i in range(len(x))
        if not 0 <= y[i] < len(labels)
    ]
    return OpenedDataset(manifest.name, labels, items, arrays_digest(x, y), rejected)
