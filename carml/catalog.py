"""The catalog: every model and dataset manifest found under the configured manifest folders (the service adds the
models published through it: see `carml.publishing.service_catalog`)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from carml.errors import CarmlError, ManifestError, NotFound, Problem
from carml.manifest import DatasetManifest, LoadedManifest, ModelManifest
from carml.manifest.loader import load_any_manifest, load_dataset_manifest, load_model_manifest

MANIFEST_SUFFIXES = (".yaml", ".yml")
_MAX_PARSED = 4096

# Manifests already parsed and validated, by loader, file and content digest. The catalog is read on every job
# submission (three times) and by most API requests; parsing its YAML each time was most of a submission's time.
# Keyed by the bytes' SHA-256 (not the modification time), so an edited manifest is never served stale.
_parsed: dict[tuple[Callable[..., Any], Path, str], LoadedManifest[Any]] = {}
_parsed_lock = threading.Lock()


def _load_cached(path: Path, loader: Callable[[Path], LoadedManifest[Any]]) -> LoadedManifest[Any]:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return loader(path)  # the loader reports the file it cannot read
    path = path.resolve()  # relative artifacts resolve against the real folder, which a symlink switch changes
    with _parsed_lock:
        cached = _parsed.get((loader, path, digest))
    if cached is not None:
        return cached
    loaded = loader(path)
    with _parsed_lock:
        if len(_parsed) >= _MAX_PARSED:
            _parsed.clear()
        _parsed[(loader, path, loaded.digest)] = loaded
    return loaded


def load_model_manifest_cached(path: Path) -> LoadedManifest[ModelManifest]:
    """`load_model_manifest` through the cache above: a worker starting a job on an unchanged manifest reads and
    hashes the file, and does not parse it again."""
    return _load_cached(Path(path), load_model_manifest)


def _manifest_files(folder: Path) -> Iterable[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())


# The catalog last read from each list of folders, with what their files looked like just before (`_folder_state`).
_folder_catalogs: dict[tuple[Path, ...], tuple[tuple[Any, ...], Catalog]] = {}
# NB: a file written again within the file system's timestamp granularity (a few ms), at the same size, can look
# unchanged; so a read is only remembered when every file was older than this at the time (as git treats "racily
# clean" files), and a folder with a file this fresh is read every time.
_SETTLED_NS = 2 * 10**9


def _folder_state(manifest_dirs: tuple[Path, ...]) -> tuple[Any, ...]:
    """What the manifest files `_manifest_files` would find look like: each folder's real path (a switched symlink
    changes it), each file's size, inode, modification and change times and, for a link, its target. Any file added,
    removed, replaced, written or relinked changes it; much cheaper than reading and hashing the files."""
    state: list[Any] = []
    pending = [root / sub for root in manifest_dirs for sub in ("models", "datasets")]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            state.append((str(folder), None))  # absent, or not a folder
            continue
        state.append((str(folder), os.path.realpath(folder)))
        for entry in entries:
            try:
                if entry.is_dir() and not entry.is_symlink():  # rglob does not descend into linked folders
                    pending.append(Path(entry.path))
                elif entry.name.endswith(MANIFEST_SUFFIXES):
                    info = entry.stat()
                    target = os.path.realpath(entry.path) if entry.is_symlink() else None
                    state.append((entry.path, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns, target))
            except OSError:
                state.append((entry.path, None))
    return tuple(sorted(state, key=repr))


def _settled(state: tuple[Any, ...], read_ns: int) -> bool:
    """Whether every file in `state` had last changed long enough before `read_ns` for its times to tell any change
    after it."""
    files = [entry for entry in state if len(entry) == 6]
    return all(max(entry[3], entry[4]) < read_ns - _SETTLED_NS for entry in files)


@dataclass(frozen=True)
class Publication:
    """Who published a model through the service, and when; models from manifest folders have none."""

    owner: str
    published_at: datetime


@dataclass
class Catalog:
    """Loaded manifests plus the problems of those that failed to load (reported, never fatal)."""

    models: list[LoadedManifest[ModelManifest]] = field(default_factory=list)
    datasets: list[LoadedManifest[DatasetManifest]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # The models in `models` that were published through the service, by `ModelManifest.key`.
    published: dict[str, Publication] = field(default_factory=dict)

    @classmethod
    def load(cls, manifest_dirs: Sequence[Path]) -> Catalog:
        """Read `<dir>/models/**.yaml` and `<dir>/datasets/**.yaml` under each folder.

        NB: every job submission reads the catalog: while no file has changed since the last read (`_folder_state`),
        that read is given again (as a new Catalog: callers add to theirs)."""
        key = tuple(Path(folder) for folder in manifest_dirs)
        read_ns = time.time_ns()
        state = _folder_state(key)
        with _parsed_lock:
            last = _folder_catalogs.get(key)
        if last is not None and last[0] == state:
            return last[1].copy()
        catalog = cls._read(key)
        with _parsed_lock:
            _folder_catalogs.pop(key, None)
            if _settled(state, read_ns):
                if len(_folder_catalogs) >= _MAX_PARSED:
                    _folder_catalogs.clear()
                _folder_catalogs[key] = (state, catalog)
        return catalog.copy()

    def copy(self) -> Catalog:
        """A catalog with the same entries, whose lists can be added to without changing this one's."""
        return Catalog(list(self.models), list(self.datasets), list(self.problems), dict(self.published))

    @classmethod
    def _read(cls, manifest_dirs: Sequence[Path]) -> Catalog:
        catalog = cls()
        for root in manifest_dirs:
            if not root.is_dir():
                catalog.problems.append(Problem(str(root), "", "manifest folder does not exist"))
                continue
            for path in _manifest_files(root / "models"):
                catalog._add(path, load_model_manifest, catalog.models)
            for path in _manifest_files(root / "datasets"):
                catalog._add(path, load_dataset_manifest, catalog.datasets)
        catalog._report_duplicates()
        return catalog

    def _add(self, path: Path, loader, into: list) -> None:  # type: ignore[no-untyped-def]
        try:
            into.append(_load_cached(path, loader))
        except ManifestError as exc:
            self.problems.extend(exc.problems)

    def _report_duplicates(self) -> None:
        seen: dict[str, Path] = {}
        unique_models = []
        for loaded in self.models:
            first = seen.setdefault(loaded.manifest.key, loaded.source)
            if first != loaded.source:
                self.problems.append(
                    Problem(str(loaded.source), "name", f"{loaded.manifest.key} is already defined by {first}")
                )
            else:
                unique_models.append(loaded)
        self.models = unique_models

    def publication(self, loaded: LoadedManifest[ModelManifest]) -> Publication | None:
        """Who published `loaded` through the service; None for a model from a manifest folder."""
        return self.published.get(loaded.manifest.key)

    # ------------------------------------------------------------------ lookups
    def model(self, name: str, framework: str | None = None) -> LoadedManifest[ModelManifest]:
        """A model by name (and framework when several share the name), or a manifest file's path."""
        if Path(name).suffix in MANIFEST_SUFFIXES and Path(name).is_file():
            any_loaded = load_any_manifest(Path(name))
            if not isinstance(any_loaded.manifest, ModelManifest):
                raise CarmlError(f"{name} is a dataset manifest; give it with --dataset")
            loaded: LoadedManifest[ModelManifest] = any_loaded  # type: ignore[assignment]
            if framework and loaded.manifest.framework.name != framework:
                raise CarmlError(f"{name} is a {loaded.manifest.framework.name} manifest, not {framework}")
            return loaded
        matches = [m for m in self.models if m.manifest.name == name]
        if not matches:
            known = ", ".join(sorted({m.manifest.name for m in self.models})) or "none"
            raise NotFound(f"unknown model {name!r}; known models: {known}")
        if framework is not None:
            chosen = [m for m in matches if m.manifest.framework.name == framework]
            if not chosen:
                have = ", ".join(sorted(m.manifest.framework.name for m in matches))
                raise NotFound(f"model {name!r} has no {framework} manifest; it is published for: {have}")
            return chosen[0]
        if len(matches) > 1:
            have = ", ".join(sorted(m.manifest.framework.name for m in matches))
            raise CarmlError(f"model {name!r} is published for {have}; pick one with --framework")
        return matches[0]

    def dataset(self, name: str) -> LoadedManifest[DatasetManifest]:
        """A dataset by name, or a dataset manifest file's path."""
        if Path(name).suffix in MANIFEST_SUFFIXES and Path(name).is_file():
            return load_dataset_manifest(Path(name))
        for loaded in self.datasets:
            if loaded.manifest.name == name:
                return loaded
        known = ", ".join(sorted(d.manifest.name for d in self.datasets)) or "none"
        raise NotFound(f"unknown dataset {name!r}; known datasets: {known}")
