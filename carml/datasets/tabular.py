"""CSV and NPZ datasets."""

from __future__ import annotations

import csv
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from carml.artifacts.hashing import file_sha256
from carml.datasets.base import (
    DatasetItem,
    OpenedDataset,
    array_reader,
    arrays_digest,
    file_reader,
    label_index,
    natural_key,
)
from carml.datasets.npz_mapping import DigestMemo, mapped_member
from carml.errors import DatasetError
from carml.manifest import DatasetManifest
from carml.manifest.dataset import CsvOptions, NpzOptions

# More classes than this is taken as a mistake (e.g. y holding values, not class indices), not a dataset.
MAX_NPZ_CLASSES = 100_000
# The server and each worker hash an NPZ once per version of the file, not once per job.
_NPZ_DIGESTS = DigestMemo()


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank CSV record; a file that is not readable CSV is a DatasetError."""
    try:
        # utf-8-sig: spreadsheet programs often start a UTF-8 CSV with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                for fields in reader:
                    if fields:  # a blank line is no item
                        yield reader.line_num, fields
            except csv.Error as exc:  # e.g. a field over the csv module's size limit, a NUL byte
                raise DatasetError(f"{path}: line {reader.line_num}: not readable as CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason}); save the CSV as UTF-8") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def _csv_header(records: Iterator[tuple[int, list[str]]], path: Path) -> list[str]:
    """The column names from the first record; an empty file or a repeated column is a DatasetError."""
    first = next(records, None)
    if first is None:
        raise DatasetError(f"{path} is empty; a CSV dataset needs a header row and one row per item")
    header = [column.strip() for column in first[1]]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DatasetError(f"{path}: the header names the column(s) {repeated} more than once")
    return header


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (for guessing the options of a user's CSV)."""
    return _csv_header(_csv_records(path), path)


def _feature_vector(row: dict[str, str], features: list[str]) -> np.ndarray:
    """The numeric features of one row; ValueError naming the column that is not a number."""
    values = []
    for column in features:
        try:
            values.append(float(row[column]))
        except ValueError:
            raise ValueError(f"column {column!r}: {row[column]!r} is not a number") from None
    return np.asarray(values, dtype=np.float32)


def _file_item(row: dict[str, str], column: str, folder: Path, label: int) -> DatasetItem:
    """An item read from the file a row names, which must lie inside the CSV's folder."""
    name = row[column].strip()
    if not name:
        raise ValueError(f"column {column!r} is empty")
    try:
        target = (folder / name).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on Python 3.11
        raise ValueError(f"path {name!r} cannot be resolved: {exc}") from None
    if not target.is_relative_to(folder.resolve()):
        raise ValueError(f"path {name!r} leaves the dataset folder")
    return DatasetItem(name, label, file_reader(target))


def _csv_labels(
    manifest: DatasetManifest, header: list[str], rows: list[tuple[int, list[str]]], column: str
) -> list[str]:
    """The manifest's class names, or the distinct values of the label column in natural order."""
    if manifest.labels and manifest.labels.names:
        return list(manifest.labels.names)
    at = header.index(column)
    found = {fields[at].strip() for _, fields in rows if len(fields) == len(header)}  # ragged rows are refused
    return sorted(found - {""}, key=natural_key)


def read_csv(manifest: DatasetManifest, path: Path | None) -> OpenedDataset:
    """One row per item: a label column plus a file path column or numeric feature columns."""
    if path is None or not path.is_file():
        raise DatasetError(f"dataset {manifest.name}: {path} is not a CSV file")
    options = manifest.csv or CsvOptions()
    records = _csv_records(path)
    header = _csv_header(records, path)
    rows = list(records)
    if not rows:
        raise DatasetError(f"dataset {manifest.name}: {path} has a header but no rows")
    if options.label_column not in header:
        raise DatasetError(f"dataset {manifest.name}: no column {options.label_column!r} in {path} (has {header})")
    features = options.feature_columns or [c for c in header if c not in (options.label_column, options.path_column)]
    missing = [c for c in ([options.path_column] if options.path_column else features) if c not in header]
    if missing:
        raise DatasetError(f"dataset {manifest.name}: columns {missing} are not in {path}")
    labels = _csv_labels(manifest, header, rows, options.label_column)
    items, rejected = [], []
    for line, fields in rows:
        item_id = f"row-{line}"
        if len(fields) != len(header):
            rejected.append((item_id, f"row has {len(fields)} fields, the header has {len(header)}"))
            continue
        row = dict(zip(header, fields, strict=True))
        try:
            label = label_index(labels, row[options.label_column])
            if options.path_column:
                items.append(_file_item(row, options.path_column, path.parent, label))
            else:
                items.append(DatasetItem(item_id, label, array_reader(_feature_vector(row, features))))
        except ValueError as exc:
            rejected.append((item_id, str(exc)))
    return OpenedDataset(manifest.name, labels, items, file_sha256(path), rejected)


def _npz_arrays(path: Path, options: NpzOptions, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The x and y arrays of an NPZ file; anything unreadable is a DatasetError naming the file.

    An uncompressed x (`np.savez`) is memory-mapped: items are read from the file when used.
    """
    # np.load takes a non-zip file for a pickle or .npy and says so; naming the expected format is clearer.
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"dataset {name}: {path} is not an NPZ (zip) file")
    try:
        # NB: allow_pickle=False: an NPZ with object arrays could run code when unpickled.
        with np.load(path, allow_pickle=False) as archive:
            absent = [a for a in (options.x, options.y) if a not in archive.files]
            if absent:
                raise DatasetError(f"dataset {name}: {path} has no array {absent} (has {archive.files})")
            x = mapped_member(path, options.x)
            return (archive[options.x] if x is None else x), archive[options.y]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DatasetError(f"dataset {name}: cannot read {path} as NPZ: {exc}") from None


def _check_npz_shapes(x: np.ndarray, y: np.ndarray, path: Path, name: str) -> None:
    """x: one or more items along its first axis, numeric; y: one integer class per item."""
    if x.ndim < 1 or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DatasetError(
            f"dataset {name}: {path}: x must be a numeric array with items along its first axis "
            f"(has shape {list(x.shape)} of {x.dtype})"
        )
    if len(x) == 0:
        raise DatasetError(f"dataset {name}: {path}: x has no items")
    if y.ndim != 1 or len(x) != len(y) or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(
            f"dataset {name}: {path}: expected y as one integer class per item; x has {len(x)} items, "
            f"y has shape {list(y.shape)} of {y.dtype}"
        )


def _npz_labels(manifest: DatasetManifest, y: np.ndarray, path: Path) -> list[str]:
    """The manifest's class names, or '0'..'max(y)' when it names none."""
    if manifest.labels and manifest.labels.names:
        return list(manifest.labels.names)
    highest = int(y.max())
    if highest < 0:
        raise DatasetError(f"dataset {manifest.name}: {path}: y has no class index of 0 or more")
    if highest >= MAX_NPZ_CLASSES:
        raise DatasetError(
            f"dataset {manifest.name}: {path}: y holds class {highest}, more than {MAX_NPZ_CLASSES} classes; "
            f"y must hold class indices 0, 1, 2 ..."
        )
    return [str(i) for i in range(highest + 1)]


def read_npz(manifest: DatasetManifest, path: Path | None) -> OpenedDataset:
    """x holds items along its first axis, y their integer classes."""
    if path is None or not path.is_file():
        raise DatasetError(f"dataset {manifest.name}: {path} is not an NPZ file")
    options = manifest.npz or NpzOptions()
    x, y = _npz_arrays(path, options, manifest.name)
    _check_npz_shapes(x, y, path, manifest.name)
    labels = _npz_labels(manifest, y, path)
    items, rejected = [], []
    for i, value in enumerate(y.tolist()):
        if 0 <= value < len(labels):
            items.append(DatasetItem(f"{i}", value, array_reader(x[i])))
        else:
            rejected.append((f"{i}", f"class {value} is outside 0..{len(labels) - 1}"))
    digest = _NPZ_DIGESTS.get(path, f"x={options.x} y={options.y}", lambda: arrays_digest(x, y))
    return OpenedDataset(manifest.name, labels, items, digest, rejected)
