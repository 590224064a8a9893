"""Image-folder datasets: `<root>/<class name>/<image file>`, one subfolder per class."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from carml.datasets.base import DatasetItem, OpenedDataset, file_reader, natural_key
from carml.errors import DatasetError
from carml.manifest import DatasetManifest

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
# Folders that archivers put beside the data (macOS zips carry __MACOSX/ resource forks): never a class.
IGNORED_NAMES = {"__MACOSX"}
# How many wrapper folders (`export/digits/<class>/...`) to look through; a bound also stops symlink loops.
MAX_WRAPPERS = 4


def _visible(path: Path) -> bool:
    """Whether an entry is part of the data: dot files and archiver leftovers are not."""
    return not path.name.startswith(".") and path.name not in IGNORED_NAMES


def _is_wrapper(folder: Path) -> bool:
    """A folder holding subfolders and no images directly: a container of class folders, not a class."""
    entries = [p for p in folder.iterdir() if _visible(p)]
    has_images = any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in entries)
    return not has_images and any(p.is_dir() for p in entries)


def _class_root(root: Path, declared: list[str] | None) -> Path:
    """The folder whose subfolders are the classes: `root`, or the single folder an archive wraps them in.

    Zipping a folder gives `<folder>/<class>/...`; without this the wrapper would be taken as the only class.
    """
    for _ in range(MAX_WRAPPERS):
        entries = [p for p in root.iterdir() if _visible(p)]
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        only = entries[0]
        if (declared and only.name in declared) or not _is_wrapper(only):
            return root
        root = only
    return root


def _list_class(
    folder: Path, root: Path, labels: list[str], record: Callable[[bytes], None]
) -> tuple[list[DatasetItem], list[tuple[str, str]]]:
    """The items of one class folder (searched recursively) and the files refused there.

    `record` receives each item's name and size, for the listing digest.
    """
    items: list[DatasetItem] = []
    rejected: list[tuple[str, str]] = []
    for parts, entry in sorted(_files_under(folder), key=lambda found: found[0]):
        if not all(_visible_name(part) for part in parts):
            continue
        path = Path(entry.path)
        item_id = "/".join((folder.name, *parts))
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            rejected.append((item_id, f"not an image file ({path.suffix or 'no suffix'})"))
        elif folder.name not in labels:
            rejected.append((item_id, f"class folder {folder.name!r} is not among the declared labels"))
        else:
            record(f"{item_id}\0{entry.stat().st_size}\n".encode())
            items.append(DatasetItem(item_id, labels.index(folder.name), file_reader(path)))
    return items, rejected


def _files_under(folder: Path, parts: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], os.DirEntry[str]]]:
    """(path parts below `folder`, entry) of every file (symlinks followed) in `folder` and the folders below it
    that are not symlinks, unreadable folders skipped: what `folder.rglob("*")` filtered by `is_file()` finds.

    One `os.scandir` per folder and one stat per file: a job lists its dataset when it is submitted and again in
    its worker, and for thousands of files pathlib's way took a noticeable part of a short job.
    """
    try:
        with os.scandir(folder.joinpath(*parts)) as scan:
            entries = list(scan)
    except PermissionError:
        return
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            yield from _files_under(folder, (*parts, entry.name))
        elif entry.is_file():
            yield (*parts, entry.name), entry


def _visible_name(name: str) -> bool:
    return not name.startswith(".") and name not in IGNORED_NAMES


def read_image_folder(manifest: DatasetManifest, root: Path | None) -> OpenedDataset:
    """One class per subfolder; classes default to the folder names in natural order ('2' before '10').

    The digest ("listing:" + SHA-256) covers only file names and sizes, not their bytes: hashing every
    image would read the whole dataset an extra time. The prefix marks it as weaker than a content hash.
    """
    if root is None or not root.is_dir():
        raise DatasetError(f"dataset {manifest.name}: {root} is not a folder of class subfolders")
    declared = list(manifest.labels.names) if manifest.labels and manifest.labels.names else None
    try:
        root = _class_root(root, declared)
        folders = sorted((p for p in root.iterdir() if p.is_dir() and _visible(p)), key=lambda p: natural_key(p.name))
        if not folders:
            raise DatasetError(f"dataset {manifest.name}: {root} has no class subfolders")
        labels = declared or [f.name for f in folders]
        items: list[DatasetItem] = []
        rejected: list[tuple[str, str]] = []
        listing = hashlib.sha256()
        for folder in folders:
            found, refused = _list_class(folder, root, labels, listing.update)
            items.extend(found)
            rejected.extend(refused)
    except OSError as exc:  # permissions, a file removed while listing, a symlink loop
        raise DatasetError(f"dataset {manifest.name}: cannot list {root}: {exc}") from None
    return OpenedDataset(manifest.name, labels, items, "listing:" + listing.hexdigest(), rejected)
