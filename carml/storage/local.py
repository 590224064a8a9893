"""`LocalObjectStore`: objects as files under one folder, for a single machine with no server."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from carml.storage.atomic import atomic_file
from carml.storage.base import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectStore
from carml.storage.errors import ObjectNotFound, StorageError
from carml.storage.keys import TEMP_PREFIX, validate_key, validate_prefix

_CHUNK = 1024 * 1024
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class LocalObjectStore(ObjectStore):
    """Key 'a/b/c' is the file `root/a/b/c`. The folder is created on the first write. Content types are not kept."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()

    # ------------------------------------------------------------------ paths
    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*validate_key(key).split("/"))
        # Keys cannot climb out, but a symlink placed inside the folder could; resolving catches both.
        if not path.resolve().is_relative_to(self.root):
            raise StorageError(f"The object key '{key}' leads outside the store {self.root}.")
        return path

    def _error(self, action: str, key: str, exc: OSError) -> StorageError:
        return StorageError(f"Could not {action} '{key}' in the store {self.root}: {exc.strerror or exc}.")

    def _not_found(self, key: str) -> ObjectNotFound:
        return ObjectNotFound(f"The store {self.root} has no object '{key}'.")

    # ------------------------------------------------------------------ writes
    def put_bytes(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        path = self._path(key)
        try:
            with atomic_file(path) as out:
                out.write(data)
        except OSError as exc:
            raise self._error("write", key, exc) from None
        return ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def put_file(self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        target = self._path(key)
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed below; a missing source gets its own message
        except OSError as exc:
            raise StorageError(f"Could not store '{key}': cannot read {path}: {exc.strerror or exc}.") from None
        digest, size = hashlib.sha256(), 0
        try:
            with source, atomic_file(target) as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise self._error("write", key, exc) from None
        return ObjectInfo(key, size, digest.hexdigest())

    # ------------------------------------------------------------------ reads
    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except _MISSING:
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._error("read", key, exc) from None

    def download(self, key: str, dest_path: Path) -> None:
        with self.open_stream(key) as source:
            try:
                with atomic_file(Path(dest_path)) as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
            except OSError as exc:
                raise StorageError(f"Could not download '{key}' to {dest_path}: {exc.strerror or exc}.") from None

    @contextlib.contextmanager
    def open_stream(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except _MISSING:
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._error("read", key, exc) from None
        with stream:
            yield stream

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    # ------------------------------------------------------------------ listing
    def _files(self, folder: Path) -> Iterator[tuple[str, int]]:
        """(key, size) of every regular file under `folder`; symlinks and temp files are not objects."""
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._files(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    key = Path(entry.path).relative_to(self.root).as_posix()
                    yield key, entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue  # deleted while we listed

    def list(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        validate_prefix(prefix)
        # Only the folder that holds every match is walked: 'runs/1' matches runs/1/... and runs/10/...
        folder = prefix.rpartition("/")[0]
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        found = [ObjectInfo(key, size) for key, size in self._files(start) if key.startswith(prefix)]
        return sorted(found, key=lambda info: info.key)

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for info in self.list(prefix):
            path = self.root.joinpath(*info.key.split("/"))
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another deleter was first
            except OSError as exc:
                raise self._error("delete", info.key, exc) from None
            deleted += 1
            self._prune(path.parent)
        return deleted

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty, up to (not including) the root, so listings stay cheap."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or already gone): stop climbing
            folder = folder.parent

    def describe(self) -> str:
        return str(self.root)
