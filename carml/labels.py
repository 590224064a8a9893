"""Class labels as manifests give them: inline, or a text file with one label per line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from carml.errors import CarmlError
from carml.manifest.common import ArtifactRef, Labels

Resolve = Callable[[ArtifactRef, Path], Path]


def read_labels(labels: Labels | None, folder: Path, resolve: Resolve) -> list[str] | None:
    """The label names, fetching a labels file through `resolve` (the artifact cache); None if none given."""
    if labels is None:
        return None
    if labels.names is not None:
        return list(labels.names)
    assert labels.file is not None  # the schema guarantees exactly one of the two
    path = resolve(labels.file, folder)
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CarmlError(f"cannot read labels file {path}: {exc}") from None
    if not names:
        raise CarmlError(f"labels file {path} is empty")
    return names
