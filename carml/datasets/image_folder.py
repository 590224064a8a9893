"""Image-folder datasets: `<root>/<class name>/<image file>`, one subfolder per class."""

from __future__ import annotations

import hashlib
from pathlib import Path

from carml.datasets.base import DatasetItem, OpenedDataset
from carml.errors import DatasetError
from carml.manifest import DatasetManifest

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def _reader(path: Path):  # type: ignore[no-untyped-def]
    return lambda: path.read_bytes()


def read_image_folder(manifest: DatasetManifest, root: Path | None) -> OpenedDataset:
    if root is None or not root.is_dir():
        raise DatasetError(f"dataset {manifest.name}: {root} is not a folder of class subfolders")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"dataset {manifest.name}: {root} has no class subfolders")
    labels = list(manifest.labels.names) if manifest.labels and manifest.labels.names else [f.name for f in folders]
    items: list[DatasetItem] = []
    rejected: list[tuple[str, str]] = []
    listing = hashlib.sha256()
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        for path in files:
            item_id = path.relative_to(root).as_posix()
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                rejected.append((item_id, f"not an image file ({path.suffix or 'no suffix'})"))
                continue
            if folder.name not in labels:
                rejected.append((item_id, f"class folder {folder.name!r} is not among the declared labels"))
                continue
            listing.update(f"{item_id}\0{path.stat().st_size}\n".encode())
            items.append(DatasetItem(item_id, labels.index(folder.name), _reader(path)))
    return OpenedDataset(manifest.name, labels, items, "listing:" + listing.hexdigest(), rejected)
